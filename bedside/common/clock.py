"""Clocks: the only place the core reads the time.

Every time-dependent function takes a :class:`Clock`. The system clock returns aware
UTC datetimes; tests use :class:`FakeClock`. Wall-clock time is used (not monotonic)
because deadlines must survive restarts and sleep; backwards jumps are detected by
:mod:`bedside.ward.timesafety` against a persisted high-water mark.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)


class Clock(Protocol):
    """Anything that tells the current instant as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant (aware, UTC)."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        """Return ``datetime.now(UTC)``."""
        return datetime.now(UTC)


class FakeClock:
    """A settable clock for tests and demos."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the fake current instant."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or backward, with a negative delta)."""
        self._now = self._now + delta

    def set(self, when: datetime) -> None:
        """Jump the clock to ``when`` (aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = when.astimezone(UTC)

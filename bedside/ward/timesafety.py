"""Time safety: a high-water mark, clock-jump detection, dose checks a bad clock cannot loosen.

Escalation timers are derived from the wall clock (:mod:`bedside.clinical.escalations`), so after a
sleep, a restart or a corrected clock they are simply recomputed; nothing here counts
ticks. What the wall clock cannot tell by itself is whether it is *right*. The
:class:`ClockGuard` watches it:

* **High-water mark.** The latest wall time ever seen is kept in ``DIR/clock.json``
  (written with :func:`~bedside.store.storage.atomic_write`). At start, a clock more than
  ``monitoring.clock_jump_tolerance_min`` behind it went backwards while the app was
  closed.
* **While running**, each :meth:`ClockGuard.tick` compares the wall-clock delta since the
  previous tick with the delta of a monotonic clock that includes suspend
  (``CLOCK_BOOTTIME`` on Linux; Windows' ``time.monotonic`` already includes it). A
  divergence beyond the tolerance is a backward step or a forward jump; a sleep is not.
* **Reported and recorded.** Each anomaly is returned as a :class:`ClockReport` (for the
  UI banner) and written as a ``clock_anomaly`` event to every open patient record.
* **Never makes a dose allowed.** Attached to a ward (:func:`attach`), the guard
  restricts every "dose now" check (``Ward.time_guard``, used by ``plan_tocilizumab``,
  ``give_tocilizumab`` and ``budget``):

  - after a forward jump, tocilizumab dosing is blocked (hard) until a nurse confirms the
    time against an independent clock (:meth:`ClockGuard.confirm_time`);
  - while the clock is behind the high-water mark, a dose must pass the checks both at
    the clock's ``now`` *and* at the high-water mark (shifted by the same amount). The
    later of the two instants is therefore always checked (reliability.md §2.3), and the
    earlier one too: checking only the later instant would let a stale high-water mark
    (left by a clock that had been running fast) make a dose look 8 h away from the last
    one when it is not.

  A dose back-dated to an explicit time gets the same restrictions (its time was read
  off, or typed against, the same doubtful clock).
* **Never off.** A missing or unreadable ``clock.json`` falls back to the newest instant
  the records hold (their ``recorded_at`` and ``saved_at``); every ward opened for writing
  gets a guard (:meth:`bedside.ward.service.Ward.open`), replaced by the UI's ticking one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bedside.clinical.doses import DoseBudget, dose_budget
from bedside.clinical.protocol import Protocol, load_default_protocol
from bedside.clinical.record import Record, make_event
from bedside.common.clock import Clock
from bedside.common.errors import BedsideError, CorruptDataError
from bedside.common.jsonio import dumps_canonical, strict_loads
from bedside.common.timeutil import format_duration, iso_utc, parse_instant
from bedside.store.storage import atomic_write
from bedside.ward.alerts import check_initials

if TYPE_CHECKING:
    from bedside.ward.service import Ward

logger = logging.getLogger(__name__)

CLOCK_FILE = "clock.json"
CLOCK_FORMAT = "bedside-clock/1"
SYSTEM_INITIALS = "SYS"
"""``recorded_by`` of events the application writes by itself (clock anomalies)."""

AnomalyKind = Literal["backwards", "forward_jump", "high_water_unreadable"]


def suspend_aware_monotonic() -> Callable[[], float]:
    """A monotonic clock (seconds) that keeps counting while the machine sleeps, where possible.

    Linux: ``CLOCK_BOOTTIME``; macOS: ``CLOCK_MONOTONIC`` (which, unlike ``time.monotonic``
    there, includes sleep); Windows and others: ``time.monotonic`` (includes suspend on
    Windows). Without it a sleep would look like a forward jump (reliability.md §2.2).
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return lambda: time.clock_gettime(boottime)
    if sys.platform == "darwin":  # pragma: no cover - platform specific
        mono = time.CLOCK_MONOTONIC
        return lambda: time.clock_gettime(mono)
    return time.monotonic  # pragma: no cover - platform specific


@dataclass(frozen=True, slots=True)
class ClockReport:
    """One detected clock anomaly.

    Attributes:
        anomaly: ``backwards``, ``forward_jump`` or ``high_water_unreadable``.
        detected_at: The wall-clock reading when it was detected (UTC).
        delta_s: How far the clock moved against the expected time (negative: backwards).
        high_water: The high-water mark before the anomaly (None if unknown).
        at_start: Detected when the application started (against the persisted mark).
        message: Plain-language text for the banner.
    """

    anomaly: AnomalyKind
    detected_at: datetime
    delta_s: float
    high_water: datetime | None
    at_start: bool
    message: str


class ClockGuard:
    """Watches the wall clock against a persisted high-water mark and a monotonic clock.

    Args:
        root: The data directory (``clock.json`` lives there).
        clock: The wall clock (aware UTC).
        monotonic: Seconds from a monotonic source (default :func:`suspend_aware_monotonic`);
            tests inject a fake.
        tolerance: Largest step not reported (default ``monitoring.clock_jump_tolerance_min``
            of the default protocol).
        ward: Where anomalies are written (every open patient record); see :func:`attach`.
        persist: Write ``clock.json`` (False for a read-only ward).
        persist_every: Minimum advance of the mark between two writes while ticking.
        record_events: Write ``clock_anomaly`` events into the ward's records (False for
            the passive guard every ward gets at open, which only restricts dose checks).
    """

    def __init__(
        self,
        root: Path,
        clock: Clock,
        *,
        monotonic: Callable[[], float] | None = None,
        tolerance: timedelta | None = None,
        ward: Ward | None = None,
        persist: bool = True,
        persist_every: timedelta = timedelta(minutes=1),
        record_events: bool = True,
    ) -> None:
        self.path = Path(root) / CLOCK_FILE
        self.clock = clock
        self.monotonic = monotonic or suspend_aware_monotonic()
        if tolerance is None:
            minutes = load_default_protocol().monitoring.clock_jump_tolerance_min.value
            tolerance = timedelta(minutes=minutes)
        if tolerance <= timedelta(0):
            raise ValueError("tolerance must be positive")
        self.tolerance = tolerance
        self.ward = ward
        self.persist = persist
        self.persist_every = persist_every
        self.record_events = record_events
        self.reports: list[ClockReport] = []
        self._high_water: datetime | None = None
        self._persisted: datetime | None = None
        self._last: tuple[datetime, float] | None = None
        self._behind = False
        self._suspended: ClockReport | None = None
        self._confirmed: dict[str, str] | None = None

    # ------------------------------------------------------------------ state

    @property
    def high_water(self) -> datetime | None:
        """The latest wall time seen (None before :meth:`start`)."""
        return self._high_water

    @property
    def dosing_suspended(self) -> bool:
        """True after a forward jump until :meth:`confirm_time`."""
        return self._suspended is not None

    @property
    def behind(self) -> bool:
        """True while the clock reads earlier than the high-water mark beyond the tolerance."""
        return self._behind

    # ------------------------------------------------------------------ persistence

    def _load(self) -> tuple[datetime | None, bool]:
        """Return (high-water mark, readable)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, True
        except OSError as exc:
            logger.warning("cannot read the clock file: %s", exc.strerror)
            return None, False
        try:
            doc = strict_loads(data, source=CLOCK_FILE)
            if not isinstance(doc, dict) or doc.get("format") != CLOCK_FORMAT:
                raise CorruptDataError(f"{CLOCK_FILE}: not a {CLOCK_FORMAT} file")
            confirmed = doc.get("confirmed")
            self._confirmed = confirmed if isinstance(confirmed, dict) else None
            return parse_instant(doc["high_water"]), True
        except (CorruptDataError, KeyError, ValueError) as exc:
            logger.warning("clock file unreadable, high-water mark lost: %s", exc)
            return None, False

    def _newest_recorded(self) -> datetime | None:
        """The newest ``recorded_at``/``saved_at`` in the ward's records (None without any)."""
        ward = self.ward
        if ward is None:
            return None
        newest: datetime | None = None
        for record in ward.records.values():
            candidates = [record.saved_at, *(e.recorded_at for e in record.events[-50:])]
            top = max(candidates)
            if newest is None or top > newest:
                newest = top
        return newest

    def _save(self) -> None:
        if not self.persist or self._high_water is None:
            return
        doc: dict[str, Any] = {"format": CLOCK_FORMAT, "high_water": iso_utc(self._high_water)}
        if self._confirmed:
            doc["confirmed"] = self._confirmed
        try:
            atomic_write(self.path, dumps_canonical(doc))
        except BedsideError as exc:
            # The mark is a safety net, not clinical data: keep running, say so in the log.
            logger.warning("could not save the clock high-water mark: %s", exc)
            return
        self._persisted = self._high_water

    # ------------------------------------------------------------------ detection

    def start(self) -> list[ClockReport]:
        """Check the clock against the persisted mark; call once when the ward opens."""
        now = self.clock.now()
        mark, readable = self._load()
        if mark is None:
            # No (readable) mark: fall back to the newest instant the records hold, so a
            # deleted or damaged clock file never switches the protection off.
            mark = self._newest_recorded()
        reports: list[ClockReport] = []
        if not readable:
            reports.append(
                ClockReport(
                    "high_water_unreadable",
                    now,
                    0.0,
                    None,
                    True,
                    "The saved clock check could not be read: a clock change while Bedside was "
                    "closed cannot be ruled out. Check the computer's time against the ward clock.",
                )
            )
        if mark is not None and now < mark - self.tolerance:
            delta = (now - mark).total_seconds()
            self._behind = True
            reports.append(
                ClockReport(
                    "backwards",
                    now,
                    delta,
                    mark,
                    True,
                    f"The computer clock is {format_duration(now - mark)} behind the latest time "
                    "Bedside has seen. Check it against the ward clock; until then dose checks "
                    "are made at both times.",
                )
            )
        self._high_water = max(mark, now) if mark is not None else now
        self._last = (now, self.monotonic())
        self._save()
        self._record(reports, now)
        return reports

    def tick(self) -> list[ClockReport]:
        """Compare the wall clock with the monotonic clock since the previous tick.

        Call it on the UI tick (and on resume / time-change notifications). Returns the
        anomalies found now (usually none).
        """
        if self._last is None:
            return self.start()
        now = self.clock.now()
        mono = self.monotonic()
        wall0, mono0 = self._last
        drift = (now - wall0).total_seconds() - (mono - mono0)
        tol = self.tolerance.total_seconds()
        reports: list[ClockReport] = []
        mark = self._high_water
        if drift > tol:
            expected = wall0 + timedelta(seconds=mono - mono0)
            report = ClockReport(
                "forward_jump",
                now,
                drift,
                mark,
                False,
                f"The computer clock jumped forward by {format_duration(timedelta(seconds=drift))} "
                f"(expected about {iso_utc(expected)}). Tocilizumab dosing is paused until a "
                "nurse confirms the time against the ward clock.",
            )
            self._suspended = report
            reports.append(report)
        elif drift < -tol:
            reports.append(
                ClockReport(
                    "backwards",
                    now,
                    drift,
                    mark,
                    False,
                    f"The computer clock went back by {format_duration(timedelta(seconds=drift))}. "
                    "Check it against the ward clock; until then dose checks are made at both "
                    "the clock time and the latest time seen.",
                )
            )
        behind = mark is not None and now < mark - self.tolerance
        if behind and not self._behind and not reports:
            # A slow slide backwards, each step under the tolerance.
            reports.append(
                ClockReport(
                    "backwards",
                    now,
                    (now - mark).total_seconds(),  # type: ignore[operator]
                    mark,
                    False,
                    "The computer clock is behind the latest time Bedside has seen. Check it "
                    "against the ward clock.",
                )
            )
        self._behind = behind
        self._last = (now, mono)
        if mark is None or now > mark:
            self._high_water = now
        if (
            reports
            or self._persisted is None
            or (
                self._high_water is not None
                and self._high_water - self._persisted >= self.persist_every
            )
        ):
            self._save()
        self._record(reports, now)
        return reports

    def confirm_time(self, initials: str) -> None:
        """A nurse confirmed the clock against an independent source: lift the restrictions.

        The high-water mark is reset to the clock's current time (which is what makes a
        clock that had been running fast recoverable), dosing resumes, and the
        confirmation is kept in ``clock.json``.

        Raises:
            InputError: Missing or invalid initials (nothing changes).
        """
        nurse = check_initials(initials)
        now = self.clock.now()
        self._high_water = now
        self._last = (now, self.monotonic())
        self._behind = False
        self._suspended = None
        self._confirmed = {"by": nurse, "at": iso_utc(now)}
        self._save()
        logger.info("clock confirmed by a nurse; high-water mark reset")

    def _record(self, reports: list[ClockReport], now: datetime) -> None:
        self.reports.extend(reports)
        for r in reports:
            logger.warning("clock anomaly: %s (%.0f s)", r.anomaly, r.delta_s)
        ward = self.ward
        if ward is None or ward.read_only or not self.record_events:
            return
        for r in reports:
            if r.anomaly == "high_water_unreadable":
                continue
            for pid in list(ward.records):
                event = make_event(
                    "clock_anomaly",
                    effective_at=now,
                    recorded_at=now,
                    recorded_by=SYSTEM_INITIALS,
                    anomaly=r.anomaly,
                    delta_s=r.delta_s,
                    high_water=r.high_water or now,
                )
                try:
                    ward.add_event(pid, event)
                except BedsideError as exc:
                    logger.warning("could not record a clock anomaly in a record: %s", exc)

    # ------------------------------------------------------------------ dose checks

    def restrict(
        self,
        record: Record,
        protocol: Protocol,
        at: datetime,
        now: datetime,
        budget: DoseBudget,
    ) -> DoseBudget:
        """The dose budget a doubtful clock allows: never more than ``budget`` (the hook of Ward).

        Args:
            record: The patient's record.
            protocol: Its protocol.
            at: The instant the dose would be given at.
            now: The clock's current reading.
            budget: The budget computed at ``at``.

        Returns:
            ``budget`` when the clock is trusted; otherwise a budget whose check is the
            stricter of the checks at each plausible time (hard-blocked after a forward jump).
        """
        # A back-dated entry is checked too: its time was read off (or typed against) the
        # same doubtful clock, so it gets the same restrictions as a dose now.
        if self._suspended is not None:
            blocked = budget.check.model_copy(
                update={
                    "allowed": False,
                    "hard_limit": True,
                    "next_allowed_at": None,
                    "explanation": "Not allowed now: " + self._suspended.message,
                }
            )
            return replace(budget, check=blocked)
        mark = self._high_water
        if mark is None or mark <= now:
            return budget
        shift = mark - now
        alt = dose_budget(record, protocol, at + shift, budget.drug)
        if alt.check.allowed and budget.check.allowed:
            return budget
        base, other = budget.check, alt.check
        reasons = list(dict.fromkeys([*base.reasons, *other.reasons]))
        if base.next_allowed_at is None or other.next_allowed_at is None:
            next_at = None
        else:
            next_at = max(base.next_allowed_at, other.next_allowed_at - shift)
        explanation = base.explanation
        if not other.allowed:
            explanation = (
                f"{other.explanation} — checked at the latest time Bedside has seen "
                f"({iso_utc(mark)}) because the computer clock is behind it"
            )
            if not base.allowed:
                explanation = f"{base.explanation}; {explanation}"
        check = base.model_copy(
            update={
                "allowed": False,
                "reasons": reasons,
                "hard_limit": base.hard_limit or other.hard_limit,
                "next_allowed_at": next_at,
                "doses_last_24h": max(base.doses_last_24h, other.doses_last_24h),
                "reason_text": {**other.reason_text, **base.reason_text},
                "explanation": explanation,
            }
        )
        return replace(budget, check=check)


def attach(
    ward: Ward, *, monotonic: Callable[[], float] | None = None
) -> tuple[ClockGuard, list[ClockReport]]:
    """Create a guard for an open ward, run the start check and hook it into dose checks.

    Returns:
        The guard (tick it on the UI timer) and the anomalies found at start.
    """
    protocol = load_default_protocol()
    guard = ClockGuard(
        ward.root,
        ward.clock,
        monotonic=monotonic,
        tolerance=timedelta(minutes=protocol.monitoring.clock_jump_tolerance_min.value),
        ward=ward,
        persist=not ward.read_only,
    )
    reports = guard.start()
    ward.time_guard = guard
    return guard, reports


def passive_guard(ward: Ward) -> ClockGuard:
    """A guard that writes nothing: the one every ward gets when it opens (never off).

    It reads ``clock.json`` (or falls back to the newest instant in the records) and
    restricts dose checks while the clock is behind that mark; the application replaces
    it with a ticking guard (:func:`attach`).
    """
    guard = ClockGuard(
        ward.root,
        ward.clock,
        tolerance=timedelta(
            minutes=load_default_protocol().monitoring.clock_jump_tolerance_min.value
        ),
        ward=ward,
        persist=False,
        record_events=False,
    )
    reports = guard.start()
    guard.reports.clear()
    for r in reports:
        logger.info("clock check at open: %s", r.anomaly)
    return guard


__all__ = [
    "CLOCK_FILE",
    "ClockGuard",
    "ClockReport",
    "attach",
    "passive_guard",
    "suspend_aware_monotonic",
]

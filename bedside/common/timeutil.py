"""Time helpers: strict parsing of instants and display in local time with the zone.

Inside Bedside every instant is an aware UTC ``datetime``. Arithmetic is always done
in UTC (8 hours is 8 hours of elapsed time across daylight-saving changes); local
time is only for display.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Annotated

import tzlocal
from pydantic import BeforeValidator

logger = logging.getLogger(__name__)


def parse_instant(value: object) -> datetime:
    """Accept an aware ``datetime`` or an ISO 8601 string with an explicit offset.

    Returns the instant converted to UTC. Naive datetimes, strings without an offset,
    numbers and anything else are rejected with ``ValueError``.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("z"):
            text = text[:-1] + "Z"
        try:
            dt = datetime.fromisoformat(text)  # 3.11+: accepts a trailing "Z"
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time: {value!r}") from None
        if dt.tzinfo is UTC:
            return dt  # the stored form ("...Z"): already aware UTC
    elif isinstance(value, datetime):
        dt = value
    else:
        raise ValueError(f"expected an ISO 8601 date-time with offset, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"date-time has no UTC offset: {value!r}")
    return dt.astimezone(UTC)


Instant = Annotated[datetime, BeforeValidator(parse_instant)]
"""A pydantic field type: an aware instant, normalised to UTC."""


def iso_utc(dt: datetime) -> str:
    """Format an instant as ISO 8601 UTC with a ``Z`` suffix (seconds precision or finer)."""
    text = dt.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The machine's IANA time zone (with its DST rules), for display only.

    ``tzlocal`` reads it from TZ, /etc/localtime or the Windows registry. A fixed offset
    taken from "now" would label summer times with the winter abbreviation (or the
    reverse), so it is only the last resort; UTC if nothing can be found.
    """
    try:
        return tzlocal.get_localzone()
    except Exception:  # noqa: BLE001 - any failure falls back to UTC, logged
        logger.warning("local time zone unknown; showing times in UTC")
        return UTC


def format_local(dt: datetime | None, zone: tzinfo | None = None, *, seconds: bool = False) -> str:
    """Format an instant in local time with its zone abbreviation, e.g. ``24 Nov 14:05 GMT``."""
    if dt is None:
        return "—"
    local = dt.astimezone(zone or local_zone())
    fmt = "%d %b %H:%M:%S %Z" if seconds else "%d %b %H:%M %Z"
    return local.strftime(fmt)


def format_duration(delta: timedelta) -> str:
    """Format a duration as ``2 h 05 min`` or ``45 min`` or ``12 s`` (sign dropped)."""
    total = abs(int(delta.total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    return f"{seconds} s"

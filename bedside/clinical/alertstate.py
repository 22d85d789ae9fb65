"""Alert state: what the record says the nurse did about each due item (pure, no ward).

An alert is a :class:`~bedside.clinical.escalations.DueItem` seen from the nurse's side; its state
at an instant (active, acknowledged, snoozed) and which alarm repetition is due are derived
from the item, the record's ``alert`` events and ``now`` — never counted. The rules are in
:mod:`bedside.ward.alerts`, which records the nurse's actions; this module only reads, so the
read side (:mod:`bedside.clinical.views`) can build on it below the ward service.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bedside.clinical.escalations import DueItem
from bedside.clinical.record import AlertAck, EventBase, Record
from bedside.common.errors import InputError

if TYPE_CHECKING:
    from bedside.clinical.protocol import Monitoring

logger = logging.getLogger(__name__)

AlertState = Literal["active", "acknowledged", "snoozed"]
AlarmTone = Literal["due", "critical"]
"""The two alarm sounds: ``due`` (a timed item is due) and ``critical`` (overdue or critical)."""
INITIALS_RE = re.compile(r"^[A-Za-z][A-Za-z.'-]{1,5}$")
"""A nurse's initials as typed (2–6 letters; stored upper-case)."""


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """A due item with the nurse-side state of its alert.

    Attributes:
        item: The due item.
        state: ``active`` (nobody has dealt with it), ``acknowledged`` or ``snoozed``.
        snoozed_until: End of the current snooze (only when ``state`` is ``snoozed``).
        last_action: The latest acknowledgement or snooze of this alert, if any.
    """

    item: DueItem
    state: AlertState
    snoozed_until: datetime | None = None
    last_action: AlertAck | None = None

    @property
    def sounding(self) -> bool:
        """True when the item is due or overdue and nobody has acknowledged or snoozed it."""
        return self.state == "active" and self.item.active

    @property
    def by(self) -> str | None:
        """Initials of the nurse who last acknowledged or snoozed it."""
        return self.last_action.recorded_by if self.last_action else None

    @property
    def silenced(self) -> bool:
        """Acknowledged or snoozed: no sound."""
        return self.state in {"acknowledged", "snoozed"}

    @property
    def at(self) -> datetime | None:
        """When the latest acknowledgement or snooze took effect."""
        return self.last_action.effective_at if self.last_action else None

    @property
    def until(self) -> datetime | None:
        """End of the current snooze (only while snoozed)."""
        return self.snoozed_until

    @property
    def reason(self) -> str | None:
        """The reason given with the latest acknowledgement or snooze."""
        return self.last_action.reason if self.last_action else None


@dataclass(frozen=True, slots=True)
class AlarmCall:
    """One sounding of an alarm: which alert, which tone, and which repetition.

    Attributes:
        key: The item's key.
        due_at: The item's due instant (with ``key``, the alert's identity).
        tone: ``due`` or ``critical`` (overdue items and critical items).
        since: When the current phase began: due, overdue, or the end of an expired snooze.
        interval: How often it sounds again while nobody deals with it.
        round: Whole intervals since ``since`` (0 = the first sounding of this phase).
    """

    key: str
    due_at: datetime
    tone: AlarmTone
    since: datetime
    interval: timedelta
    round: int

    @property
    def identity(self) -> tuple[str, datetime, AlarmTone, datetime, int]:
        """Equal for two calls exactly when they are the same sounding."""
        return (self.key, self.due_at, self.tone, self.since, self.round)


def alarm_call(status: AlertStatus, now: datetime, monitoring: Monitoring) -> AlarmCall | None:
    """The sounding an alert owes at ``now`` (pure), or None when it must be silent.

    Silent when the item is upcoming, acknowledged or snoozed. Otherwise the alarm sounds at
    the start of its phase and again every ``monitoring.alarm_repeat_{due,overdue,critical}_s``
    (critical wins over overdue): the caller sounds whenever :attr:`AlarmCall.identity`
    changes, so a missed tick never skips the next sounding and never sounds twice.
    """
    if not status.sounding:
        return None
    item = status.item
    grace = timedelta(minutes=monitoring.due_grace_min.value)
    since = item.due_at + grace if item.state == "overdue" else item.due_at
    if item.severity == "critical":
        tone: AlarmTone = "critical"
        seconds = monitoring.alarm_repeat_critical_s.value
    elif item.state == "overdue":
        tone, seconds = "critical", monitoring.alarm_repeat_overdue_s.value
    else:
        tone, seconds = "due", monitoring.alarm_repeat_due_s.value
    last = status.last_action
    if last is not None and last.snooze_until is not None and last.snooze_until <= now:
        since = max(since, last.snooze_until)
    interval = timedelta(seconds=seconds)
    elapsed = now - since
    rounds = max(0, math.floor(elapsed / interval)) if elapsed > timedelta(0) else 0
    return AlarmCall(item.key, item.due_at, tone, since, interval, rounds)


def _alert_events(events: Iterable[EventBase]) -> dict[tuple[str, datetime], list[AlertAck]]:
    out: dict[tuple[str, datetime], list[AlertAck]] = {}
    for ev in events:
        if isinstance(ev, AlertAck):
            out.setdefault((ev.alert_key, ev.due_at), []).append(ev)
    for acks in out.values():
        acks.sort(key=lambda a: (a.effective_at, a.recorded_at))
    return out


alert_index_of = _alert_events
"""Alert events by (alert key, due time), oldest first (a part of :mod:`bedside.clinical.views`)."""


def record_alert_index(record: Record) -> dict[tuple[str, datetime], list[AlertAck]]:
    """Alert events of a record by (key, due_at): a thin call into the read side."""
    from bedside.clinical.views import project  # the read side sits above this module

    return project(record).alert_index


def alert_states(
    record: Record,
    items: Iterable[DueItem],
    now: datetime,
    *,
    events: list[EventBase] | None = None,
) -> list[AlertStatus]:
    """The alert state of each item at ``now`` (pure; same order as ``items``).

    Args:
        record: The patient's record (its effective ``alert`` events are read).
        items: Due items of that patient (from :func:`~bedside.clinical.escalations.derive_due`).
        now: The current instant.
        events: ``effective_events(record)`` if the caller already has it.

    Returns:
        One :class:`AlertStatus` per item.
    """
    by_alert = _alert_events(events) if events is not None else record_alert_index(record)
    return states_from_index(by_alert, items, now)


def states_from_index(
    by_alert: dict[tuple[str, datetime], list[AlertAck]], items: Iterable[DueItem], now: datetime
) -> list[AlertStatus]:
    """The alert state of each item at ``now`` from an alert index (same order as ``items``)."""
    out: list[AlertStatus] = []
    for item in items:
        actions = [a for a in by_alert.get((item.key, item.due_at), []) if a.action != "raised"]
        if not actions:
            out.append(AlertStatus(item, "active"))
            continue
        last = actions[-1]
        if last.action == "acknowledged":
            out.append(AlertStatus(item, "acknowledged", last_action=last))
        elif item.snoozable and last.snooze_until is not None and now < last.snooze_until:
            out.append(AlertStatus(item, "snoozed", last.snooze_until, last))
        else:
            out.append(AlertStatus(item, "active", last_action=last))
    return out


def check_initials(initials: object, field: str = "initials") -> str:
    """Return the initials upper-cased, or raise InputError naming ``field``."""
    if not isinstance(initials, str) or not initials.strip():
        raise InputError(f"{field}: the nurse's initials are required")
    value = initials.strip()
    if not INITIALS_RE.match(value):
        raise InputError(f"{field}: must be the nurse's initials (2–6 letters), got {value!r}")
    return value.upper()

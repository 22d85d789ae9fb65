"""The tocilizumab dose budget of a patient, derived from the record.

The budget counts every effective tocilizumab dose of the course (prior doses given
elsewhere included) and says when the next dose may be given. When the record cannot
be sure it holds the whole dose history (patient admitted after day 0 without a
confirmed history, file restored from a backup) the budget says so: it never reports
an unknown history as zero doses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bedside.protocol import Protocol
from bedside.record import (
    EventBase,
    HistoryConfirmation,
    Medication,
    Record,
    Restored,
    effective_events,
)
from bedside.rules import TocilizumabCheckInput, TocilizumabCheckResult, tocilizumab_check

logger = logging.getLogger(__name__)


def tocilizumab_doses(events: list[EventBase]) -> list[Medication]:
    """Effective tocilizumab administrations (including prior doses), by time."""
    doses = [e for e in events if isinstance(e, Medication) and e.drug == "tocilizumab"]
    return sorted(doses, key=lambda e: e.effective_at)


def history_complete(record: Record, events: list[EventBase] | None = None) -> bool:
    """Whether the record is known to hold the whole tocilizumab history.

    Starts from the admission flag; a restore from backup makes it incomplete; a later
    history confirmation (e.g. checked against the MAR) sets it to what was confirmed.
    """
    complete = record.patient.dose_history_complete
    evs = events if events is not None else effective_events(record)
    for ev in sorted(evs, key=lambda e: e.recorded_at):
        if isinstance(ev, Restored):
            complete = False
        elif isinstance(ev, HistoryConfirmation):
            complete = ev.complete
    return complete


@dataclass(frozen=True)
class DoseBudget:
    """What a nurse needs to know before the next tocilizumab dose."""

    doses_last_24h: int
    total: int
    max_per_24h: int
    max_total: int
    history_complete: bool
    check: TocilizumabCheckResult
    last_dose_at: datetime | None
    first_dose_at: datetime | None
    voided: tuple[Medication, ...] = ()
    """Tocilizumab doses charted and then voided: not counted, always shown next to the count."""

    @property
    def allowed_now(self) -> bool:
        """True only when the limits allow a dose now AND the history is complete."""
        return self.check.allowed and self.history_complete

    @property
    def next_allowed_at(self) -> datetime | None:
        """Earliest time the limits allow the next dose (None: course total reached)."""
        return self.check.next_allowed_at

    @property
    def course_complete(self) -> bool:
        """The course maximum has been reached."""
        return self.total >= self.max_total

    def summary(self) -> str:
        """One line for the board and the handover, never showing unknown as zero."""
        prefix = "" if self.history_complete else "history incomplete — at least "
        voided = f" (+{len(self.voided)} voided, not counted)" if self.voided else ""
        return (
            f"{prefix}{self.doses_last_24h}/{self.max_per_24h} in 24 h, "
            f"{prefix}{self.total}/{self.max_total} in course{voided}"
        )


def dose_budget(record: Record, protocol: Protocol, now: datetime) -> DoseBudget:
    """Derive the tocilizumab budget at ``now`` from the record."""
    events = effective_events(record)
    doses = tocilizumab_doses(events)
    check = tocilizumab_check(
        TocilizumabCheckInput(given_at=[d.effective_at for d in doses], at=now), protocol
    )
    t = protocol.tocilizumab
    return DoseBudget(
        doses_last_24h=check.doses_last_24h,
        total=check.total,
        max_per_24h=t.max_per_24h.value,
        max_total=t.max_total.value,
        history_complete=history_complete(record, events),
        check=check,
        last_dose_at=doses[-1].effective_at if doses else None,
        first_dose_at=doses[0].effective_at if doses else None,
        voided=tuple(voided_doses(record, events)),
    )


def voided_doses(record: Record, events: list[EventBase] | None = None) -> list[Medication]:
    """Tocilizumab doses in the record that a correction voided (by time)."""
    live = {e.id for e in (events if events is not None else effective_events(record))}
    gone = [
        e
        for e in record.events
        if isinstance(e, Medication) and e.drug == "tocilizumab" and e.id not in live
    ]
    return sorted(gone, key=lambda e: e.effective_at)


def weight_age(measured_at: datetime | None, at: datetime) -> timedelta | None:
    """How old a weight is at ``at`` (None when no weight is recorded)."""
    return None if measured_at is None else at - measured_at

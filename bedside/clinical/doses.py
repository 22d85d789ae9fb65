"""The dose budget of a patient for any dose-limited drug, derived from the record.

One generic check for every drug of the protocol's ``dose_limits`` (tocilizumab,
anakinra, and any drug a pharmacist adds as data). The budget counts every effective
dose of that drug in the course (prior doses given elsewhere included) and says when
the next dose may be given, which limits stand in the way, and whether passing them
needs an override (soft) or is impossible (hard). When the record cannot
be sure it holds the whole dose history (patient admitted after day 0 without a
confirmed history, file restored from a backup) the budget says so: it never reports
an unknown history as zero doses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bedside.clinical.protocol import DoseLimits, Protocol, format_validation_error
from bedside.clinical.record import (
    EventBase,
    HistoryConfirmation,
    Medication,
    Override,
    Record,
    Restored,
    effective_events,
    normalise_initials,
)
from bedside.clinical.rules import DoseCheckResult, limits_check
from bedside.common.errors import InputError, LimitError

logger = logging.getLogger(__name__)


def tocilizumab_doses(events: list[EventBase]) -> list[Medication]:
    """Effective tocilizumab administrations (including prior doses), by time."""
    doses = [e for e in events if isinstance(e, Medication) and e.drug == "tocilizumab"]
    return sorted(doses, key=lambda e: e.effective_at)


def limited_doses(events: list[EventBase], drug: str, protocol: Protocol) -> list[Medication]:
    """Effective administrations of the dose-limited ``drug`` (by key, or charted by name)."""
    doses = [
        e
        for e in events
        if isinstance(e, Medication) and protocol.limited_drug(e.drug, e.drug_name) == drug
    ]
    return sorted(doses, key=lambda e: e.effective_at)


def limits_of(protocol: Protocol, drug: str) -> DoseLimits:
    """The protocol block of a dose-limited drug.

    Raises:
        InputError: the drug has no dose limits in this protocol.
    """
    try:
        return protocol.dose_limits[drug]
    except KeyError:
        known = ", ".join(sorted(protocol.dose_limits))
        raise InputError(
            f"drug: {drug!r} has no dose limits in protocol {protocol.label} (known: {known})"
        ) from None


def history_complete(record: Record, events: list[EventBase] | None = None) -> bool:
    """Whether the record is known to hold the whole tocilizumab history.

    Starts from the admission flag; a restore from backup makes it incomplete; a later
    history confirmation (e.g. checked against the MAR) sets it to what was confirmed.
    """
    complete = record.patient.dose_history_complete
    evs = events if events is not None else effective_events(record)
    # Only these two kinds matter; filtering before the (stable) sort keeps their order.
    relevant = [e for e in evs if isinstance(e, (Restored, HistoryConfirmation))]
    for ev in sorted(relevant, key=lambda e: e.recorded_at):
        if isinstance(ev, Restored):
            complete = False
        elif isinstance(ev, HistoryConfirmation):
            complete = ev.complete
    return complete


@dataclass(frozen=True)
class DoseBudget:
    """What a nurse needs to know before the next dose of a dose-limited drug.

    The one place that decides: :attr:`allowed_now`, :attr:`hard_block` and
    :attr:`needs_override` are what every screen shows; no screen decides again.
    ``max_per_24h`` / ``max_total`` are None when the protocol sets no such limit.
    """

    doses_last_24h: int
    total: int
    max_per_24h: int | None
    max_total: int | None
    history_complete: bool
    check: DoseCheckResult
    last_dose_at: datetime | None
    first_dose_at: datetime | None
    voided: tuple[Medication, ...] = ()
    """Doses charted and then voided: not counted, always shown next to the count."""
    drug: str = "tocilizumab"
    limits: DoseLimits | None = None
    """The drug's protocol block (None only for budgets built by hand in tests)."""

    @property
    def label(self) -> str:
        """The drug's name as the nurse reads it."""
        return self.limits.label if self.limits is not None else self.drug.capitalize()

    @property
    def allowed_now(self) -> bool:
        """True only when the limits allow a dose now AND the history is complete."""
        return self.check.allowed and self.history_complete

    @property
    def hard_block(self) -> bool:
        """A limit that can never be passed stands in the way: no dose can be recorded."""
        return self.check.hard_limit

    @property
    def needs_override(self) -> tuple[str, ...]:
        """What an override must name: the soft limits in the way, and an incomplete history.

        Empty when the dose is allowed now. With :attr:`hard_block` no override helps: the
        soft limits are still listed (the dialog shows them), but nothing can be recorded.
        """
        soft = tuple(
            r for r in self.check.reasons if self.limits is not None and not self.limits.is_hard(r)
        )
        return soft + (() if self.history_complete else ("history_incomplete",))

    @property
    def beyond_label(self) -> tuple[str, ...]:
        """The soft dose limits in the way (passing them is a prescriber's order)."""
        return tuple(r for r in self.needs_override if r in ("min_interval", "max_per_24h"))

    @property
    def needs_prescriber(self) -> bool:
        """An override of these limits needs the prescriber's name (protocol's policy)."""
        policy = self.limits.override_policy if self.limits is not None else None
        return bool(self.beyond_label) and (policy is None or policy.requires_prescriber)

    @property
    def next_allowed_at(self) -> datetime | None:
        """Earliest time the limits allow the next dose (None: course total reached)."""
        return self.check.next_allowed_at

    @property
    def course_complete(self) -> bool:
        """The course maximum has been reached (never, when the protocol sets none)."""
        return self.max_total is not None and self.total >= self.max_total

    def summary(self) -> str:
        """One line for the board and the handover, never showing unknown as zero."""
        prefix = "" if self.history_complete else "history incomplete — at least "
        voided = f" (+{len(self.voided)} voided, not counted)" if self.voided else ""
        per_24h = "" if self.max_per_24h is None else f"/{self.max_per_24h}"
        course = "" if self.max_total is None else f"/{self.max_total}"
        return (
            f"{prefix}{self.doses_last_24h}{per_24h} in 24 h, "
            f"{prefix}{self.total}{course} in course{voided}"
        )

    def override_for(self, override: dict[str, Any] | None, given_by: str) -> Override | None:
        """The override a dose needs, validated (the rule every screen relies on).

        Args:
            override: ``{"reason", "second_nurse", "prescriber"?}`` from the nurses, or None.
            given_by: Initials of the nurse giving the dose.

        Returns:
            The :class:`Override` to record (naming :attr:`needs_override`), or None when no
            override is needed.

        Raises:
            LimitError: a hard limit blocks the dose, or an override is needed and missing.
            InputError: an override field is wrong (``override.reason``,
                ``override.second_nurse``, ``override.prescriber``), or an override was given
                where none is needed.
        """
        if self.hard_block:
            raise LimitError("Cannot give: " + self.check.explanation)
        needs = list(self.needs_override)
        if not needs:
            if override is not None:
                raise InputError("override: no limit applies, an override is not needed")
            return None
        who = "a reason, a second nurse" + (
            " and the prescriber who ordered it" if self.needs_prescriber else ""
        )
        if override is None:
            raise LimitError(f"Needs an override ({who}): " + ", ".join(needs))
        problems: list[str] = []
        reason = override.get("reason")
        reason = reason.strip() if isinstance(reason, str) else ""
        if len(reason) < 5:
            problems.append(
                "override.reason: write why the dose is given despite the limit "
                "(at least 5 characters)"
            )
        second = normalise_initials(override.get("second_nurse"))
        if not second:
            problems.append("override.second_nurse: the second nurse must type their initials")
        elif second == normalise_initials(given_by):
            problems.append(
                "override.second_nurse: must be a different nurse from the one giving the dose"
            )
        prescriber = override.get("prescriber")
        if isinstance(prescriber, str):
            prescriber = prescriber.strip() or None
        if self.needs_prescriber and not prescriber:
            problems.append(
                "override.prescriber: a dose beyond the protocol's dose limits ("
                + ", ".join(self.beyond_label)
                + ") needs the name of the prescriber who ordered it"
            )
        if problems:
            raise InputError("; ".join(problems))
        data = {
            **override,
            "reason": reason,
            "second_nurse": second,
            "prescriber": prescriber,
            "limits": needs,
        }
        try:
            return Override.model_validate(data)
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, what="override")) from None


def dose_budget(
    record: Record, protocol: Protocol, now: datetime, drug: str = "tocilizumab"
) -> DoseBudget:
    """Derive the budget of the dose-limited ``drug`` at ``now`` from the record."""
    limits = limits_of(protocol, drug)
    events = effective_events(record)
    doses = limited_doses(events, drug, protocol)
    check = limits_check(limits, [d.effective_at for d in doses], now, protocol)
    return DoseBudget(
        doses_last_24h=check.doses_last_24h,
        total=check.total,
        max_per_24h=limits.max_per_24h.value if limits.max_per_24h is not None else None,
        max_total=limits.max_total.value if limits.max_total is not None else None,
        history_complete=history_complete(record, events),
        check=check,
        last_dose_at=doses[-1].effective_at if doses else None,
        first_dose_at=doses[0].effective_at if doses else None,
        voided=tuple(voided_doses(record, events, drug, protocol)),
        drug=drug,
        limits=limits,
    )


def voided_doses(
    record: Record,
    events: list[EventBase] | None = None,
    drug: str = "tocilizumab",
    protocol: Protocol | None = None,
) -> list[Medication]:
    """Doses of ``drug`` in the record that a correction voided (by time)."""

    def is_drug(e: Medication) -> bool:
        if protocol is None:
            return e.drug == drug
        return protocol.limited_drug(e.drug, e.drug_name) == drug

    charted = [e for e in record.events if isinstance(e, Medication) and is_drug(e)]
    if not charted:
        return []  # no dose of the drug charted: none voided (no need to derive the rest)
    live = {e.id for e in (events if events is not None else effective_events(record))}
    gone = [e for e in charted if e.id not in live]
    return sorted(gone, key=lambda e: e.effective_at)


def weight_age(measured_at: datetime | None, at: datetime) -> timedelta | None:
    """How old a weight is at ``at`` (None when no weight is recorded)."""
    return None if measured_at is None else at - measured_at

"""Escalation timers derived from the record: what is due, when, and on which rule.

Nothing here counts ticks or keeps state. :func:`derive_due` is a pure function of
(record, protocol, now): call it as often as you like (the UI does, once a second) and
after a sleep, a restart or a clock change it simply gives the right answer for the new
``now``. Every interval comes from the protocol's ``monitoring`` (and ``tocilizumab``)
section and every item names the protocol field, its source keys and whether that
number is verified.

The derivation runs on a small internal :class:`Timeline` (one :class:`Mark` per
relevant event), built either from a patient record (:func:`timeline_from_record`:
voided events removed, amended ones as amended) or from the ``escalations`` case input
of ``python -m bedside validate`` (:func:`contract_escalations`), so the validation
vectors exercise exactly the code the ward uses.

Contract kinds (``design/validation-vectors.md``, ``escalations``):

* ``tocilizumab_reassess`` — last tocilizumab dose + ``monitoring.tocilizumab_reassess_h``,
  pushed to when the rolling ``tocilizumab.window_h`` window frees (fewer than
  ``max_per_24h`` doses in it), while the latest CRS grade is >= 2 and the course
  total (``tocilizumab.max_total``, counted across CRS episodes) is not reached.
* ``crs_escalation`` — first tocilizumab dose of the current CRS episode +
  ``monitoring.crs_escalation_after_first_tocilizumab_h``, while the latest grade is >= 2.
* ``crs_prolonged_grade1`` — onset of the current episode + ``monitoring.crs_prolonged_grade1_h``
  while every grade of the episode has been 1 and no tocilizumab was given in it.
* ``dexamethasone_next`` — last dexamethasone dose + its ordered interval ``every_h``.
* ``ice_next`` — last ICE + ``monitoring.ice_interval_h``; when the latest score is lower
  than the one before it, last ICE + ``monitoring.ice_recheck_after_drop_min`` instead.
* ``vitals_next`` — last vitals + ``monitoring.vitals_interval_h``.

A CRS episode starts at the first assessment with grade >= 1 and ends at the next
assessment with grade 0.

Additional kinds (beyond the contract's six):

* ``tocilizumab_limit`` — the course maximum is reached while CRS is still grade >= 2:
  critical, due when the next reassessment would have been.
* ``methylprednisolone_next`` — as dexamethasone, with its ordered interval.
* ``vitals_next`` uses ``monitoring.vitals_interval_febrile_h`` while the latest measured
  temperature is at or above ``crs.fever_threshold_c``.
* ``monitoring_day`` — informational: day +N of the product's daily-monitoring period
  (``monitoring.daily_monitoring_days``), due when that period ends.
* ``delayed_neurotox_check`` — cilta-cel: the daily handwriting / movement / facial-symmetry
  check, every ``monitoring.delayed_neurotox_check_interval_h`` from infusion (or from the
  last check) for ``monitoring.delayed_neurotox_check_days`` days.

The case input accepts, besides the contract's fields, ``methylprednisolone`` and
``neuro_check`` events, an optional ``temperature_c`` on ``vitals`` and optional top-level
``product`` and ``infusion_at``; contract vectors never use them, so their results are
unchanged.

States: ``upcoming`` before ``due_at``; ``due`` from ``due_at`` for
``monitoring.due_grace_min``; ``overdue`` after that. All arithmetic is on UTC instants
(8 h is 8 elapsed hours across daylight-saving changes); messages show local time with
the zone abbreviation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bedside.doses import history_complete
from bedside.errors import InputError
from bedside.protocol import Product, Protocol, Severity, format_validation_error
from bedside.record import (
    CrsAssessment,
    DoctorInformed,
    EventBase,
    IceAssessment,
    Medication,
    NeuroCheck,
    Record,
    Vitals,
    current_patient,
    effective_events,
)
from bedside.timeutil import Instant, format_local, local_zone, parse_instant

logger = logging.getLogger(__name__)

DueKind = Literal[
    "tocilizumab_reassess",
    "tocilizumab_limit",
    "crs_escalation",
    "crs_prolonged_grade1",
    "dexamethasone_next",
    "methylprednisolone_next",
    "ice_next",
    "vitals_next",
    "monitoring_day",
    "delayed_neurotox_check",
]
DUE_KINDS: frozenset[str] = frozenset(DueKind.__args__)  # type: ignore[attr-defined]
CONTRACT_KINDS: frozenset[str] = frozenset(
    {
        "tocilizumab_reassess",
        "crs_escalation",
        "crs_prolonged_grade1",
        "dexamethasone_next",
        "ice_next",
        "vitals_next",
    }
)
DueState = Literal["upcoming", "due", "overdue"]
MarkKind = Literal[
    "crs",
    "tocilizumab",
    "dexamethasone",
    "methylprednisolone",
    "ice",
    "vitals",
    "neuro_check",
    "doctor_informed",
]

_STATE_RANK = {"overdue": 0, "due": 1, "upcoming": 2}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_RAISE = {"info": "warning", "warning": "warning", "critical": "critical"}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Mark:
    """One event of the timeline, reduced to what the timers need."""

    kind: MarkKind
    at: datetime
    id: str
    grade: int | None = None
    score: int | None = None
    every_h: float | None = None
    temperature_c: float | None = None
    label: str | None = None
    ref: str | None = None
    until: datetime | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the derivation reads: the patient's context and the marks in time order."""

    patient_id: str
    marks: tuple[Mark, ...]
    product: str | None = None
    infusion_at: datetime | None = None
    history_complete: bool = True
    by_kind: dict[str, list[Mark]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups: dict[str, list[Mark]] = {}
        for m in self.marks:
            groups.setdefault(m.kind, []).append(m)
        object.__setattr__(self, "by_kind", groups)


@dataclass(frozen=True, slots=True)
class DueItem:
    """A timer: something due for one patient at one instant, and why.

    Attributes:
        key: Stable id (``patient/kind/anchor``) used to acknowledge or snooze it; a new
            anchor event (a new dose, a new vitals set) gives a new key.
        kind: One of :data:`DueKind`.
        patient_id: The patient.
        due_at: When it is due (aware, UTC).
        state: ``upcoming``, ``due`` (within the grace window) or ``overdue``.
        severity: ``info``, ``warning`` or ``critical``.
        message: What a nurse reads, in local time with the zone.
        rule: The protocol field path behind the interval.
        source: The rule's source keys (see the protocol's ``sources`` table).
        verified: Whether the protocol marks that number as verified.
        anchor_id: The event the timer counts from (or a synthetic anchor).
    """

    key: str
    kind: DueKind
    patient_id: str
    due_at: datetime
    state: DueState
    severity: Severity
    message: str
    rule: str
    source: tuple[str, ...]
    verified: bool
    anchor_id: str

    @property
    def snoozable(self) -> bool:
        """Critical items (an overdue escalation review, a dose limit reached) cannot be snoozed."""
        return self.severity != "critical"

    @property
    def active(self) -> bool:
        """Due or overdue (not merely upcoming)."""
        return self.state != "upcoming"


# --------------------------------------------------------------------------- timelines


def _order_key(ev: EventBase, index: int) -> tuple[datetime, datetime, int]:
    return (ev.effective_at, ev.recorded_at, index)


_CACHE_SIZE = 512
_timelines: OrderedDict[str, tuple[Record, Timeline]] = OrderedDict()


def timeline_from_record(record: Record) -> Timeline:
    """The timeline of a record: effective events only (voids and amendments applied).

    Records are immutable (the ward replaces the object on every change), so the timeline
    of the latest record object of each patient is cached (checked by identity): a tick
    re-derives the due items without re-reading the events, and a changed record is
    simply rebuilt. At most one record per patient is held.
    """
    key = record.patient.patient_id
    hit = _timelines.get(key)
    if hit is not None and hit[0] is record:
        _timelines.move_to_end(key)
        return hit[1]
    timeline = _build_timeline(record)
    _timelines[key] = (record, timeline)
    if len(_timelines) > _CACHE_SIZE:
        _timelines.popitem(last=False)
    return timeline


def _build_timeline(record: Record) -> Timeline:
    events = effective_events(record)
    marks: list[tuple[tuple[datetime, datetime, int], Mark]] = []
    for index, ev in enumerate(events):
        mark: Mark | None = None
        if isinstance(ev, CrsAssessment):
            mark = Mark("crs", ev.effective_at, ev.id, grade=ev.grade)
        elif isinstance(ev, Medication):
            if ev.drug in ("tocilizumab", "dexamethasone", "methylprednisolone"):
                mark = Mark(
                    ev.drug,
                    ev.effective_at,
                    ev.id,
                    every_h=None if ev.drug == "tocilizumab" else ev.every_h,
                    label=f"{ev.dose:g} {ev.unit} {ev.route}",
                )
        elif isinstance(ev, IceAssessment):
            mark = Mark("ice", ev.effective_at, ev.id, score=ev.ice_score)
        elif isinstance(ev, Vitals):
            mark = Mark("vitals", ev.effective_at, ev.id, temperature_c=ev.temperature_c)
        elif isinstance(ev, NeuroCheck):
            mark = Mark("neuro_check", ev.effective_at, ev.id)
        elif isinstance(ev, DoctorInformed):
            mark = Mark(
                "doctor_informed",
                ev.effective_at,
                ev.id,
                label=ev.doctor,
                ref=ev.review_of,
                until=ev.next_review_at,
                note=ev.plan,
            )
        if mark is not None:
            marks.append((_order_key(ev, index), mark))
    marks.sort(key=lambda pair: pair[0])
    patient = current_patient(record)
    return Timeline(
        patient_id=patient.patient_id,
        marks=tuple(m for _, m in marks),
        product=patient.product,
        infusion_at=patient.infusion_at,
        history_complete=history_complete(record, events),
    )


# --------------------------------------------------------------------------- derivation


def due_state(due_at: datetime, now: datetime, grace: timedelta) -> DueState:
    """``upcoming`` before ``due_at``, ``due`` for ``grace`` after it, then ``overdue``."""
    if now < due_at:
        return "upcoming"
    if now < due_at + grace:
        return "due"
    return "overdue"


def _source_keys(source: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in source.split(",") if k.strip())


def _when_formatter(now: datetime, zone: tzinfo) -> Callable[[datetime], str]:
    today = now.astimezone(zone).date()

    def when(dt: datetime) -> str:
        local = dt.astimezone(zone)
        if local.date() == today:
            return local.strftime("%H:%M %Z")
        return format_local(dt, zone)

    return when


def _h(hours: float) -> str:
    return f"{hours:g} h"


@dataclass
class _Builder:
    timeline: Timeline
    protocol: Protocol
    now: datetime
    grace: timedelta
    items: list[DueItem]

    def add(
        self,
        kind: DueKind,
        due_at: datetime,
        anchor: str,
        severity: Severity,
        message: str,
        rule: str,
        sourced: Any,
        *,
        raise_when_overdue: bool = True,
        critical_when_active: bool = False,
    ) -> None:
        state = due_state(due_at, self.now, self.grace)
        if critical_when_active and state != "upcoming":
            severity = "critical"
        elif raise_when_overdue and state == "overdue":
            severity = _RAISE[severity]  # type: ignore[assignment]
        self.items.append(
            DueItem(
                key=f"{self.timeline.patient_id}/{kind}/{anchor}",
                kind=kind,
                patient_id=self.timeline.patient_id,
                due_at=due_at.astimezone(UTC),
                state=state,
                severity=severity,
                message=message,
                rule=rule,
                source=_source_keys(sourced.source),
                verified=bool(sourced.verified),
                anchor_id=anchor,
            )
        )


def _window_frees(doses: list[datetime], base: datetime, window: timedelta, limit: int) -> datetime:
    """Earliest instant >= ``base`` whose window (t - window, t] holds < ``limit`` doses."""
    candidates = sorted({base, *(d + window for d in doses if d + window > base)})
    for c in candidates:
        if sum(1 for d in doses if c - window < d <= c) < limit:
            return c
    return candidates[-1]  # pragma: no cover - the last candidate always frees the window


def derive_timeline(
    timeline: Timeline, protocol: Protocol, now: datetime, *, zone: tzinfo | None = None
) -> list[DueItem]:
    """Every due item of one timeline at ``now``, most urgent first.

    Args:
        timeline: The patient's marks (see :func:`timeline_from_record`).
        protocol: The protocol the patient is charted under.
        now: The current instant (aware).
        zone: Display zone for messages (default: the machine's zone).

    Returns:
        Items sorted overdue first, then due, then upcoming; by due time within a state.
    """
    if now.tzinfo is None:
        raise InputError("now: needs a UTC offset")
    now = now.astimezone(UTC)
    zone = zone or local_zone()
    mon = protocol.monitoring
    toc = protocol.tocilizumab
    when = _when_formatter(now, zone)
    b = _Builder(timeline, protocol, now, timedelta(minutes=mon.due_grace_min.value), [])

    by_kind = timeline.by_kind
    crs = by_kind.get("crs", [])
    doses = by_kind.get("tocilizumab", [])

    # CRS episodes: start at the first grade >= 1, end at the next grade 0.
    onset: Mark | None = None
    episode_grades: list[int] = []
    for m in crs:
        grade = m.grade or 0
        if grade >= 1:
            if onset is None:
                onset = m
                episode_grades = []
            episode_grades.append(grade)
        else:
            onset = None
            episode_grades = []
    latest_grade = crs[-1].grade if crs else None
    episode_doses = [d for d in doses if onset is not None and d.at >= onset.at]
    history_note = "" if timeline.history_complete else " (dose history incomplete: check the MAR)"

    # Tocilizumab: reassessment, or the course maximum reached.
    if latest_grade is not None and latest_grade >= 2 and doses:
        last = doses[-1]
        total = len(doses)
        base = last.at + timedelta(hours=mon.tocilizumab_reassess_h.value)
        if total < toc.max_total.value:
            due = _window_frees(
                [d.at for d in doses],
                base,
                timedelta(hours=toc.window_h.value),
                toc.max_per_24h.value,
            )
            msg = (
                f"Reassess for tocilizumab dose {total + 1} — "
                f"{_h(mon.tocilizumab_reassess_h.value)} after dose {total} at {when(last.at)}"
            )
            if due > base:
                msg += (
                    f"; not before {when(due)} (at most {toc.max_per_24h.value} doses "
                    f"in {_h(toc.window_h.value)})"
                )
            msg += f". CRS grade {latest_grade}{history_note}"
            b.add(
                "tocilizumab_reassess",
                due,
                last.id,
                "warning",
                msg,
                "monitoring.tocilizumab_reassess_h",
                mon.tocilizumab_reassess_h,
            )
        else:
            b.add(
                "tocilizumab_limit",
                base,
                last.id,
                "critical",
                f"Tocilizumab course maximum reached ({total} of {toc.max_total.value} doses) "
                f"and CRS is grade {latest_grade}: no further tocilizumab — escalate to the "
                f"doctor (last dose {when(last.at)})",
                "tocilizumab.max_total",
                toc.max_total,
            )

    # Escalation review 24 h after the first dose of the episode.
    if latest_grade is not None and latest_grade >= 2 and onset is not None and episode_doses:
        first = episode_doses[0]
        hours = mon.crs_escalation_after_first_tocilizumab_h.value
        then = (
            "if CRS has not improved, manage as grade 3"
            if latest_grade == 2
            else f"CRS is grade {latest_grade}: if not improving, escalate to the doctor"
        )
        informed = [m for m in by_kind.get("doctor_informed", []) if m.ref == first.id]
        told = informed[-1] if informed else None
        if told is not None and told.until is not None:
            # The doctor was told: the review is next due when the doctor said (a new alert).
            review_at = told.until
            b.add(
                "crs_escalation",
                review_at,
                told.id,
                "warning",
                f"Doctor informed {when(told.at)} ({told.label}), review {when(review_at)}. "
                f"Plan: {told.note}. At the review: {then}",
                "monitoring.doctor_review_max_h",
                mon.doctor_review_max_h,
                critical_when_active=True,
            )
        else:
            b.add(
                "crs_escalation",
                first.at + timedelta(hours=hours),
                first.id,
                "warning",
                f"Escalation review {_h(hours)} after the first tocilizumab dose of this CRS "
                f"episode ({when(first.at)}): {then}",
                "monitoring.crs_escalation_after_first_tocilizumab_h",
                mon.crs_escalation_after_first_tocilizumab_h,
                critical_when_active=True,
            )

    # Prolonged grade 1 CRS without tocilizumab.
    if onset is not None and all(g == 1 for g in episode_grades) and not episode_doses:
        hours = mon.crs_prolonged_grade1_h.value
        b.add(
            "crs_prolonged_grade1",
            onset.at + timedelta(hours=hours),
            onset.id,
            "warning",
            f"CRS grade 1 since {when(onset.at)}: if it lasts beyond {_h(hours)} with no "
            "tocilizumab, consider tocilizumab (prolonged CRS) — discuss with the doctor",
            "monitoring.crs_prolonged_grade1_h",
            mon.crs_prolonged_grade1_h,
        )

    # Steroids on an ordered interval.
    steroids: tuple[tuple[str, DueKind], ...] = (
        ("dexamethasone", "dexamethasone_next"),
        ("methylprednisolone", "methylprednisolone_next"),
    )
    for drug, kind in steroids:
        given = by_kind.get(drug, [])
        every = given[-1].every_h if given else None
        if given and every:
            last = given[-1]
            dose = f" ({last.label})" if last.label else ""
            b.add(
                kind,
                last.at + timedelta(hours=every),
                last.id,
                "warning",
                f"Next {drug} dose{dose} — every {_h(every)} as ordered; "
                f"last given {when(last.at)}",
                "medication.every_h",
                _ORDERED,
            )

    # ICE: routine interval, or the recheck after a fall.
    ice = by_kind.get("ice", [])
    if ice:
        last = ice[-1]
        previous = next((m.score for m in reversed(ice[:-1]) if m.score is not None), None)
        fell = (last.score is None and len(ice) > 1) or (
            last.score is not None and previous is not None and last.score < previous
        )
        if fell:
            minutes = mon.ice_recheck_after_drop_min.value
            shown = "not assessable" if last.score is None else str(last.score)
            b.add(
                "ice_next",
                last.at + timedelta(minutes=minutes),
                last.id,
                "warning",
                f"ICE recheck {minutes:g} min after the score fell "
                f"({previous if previous is not None else '?'} → {shown} at {when(last.at)})",
                "monitoring.ice_recheck_after_drop_min",
                mon.ice_recheck_after_drop_min,
            )
        else:
            hours = mon.ice_interval_h.value
            shown = "not assessable" if last.score is None else f"score {last.score}"
            b.add(
                "ice_next",
                last.at + timedelta(hours=hours),
                last.id,
                "info",
                f"Next ICE assessment — every {_h(hours)}; last at {when(last.at)} ({shown})",
                "monitoring.ice_interval_h",
                mon.ice_interval_h,
            )

    # Vitals: every 4 h, every 2 h while febrile.
    vitals = by_kind.get("vitals", [])
    if vitals:
        last = vitals[-1]
        temp = next((m for m in reversed(vitals) if m.temperature_c is not None), None)
        threshold = protocol.crs.fever_threshold_c.value
        if temp is not None and temp.temperature_c >= threshold:  # type: ignore[operator]
            hours = mon.vitals_interval_febrile_h.value
            b.add(
                "vitals_next",
                last.at + timedelta(hours=hours),
                last.id,
                "warning",
                f"Next vitals — every {_h(hours)} while febrile "
                f"({temp.temperature_c:.1f} °C at {when(temp.at)}); last set at {when(last.at)}",
                "monitoring.vitals_interval_febrile_h",
                mon.vitals_interval_febrile_h,
            )
        else:
            hours = mon.vitals_interval_h.value
            b.add(
                "vitals_next",
                last.at + timedelta(hours=hours),
                last.id,
                "info",
                f"Next vitals — every {_h(hours)}; last set at {when(last.at)}",
                "monitoring.vitals_interval_h",
                mon.vitals_interval_h,
            )

    _product_items(b, by_kind, zone, when)
    b.items.sort(key=lambda i: (_STATE_RANK[i.state], i.due_at, _SEVERITY_RANK[i.severity]))
    return b.items


class _Ordered:
    """Provenance of an interval that comes from the medication order, not the protocol."""

    source = "ORDER"
    verified = True


_ORDERED = _Ordered()


def _calendar_day(infusion_at: datetime, at: datetime, zone: tzinfo) -> int:
    return (at.astimezone(zone).date() - infusion_at.astimezone(zone).date()).days


def _product_items(
    b: _Builder, by_kind: dict[str, list[Mark]], zone: tzinfo, when: Callable[[datetime], str]
) -> None:
    tl, mon, now = b.timeline, b.protocol.monitoring, b.now
    infusion = tl.infusion_at
    if infusion is None or tl.product is None or now < infusion:
        return
    days = mon.daily_monitoring_days.get(tl.product)  # type: ignore[call-overload]
    if days is not None:
        end = infusion + timedelta(days=days.value)
        if now < end:
            day = _calendar_day(infusion, now, zone)
            b.add(
                "monitoring_day",
                end,
                f"day{day}",
                "info",
                f"Day +{day} of the {days.value:g}-day daily monitoring period ({tl.product}); "
                f"ends {when(end)}",
                f"monitoring.daily_monitoring_days.{tl.product}",
                days,
                raise_when_overdue=False,
            )
    window_end = infusion + timedelta(days=mon.delayed_neurotox_check_days.value)
    if tl.product == "cilta-cel" and now <= window_end:
        interval = timedelta(hours=mon.delayed_neurotox_check_interval_h.value)
        checks = [m for m in by_kind.get("neuro_check", []) if m.at >= infusion]
        anchor_at, anchor_id = (checks[-1].at, checks[-1].id) if checks else (infusion, "infusion")
        due = anchor_at + interval
        if due <= window_end:
            day = _calendar_day(infusion, due, zone)
            last = f"last check {when(anchor_at)}" if checks else "no check yet since infusion"
            b.add(
                "delayed_neurotox_check",
                due,
                anchor_id,
                "info",
                "Daily handwriting, movement, facial-symmetry and personality check "
                f"(cilta-cel delayed neurotoxicity, day +{day} of "
                f"{mon.delayed_neurotox_check_days.value:g}); {last}",
                "monitoring.delayed_neurotox_check_interval_h",
                mon.delayed_neurotox_check_interval_h,
            )


def derive_due(
    record: Record, protocol: Protocol, now: datetime, *, zone: tzinfo | None = None
) -> list[DueItem]:
    """Every due item of a patient at ``now``, most urgent first (pure; nothing is written).

    Args:
        record: The patient record (voided events do not count; amended ones count as amended).
        protocol: The protocol the patient is charted under.
        now: The current instant (aware).
        zone: Display zone for the messages (default: the machine's zone).

    Returns:
        The due items (see :class:`DueItem`), overdue first.
    """
    return derive_timeline(timeline_from_record(record), protocol, now, zone=zone)


def derive_ward(
    records: Iterable[Record],
    protocol_for: Callable[[Record], Protocol],
    now: datetime,
    *,
    zone: tzinfo | None = None,
) -> list[DueItem]:
    """Due items of every patient of a ward, most urgent first."""
    zone = zone or local_zone()
    items: list[DueItem] = []
    for record in records:
        items.extend(derive_due(record, protocol_for(record), now, zone=zone))
    items.sort(key=lambda i: (_STATE_RANK[i.state], i.due_at, _SEVERITY_RANK[i.severity]))
    return items


# --------------------------------------------------------------------------- the contract


class _In(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True
    )


class CrsEventIn(_In):
    """A CRS assessment with its grade."""

    kind: Literal["crs_assessment"]
    at: Instant
    grade: int = Field(ge=0, le=4)


class TocilizumabEventIn(_In):
    """A tocilizumab dose."""

    kind: Literal["tocilizumab"]
    at: Instant


class SteroidEventIn(_In):
    """A steroid dose with its ordered interval (None: a single dose, nothing follows)."""

    kind: Literal["dexamethasone", "methylprednisolone"]
    at: Instant
    every_h: float | None = Field(default=None, gt=0, le=168)


class IceEventIn(_In):
    """An ICE assessment with its score."""

    kind: Literal["ice_assessment"]
    at: Instant
    score: int = Field(ge=0, le=10)


class VitalsEventIn(_In):
    """A set of vitals (temperature optional: an extension of the contract)."""

    kind: Literal["vitals"]
    at: Instant
    temperature_c: float | None = Field(default=None, ge=25, le=45)


class NeuroCheckEventIn(_In):
    """A daily delayed-neurotoxicity check (extension of the contract)."""

    kind: Literal["neuro_check"]
    at: Instant


EventIn = Annotated[
    CrsEventIn
    | TocilizumabEventIn
    | SteroidEventIn
    | IceEventIn
    | VitalsEventIn
    | NeuroCheckEventIn,
    Field(discriminator="kind"),
]


class EscalationsInput(_In):
    """Input of the ``escalations`` check."""

    events: list[EventIn]
    now: Instant
    product: Product | None = None
    infusion_at: Instant | None = None


_MARK_OF: dict[str, MarkKind] = {
    "crs_assessment": "crs",
    "tocilizumab": "tocilizumab",
    "dexamethasone": "dexamethasone",
    "methylprednisolone": "methylprednisolone",
    "ice_assessment": "ice",
    "vitals": "vitals",
    "neuro_check": "neuro_check",
}


def timeline_from_input(inp: EscalationsInput, protocol: Protocol) -> Timeline:
    """The timeline of a case input; events later than now + tolerance are refused."""
    tol = timedelta(minutes=protocol.monitoring.future_event_tolerance_min.value)
    marks: list[tuple[datetime, int, Mark]] = []
    for i, ev in enumerate(inp.events):
        if ev.at > inp.now + tol:
            raise InputError(
                f"events[{i}].at: {ev.at.isoformat()} lies more than "
                f"{tol.total_seconds() / 60:g} min after now ({inp.now.isoformat()})"
            )
        mark = Mark(
            _MARK_OF[ev.kind],
            ev.at,
            f"e{i}",
            grade=getattr(ev, "grade", None),
            score=getattr(ev, "score", None),
            every_h=getattr(ev, "every_h", None),
            temperature_c=getattr(ev, "temperature_c", None),
        )
        marks.append((ev.at, i, mark))
    marks.sort(key=lambda t: (t[0], t[1]))
    if inp.infusion_at is not None and inp.infusion_at > inp.now + tol:
        raise InputError("infusion_at: lies in the future")
    return Timeline(
        patient_id="case",
        marks=tuple(m for _, _, m in marks),
        product=inp.product,
        infusion_at=inp.infusion_at,
    )


def contract_escalations(data: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """Run the ``escalations`` check on a case input.

    Returns:
        ``{"due": [{"kind", "due_at"}...], "not_due": [kinds absent]}``.

    Raises:
        InputError: The input does not validate (the message names the field).
    """
    try:
        inp = EscalationsInput.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, what="escalations")) from None
    items = derive_timeline(timeline_from_input(inp, protocol), protocol, inp.now, zone=UTC)
    present = {i.kind for i in items}
    return {
        "due": [{"kind": i.kind, "due_at": i.due_at} for i in items],
        "not_due": sorted(DUE_KINDS - present),
    }


CONTRACT_OUTPUTS: frozenset[str] = frozenset({"due", "not_due"})


def _item_present(want: Any, due: list[dict[str, Any]]) -> bool:
    if not isinstance(want, dict) or set(want) != {"kind", "due_at"}:
        return False
    try:
        at = parse_instant(want["due_at"])
    except ValueError:
        return False
    return any(d["kind"] == want["kind"] and d["due_at"] == at for d in due)


def compare_escalations(expect: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Compare per the contract: each ``due`` item present at its instant, no ``not_due`` kind.

    An expected kind this module does not know is a mismatch (never a silent pass).
    """
    out: list[tuple[str, Any, Any]] = []
    due: list[dict[str, Any]] = got.get("due") or []
    if "due" in expect:
        want = expect["due"]
        if not isinstance(want, list):
            out.append(("due", want, "expect.due must be a list of {kind, due_at}"))
        else:
            unknown = [w.get("kind") for w in want if isinstance(w, dict)]
            unknown = [k for k in unknown if k not in DUE_KINDS]
            missing = [w for w in want if not _item_present(w, due)]
            if unknown:
                out.append(("due", want, f"unknown kind(s) {unknown}"))
            elif missing:
                out.append(("due", missing, due))
    if "not_due" in expect:
        kinds = expect["not_due"]
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            out.append(("not_due", kinds, "expect.not_due must be a list of kinds"))
        elif any(k not in DUE_KINDS for k in kinds):
            out.append(
                ("not_due", kinds, f"unknown kind(s) {[k for k in kinds if k not in DUE_KINDS]}")
            )
        else:
            found = [d for d in due if d["kind"] in kinds]
            if found:
                out.append(("not_due", kinds, found))
    return out


__all__ = [
    "CONTRACT_KINDS",
    "CONTRACT_OUTPUTS",
    "DUE_KINDS",
    "DueItem",
    "EscalationsInput",
    "Mark",
    "Timeline",
    "compare_escalations",
    "contract_escalations",
    "derive_due",
    "derive_timeline",
    "derive_ward",
    "due_state",
    "timeline_from_input",
    "timeline_from_record",
]

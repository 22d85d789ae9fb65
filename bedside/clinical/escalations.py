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
* ``ice_next`` — last ICE + ``monitoring.ice_interval_h``; after a fall (a score lower than
  the one before it, see :func:`ice_recheck_series`): last ICE +
  ``monitoring.ice_recheck_after_drop_min`` while that instant is no later than the first
  lower score + ``monitoring.ice_recheck_window_h``; past that, last ICE +
  ``monitoring.ice_recheck_stable_h`` while the score stays below the pre-fall score; the
  routine interval again once it is back at that score.
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
* ``crs_grade_now`` — a temperature at or above ``crs.fever_threshold_c``, a new
  hypotension (a vasopressor, or a systolic below
  ``crs_support.hypotension_systolic_below_mmhg``) or new oxygen charted after the last
  CRS assessment: "grade CRS now", due at that vital-signs set.
* ``delayed_neurotox_check`` — cilta-cel: the daily handwriting / movement / facial-symmetry
  check, every ``monitoring.delayed_neurotox_check_interval_h`` from infusion (or from the
  last check) for ``monitoring.delayed_neurotox_check_days`` days.
* ``duplicate_dose`` — not derived here (it needs to know which workstation wrote each
  dose): :func:`bedside.ward.wardsync.duplicate_dose_items` adds it, critical, when two
  tocilizumab doses recorded on two workstations lie within the minimum interval.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bedside.clinical.protocol import Product, Protocol, Severity, format_validation_error
from bedside.clinical.record import (
    ChecklistCheck,
    CrsAssessment,
    DoctorInformed,
    EventBase,
    IceAssessment,
    Lab,
    Medication,
    NeuroCheck,
    NeuroFinding,
    Patient,
    Record,
    Vitals,
    calendar_day,
)
from bedside.clinical.rules import DEVICE_LABELS, hypoxia_rank
from bedside.common.errors import InputError
from bedside.common.timeutil import Instant, format_local, local_zone, parse_instant

logger = logging.getLogger(__name__)

P = TypeVar("P")

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
    "crs_grade_now",
    "neuro_check_positive",
    "febrile_neutropenia",
    "cytopenia_check",
    "prolonged_cytopenia",
    "ivig_consider",
    "iec_hs_possible",
    "tls_labs",
    "checklist_open",
    "igg_check",
    "duplicate_dose",
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
    "lab",
    "checklist",
    "doctor_informed",
]

_STATE_RANK = {"overdue": 0, "due": 1, "upcoming": 2}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_RAISE = {"info": "warning", "warning": "warning", "critical": "critical"}


# --------------------------------------------------------------------------- data


class Mark(NamedTuple):
    """One event of the timeline, reduced to what the timers need.

    A named tuple rather than a frozen dataclass: equally immutable, and built several
    times faster (a 30-day record has ~1,500 marks, a ward's load builds them all).
    """

    kind: MarkKind
    at: datetime
    id: str
    grade: int | None = None
    score: int | None = None
    every_h: float | None = None
    temperature_c: float | None = None
    label: str | None = None
    systolic_mmhg: int | None = None
    hypotension: bool = False
    oxygen_device: str | None = None
    oxygen_flow_l_min: float | None = None
    heart_rate: int | None = None
    findings: tuple[str, ...] = ()
    test: str | None = None
    value: float | None = None
    unit: str | None = None
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


def timeline_from_record(record: Record) -> Timeline:
    """The timeline of a record: effective events only (voids and amendments applied).

    A thin call into the read side (:func:`bedside.clinical.views.project`), which builds it once
    per record version and keeps it in its one bounded cache.
    """
    from bedside.clinical.views import project  # the read side sits above this module

    return project(record).timeline


def build_timeline(
    record: Record, events: list[EventBase], patient: Patient, complete: bool
) -> Timeline:
    """Build the timeline of ``record`` from its projected parts
    (see :mod:`bedside.clinical.views`).

    Args:
        record: The record (its id).
        events: Its effective events, record order.
        patient: Its current header.
        complete: Whether the record holds the whole dose history.
    """
    marks: list[tuple[tuple[datetime, datetime, int], Mark]] = []
    for index, ev in enumerate(events):
        mark: Mark | None = None
        # The kinds are disjoint classes: the most frequent are tested first.
        if isinstance(ev, Vitals):
            mark = Mark(
                "vitals",
                ev.effective_at,
                ev.id,
                temperature_c=ev.temperature_c,
                systolic_mmhg=ev.systolic_mmhg,
                hypotension=bool(ev.vasopressors),
                oxygen_device=ev.oxygen_device,
                oxygen_flow_l_min=ev.oxygen_flow_l_min,
                heart_rate=ev.heart_rate,
            )
        elif isinstance(ev, Lab):
            mark = Mark("lab", ev.effective_at, ev.id, test=ev.test, value=ev.value, unit=ev.unit)
        elif isinstance(ev, CrsAssessment):
            mark = Mark(
                "crs",
                ev.effective_at,
                ev.id,
                grade=ev.grade,
                hypotension=bool(ev.inputs.get("hypotension") or ev.inputs.get("vasopressors")),
                oxygen_device=str(ev.inputs.get("oxygen_device") or "none"),
                oxygen_flow_l_min=_flow(ev.inputs.get("oxygen_flow_l_min")),
            )
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
        elif isinstance(ev, NeuroCheck):
            mark = Mark("neuro_check", ev.effective_at, ev.id, findings=tuple(ev.positive))
        elif isinstance(ev, ChecklistCheck):
            mark = Mark("checklist", ev.effective_at, ev.id, label=ev.item, value=float(ev.done))
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
            marks.append(((ev.effective_at, ev.recorded_at, index), mark))  # time, then record
    marks.sort(key=itemgetter(0))
    return Timeline(
        patient_id=record.patient.patient_id,
        marks=tuple(m for _, m in marks),
        product=patient.product,
        infusion_at=patient.infusion_at,
        history_complete=complete,
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


def grade_episodes(
    points: Sequence[P], grade: Callable[[P], int]
) -> list[tuple[list[P], P | None]]:
    """Episodes of a syndrome from its graded points in time order (one definition for the
    timers and the episode summary): an episode starts at the first point graded >= 1 and
    ends at the next point graded 0.

    Returns:
        Each episode's points (all graded >= 1) and the grade-0 point that closed it
        (None while the episode is still open).
    """
    out: list[tuple[list[P], P | None]] = []
    run: list[P] = []
    for p in points:
        if grade(p) >= 1:
            run.append(p)
        elif run:
            out.append((run, p))
            run = []
    if run:
        out.append((run, None))
    return out


def _window_frees(doses: list[datetime], base: datetime, window: timedelta, limit: int) -> datetime:
    """Earliest instant >= ``base`` whose window (t - window, t] holds < ``limit`` doses."""
    candidates = sorted({base, *(d + window for d in doses if d + window > base)})
    for c in candidates:
        if sum(1 for d in doses if c - window < d <= c) < limit:
            return c
    return candidates[-1]  # pragma: no cover - the last candidate always frees the window


def ice_recheck_series(ice: list[Mark]) -> tuple[int, datetime] | None:
    """The ICE recheck series in force after the last assessment, or None (routine).

    A fall is a score lower than the one before it (a "not assessable" ICE after a scored
    one counts as a fall). The series starts at the first lower score and remembers the
    score before it (the pre-fall score); it ends when a score is back at or above that
    pre-fall score. A further fall during a series restarts the 30-minute rechecks from
    the new lower score but keeps the series' pre-fall score as the target (the more
    cautious reading: a second fall is never a reason to stop rechecking sooner).

    Returns:
        ``(pre_fall_score, first_lower_score_at)`` of the series in force, or None.
    """
    pre_fall: int | None = None
    fell_at: datetime | None = None
    previous: int | None = None
    for m in ice:
        if pre_fall is not None and m.score is not None and m.score >= pre_fall:
            pre_fall, fell_at = None, None
        elif previous is not None and (m.score is None or m.score < previous):
            if pre_fall is None:
                pre_fall = previous
            fell_at = m.at
        if m.score is not None:
            previous = m.score
    if pre_fall is None or fell_at is None:
        return None
    return pre_fall, fell_at


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
    # The protocol model requires every tocilizumab limit (Protocol._dose_limits_coherent).
    assert toc.max_total is not None and toc.max_per_24h is not None and toc.window_h is not None
    when = _when_formatter(now, zone)
    b = _Builder(timeline, protocol, now, timedelta(minutes=mon.due_grace_min.value), [])

    by_kind = timeline.by_kind
    crs = by_kind.get("crs", [])
    doses = by_kind.get("tocilizumab", [])

    # The current CRS episode (open: not yet closed by a grade 0).
    runs = grade_episodes(crs, lambda m: m.grade or 0)
    current = runs[-1][0] if runs and runs[-1][1] is None else []
    onset: Mark | None = current[0] if current else None
    episode_grades = [m.grade or 0 for m in current]
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
        early = ""
        infusion = timeline.infusion_at
        if infusion is not None and onset.at < infusion + timedelta(
            hours=mon.crs_early_onset_h.value
        ):
            early = (
                f" Early onset (< {_h(mon.crs_early_onset_h.value)} after infusion): current "
                "guidance is to consider one dose of tocilizumab and dexamethasone now."
            )
        b.add(
            "crs_prolonged_grade1",
            onset.at + timedelta(hours=hours),
            onset.id,
            "warning",
            f"CRS grade 1 since {when(onset.at)}: if it lasts beyond {_h(hours)} with no "
            "tocilizumab, reconsider tocilizumab (prolonged CRS) — discuss with the doctor."
            + early,
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

    # ICE: routine interval, or the recheck series after a fall.
    ice = by_kind.get("ice", [])
    if ice:
        last = ice[-1]
        series = ice_recheck_series(ice)
        if series is not None:
            pre_fall, fell_at = series
            minutes = mon.ice_recheck_after_drop_min.value
            window = timedelta(hours=mon.ice_recheck_window_h.value)
            shown = "not assessable" if last.score is None else str(last.score)
            quick = last.at + timedelta(minutes=minutes)
            if quick <= fell_at + window:
                b.add(
                    "ice_next",
                    quick,
                    last.id,
                    "warning",
                    f"ICE recheck every {minutes:g} min until {when(fell_at + window)} "
                    f"(score fell at {when(fell_at)}: {pre_fall} → {shown} at {when(last.at)})",
                    "monitoring.ice_recheck_after_drop_min",
                    mon.ice_recheck_after_drop_min,
                )
            else:
                hours = mon.ice_recheck_stable_h.value
                b.add(
                    "ice_next",
                    last.at + timedelta(hours=hours),
                    last.id,
                    "warning",
                    f"ICE recheck every {_h(hours)} while the score stays below {pre_fall} "
                    f"(the score before the fall; {pre_fall} → {shown} at {when(last.at)})",
                    "monitoring.ice_recheck_stable_h",
                    mon.ice_recheck_stable_h,
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

    # Vitals: every 4 h; every 2 h while febrile, tachycardic or in CRS (fever may be masked).
    vitals = by_kind.get("vitals", [])
    if vitals:
        last = vitals[-1]
        temp = next((m for m in reversed(vitals) if m.temperature_c is not None), None)
        pulse = next((m for m in reversed(vitals) if m.heart_rate is not None), None)
        threshold = protocol.crs.fever_threshold_c.value
        hr_limit = mon.vitals_tachycardia_above_bpm.value
        crs_limit = mon.vitals_frequent_while_crs_at_or_above.value
        why: list[str] = []
        rules: list[tuple[str, Any]] = []
        if temp is not None and temp.temperature_c >= threshold:  # type: ignore[operator]
            why.append(f"febrile ({temp.temperature_c:.1f} °C at {when(temp.at)})")
            rules.append(("monitoring.vitals_interval_febrile_h", mon.vitals_interval_febrile_h))
        if pulse is not None and pulse.heart_rate > hr_limit:  # type: ignore[operator]
            why.append(f"tachycardic ({pulse.heart_rate} bpm at {when(pulse.at)})")
            rules.append(
                ("monitoring.vitals_tachycardia_above_bpm", mon.vitals_tachycardia_above_bpm)
            )
        if latest_grade is not None and latest_grade >= crs_limit:
            why.append(f"CRS grade {latest_grade} (fever may be masked)")
            rules.append(
                (
                    "monitoring.vitals_frequent_while_crs_at_or_above",
                    mon.vitals_frequent_while_crs_at_or_above,
                )
            )
        if why:
            hours = mon.vitals_interval_febrile_h.value
            rule, sourced = rules[0]
            b.add(
                "vitals_next",
                last.at + timedelta(hours=hours),
                last.id,
                "warning",
                f"Next vitals — every {_h(hours)} while {' and '.join(why)}; "
                f"last set at {when(last.at)}",
                rule,
                _Combined(*(r[1] for r in rules)) if len(rules) > 1 else sourced,
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

    _grade_crs_now(b, crs, vitals, when)
    _toxicity_items(b, by_kind, latest_grade, [m.grade or 0 for m in crs], when)
    _product_items(b, by_kind, zone, when)
    b.items.sort(key=lambda i: (_STATE_RANK[i.state], i.due_at, _SEVERITY_RANK[i.severity]))
    return b.items


def _flow(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _grade_crs_now(
    b: _Builder, crs: list[Mark], vitals: list[Mark], when: Callable[[datetime], str]
) -> None:
    """``crs_grade_now``: a fever, new hypotension or new oxygen with no CRS grading after it.

    Fever is ``crs.fever_threshold_c`` or above; hypotension a vasopressor or a systolic
    below ``crs_support.hypotension_systolic_below_mmhg`` when the last assessment had
    none; oxygen a device whose hypoxia grade is above the last assessment's. Vital
    signs before the infusion (or on a record with no infusion yet) do not count.
    """
    tl, protocol = b.timeline, b.protocol
    if tl.product is not None and tl.infusion_at is None:
        return
    last = crs[-1] if crs else None
    fever_at = protocol.crs.fever_threshold_c
    sbp_below = protocol.crs_support.hypotension_systolic_below_mmhg
    graded_oxygen = hypoxia_rank(
        last.oxygen_device if last else None,
        last.oxygen_flow_l_min if last else None,
        protocol,
    )
    for v in vitals:
        if last is not None and v.at <= last.at:
            continue
        if tl.infusion_at is not None and v.at < tl.infusion_at:
            continue
        signs: list[str] = []
        sourced: Any = None
        if v.temperature_c is not None and v.temperature_c >= fever_at.value:
            signs.append(f"temperature {v.temperature_c:.1f} °C")
            sourced = fever_at
        low_bp = v.systolic_mmhg is not None and v.systolic_mmhg < sbp_below.value
        if (low_bp or v.hypotension) and not (last is not None and last.hypotension):
            signs.append(
                "vasopressor running" if v.hypotension else f"systolic {v.systolic_mmhg} mmHg"
            )
            sourced = sourced or sbp_below
        if hypoxia_rank(v.oxygen_device, v.oxygen_flow_l_min, protocol) > graded_oxygen:
            signs.append(f"new oxygen ({DEVICE_LABELS.get(v.oxygen_device or '', '')})")
            sourced = sourced or protocol.crs
        if not signs:
            continue
        since = f"no CRS assessment since {when(last.at)}" if last else "no CRS assessment yet"
        b.add(
            "crs_grade_now",
            v.at,
            v.id,
            "warning",
            f"Grade CRS now — {', '.join(signs)} at {when(v.at)}; {since}",
            "crs.fever_threshold_c" if sourced is fever_at else "crs_support",
            sourced,
        )
        return


class _Ordered:
    """Provenance of an interval that comes from the medication order, not the protocol."""

    source = "ORDER"
    verified = True


_ORDERED = _Ordered()


class _Local:
    """Provenance of a ward-policy default (an unknown check item is raised as critical)."""

    source = "LOCAL"
    verified = False


_LOCAL = _Local()


class _Combined:
    """Provenance of an item that several sourced rules raise together (all their sources)."""

    def __init__(self, *parts: Any) -> None:
        keys: list[str] = []
        for p in parts:
            keys += [k for k in _source_keys(p.source) if k not in keys]
        self.source = ", ".join(keys)
        self.verified = all(bool(p.verified) for p in parts)


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
            day = calendar_day(infusion, now, zone)
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
    window_days = mon.delayed_neurotox_check_days.get(tl.product)  # type: ignore[call-overload]
    if window_days is None:
        return
    window_end = infusion + timedelta(days=window_days.value)
    if now <= window_end:
        interval = timedelta(hours=mon.delayed_neurotox_check_interval_h.value)
        checks = [m for m in by_kind.get("neuro_check", []) if m.at >= infusion]
        anchor_at, anchor_id = (checks[-1].at, checks[-1].id) if checks else (infusion, "infusion")
        due = anchor_at + interval
        if due <= window_end:
            day = calendar_day(infusion, due, zone)
            last = f"last check {when(anchor_at)}" if checks else "no check yet since infusion"
            b.add(
                "delayed_neurotox_check",
                due,
                anchor_id,
                "info",
                "Daily neurological check — handwriting, movement, cranial nerves (face, eyes, "
                f"swallowing), limb strength, sensation and reflexes, personality ({tl.product}, "
                f"day +{day} of {window_days.value:g}); {last}",
                "monitoring.delayed_neurotox_check_interval_h",
                _Combined(mon.delayed_neurotox_check_interval_h, window_days),
            )


def canonical_lab_value(
    protocol: Protocol, test: str | None, value: float | None, unit: str | None
) -> float | None:
    """A lab value in the unit the toxicity rules use, or None when the unit does not fit.

    Haematology counts are converted with the protocol's CTCAE unit factors (``/uL`` to
    ×10⁹/L); other tests must be charted in the unit of ``toxicity.lab_units``. A value
    in an unknown unit is never guessed: it simply does not count for the rules.
    """
    if test is None or value is None or unit is None:
        return None
    spec = protocol.ctcae.tests.get(test)
    if spec is not None:
        factor = protocol.ctcae.unit_factors.get(spec.canonical_unit, {}).get(unit)
        return None if not factor else value / factor
    if protocol.toxicity.lab_units.get(test) == unit:
        return value
    return None


def _latest_lab(labs: list[tuple[Mark, float]], test: str) -> tuple[Mark, float] | None:
    return next((pair for pair in reversed(labs) if pair[0].test == test), None)


def _toxicity_items(
    b: _Builder,
    by_kind: dict[str, list[Mark]],
    latest_grade: int | None,
    crs_grades: list[int],
    when: Callable[[datetime], str],
) -> None:
    """Boxed-warning toxicities beyond CRS/ICANS, from charted checks and labs."""
    tox = b.protocol.toxicity
    tl = b.timeline
    labs: list[tuple[Mark, float]] = []
    for m in by_kind.get("lab", []):
        v = canonical_lab_value(b.protocol, m.test, m.value, m.unit)
        if v is not None:
            labs.append((m, v))

    # A positive neurological check: tell the doctor (new weakness: critical).
    checks = by_kind.get("neuro_check", [])
    if checks and checks[-1].findings:
        last = checks[-1]
        items = [(f, tox.neuro_check_items.get(f)) for f in last.findings]
        known = [(f, i) for f, i in items if i is not None]
        severity: Severity = (
            "critical"
            if any(i.severity == "critical" for _, i in known) or len(known) < len(items)
            else "warning"
        )
        names = "; ".join(i.label if i is not None else f for f, i in items)
        b.add(
            "neuro_check_positive",
            last.at,
            last.id,
            severity,
            f"Neurological check positive at {when(last.at)}: {names} — tell the doctor now "
            "(not ICANS: parkinsonism, Guillain-Barré syndrome, neuropathy or cranial nerve palsy)",
            "toxicity.neuro_check_items",
            _Combined(*(i for _, i in known)) if known else _LOCAL,
        )

    # Febrile neutropenia: fever with ANC below the threshold, distinct from CRS.
    vitals = by_kind.get("vitals", [])
    temp = next((m for m in reversed(vitals) if m.temperature_c is not None), None)
    anc = _latest_lab(labs, "neutrophils")
    if (
        temp is not None
        and anc is not None
        and temp.temperature_c >= tox.febrile_neutropenia_temp_c.value  # type: ignore[operator]
        and anc[1] < tox.febrile_neutropenia_anc_below.value
        and anc[0].at >= temp.at - timedelta(hours=tox.febrile_neutropenia_anc_max_age_h.value)
    ):
        b.add(
            "febrile_neutropenia",
            max(temp.at, anc[0].at),
            f"{temp.id}+{anc[0].id}",
            "critical",
            f"FEBRILE NEUTROPENIA: {temp.temperature_c:.1f} °C at {when(temp.at)} with "
            f"neutrophils {anc[1]:g} ×10⁹/L at {when(anc[0].at)} — cultures and empiric "
            "broad-spectrum antibiotics now; tell the doctor (separate from CRS grading)",
            "toxicity.febrile_neutropenia_anc_below",
            _Combined(tox.febrile_neutropenia_temp_c, tox.febrile_neutropenia_anc_below),
        )

    # Prolonged cytopenia: counts still low at the protocol's day after infusion.
    if tl.infusion_at is not None and b.now >= tl.infusion_at:
        day = tox.prolonged_cytopenia_day.value
        day_at = tl.infusion_at + timedelta(days=day)
        late = [(m, v) for m, v in labs if m.at >= day_at]
        late_anc = _latest_lab(late, "neutrophils")
        late_plt = _latest_lab(late, "platelets")
        if late_anc is None and late_plt is None:
            b.add(
                "cytopenia_check",
                day_at,
                "infusion",
                "info",
                f"Blood count due at day +{day:g} ({when(day_at)}): prolonged cytopenia check",
                "toxicity.prolonged_cytopenia_day",
                tox.prolonged_cytopenia_day,
            )
        low: list[str] = []
        anchors: list[Mark] = []
        if late_anc is not None and late_anc[1] < tox.prolonged_cytopenia_anc_below.value:
            low.append(f"neutrophils {late_anc[1]:g} ×10⁹/L")
            anchors.append(late_anc[0])
        if late_plt is not None and late_plt[1] < tox.prolonged_cytopenia_platelets_below.value:
            low.append(f"platelets {late_plt[1]:g} ×10⁹/L")
            anchors.append(late_plt[0])
        if low:
            at = max(m.at for m in anchors)
            b.add(
                "prolonged_cytopenia",
                at,
                "+".join(m.id for m in anchors),
                "warning",
                f"Prolonged cytopenia: {', '.join(low)} at day +{day:g} or later — tell the "
                "doctor (bleeding and infection risk; marrow recovery review)",
                "toxicity.prolonged_cytopenia_day",
                _Combined(
                    tox.prolonged_cytopenia_day,
                    tox.prolonged_cytopenia_anc_below,
                    tox.prolonged_cytopenia_platelets_below,
                ),
            )

    # IgG monthly for the first months after infusion.
    if tl.infusion_at is not None and b.now >= tl.infusion_at:
        window_end = tl.infusion_at + timedelta(days=tox.igg_check_window_days.value)
        iggs = [m for m, _ in labs if m.test == "igg" and m.at >= tl.infusion_at]
        anchor_at = iggs[-1].at if iggs else tl.infusion_at
        due_igg = anchor_at + timedelta(days=tox.igg_check_interval_days.value)
        if due_igg <= window_end:
            seen = f"last {when(anchor_at)}" if iggs else "none since infusion"
            b.add(
                "igg_check",
                due_igg,
                iggs[-1].id if iggs else "infusion",
                "info",
                f"Serum IgG due (monthly for {tox.igg_check_window_days.value:g} days after "
                f"infusion; {seen})",
                "toxicity.igg_check_interval_days",
                _Combined(tox.igg_check_interval_days, tox.igg_check_window_days),
            )

    # IgG at or below the IVIG threshold.
    igg = _latest_lab(labs, "igg")
    if igg is not None and igg[1] <= tox.igg_ivig_at_or_below_mg_dl.value:
        b.add(
            "ivig_consider",
            igg[0].at,
            igg[0].id,
            "warning",
            f"IgG {igg[1]:g} mg/dL at {when(igg[0].at)} (≤ "
            f"{tox.igg_ivig_at_or_below_mg_dl.value:g}): ask the doctor about IgG replacement",
            "toxicity.igg_ivig_at_or_below_mg_dl",
            tox.igg_ivig_at_or_below_mg_dl,
        )

    # Possible IEC-HS: rising ferritin with cytopenia or coagulopathy as CRS settles.
    ferritins = [(m, v) for m, v in labs if m.test == "ferritin"]
    settling = bool(crs_grades) and max(crs_grades) >= 1 and (latest_grade or 0) < max(crs_grades)
    if len(ferritins) >= 2 and ferritins[-1][1] > ferritins[-2][1] and settling:
        signs: list[str] = []
        plt = _latest_lab(labs, "platelets")
        fib = _latest_lab(labs, "fibrinogen")
        if anc is not None and anc[1] < tox.iec_hs_anc_below.value:
            signs.append(f"neutrophils {anc[1]:g} ×10⁹/L")
        if plt is not None and plt[1] < tox.iec_hs_platelets_below.value:
            signs.append(f"platelets {plt[1]:g} ×10⁹/L")
        if fib is not None and fib[1] < tox.iec_hs_fibrinogen_below_mg_dl.value:
            signs.append(f"fibrinogen {fib[1]:g} mg/dL")
        if signs:
            last_f = ferritins[-1]
            others = []
            for test in ("triglycerides", "ldh", "alt", "ast", "bilirubin"):
                hit = _latest_lab(labs, test)
                if hit is not None:
                    unit = tox.lab_units.get(test, "")
                    others.append(f"{test.upper() if len(test) <= 3 else test} {hit[1]:g} {unit}")
            context = (
                f"; latest {', '.join(others)}"
                if others
                else "; check triglycerides, LDH and liver tests"
            )
            b.add(
                "iec_hs_possible",
                last_f[0].at,
                last_f[0].id,
                "warning",
                f"Possible IEC-HS: ferritin rising ({ferritins[-2][1]:g} → {last_f[1]:g} ng/mL "
                f"at {when(last_f[0].at)}) with {', '.join(signs)} as CRS settles{context} — "
                "tell the doctor (Hines 2023 criteria)",
                "toxicity.iec_hs_fibrinogen_below_mg_dl",
                _Combined(
                    tox.iec_hs_anc_below,
                    tox.iec_hs_platelets_below,
                    tox.iec_hs_fibrinogen_below_mg_dl,
                ),
            )

    # The boxed-warning checklist: open items, to confirm by the infusion.
    if tl.infusion_at is not None:
        state: dict[str, bool] = {}
        for m in by_kind.get("checklist", []):
            if m.label is not None:
                state[m.label] = bool(m.value)
        open_items = [k for k in tox.checklist if not state.get(k, False)]
        if open_items:
            names = "; ".join(tox.checklist[k].text for k in open_items)
            b.add(
                "checklist_open",
                tl.infusion_at,
                "checklist",
                "info",
                f"Checklist: {len(open_items)} of {len(tox.checklist)} item(s) not confirmed — "
                f"{names}",
                "toxicity.checklist",
                _Combined(*(tox.checklist[k] for k in open_items)),
                raise_when_overdue=False,
            )

    # Laboratory tumour lysis: at least N criteria among the latest results in the window.
    tls_labs = [(m, v) for m, v in labs if m.test in tox.tls_criteria]
    if tls_labs:
        newest = tls_labs[-1][0].at
        since = newest - timedelta(hours=tox.tls_window_h.value)
        met: list[tuple[Mark, str]] = []
        for test, crit in tox.tls_criteria.items():
            hit = _latest_lab([p for p in tls_labs if p[0].at > since], test)
            if hit is None:
                continue
            v = hit[1]
            if (crit.limit == "at_or_above" and v >= crit.value) or (
                crit.limit == "at_or_below" and v <= crit.value
            ):
                met.append((hit[0], f"{test.replace('_', ' ')} {v:g} {crit.unit}"))
        if len(met) >= tox.tls_min_criteria.value:
            at = max(m.at for m, _ in met)
            b.add(
                "tls_labs",
                at,
                "+".join(sorted(m.id for m, _ in met)),
                "warning",
                f"Possible laboratory tumour lysis: {'; '.join(t for _, t in met)} — tell the "
                "doctor (check creatinine and urine output)",
                "toxicity.tls_criteria",
                _Combined(tox.tls_min_criteria, *(tox.tls_criteria[k] for k in tox.tls_criteria)),
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


def sort_due(items: Iterable[DueItem]) -> list[DueItem]:
    """Due items most urgent first (overdue, then due, then upcoming; by time, then severity)."""
    return sorted(items, key=lambda i: (_STATE_RANK[i.state], i.due_at, _SEVERITY_RANK[i.severity]))


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
    heart_rate: int | None = Field(default=None, ge=0, le=300)


class NeuroCheckEventIn(_In):
    """A daily neurological check with its positive items (extension of the contract)."""

    kind: Literal["neuro_check"]
    at: Instant
    findings: list[NeuroFinding] = Field(default_factory=list)


class ChecklistEventIn(_In):
    """A checklist item confirmed (or still open) (extension of the contract)."""

    kind: Literal["checklist"]
    at: Instant
    item: str = Field(min_length=1, max_length=60)
    done: bool


class LabEventIn(_In):
    """A laboratory result (extension of the contract); the unit must fit the test."""

    kind: Literal["lab"]
    at: Instant
    test: str = Field(min_length=1, max_length=40)
    value: float = Field(ge=0)
    unit: str = Field(min_length=1, max_length=20)


EventIn = Annotated[
    CrsEventIn
    | TocilizumabEventIn
    | SteroidEventIn
    | IceEventIn
    | VitalsEventIn
    | NeuroCheckEventIn
    | LabEventIn
    | ChecklistEventIn,
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
    "lab": "lab",
    "checklist": "checklist",
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
        if isinstance(ev, LabEventIn) and (
            canonical_lab_value(protocol, ev.test, ev.value, ev.unit) is None
        ):
            raise InputError(
                f"events[{i}]: lab test {ev.test!r} in unit {ev.unit!r} is not one the "
                "protocol knows (see ctcae.tests and toxicity.lab_units)"
            )
        if isinstance(ev, ChecklistEventIn) and ev.item not in protocol.toxicity.checklist:
            raise InputError(f"events[{i}].item: {ev.item!r} is not on the protocol's checklist")
        mark = Mark(
            _MARK_OF[ev.kind],
            ev.at,
            f"e{i}",
            grade=getattr(ev, "grade", None),
            score=getattr(ev, "score", None),
            every_h=getattr(ev, "every_h", None),
            temperature_c=getattr(ev, "temperature_c", None),
            heart_rate=getattr(ev, "heart_rate", None),
            findings=tuple(getattr(ev, "findings", ())),
            test=getattr(ev, "test", None),
            value=float(ev.done)
            if isinstance(ev, ChecklistEventIn)
            else getattr(ev, "value", None),
            label=getattr(ev, "item", None),
            unit=getattr(ev, "unit", None),
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
        "due": [{"kind": i.kind, "due_at": i.due_at, "severity": i.severity} for i in items],
        "not_due": sorted(DUE_KINDS - present),
    }


CONTRACT_OUTPUTS: frozenset[str] = frozenset({"due", "not_due"})


def _item_present(want: Any, due: list[dict[str, Any]]) -> bool:
    """``{kind, due_at}`` (the contract) or, as an extension, ``{kind, due_at, severity}``."""
    if not isinstance(want, dict) or set(want) not in (
        {"kind", "due_at"},
        {"kind", "due_at", "severity"},
    ):
        return False
    try:
        at = parse_instant(want["due_at"])
    except ValueError:
        return False
    return any(
        d["kind"] == want["kind"]
        and d["due_at"] == at
        and ("severity" not in want or d.get("severity") == want["severity"])
        for d in due
    )


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
    "ice_recheck_series",
    "sort_due",
    "timeline_from_input",
    "timeline_from_record",
]

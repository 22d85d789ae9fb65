"""The episode summary of a patient: the registry fields, derived from the record.

CIBMTR form 4100 and the EBMT MED-A day-100 form ask, for CRS and for ICANS, whether it
occurred, the date of onset (first documented), the highest grade (ASTCT), the date of
resolution and the therapies given (tocilizumab, corticosteroids, anakinra, ...) with
the number of tocilizumab doses. This module computes those fields from the effective
events (voided events ignored, amendments applied), plus two quality figures a ward
manager asks for: the time from the first grade >= 2 CRS to the first tocilizumab dose,
and how many timers went overdue and how many limit overrides were recorded.

Definitions (stated in the summary itself so a reader can check them):

* An *episode* starts at the first assessment with grade >= 1 after a grade-0
  assessment (or after none) and ends at the next grade-0 assessment (its resolution).
  ``onset`` is the first episode's start, ``resolved_at`` the last episode's end
  (``None`` while the last episode is ongoing).
* The record stores no indication for a dose, so *therapies given for CRS/ICANS* are
  the administrations given while an episode of that syndrome was active. Tocilizumab
  is used for CRS only in this protocol, so every tocilizumab dose of the course counts
  for CRS (prior doses given elsewhere included, listed separately).
* When the dose history is not known to be complete, counts are minimums ("at least").

Pure: no I/O, no clock; ``now`` is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from bedside.clinical.doses import history_complete, tocilizumab_doses
from bedside.clinical.escalations import grade_episodes
from bedside.clinical.labels import DRUG_LABELS
from bedside.clinical.record import (
    AlertAck,
    Correction,
    CrsAssessment,
    EventBase,
    IceAssessment,
    Medication,
    Record,
    calendar_day,
    day_post_infusion,
)
from bedside.clinical.views import project

logger = logging.getLogger(__name__)

Syndrome = Literal["CRS", "ICANS"]

STEROIDS = frozenset({"dexamethasone", "methylprednisolone"})


class _DueLike(Protocol):
    """What the summary needs from an escalation item (``bedside.clinical.escalations.DueItem``)."""

    @property
    def state(self) -> str:
        """upcoming, due or overdue."""
        ...  # pragma: no cover

    @property
    def key(self) -> str:
        """Stable id of the timer (the key alarms are acknowledged under)."""
        ...  # pragma: no cover


def drug_label(med: Medication) -> str:
    """Human name of the drug of an administration (``other`` uses its free-text name)."""
    if med.drug == "other":
        return f"other: {med.drug_name}"
    label = DRUG_LABELS.get(med.drug, med.drug).lower()
    return f"{label} (corticosteroid)" if med.drug in STEROIDS else label


@dataclass(frozen=True)
class GradePoint:
    """One assessment on the grade trajectory."""

    at: datetime
    grade: int
    event_id: str
    ice_score: int | None = None


@dataclass(frozen=True)
class Episode:
    """One episode of CRS or ICANS (grade >= 1 until the next grade-0 assessment)."""

    onset_at: datetime
    max_grade: int
    max_grade_at: datetime
    resolved_at: datetime | None

    def duration(self, now: datetime) -> timedelta:
        """How long the episode lasted (until ``now`` while ongoing)."""
        return (self.resolved_at or now) - self.onset_at


@dataclass(frozen=True)
class TherapyUse:
    """Administrations of one drug given while a syndrome was active."""

    drug: str
    label: str
    doses: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class SyndromeSummary:
    """The registry fields of one syndrome (CRS or ICANS)."""

    name: Syndrome
    assessments: int
    episodes: tuple[Episode, ...]
    trajectory: tuple[GradePoint, ...]
    therapies: tuple[TherapyUse, ...]
    infusion_at: datetime | None

    @property
    def occurred(self) -> bool:
        """Any assessment with grade >= 1."""
        return bool(self.episodes)

    @property
    def onset_at(self) -> datetime | None:
        """First documented assessment with grade >= 1."""
        return self.episodes[0].onset_at if self.episodes else None

    @property
    def onset_day(self) -> int | None:
        """Day post-infusion of the onset (calendar days in the ward's zone; day 0 = infusion)."""
        if self.onset_at is None or self.infusion_at is None:
            return None
        return calendar_day(self.infusion_at, self.onset_at)

    @property
    def max_grade(self) -> int | None:
        """Highest grade assessed (None when never assessed)."""
        if not self.trajectory:
            return None
        return max(p.grade for p in self.trajectory)

    @property
    def max_grade_at(self) -> datetime | None:
        """When the highest grade was first assessed."""
        if not self.episodes:
            return None
        top = max(e.max_grade for e in self.episodes)
        return next(e.max_grade_at for e in self.episodes if e.max_grade == top)

    @property
    def ongoing(self) -> bool:
        """The last episode has not resolved."""
        return bool(self.episodes) and self.episodes[-1].resolved_at is None

    @property
    def resolved_at(self) -> datetime | None:
        """Resolution of the last episode (None if none occurred or still ongoing)."""
        if not self.episodes:
            return None
        return self.episodes[-1].resolved_at

    @property
    def current(self) -> GradePoint | None:
        """The latest assessment."""
        return self.trajectory[-1] if self.trajectory else None

    def changes(self) -> list[GradePoint]:
        """The trajectory reduced to the assessments where the grade changed."""
        out: list[GradePoint] = []
        for p in self.trajectory:
            if not out or out[-1].grade != p.grade:
                out.append(p)
        return out


@dataclass(frozen=True)
class OverrideUse:
    """A dose given past a soft limit with a reason and a second nurse."""

    at: datetime
    drug: str
    limits: tuple[str, ...]
    reason: str
    given_by: str
    second_nurse: str
    prescriber: str | None = None


@dataclass(frozen=True)
class EpisodeSummary:
    """Everything a registry form and a ward manager ask about one patient's course."""

    patient_id: str
    product: str
    infusion_at: datetime | None
    computed_at: datetime
    crs: SyndromeSummary
    icans: SyndromeSummary
    tocilizumab_total: int
    tocilizumab_prior: int
    tocilizumab_history_complete: bool
    first_crs_grade2_at: datetime | None
    first_tocilizumab_at: datetime | None
    grade2_to_tocilizumab: timedelta | None
    grade2_to_tocilizumab_note: str
    alarms_raised: int
    alarms_acknowledged: int
    alarms_snoozed: int
    overdue_now: int | None
    overdue_timers: int
    overrides: tuple[OverrideUse, ...] = field(default=())
    voided_events: int = 0
    amended_events: int = 0

    @property
    def override_count(self) -> int:
        """Number of doses recorded with a limit override."""
        return len(self.overrides)

    @property
    def overdue_timer_count(self) -> int:
        """Distinct timers that went overdue: alarms raised plus timers overdue right now."""
        return self.overdue_timers

    def tocilizumab_text(self) -> str:
        """Tocilizumab doses of the course, never showing an unknown history as exact."""
        prefix = "" if self.tocilizumab_history_complete else "at least "
        prior = f" ({self.tocilizumab_prior} given elsewhere)" if self.tocilizumab_prior else ""
        suffix = "" if self.tocilizumab_history_complete else " — dose history incomplete"
        return f"{prefix}{self.tocilizumab_total}{prior}{suffix}"


# --------------------------------------------------------------------------- derivation


def _episodes(points: Sequence[GradePoint]) -> tuple[Episode, ...]:
    """Episodes as the timers see them (:func:`bedside.clinical.escalations.grade_episodes`), each
    with its first highest grade."""
    episodes: list[Episode] = []
    for run, closed_by in grade_episodes(points, lambda p: p.grade):
        top = max(run, key=lambda p: p.grade)  # the first point of the highest grade
        end = closed_by.at if closed_by is not None else None
        episodes.append(Episode(run[0].at, top.grade, top.at, end))
    return tuple(episodes)


def _therapies(
    meds: Iterable[Medication], episodes: Sequence[Episode], *, include_all_toci: bool
) -> tuple[TherapyUse, ...]:
    by_drug: dict[str, list[Medication]] = {}
    for med in meds:
        active = any(
            e.onset_at <= med.effective_at
            and (e.resolved_at is None or med.effective_at <= e.resolved_at)
            for e in episodes
        )
        if active or (include_all_toci and med.drug == "tocilizumab"):
            key = med.drug if med.drug != "other" else f"other:{med.drug_name}"
            by_drug.setdefault(key, []).append(med)
    uses = [
        TherapyUse(
            drug=key,
            label=drug_label(items[0]),
            doses=len(items),
            first_at=min(m.effective_at for m in items),
            last_at=max(m.effective_at for m in items),
        )
        for key, items in by_drug.items()
    ]
    order = {"tocilizumab": 0, "dexamethasone": 1, "methylprednisolone": 2, "anakinra": 3}
    return tuple(sorted(uses, key=lambda u: (order.get(u.drug, 9), u.first_at)))


def _syndrome(
    name: Syndrome,
    points: list[GradePoint],
    meds: list[Medication],
    infusion_at: datetime | None,
) -> SyndromeSummary:
    points.sort(key=lambda p: p.at)
    episodes = _episodes(points)
    return SyndromeSummary(
        name=name,
        assessments=len(points),
        episodes=episodes,
        trajectory=tuple(points),
        therapies=_therapies(meds, episodes, include_all_toci=name == "CRS"),
        infusion_at=infusion_at,
    )


def _grade2_to_toci(
    crs: SyndromeSummary, toci: Sequence[Medication]
) -> tuple[datetime | None, datetime | None, timedelta | None, str]:
    first_g2 = next((p.at for p in crs.trajectory if p.grade >= 2), None)
    first_toci = toci[0].effective_at if toci else None
    if first_g2 is None:
        return None, first_toci, None, "no grade ≥ 2 CRS recorded"
    if first_toci is not None and first_toci < first_g2:
        return (
            first_g2,
            first_toci,
            None,
            "tocilizumab was started before the first grade ≥ 2 assessment",
        )
    if first_toci is None:
        return first_g2, None, None, "no tocilizumab recorded since grade ≥ 2 CRS"
    delta = first_toci - first_g2
    return first_g2, first_toci, delta, "from the first grade ≥ 2 CRS assessment to the first dose"


def summarize(
    record: Record,
    now: datetime,
    *,
    due: Sequence[_DueLike] | None = None,
    events: list[EventBase] | None = None,
) -> EpisodeSummary:
    """Compute the episode summary of a patient.

    Args:
        record: The patient record.
        now: The instant the summary is computed for (durations of ongoing episodes).
        due: Escalation items derived for ``now`` (``bedside.clinical.escalations.derive_due``);
            their overdue ones are counted. ``None`` when they were not derived.
        events: The effective events, when the caller already has them.

    Returns:
        The summary.
    """
    projection = project(record)
    evs = events if events is not None else projection.events
    patient = projection.patient
    infusion = patient.infusion_at
    meds = sorted(
        (e for e in evs if isinstance(e, Medication)), key=lambda m: (m.effective_at, m.id)
    )
    crs_points = [
        GradePoint(e.effective_at, e.grade, e.id) for e in evs if isinstance(e, CrsAssessment)
    ]
    icans_points = [
        GradePoint(e.effective_at, e.grade, e.id, e.ice_score)
        for e in evs
        if isinstance(e, IceAssessment)
    ]
    crs = _syndrome("CRS", crs_points, meds, infusion)
    icans = _syndrome("ICANS", icans_points, meds, infusion)
    toci = tocilizumab_doses(evs)
    first_g2, first_toci, delta, note = _grade2_to_toci(crs, toci)

    alerts = [e for e in evs if isinstance(e, AlertAck)]
    raised = {a.alert_key for a in alerts if a.action == "raised"}
    acked = {a.alert_key for a in alerts if a.action == "acknowledged"}
    snoozes = sum(1 for a in alerts if a.action == "snoozed")
    overdue_items = [d for d in (due or ()) if d.state == "overdue"]
    overdue_now = None if due is None else len(overdue_items)
    overdue_keys = raised | {
        str(getattr(d, "key", "")) or f"now-{i}" for i, d in enumerate(overdue_items)
    }

    overrides = tuple(
        OverrideUse(
            at=m.effective_at,
            drug=drug_label(m),
            limits=tuple(str(x) for x in m.override.limits),
            reason=m.override.reason,
            given_by=m.given_by,
            second_nurse=m.override.second_nurse,
            prescriber=m.override.prescriber,
        )
        for m in meds
        if m.override is not None
    )
    corrections = [e for e in record.events if isinstance(e, Correction)]
    voided = {c.target_id for c in corrections if c.action == "void"}
    amended = {c.target_id for c in corrections if c.action == "amend"}
    return EpisodeSummary(
        patient_id=patient.patient_id,
        product=patient.product,
        infusion_at=infusion,
        computed_at=now,
        crs=crs,
        icans=icans,
        tocilizumab_total=len(toci),
        tocilizumab_prior=sum(1 for d in toci if d.prior),
        tocilizumab_history_complete=history_complete(record, evs),
        first_crs_grade2_at=first_g2,
        first_tocilizumab_at=first_toci,
        grade2_to_tocilizumab=delta,
        grade2_to_tocilizumab_note=note,
        alarms_raised=len(raised),
        alarms_acknowledged=len(acked),
        alarms_snoozed=snoozes,
        overdue_now=overdue_now,
        overdue_timers=len(overdue_keys),
        overrides=overrides,
        voided_events=len(voided),
        amended_events=len(amended - voided),
    )


def day_of(record: Record, when: datetime | None) -> int | None:
    """Day post-infusion of ``when`` in the ward's zone (None when unknown)."""
    if when is None:
        return None
    return day_post_infusion(project(record).patient, when)


__all__ = [
    "STEROIDS",
    "Episode",
    "EpisodeSummary",
    "GradePoint",
    "OverrideUse",
    "SyndromeSummary",
    "TherapyUse",
    "drug_label",
    "summarize",
]

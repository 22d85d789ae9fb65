"""The read side of Bedside: what a record says, projected once per record version.

The write side (:class:`bedside.ward.service.Ward` and the event record) appends events; every
reader — board, tabs, timers, dose dialog, handover, exports, summary — reads from here:

* :class:`PatientProjection` — what does not depend on the clock: the current header,
  the effective events (voids and amendments applied), the escalation timeline, the
  alert index, the latest CRS/ICANS grades and the tocilizumab dose history. It is built
  ONCE per record version (patient id + chain head count and hash) by :func:`project`
  and kept in the one bounded cache of the read side.
* :class:`PatientView` — the projection at an instant (:meth:`PatientProjection.at`): the
  due items, their alert states, the dose budget and the day post-infusion. Cheap: no
  event is re-read, only the clock-dependent rules run.
* :class:`WardView` — every patient's view at one instant, most urgent first, plus the
  patients whose record could not be derived (with the reason) so one bad record never
  takes down the ward (issue 12).

Records are immutable (the ward replaces the object on every write), so a projection
never goes stale: a new record version is a new key. Nothing here writes or keeps a clock.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from bedside.clinical import alertstate, escalations
from bedside.clinical.alertstate import AlertStatus
from bedside.clinical.doses import (
    DoseBudget,
    dose_budget,
    history_complete,
    tocilizumab_doses,
    voided_doses,
)
from bedside.clinical.escalations import DueItem, Timeline
from bedside.clinical.protocol import Protocol
from bedside.clinical.record import (
    AlertAck,
    CrsAssessment,
    EventBase,
    IceAssessment,
    Medication,
    Patient,
    Record,
    day_post_infusion,
    effective_events,
    header_from,
)
from bedside.common.logsafe import patient_hash
from bedside.common.timeutil import local_zone

logger = logging.getLogger(__name__)

STATE_RANK = {"overdue": 0, "due": 1, "upcoming": 2}
"""Most urgent state first (sorting key of due items)."""
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
"""Most severe first (sorting key of due items)."""

CACHE_SIZE = 512
"""At most this many patients' projections are kept (one version per patient)."""

RecordVersion = tuple[str, int, str]
"""A record version: patient id, chain head count, chain head hash."""

BudgetFn = Callable[[Record, Protocol, datetime], DoseBudget]
"""How a view computes the dose budget (the ward adds its clock-anomaly guard)."""
ExtraDueFn = Callable[["PatientProjection", datetime, tzinfo], list[DueItem]]
"""Due items the record alone cannot give (the ward's possible duplicate doses need each
event's workstation): ``(projection, now, zone) -> items``."""


def record_version(record: Record) -> RecordVersion:
    """The version key of a record: its patient id and chain head."""
    return (record.patient.patient_id, record.head.count, record.head.hash)


def latest(events: Iterable[EventBase], kind: type[EventBase]) -> EventBase | None:
    """The latest event of ``kind`` by effective time (then recording time)."""
    found = [e for e in events if isinstance(e, kind)]
    return max(found, key=lambda e: (e.effective_at, e.recorded_at)) if found else None


@dataclass(frozen=True, eq=False)
class PatientProjection:
    """Everything a record says that does not depend on the clock (one record version).

    Attributes:
        record: The record this projection was built from.
        version: Its :data:`RecordVersion`.
        patient: The current header (patient updates applied).
        events: The effective events (voided removed, amendments applied), record order.
        timeline: The escalation timeline (:func:`bedside.clinical.escalations.build_timeline`).
        alert_index: Alert events by (alert key, due time), oldest first.
        crs: The latest CRS assessment (None: never graded).
        icans: The latest ICE/ICANS assessment (None: never graded).
        doses: Effective tocilizumab doses (prior doses included), by time.
        voided_doses: Tocilizumab doses charted then voided (shown, never counted).
        history_complete: Whether the record holds the whole dose history.
    """

    record: Record
    version: RecordVersion
    patient: Patient
    events: list[EventBase]
    timeline: Timeline
    alert_index: dict[tuple[str, datetime], list[AlertAck]]
    crs: CrsAssessment | None
    icans: IceAssessment | None
    doses: tuple[Medication, ...]
    voided_doses: tuple[Medication, ...]
    history_complete: bool

    @property
    def pid(self) -> str:
        """The patient id."""
        return self.version[0]

    def at(
        self,
        now: datetime,
        protocol: Protocol,
        *,
        zone: tzinfo | None = None,
        budget: BudgetFn | None = None,
        extra_due: ExtraDueFn | None = None,
    ) -> PatientView:
        """The view of this patient at ``now`` (only the clock-dependent rules run).

        Args:
            now: The instant (aware).
            protocol: The protocol the patient is charted under.
            zone: Display zone of the due messages and the day (default: the machine's).
            budget: How to compute the dose budget (default
                :func:`bedside.clinical.doses.dose_budget`; the ward passes its own,
                which adds the clock-anomaly guard).
            extra_due: Further due items of the ward (see :data:`ExtraDueFn`).
        """
        zone = zone or local_zone()
        due = escalations.derive_timeline(self.timeline, protocol, now, zone=zone)
        if extra_due is not None:
            extra = extra_due(self, now, zone)
            if extra:
                due = escalations.sort_due([*extra, *due])
        states = alertstate.states_from_index(self.alert_index, due, now)
        return PatientView(
            projection=self,
            now=now,
            protocol=protocol,
            due=due,
            alerts={s.item.key: s for s in states},
            budget=(budget or dose_budget)(self.record, protocol, now),
            day=day_post_infusion(self.patient, now, zone),
        )


def _build(record: Record) -> PatientProjection:
    """Build every part of a projection once: effective events, header, timeline, alert
    index, dose history (each from the parts before it, never from the record again)."""
    events = effective_events(record)
    patient = header_from(record, events)
    complete = history_complete(record, events)
    timeline = escalations.build_timeline(record, events, patient, complete)
    index = alertstate.alert_index_of(events)
    voided = voided_doses(record, events)
    crs = latest(events, CrsAssessment)
    icans = latest(events, IceAssessment)
    return PatientProjection(
        record=record,
        version=record_version(record),
        patient=patient,
        events=events,
        timeline=timeline,
        alert_index=index,
        crs=crs if isinstance(crs, CrsAssessment) else None,
        icans=icans if isinstance(icans, IceAssessment) else None,
        doses=tuple(tocilizumab_doses(events)),
        voided_doses=tuple(voided),
        history_complete=complete,
    )


_projections: OrderedDict[str, PatientProjection] = OrderedDict()


def project(record: Record) -> PatientProjection:
    """The projection of ``record``, built once per record version (the read side's cache).

    The cache holds the latest projected version of each patient (at most
    :data:`CACHE_SIZE` patients, least recently used dropped). A hit needs the same chain
    head and the same header; anything else is rebuilt, never guessed.
    """
    version = record_version(record)
    hit = _projections.get(version[0])
    if hit is not None and (
        hit.record is record or (hit.version == version and hit.record.patient == record.patient)
    ):
        _projections.move_to_end(version[0])
        return hit
    built = _build(record)
    _projections[version[0]] = built
    if len(_projections) > CACHE_SIZE:
        _projections.popitem(last=False)
    return built


def forget(pid: str) -> None:
    """Drop a patient's projection (e.g. the patient left the ward)."""
    _projections.pop(pid, None)


@dataclass(frozen=True, eq=False)
class PatientView:
    """A patient at one instant: due items, alert states, dose budget, day post-infusion."""

    projection: PatientProjection
    now: datetime
    protocol: Protocol
    due: list[DueItem]
    alerts: dict[str, AlertStatus]
    budget: DoseBudget
    day: int | None

    @property
    def pid(self) -> str:
        """The patient id."""
        return self.projection.pid

    @property
    def patient(self) -> Patient:
        """The current header."""
        return self.projection.patient

    @property
    def record(self) -> Record:
        """The record the view was derived from."""
        return self.projection.record

    @property
    def events(self) -> list[EventBase]:
        """The effective events."""
        return self.projection.events

    def alert(self, key: str) -> AlertStatus | None:
        """The alert state of the due item ``key`` (None: no such item now)."""
        return self.alerts.get(key)

    def items_by_urgency(self) -> list[tuple[DueItem, AlertStatus]]:
        """Due items with their alert state, most urgent first (silenced after unsilenced
        within a state, then severity, then time)."""
        pairs = [(i, self.alerts.get(i.key) or AlertStatus(i, "active")) for i in self.due]
        pairs.sort(key=lambda p: item_urgency(p[0], p[1]))
        return pairs

    @property
    def urgency(self) -> tuple[Any, ...]:
        """Sort key of the patient: its most urgent item (no item: last), then bed."""
        pairs = self.items_by_urgency()
        bed = self.patient.bed or "—"
        if not pairs:
            return (9, 9, 9, datetime.max.replace(tzinfo=local_zone()), bed)
        return (*item_urgency(*pairs[0]), bed)


def item_urgency(item: DueItem, status: AlertStatus) -> tuple[int, int, int, datetime]:
    """Sort key of a due item: state, unsilenced first, severity, due time."""
    silenced = status.state in {"acknowledged", "snoozed"}
    return (
        STATE_RANK[item.state],
        1 if silenced else 0,
        SEVERITY_RANK[item.severity],
        item.due_at,
    )


@dataclass(frozen=True)
class Failure:
    """A patient whose record could not be derived for display (issue 12's isolation)."""

    pid: str
    step: str
    error: BaseException

    @property
    def message(self) -> str:
        """What the nurse reads (the error type only; never a field value)."""
        return (
            f"cannot display: the {self.step} could not be computed "
            f"({type(self.error).__name__}). The file is kept unchanged; tell the ward "
            "manager (a verified backup can be restored)."
        )


@dataclass(frozen=True)
class WardView:
    """Every patient at one instant: views most urgent first, and the failures."""

    now: datetime
    patients: list[PatientView] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)

    def view(self, pid: str) -> PatientView | None:
        """One patient's view (None: not shown, see :attr:`failures`)."""
        return next((v for v in self.patients if v.pid == pid), None)


def ward_view(
    records: Iterable[Record],
    protocol_for: Callable[[Record], Protocol],
    now: datetime,
    *,
    zone: tzinfo | None = None,
    budget: BudgetFn | None = None,
    extra_due: ExtraDueFn | None = None,
) -> WardView:
    """Project every record and view it at ``now``; a record that cannot be derived is set
    aside as a :class:`Failure` (logged by type, never by value) and the rest go on."""
    zone = zone or local_zone()
    views: list[PatientView] = []
    failures: dict[str, Failure] = {}
    for record in records:
        pid = record.patient.patient_id
        step = "record view"
        try:
            projection = project(record)
            step = "timers"
            views.append(
                projection.at(
                    now, protocol_for(record), zone=zone, budget=budget, extra_due=extra_due
                )
            )
        except Exception as exc:  # noqa: BLE001 - one record never takes down the ward
            failures[pid] = Failure(pid, step, exc)
            logger.error(
                "patient %s cannot be displayed: %s failed (%s)",
                patient_hash(pid),
                step,
                type(exc).__name__,
            )
    views.sort(key=lambda v: v.urgency)
    return WardView(now=now, patients=views, failures=failures)


__all__ = [
    "CACHE_SIZE",
    "SEVERITY_RANK",
    "STATE_RANK",
    "ExtraDueFn",
    "Failure",
    "PatientProjection",
    "PatientView",
    "RecordVersion",
    "WardView",
    "forget",
    "item_urgency",
    "latest",
    "project",
    "record_version",
    "ward_view",
]

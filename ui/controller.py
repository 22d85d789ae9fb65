"""The ward controller: the one QObject between the widgets and the Bedside core.

Widgets call a method here with plain values; the method calls the :class:`Ward`
service (which validates, applies the rules, appends the event and saves atomically)
and lets the core's exceptions through unchanged, so the form can show the reason next
to the field. After a successful write it recomputes the derived state and emits
:attr:`WardController.record_saved`. On every tick it recomputes what is due from the
records with the injected clock (``due = f(record, protocol, now)``) and emits
:attr:`WardController.refreshed`; items that have just become due (and are neither
acknowledged nor snoozed) are announced with :attr:`WardController.alarm_raised`.
What the loudspeaker owes is :attr:`WardController.alarm_sound` (a tone, again at each
protocol interval while an alert is left unattended, from :func:`bedside.ward.alerts.alarm_call`)
and :attr:`WardController.alarm_silenced` (nothing is sounding any more: stop at once).

No clinical rule lives here: grades, budgets and timers all come from ``bedside``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypedDict, Unpack

from PySide6.QtCore import QObject, Signal

from bedside.clinical import views
from bedside.clinical.doses import DoseBudget
from bedside.clinical.escalations import DueItem
from bedside.clinical.protocol import Protocol, load_default_protocol
from bedside.clinical.record import (
    CrsAssessment,
    EventBase,
    IceAssessment,
    Patient,
    Record,
)
from bedside.clinical.views import PatientProjection, PatientView
from bedside.common.clock import Clock
from bedside.common.errors import BedsideError
from bedside.common.timeutil import local_zone
from bedside.store.storage import patient_hash
from bedside.ward import alerts, restore, timesafety, wardsync
from bedside.ward.alerts import AlertStatus
from bedside.ward.restore import BackupChoice
from bedside.ward.service import DosePlan, Ward

logger = logging.getLogger(__name__)

DEMO_PREFIX = "demo-"


class IceOptions(TypedDict, total=False):
    """The ICANS domains and effective time :meth:`Ward.assess_ice` takes by keyword."""

    consciousness: str
    seizure: str
    motor: str
    cerebral_edema: str
    effective_at: datetime | None


@dataclass(frozen=True)
class DueRow:
    """One line of the timers panel."""

    pid: str
    bed: str
    name: str
    item: DueItem
    alert: AlertStatus

    @property
    def urgency(self) -> tuple[int, int, int, datetime]:
        """Sort key: unsilenced before silenced within a state, then severity, then time."""
        return views.item_urgency(self.item, self.alert)


@dataclass(frozen=True)
class BoardRow:
    """One patient on the ward board."""

    pid: str
    bed: str
    name: str
    mrn: str
    product: str
    day: int | None
    crs: CrsAssessment | None
    icans: IceAssessment | None
    budget: DoseBudget | None
    next_due: DueRow | None
    due_count: int
    overdue_count: int
    failure: str | None = None

    @property
    def urgency(self) -> tuple[Any, ...]:
        """Patients with the most urgent item first; quarantined files at the very top."""
        if self.failure:
            return (-1, 0, 0, datetime.min.replace(tzinfo=local_zone()), self.bed)
        if self.next_due is None:
            return (9, 9, 9, datetime.max.replace(tzinfo=local_zone()), self.bed)
        return (*self.next_due.urgency, self.bed)


class WardController(QObject):
    """Owns the open :class:`Ward` and the derived state the views show."""

    record_saved = Signal(str)
    """A patient's record changed (patient id)."""
    announced = Signal(str)
    """What a form just saved, in words, for the main window ("Saved: …")."""
    patients_changed = Signal()
    """A patient was added (the board must be rebuilt)."""
    refreshed = Signal()
    """Derived state (board rows, due items) was recomputed for the current time."""
    alarm_raised = Signal(list)
    """Items that just became due or overdue and are not silenced (list of DueRow)."""
    alarm_sound = Signal(str)
    """An alarm is owed now: its tone (``due`` or ``critical``; the most urgent of this tick)."""
    alarm_silenced = Signal()
    """No alert is sounding any more (acknowledged, snoozed or done): stop the sound."""
    clock_warning = Signal(str)
    """The wall clock went backwards or jumped (message for the nurse)."""

    def __init__(
        self,
        ward: Ward,
        clock: Clock,
        *,
        demo: bool = False,
        monotonic: Callable[[], float] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.ward = ward
        self.clock = clock
        self.protocol = load_default_protocol()
        self._demo_flag = demo
        self._projections: dict[str, PatientProjection] = {}
        """The projection of each patient shown (the read side, :mod:`bedside.clinical.views`)."""
        self._views: dict[str, PatientView] = {}
        """Each shown patient's view at the last refresh."""
        self.saves = 0
        """How many records this controller saved (a tab form knows it was saved)."""
        self._display_failures: dict[str, str] = {}
        self._storage_checked: tuple[float, str | None] | None = None
        self._board: list[BoardRow] = []
        self._due_rows: list[DueRow] = []
        self._sounding: set[str] = set()
        self._calls: dict[str, tuple[str, datetime, alerts.AlarmTone, datetime, int]] = {}
        self._pending_audit: set[str] = set()
        self._first_refresh = True
        self.last_refresh_ms = 0.0
        self.now = clock.now()
        self.guard: timesafety.ClockGuard | None = None
        self.start_reports: list[timesafety.ClockReport] = []
        if not ward.read_only:
            self.guard, self.start_reports = timesafety.attach(ward, monotonic=monotonic)
        self._rebuild_all()

    # ------------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        """The ward's data directory."""
        return self.ward.root

    @property
    def demo(self) -> bool:
        """Demo data is open (by flag, or because demo patients are present)."""
        return self._demo_flag or any(pid.startswith(DEMO_PREFIX) for pid in self.ward.records)

    def patient_ids(self) -> list[str]:
        """Every loaded patient id."""
        return list(self._projections)

    def projection(self, pid: str) -> PatientProjection:
        """What the patient's record says (one record version; :mod:`bedside.clinical.views`)."""
        return self._projections[pid]

    def view(self, pid: str) -> PatientView:
        """The patient at the last refresh: due items, alert states, budget, day."""
        view = self._views.get(pid)
        projection = self._projections[pid]
        if view is None or view.projection is not projection:
            view = projection.at(
                self.now, self.protocol_for(pid), zone=local_zone(), budget=self.ward.budget_of
            )
            self._views[pid] = view
        return view

    def patient(self, pid: str) -> Patient:
        """The current header of a patient."""
        return self._projections[pid].patient

    def record(self, pid: str) -> Record:
        """The loaded record."""
        return self._projections[pid].record

    def events(self, pid: str) -> list[EventBase]:
        """Effective events (voided removed, amendments applied)."""
        return self._projections[pid].events

    def protocol_for(self, pid: str) -> Protocol:
        """The protocol the patient is charted under."""
        return self.ward.protocol_for(self._projections[pid].record)

    def budget(self, pid: str) -> DoseBudget | None:
        """The tocilizumab budget at the last refresh."""
        return self.view(pid).budget

    def due_items(self, pid: str) -> list[DueItem]:
        """The patient's due items at the last refresh."""
        return self.view(pid).due

    def day(self, pid: str) -> int | None:
        """Day post-infusion now."""
        return self.view(pid).day

    def board_rows(self) -> list[BoardRow]:
        """Ward board rows, most urgent first."""
        return self._board

    def due_rows(self) -> list[DueRow]:
        """Every due item of every patient, most urgent first."""
        return self._due_rows

    def storage_warning(self) -> str | None:
        """Read-only ward, low disk space or an unconfirmed save (checked every 30 s)."""
        now = time.monotonic()
        if self._storage_checked is None or now - self._storage_checked[0] >= 30.0:
            try:
                text = self.ward.storage_warning()
            except Exception as exc:  # noqa: BLE001 - a warning check never stops the ward
                logger.error("storage check failed (%s)", type(exc).__name__)
                text = None
            self._storage_checked = (now, text)
        return self._storage_checked[1]

    def failures(self) -> dict[str, str]:
        """Patients not shown, with the reason: files that failed to load (quarantined) and
        records that loaded but could not be derived for display ("cannot display")."""
        return {**self.ward.failures, **self._display_failures}

    def set_aside(self, pid: str, step: str, exc: BaseException) -> None:
        """A view of ``pid`` failed (e.g. a tab): set the patient aside and refresh."""
        self._isolate(pid, step, exc)
        self.refresh(self.clock.now())
        self.patients_changed.emit()

    def _isolate(self, pid: str, step: str, exc: BaseException) -> None:
        """Set one patient aside ("cannot display") so the rest of the ward keeps working.

        Logged with the error type only (never field values; the traceback can hold them).
        """
        self._set_aside(views.Failure(pid, step, exc))
        logger.error(
            "patient %s cannot be displayed: %s failed (%s)",
            patient_hash(pid),
            step,
            type(exc).__name__,
        )

    def _set_aside(self, failure: views.Failure) -> None:
        """Stop showing a patient; the board shows the failure instead (already logged)."""
        self._projections.pop(failure.pid, None)
        self._views.pop(failure.pid, None)
        self._display_failures[failure.pid] = failure.message

    def redaction_terms(self) -> list[str]:
        """Everything identifying a patient, for scrubbing logs."""
        terms: list[str] = []
        for c in self._projections.values():
            p = c.patient
            terms += [p.name, p.mrn, p.patient_id, p.date_of_birth.isoformat()]
            terms += p.name.split()
        return terms

    # ------------------------------------------------------------------ derived state

    def _rebuild(self, pid: str) -> None:
        """Take the patient's projection from the read side (built once per version)."""
        self._projections[pid] = views.project(self.ward.records[pid])

    def _rebuild_all(self) -> None:
        self._projections.clear()
        self._views.clear()
        self._display_failures.clear()
        for pid in sorted(self.ward.records):
            try:
                self._rebuild(pid)
            except Exception as exc:  # noqa: BLE001 - one record never takes down the ward
                self._isolate(pid, "record view", exc)
        self.refresh(self.clock.now())

    def _sync_ward(self) -> None:
        """Issue 15: heartbeat, then pick up what replication brought from other workstations."""
        if self.ward.read_only:
            return
        try:
            wardsync.maybe_heartbeat(self.ward.store)
            before = dict(self.ward.records)
            added = wardsync.refresh_ward(self.ward)
            for pid, record in self.ward.records.items():
                if before.get(pid) is not record:
                    self._rebuild(pid)
            if added:
                self.patients_changed.emit()
        except (BedsideError, OSError):
            logger.exception("replicated journals could not be picked up")

    def sync_lines(self, pid: str | None = None) -> list[str]:
        """What the board, dose dialog and handover say about other workstations (and
        possible duplicate doses, for ``pid`` or every patient). Texts come from the core."""
        try:
            lines = list(wardsync.ward_status(self.ward).lines)
            for p in [pid] if pid else list(self.ward.records):
                if p in self.ward.records:
                    lines = [
                        d.message for d in wardsync.unacknowledged_duplicates(self.ward, p)
                    ] + lines
        except (BedsideError, OSError):
            logger.exception("ward status could not be read")
            return ["The other workstations' status could not be read"]
        return lines

    def _duplicate_doses(
        self, projection: views.PatientProjection, now: datetime, zone: tzinfo
    ) -> list[DueItem]:
        """The ward's possible duplicate doses of one patient (critical alert items)."""
        if not hasattr(self.ward.store, "provenance"):
            return []  # no journals, no workstation of each event
        return wardsync.duplicate_dose_items(
            self.ward,
            projection.pid,
            now,
            zone=zone,
            events=projection.events,
            record=projection.record,
        )

    def refresh(self, now: datetime | None = None) -> None:
        """Recompute due items, budgets and board rows for ``now`` (the tick's slot)."""
        started = time.perf_counter()
        now = now or self.clock.now()
        self.now = now
        self._sync_ward()
        self._check_clock(now)
        zone = local_zone()
        due_rows: list[DueRow] = []
        board: list[BoardRow] = []
        calls: list[alerts.AlarmCall] = []
        ward_view = views.ward_view(
            [p.record for p in self._projections.values()],
            self.ward.protocol_for,
            now,
            zone=zone,
            budget=self.ward.budget_of,
            extra_due=self._duplicate_doses,
        )
        for failure in ward_view.failures.values():
            self._set_aside(failure)  # logged by the read side
        for view in ward_view.patients:
            pid, projection = view.pid, view.projection
            try:
                _alarm_calls(view, calls)
            except Exception as exc:  # noqa: BLE001 - one record never takes down the ward
                self._isolate(pid, "alarms", exc)
                continue
            self._projections[pid] = projection
            self._views[pid] = view
            patient = projection.patient
            rows = [
                DueRow(pid, patient.bed or "—", patient.name, item, alert)
                for item, alert in view.items_by_urgency()
            ]
            due_rows.extend(rows)
            board.append(
                BoardRow(
                    pid=pid,
                    bed=patient.bed or "—",
                    name=patient.name,
                    mrn=patient.mrn,
                    product=patient.product,
                    day=view.day,
                    crs=projection.crs,
                    icans=projection.icans,
                    budget=view.budget,
                    next_due=rows[0] if rows else None,
                    due_count=sum(1 for r in rows if r.item.state == "due"),
                    overdue_count=sum(1 for r in rows if r.item.state == "overdue"),
                )
            )
        for pid, message in self.failures().items():
            board.append(
                BoardRow(
                    pid=pid,
                    bed="?",
                    name="(file could not be loaded)",
                    mrn="",
                    product="",
                    day=None,
                    crs=None,
                    icans=None,
                    budget=None,
                    next_due=None,
                    due_count=0,
                    overdue_count=0,
                    failure=message,
                )
            )
        due_rows.sort(key=lambda r: r.urgency)
        board.sort(key=lambda r: r.urgency)
        self._due_rows = due_rows
        self._board = board
        sounding = {
            r.item.key for r in due_rows if r.item.state != "upcoming" and not r.alert.silenced
        }
        new = [r for r in due_rows if r.item.key in sounding - self._sounding]
        self._sounding = sounding
        if new:
            self._pending_audit |= {r.pid for r in new}
        if self._pending_audit and not self._first_refresh:
            # Not on the first refresh: those saves (fsync) would delay the first paint.
            pending, self._pending_audit = self._pending_audit, set()
            self._audit_raised(pending)
        owed = self._owed_tone(calls)
        self.last_refresh_ms = (time.perf_counter() - started) * 1000
        self.refreshed.emit()
        if new:
            self.alarm_raised.emit(new)
        if owed == "silence":
            self.alarm_silenced.emit()
        elif owed:
            self.alarm_sound.emit(owed)
        self._first_refresh = False

    def sounding_tone(self) -> str:
        """The tone owed by the alerts sounding now (``critical``, ``due`` or empty)."""
        if not self._calls:
            return ""
        return "critical" if any(i[2] == "critical" for i in self._calls.values()) else "due"

    def _owed_tone(self, calls: list[alerts.AlarmCall]) -> str:
        """``due``/``critical`` when a sounding is owed now, ``silence`` when all stopped."""
        current = {c.key: c.identity for c in calls}
        fresh = [c for c in calls if self._calls.get(c.key) != c.identity]
        was_sounding = bool(self._calls)
        self._calls = current
        if fresh:
            return "critical" if any(c.tone == "critical" for c in fresh) else "due"
        if was_sounding and not current:
            return "silence"
        return ""

    def _check_clock(self, now: datetime) -> None:
        """Per-tick clock check; anomalies are written to every record by the guard."""
        if self.guard is None:
            return
        try:
            reports = self.guard.tick()
        except Exception as exc:  # noqa: BLE001 - the ward keeps working; logged (type only)
            logger.error("clock check failed (%s)", type(exc).__name__)
            return
        if reports:
            for pid in list(self._projections):
                if pid in self.ward.records:
                    self._rebuild_or_isolate(pid)
            for r in reports:
                self.clock_warning.emit(r.message)

    def _audit_raised(self, pids: set[str]) -> None:
        """Write a "raised" alert event for newly sounding items (the audit of display)."""
        if self.ward.read_only:
            return
        for pid in sorted(pids):
            try:
                written = alerts.record_raised(self.ward, pid, timesafety.SYSTEM_INITIALS)
            except Exception as exc:  # noqa: BLE001 - audit failure never stops the ward
                logger.error("could not record that an alert was raised (%s)", type(exc).__name__)
                continue
            if written and pid in self._projections:
                old = self._views.get(pid)
                if self._rebuild_or_isolate(pid) and old is not None:
                    # A "raised" event changes no due item, alert state or budget.
                    self._views[pid] = replace(old, projection=self._projections[pid])

    @property
    def dosing_suspended(self) -> bool:
        """Tocilizumab dosing paused after a forward clock jump (until confirmed)."""
        return self.guard is not None and self.guard.dosing_suspended

    def confirm_clock(self, initials: str) -> None:
        """A nurse checked the clock against the ward clock: lift the restrictions."""
        if self.guard is not None:
            self.guard.confirm_time(initials)
        self.refresh(self.clock.now())

    def _rebuild_or_isolate(self, pid: str) -> bool:
        """Rebuild one patient's view; on any failure set it aside. True when rebuilt."""
        try:
            self._rebuild(pid)
        except Exception as exc:  # noqa: BLE001 - one record never takes down the ward
            self._isolate(pid, "record view", exc)
            return False
        self._display_failures.pop(pid, None)
        return True

    def _saved(self, pid: str) -> None:
        self.saves += 1
        new_patient = pid not in self._projections
        self._rebuild_or_isolate(pid)
        self.refresh(self.clock.now())
        if new_patient:
            self.patients_changed.emit()
        self.record_saved.emit(pid)

    def announce(self, text: str) -> None:
        """Tell the window what was just saved (shown in the status bar)."""
        self.announced.emit(text)

    def reload(self) -> None:
        """Reload every file from disk (after a conflict) and rebuild everything."""
        self.ward.reload()
        self._rebuild_all()
        self.patients_changed.emit()

    # ------------------------------------------------------------------ commands

    def add_patient(self, *, recorded_by: str, **fields: Any) -> str:
        """Create a patient; returns its id."""
        pid = self.ward.create_patient(recorded_by=recorded_by, **fields)
        self._saved(pid)
        return pid

    def update_patient(
        self,
        pid: str,
        changes: dict[str, Any],
        *,
        recorded_by: str,
        effective_at: datetime | None = None,
        confirmation: dict[str, Any] | None = None,
    ) -> EventBase:
        """Record a change of a header fact (weight, infusion, bed, baseline...)."""
        fields: dict[str, Any] = {"changes": changes}
        if effective_at is not None:
            fields["effective_at"] = effective_at
        if confirmation is not None:
            fields["confirmation"] = confirmation
        return self.chart(pid, "patient_update", recorded_by=recorded_by, **fields)

    def chart(self, pid: str, kind: str, *, recorded_by: str, **fields: Any) -> EventBase:
        """Chart an event (vitals, note, toxicity, neuro_check, medication...)."""
        event = self.ward.chart(pid, kind, recorded_by=recorded_by, **fields)
        self._saved(pid)
        return event

    def assess_crs(
        self, pid: str, inputs: dict[str, Any], *, recorded_by: str, **kwargs: Any
    ) -> tuple[EventBase, Any]:
        """Grade CRS and record the assessment (``confirmation`` for a lower grade)."""
        out = self.ward.assess_crs(pid, inputs, recorded_by=recorded_by, **kwargs)
        self._saved(pid)
        return out

    def assess_ice(
        self,
        pid: str,
        items: dict[str, int | None],
        *,
        recorded_by: str,
        **domains: Unpack[IceOptions],
    ) -> tuple[EventBase, Any]:
        """Score ICE, grade ICANS and record it."""
        out = self.ward.assess_ice(pid, items, recorded_by=recorded_by, **domains)
        self._saved(pid)
        return out

    def record_lab(self, pid: str, **fields: Any) -> EventBase:
        """Record a lab value (CTCAE grade computed by the core)."""
        event = self.ward.record_lab(pid, **fields)
        self._saved(pid)
        return event

    def screen_eligibility(
        self,
        pid: str,
        inputs: dict[str, Any],
        *,
        recorded_by: str,
        criteria_reason: str | None = None,
    ) -> tuple[EventBase, Any]:
        """Screen eligibility and record the result."""
        out = self.ward.screen_eligibility(
            pid, inputs, recorded_by=recorded_by, criteria_reason=criteria_reason
        )
        self._saved(pid)
        return out

    def plan_tocilizumab(self, pid: str, at: datetime | None = None) -> DosePlan:
        """The dose plan (nothing written)."""
        return self.ward.plan_tocilizumab(pid, at)

    def give_tocilizumab(self, pid: str, **kwargs: Any) -> EventBase:
        """Record a tocilizumab dose through every check."""
        event = self.ward.give_tocilizumab(pid, **kwargs)
        self._saved(pid)
        return event

    def plan_dose(self, pid: str, drug: str, at: datetime | None = None) -> DosePlan:
        """The dose plan of any dose-limited drug (nothing written)."""
        return self.ward.plan_dose(pid, drug, at)

    def give_dose(self, pid: str, drug: str, **kwargs: Any) -> EventBase:
        """Record a dose of a dose-limited drug through every check."""
        event = self.ward.give_dose(pid, drug, **kwargs)
        self._saved(pid)
        return event

    def record_prior_dose(self, pid: str, **kwargs: Any) -> EventBase:
        """Record a tocilizumab dose given elsewhere."""
        event = self.ward.record_prior_dose(pid, **kwargs)
        self._saved(pid)
        return event

    def correct(self, pid: str, target_id: str, **kwargs: Any) -> EventBase:
        """Void or amend an earlier event."""
        event = self.ward.correct(pid, target_id, **kwargs)
        self._saved(pid)
        return event

    def read_only_text(self) -> str | None:
        """Why nothing can be written (None when the ward is writable)."""
        if not self.ward.read_only:
            return None
        why = f" ({self.ward.read_only_reason})" if self.ward.read_only_reason else ""
        return f"this ward is open read-only{why}"

    def list_backups(self, pid: str) -> list[BackupChoice]:
        """The backups of a set-aside patient, newest first, each checked (nothing written)."""
        return restore.list_backups(self.ward, pid)

    def restore_from_backup(self, pid: str, backup: str, *, recorded_by: str) -> EventBase:
        """Restore a set-aside patient from a verified backup; returns the ``restored`` event.

        The core refuses (nothing written) a read-only ward, a patient that loads and
        displays normally, bad initials and a backup that does not verify.
        """
        try:
            result = restore.restore(
                self.ward,
                pid,
                recorded_by=recorded_by,
                backup=backup,
                set_aside=pid in self._display_failures,
            )
        except BedsideError:
            self.refresh(self.clock.now())  # the board shows what the core now says
            raise
        self._display_failures.pop(pid, None)
        self._saved(pid)
        return result.event

    def acknowledge(self, pid: str, key: str, initials: str, reason: str | None = None) -> None:
        """Acknowledge an alert (written to the record)."""
        alerts.acknowledge(self.ward, pid, key, initials, reason=reason)
        self._saved(pid)

    def snooze(
        self, pid: str, key: str, initials: str, minutes: int, reason: str | None = None
    ) -> None:
        """Snooze an alert for ``minutes`` (capped by the protocol; written with the reason)."""
        alerts.snooze(self.ward, pid, key, initials, minutes, reason=reason)
        self._saved(pid)

    def inform_doctor(
        self, pid: str, key: str, initials: str, doctor: str, plan: str, next_review_at: datetime
    ) -> None:
        """Record that the doctor was informed of an escalation review (plan, next review)."""
        alerts.inform_doctor(self.ward, pid, key, initials, doctor, plan, next_review_at)
        self._saved(pid)

    @property
    def doctor_review_max_h(self) -> float:
        """The protocol's longest time to the next review after informing the doctor."""
        return self.protocol.monitoring.doctor_review_max_h.value

    @property
    def snooze_max_min(self) -> float:
        """The protocol's snooze cap in minutes."""
        return self.protocol.monitoring.snooze_max_min.value

    def close(self) -> None:
        """Release the ward (writer lock)."""
        self.ward.close()


def _alarm_calls(view: PatientView, calls: list[alerts.AlarmCall]) -> None:
    """Append the soundings owed now by the view's alerts
    (:func:`bedside.ward.alerts.alarm_call`)."""
    for status in view.alerts.values():
        call = alerts.alarm_call(status, view.now, view.protocol.monitoring)
        if call is not None:
            calls.append(call)


def minutes(n: float) -> timedelta:
    """A timedelta of ``n`` minutes."""
    return timedelta(minutes=n)

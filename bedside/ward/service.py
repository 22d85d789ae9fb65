"""The ward service: records events through the rules and saves them safely.

This is the only way the application changes a record. Every command validates its
input (raising :class:`InputError` naming the field, writing nothing), runs the rules
(a tocilizumab dose is checked by :func:`~bedside.clinical.rules.tocilizumab_check` before it is
written; a dose against a soft limit needs an override reason and a second nurse; a
hard limit can never be passed), appends a sealed event, saves the file atomically and
only then updates its in-memory state. A failed save leaves the in-memory record as it
was, so what the UI shows is always what is on disk.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from typing import Protocol as Interface

from pydantic import ValidationError

from bedside.clinical.crsform import crs_record_findings, fever_masking
from bedside.clinical.dosecheck import (
    Finding,
    check_dose,
    check_lab,
    check_oxygen,
    check_temperature,
    check_weight,
    enforce,
)
from bedside.clinical.doses import (
    DoseBudget,
    dose_budget,
    limited_doses,
    limits_of,
    tocilizumab_doses,
)
from bedside.clinical.integrity import (
    PossibleDuplicateError,
    check_written,
    derivation_problem,
    duplicate_of,
)
from bedside.clinical.protocol import (
    Protocol,
    find_protocol,
    format_validation_error,
    load_default_protocol,
)
from bedside.clinical.record import (
    CORRECTION_REASONS,
    Correction,
    Drug,
    EventBase,
    Medication,
    Patient,
    Record,
    append,
    appended_validator,
    envelope_json,
    event_to_json,
    make_event,
    new_record,
    normalise_initials,
    validate_amendment,
    validate_envelope,
)
from bedside.clinical.rules import (
    CrsInput,
    CrsResult,
    CtcaeInput,
    DoseCheckResult,
    DoseResult,
    EligibilityInput,
    EligibilityResult,
    IcansInput,
    IcansResult,
    crs_grade,
    ctcae_grade,
    eligibility,
    icans_grade,
    limited_dose,
    limits_check,
)
from bedside.clinical.views import project
from bedside.common.clock import Clock
from bedside.common.errors import (
    ConcurrentModificationError,
    CorruptDataError,
    InputError,
    LimitError,
    StorageError,
)
from bedside.store.journal import JournalStore
from bedside.store.storage import patient_hash, validate_patient_id

logger = logging.getLogger(__name__)

CTCAE_TESTS = {"neutrophils", "platelets", "hemoglobin", "lymphocytes", "wbc"}


@dataclass(frozen=True)
class DosePlan:
    """Everything the dose dialog shows before a dose of a dose-limited drug is confirmed.

    Whether the dose may be given is the budget's decision (:class:`DoseBudget`):
    :attr:`needs_override` and :attr:`hard_block` only read it.
    """

    dose: DoseResult
    check: DoseCheckResult
    budget: DoseBudget
    weight_kg: float | None
    weight_measured_at: datetime | None
    confirmations: tuple[Finding, ...] = ()
    """Soft findings the nurse must confirm before giving (capped dose, weight outside the
    usual adult range, a weight older than the protocol's weight age...)."""
    weight_stale: bool = False
    drug: str = "tocilizumab"
    route: str | None = None
    """The protocol's route for this drug (None: the nurse chooses it)."""

    @property
    def needs_override(self) -> list[str]:
        """What an override must name (the budget's decision)."""
        return list(self.budget.needs_override)

    @property
    def hard_block(self) -> bool:
        """A hard limit blocks the dose (the budget's decision)."""
        return self.budget.hard_block

    @property
    def can_give_without_override(self) -> bool:
        """No limit and a complete history: the dose may be given as planned."""
        return not self.needs_override and not self.hard_block


class DoseTimeGuard(Interface):
    """Hook for :class:`bedside.ward.timesafety.ClockGuard`: a doubtful clock never allows a dose.

    ``restrict`` receives the budget computed at ``at`` and returns it unchanged when the
    clock is trusted, or a stricter one (never a looser one).
    """

    def restrict(
        self, record: Record, protocol: Protocol, at: datetime, now: datetime, budget: DoseBudget
    ) -> DoseBudget:
        """Return ``budget`` or a stricter budget."""
        ...


@dataclass
class Ward:
    """All patients of one data directory, with one writer.

    ``time_guard`` (optional, set by :func:`bedside.ward.timesafety.attach`) restricts every
    tocilizumab check after a clock anomaly: checks at both the clock time and the
    high-water mark while the clock is behind it; blocked after a forward jump until the
    time is confirmed.
    """

    root: Path
    clock: Clock
    read_only: bool = False
    workstation: str | None = None
    store: JournalStore = field(init=False)
    records: dict[str, Record] = field(default_factory=dict, init=False)
    tokens: dict[str, str] = field(default_factory=dict, init=False)
    failures: dict[str, str] = field(default_factory=dict, init=False)
    _protocols: dict[tuple[str, str], Protocol] = field(default_factory=dict, init=False)
    _json_cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False)
    time_guard: DoseTimeGuard | None = field(default=None, init=False)
    read_only_reason: str | None = field(default=None, init=False)
    """Why the ward was opened read-only (None: asked for, or writable)."""
    durability_warning: str | None = field(default=None, init=False)
    """Set after a save whose bytes are on disk but whose durability was not confirmed."""

    def __post_init__(self) -> None:
        from bedside.ward.wardsync import open_store

        self.store = open_store(self)

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Ward:
        """Take the writer lock (unless read-only), sweep temp files and load every patient."""
        if not self.read_only:
            self.store.acquire_writer_lock()
            swept = self.store.sweep_temp_files()
            if swept:
                logger.info("swept %d stale temp file(s)", swept)
        self.reload()
        if self.time_guard is None:
            from bedside.ward.timesafety import passive_guard  # (imports this module's types)

            self.time_guard = passive_guard(self)
        return self

    def reload(self) -> None:
        """(Re)load every patient file; files that fail are listed in ``failures``.

        No cyclic-garbage pass runs meanwhile: a load builds many long-lived, acyclic
        objects, and a full pass over them between two patients costs more than the load.
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            self._reload()
        finally:
            if paused:
                gc.enable()

    def _reload(self) -> None:
        self.records.clear()
        self.tokens.clear()
        self._json_cache.clear()
        self.failures.clear()
        for pid in self.store.patient_ids():
            try:
                loaded = self.store.load(pid, validate=validate_envelope)
            except CorruptDataError as exc:
                self.failures[pid] = str(exc)
                logger.warning("patient file %s failed to load", patient_hash(pid))
                continue
            except Exception as exc:  # noqa: BLE001 - one file never stops the ward opening
                self.failures[pid] = f"cannot be loaded ({type(exc).__name__}: {exc})"
                logger.error(
                    "patient file %s could not be loaded: %s", patient_hash(pid), type(exc).__name__
                )
                continue
            problem = self._underivable(loaded.value)
            if problem is not None:
                # One record that cannot be shown must not take the ward down with it.
                self.failures[pid] = f"cannot display: {problem}"
                logger.error("patient %s cannot be displayed: %s", patient_hash(pid), problem)
                continue
            self.records[pid] = loaded.value
            self.tokens[pid] = loaded.token
            self._keep_events_json(pid, loaded.raw["events"])

    def _underivable(self, record: Record) -> str | None:
        """Why ``record`` cannot be derived for display (None when it can)."""
        try:
            protocol = self.protocol_for(record)
        except Exception as exc:  # noqa: BLE001 - isolates this patient; reason is logged
            return f"its protocol cannot be loaded ({type(exc).__name__})"
        return derivation_problem(record, protocol, self.clock.now())

    def newest_backup(self, pid: str) -> Path | None:
        """The newest backup of ``pid`` that verifies (offered when its file failed to load)."""
        return self.store.newest_verified_backup(pid, validate=validate_envelope)

    def restore_from_backup(
        self,
        pid: str,
        *,
        recorded_by: str,
        backup: str | None = None,
        set_aside: bool = False,
    ) -> Path:
        """Restore a patient whose file cannot be loaded from a verified backup.

        ``backup`` names one of :func:`bedside.ward.restore.list_backups` (default: the newest
        that verifies). The damaged file stays in quarantine. A ``restored`` event is
        appended so the dose budget reports the history as incomplete until someone
        confirms it (doses charted after the backup was taken may be missing). Nothing is
        written when the ward is read-only or the backup does not verify. Returns the
        backup used.
        """
        from bedside.ward.restore import restore  # (imports this module's types)

        result = restore(self, pid, recorded_by=recorded_by, backup=backup, set_aside=set_aside)
        return result.backup.path

    def storage_warning(self) -> str | None:
        """A banner text when the data directory is read-only, nearly full, or a save's
        durability was not confirmed (None when all is well)."""
        if self.read_only and self.read_only_reason:
            return (
                "READ-ONLY: this ward cannot be saved to — "
                f"{self.read_only_reason}. Nothing can be charted here: chart on paper and "
                "tell IT (free disk space or fix the folder's permissions), then restart Bedside."
            )
        low = self.store.low_space()
        if low is not None:
            return low
        return self.durability_warning

    def close(self) -> None:
        """Release the writer lock."""
        if not self.read_only:
            self.store.release_writer_lock()

    # ------------------------------------------------------------------ queries

    def protocol_for(self, record: Record) -> Protocol:
        """The protocol the patient is charted under."""
        key = (record.patient.protocol_id, record.patient.protocol_version)
        if key not in self._protocols:
            default = load_default_protocol()
            if (default.protocol_id, default.version) == key:
                self._protocols[key] = default
            else:
                self._protocols[key] = find_protocol(*key)
        return self._protocols[key]

    def patient(self, pid: str) -> Patient:
        """The current header of a patient (updates applied)."""
        return project(self.record(pid)).patient

    def record(self, pid: str) -> Record:
        """The loaded record of a patient (re-merged first if another workstation's arrived)."""
        if pid in self.records and self.store.changed_since_load(pid):
            from bedside.ward.wardsync import refresh_patient

            refresh_patient(self, pid)
        try:
            return self.records[pid]
        except KeyError:
            raise InputError(f"patient: no patient with id {pid!r} in this ward") from None

    def budget(self, pid: str, at: datetime | None = None) -> DoseBudget:
        """The tocilizumab budget at ``at`` (default: now)."""
        rec = self.record(pid)
        return self.budget_of(rec, self.protocol_for(rec), at)

    def budget_of(self, rec: Record, protocol: Protocol, at: datetime | None = None) -> DoseBudget:
        """The budget of a loaded record at ``at`` (default: now), clock-anomaly guard applied
        (what :mod:`bedside.clinical.views` computes a patient's view with)."""
        now = self.clock.now()
        budget = dose_budget(rec, protocol, at or now)
        if self.time_guard is not None:
            budget = self.time_guard.restrict(rec, protocol, at or now, now, budget)
        return budget

    # ------------------------------------------------------------------ writing

    def _commit(self, pid: str, record: Record, *, creating: bool = False) -> None:
        if self.read_only:
            raise StorageError("this ward is open read-only; nothing was saved")
        if creating:
            events_json = [event_to_json(e) for e in record.events]
            validate: Callable[[dict[str, Any]], object] = validate_envelope
        else:
            previous = self.records[pid]
            cached = self._events_json(pid)
            events_json = cached + [event_to_json(e) for e in record.events[len(cached) :]]
            validate = appended_validator(previous)
        envelope = envelope_json(record, events_json)
        expected = None if creating else self.tokens[pid]
        try:
            token = self.store.save(pid, envelope, expected_token=expected, validate=validate)
        except ConcurrentModificationError:
            raise
        except StorageError as exc:
            if not getattr(exc, "ambiguous", False):
                raise
            token = self._settle_ambiguous(pid, envelope, expected, exc)
        self.records[pid] = record
        self.tokens[pid] = token
        self._json_cache[pid] = events_json

    def _settle_ambiguous(
        self, pid: str, envelope: dict[str, Any], expected: str | None, exc: StorageError
    ) -> str:
        """After an ambiguous save, re-read the own journal and go by what is on disk.

        Every new event (and, for a new patient, the header) is in the journal: the save
        counts (only its durability could not be confirmed), ``durability_warning`` says so
        and the next save starts from what landed, so it is never refused because of this
        save's own write. None of them is there: nothing was saved (plain StorageError).
        Only some: ConcurrentModificationError (reload before charting again). The journal
        store resyncs its view of the own journal in every case.
        """
        creating = expected is None
        before = set() if creating else {e["id"] for e in self._events_json(pid)}
        new_ids = {e["id"] for e in envelope["events"]} - before
        try:
            token, landed, header = self.store.read_back(pid)
        except (StorageError, CorruptDataError) as read_exc:
            logger.error("ambiguous save of %s: the journal cannot be read back", patient_hash(pid))
            raise StorageError(
                f"NOT CONFIRMED: the entry may or may not be saved ({exc}), and the journal "
                f"cannot be read back ({read_exc}); reload before charting again"
            ) from exc
        arrived = new_ids & landed
        if arrived == new_ids and (header or not creating):
            self.durability_warning = (
                "The last entry IS saved (the journal was read back), but the disk did not "
                f"confirm it is permanent ({exc}). Check the disk or tell IT."
            )
            logger.warning("ambiguous save of %s: the new content is on disk", patient_hash(pid))
            return token
        if not arrived and not (creating and header):
            logger.warning("ambiguous save of %s: the old content is on disk", patient_hash(pid))
            raise StorageError(
                f"NOT SAVED: the journal was read back and holds none of this entry ({exc})"
            ) from exc
        logger.error("ambiguous save of %s: only part of it is on disk", patient_hash(pid))
        raise ConcurrentModificationError(
            "NOT SAVED as typed: only part of the entry reached the journal; reload before "
            "charting again"
        ) from exc

    def _keep_events_json(self, pid: str, events: list[dict[str, Any]] | None) -> None:
        """Keep the loaded events' JSON (``None``: the load did not decode it; rebuilt from
        the record on the first save, see :meth:`_events_json`)."""
        if events is None:
            self._json_cache.pop(pid, None)
        else:
            self._json_cache[pid] = list(events)

    def _events_json(self, pid: str) -> list[dict[str, Any]]:
        """The JSON of the saved events of ``pid`` (immutable, so cached after load/save)."""
        cached = self._json_cache.get(pid)
        record = self.records[pid]
        if cached is None or len(cached) != len(record.events):
            cached = [event_to_json(e) for e in record.events]
            self._json_cache[pid] = cached
        return list(cached)

    def store_record(self, pid: str, record: Record, *, creating: bool = False) -> None:
        """Save a whole record built elsewhere (import/merge); same checks as every save."""
        if not creating and pid not in self.records:
            raise InputError(f"patient: no patient with id {pid!r} in this ward")
        self._commit(pid, record, creating=creating)

    def add_event(self, pid: str, event: EventBase) -> EventBase:
        """Append an already-built (validated) event and save."""
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        now = self.clock.now()
        new = append(rec, event, now)
        check_written(new, new.events[-1:], protocol, now)
        self._commit(pid, new)
        return new.events[-1]

    def _append(
        self,
        pid: str,
        kind: str,
        *,
        recorded_by: str,
        effective_at: datetime | None = None,
        **fields: Any,
    ) -> EventBase:
        """Build an event of ``kind`` recorded now (effective now unless given) and append it."""
        now = self.clock.now()
        event = make_event(
            kind,
            effective_at=effective_at or now,
            recorded_at=now,
            recorded_by=recorded_by,
            **fields,
        )
        return self.add_event(pid, event)

    def chart(self, pid: str, kind: str, *, recorded_by: str, **fields: Any) -> EventBase:
        """Validate and append an event of ``kind``.

        A dose-limited drug (the protocol's ``dose_limits``: tocilizumab, anakinra...) is
        refused here, by key or by a typed name: it goes through :meth:`give_dose`, where
        every limit is checked. A dose given elsewhere (``prior``) is history and is kept.
        """
        if kind == "medication" and not fields.get("prior"):
            self._refuse_limited_drug(pid, fields)
        if kind in {"correction", "crs_assessment", "ice_assessment", "eligibility", "lab"}:
            raise InputError(f"kind: {kind} events are recorded through their own command")
        confirmation = fields.pop("confirmation", None)
        findings = self._charting_findings(pid, kind, fields)
        recorded = enforce(findings, confirmation)
        if recorded is not None:
            fields["confirmation"] = recorded
        if kind == "checklist":
            items = self.protocol_for(self.record(pid)).toxicity.checklist
            if fields.get("item") not in items:
                raise InputError(f"item: {fields.get('item')!r} is not on the protocol's checklist")
        return self._append(pid, kind, recorded_by=recorded_by, **fields)

    def _check_limited_amendment(
        self, rec: Record, target: Medication, merged: dict[str, Any]
    ) -> None:
        """An amended dose of a dose-limited drug passes the same hard limits as a new one.

        Raises:
            InputError: the amendment turns a dose into a dose-limited drug (that goes
                through the dose dialog), or puts the dose above its cap or past a hard
                interval / course limit.
        """
        protocol = self.protocol_for(rec)
        name = merged.get("drug_name")
        key = protocol.limited_drug(
            str(merged.get("drug", "")), name if isinstance(name, str) else None
        )
        if key is None or merged.get("prior"):
            return
        limits = protocol.dose_limits[key]
        if protocol.limited_drug(target.drug, target.drug_name) != key:
            raise InputError(
                f"drug: {limits.label} has dose limits: give it with Give dose (F4) and choose "
                f"{limits.label}. The dose was not changed."
            )
        dose, unit = merged.get("dose"), merged.get("unit")
        cap = limits.max_dose_mg
        if cap is not None and unit == "mg" and isinstance(dose, (int, float)) and dose > cap.value:
            raise InputError(
                f"dose: {dose:g} mg is above the {cap.value:g} mg maximum per dose of "
                f"{limits.label.lower()}. The dose was not changed."
            )
        when = Medication.model_validate(merged).effective_at  # validated by validate_amendment
        others = [
            d.effective_at
            for d in limited_doses(project(rec).events, key, protocol)
            if d.id != target.id
        ]
        check = limits_check(limits, others, when, protocol)
        if check.hard_limit:
            raise InputError(
                "effective_at: at that time the dose would break a hard limit ("
                + check.explanation
                + "). The dose was not changed."
            )

    def _refuse_limited_drug(self, pid: str, fields: dict[str, Any]) -> None:
        """Raise InputError when a medication names a dose-limited drug (outside the dose path)."""
        protocol = self.protocol_for(self.record(pid))
        name = fields.get("drug_name")
        key = protocol.limited_drug(
            str(fields.get("drug", "")), name if isinstance(name, str) else None
        )
        if key is None:
            return
        drug = protocol.dose_limits[key].label
        raise InputError(
            f"drug: {drug} has dose limits (interval, doses in 24 h, course): give it with "
            f"Give dose (F4) and choose {drug}, so every limit is checked. Nothing was recorded."
        )

    def _charting_findings(self, pid: str, kind: str, fields: dict[str, Any]) -> list[Finding]:
        """Drug-library checks of a charted event (weights, doses, vitals)."""
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        patient = project(rec).patient
        findings: list[Finding] = []
        if kind == "patient_update":
            changes = fields.get("changes")
            weight = changes.get("weight_kg") if isinstance(changes, dict) else None
            if isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight > 0:
                findings += check_weight(float(weight), patient.weight_kg, protocol)
        elif kind == "vitals":
            temp = fields.get("temperature_c")
            if isinstance(temp, (int, float)) and not isinstance(temp, bool):
                findings += check_temperature(float(temp), protocol)
            flow = fields.get("oxygen_flow_l_min")
            findings += check_oxygen(
                str(fields.get("oxygen_device", "none")),
                float(flow) if isinstance(flow, (int, float)) else None,
                protocol,
            )
        elif kind == "medication":
            dose = fields.get("dose")
            if isinstance(dose, (int, float)) and not isinstance(dose, bool) and dose > 0:
                findings += check_dose(
                    str(fields.get("drug", "")),
                    fields.get("drug_name"),
                    float(dose),
                    str(fields.get("unit", "")),
                    patient.weight_kg,
                    protocol,
                )
        return findings

    def create_patient(
        self, *, recorded_by: str, confirm_not_duplicate: bool = False, **fields: Any
    ) -> str:
        """Add a new patient (validated header; the file must not exist yet).

        Refused when another patient has the same MRN once normalised (Unicode NFKC,
        case, spaces, zero-width characters, dash variants), and when another has the
        same name and date of birth unless ``confirm_not_duplicate`` (a nurse checked).
        """
        now = self.clock.now()
        protocol = load_default_protocol()
        fields.setdefault("protocol_id", protocol.protocol_id)
        fields.setdefault("protocol_version", protocol.version)
        fields.setdefault("admitted_at", now)
        if "dose_history_complete" not in fields:
            infusion = fields.get("infusion_at")
            fields["dose_history_complete"] = infusion is None
        patient: Patient = _validate(Patient, fields, "patient")
        if patient.weight_kg is not None:
            hard = [f for f in check_weight(patient.weight_kg, None, protocol) if f.hard]
            enforce(hard, None)
        if patient.patient_id in self.records or patient.patient_id in self.store.patient_ids():
            raise InputError(f"patient_id: {patient.patient_id!r} already exists in this ward")
        validate_patient_id(patient.patient_id)
        dup = duplicate_of(
            self.records,
            patient_id=patient.patient_id,
            mrn=patient.mrn,
            name=patient.name,
            date_of_birth=patient.date_of_birth,
        )
        if dup is not None and (dup[1] == "the same MRN" or not confirm_not_duplicate):
            if dup[1] == "the same MRN":
                raise InputError(
                    "mrn: a patient with this MRN is already on the ward (compared ignoring "
                    "case, spaces and dash variants)"
                )
            raise PossibleDuplicateError(
                "name: a patient with the same name and date of birth is already on the ward; "
                "check it is not the same person, then confirm it is a different person"
            )
        if dup is not None:
            logger.warning("patient created despite a same name and date of birth, confirmed")
        _ = recorded_by
        record = new_record(patient, [], now)
        check_written(record, [], self.protocol_for(record), now, new_header=True)
        self._commit(patient.patient_id, record, creating=True)
        logger.info("created patient %s", patient_hash(patient.patient_id))
        return patient.patient_id

    # ------------------------------------------------------------------ clinical commands

    def assess_crs(
        self,
        pid: str,
        inputs: dict[str, Any],
        *,
        recorded_by: str,
        effective_at: datetime | None = None,
        confirmation: dict[str, Any] | None = None,
    ) -> tuple[EventBase, CrsResult]:
        """Grade CRS from the observations and record the assessment.

        Fever masking stays on once the record masks fever (tocilizumab, a steroid, or an
        antipyretic after CRS began: :func:`bedside.clinical.crsform.fever_masking`), and is stored
        as such in the inputs; a grade lower than the recorded one needs
        ``confirmation={"limits": ["crs_improved"]}`` (recorded on the event).
        """
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        masking = fever_masking(rec, protocol, self.clock.now())
        if masking.masked and not inputs.get("fever_masked"):
            # ASTCT: after anti-cytokine therapy (or an antipyretic once CRS began) fever is
            # no longer required; that is a fact of the record, not a choice on the form.
            inputs = {**inputs, "fever_masked": True}
            logger.info("fever masking applied from the record")
        crs_in = _validate(CrsInput, inputs, "crs")
        enforce(
            check_temperature(crs_in.temperature_c, protocol)
            + check_oxygen(crs_in.oxygen_device, crs_in.oxygen_flow_l_min, protocol),
            None,
        )
        result = crs_grade(crs_in, protocol)
        confirmed = enforce(
            crs_record_findings(
                rec, protocol, crs_in.model_dump(mode="json"), result, self.clock.now()
            ),
            confirmation,
        )
        return self._append(
            pid,
            "crs_assessment",
            recorded_by=recorded_by,
            effective_at=effective_at,
            inputs=crs_in.model_dump(mode="json"),
            grade=result.grade,
            drivers=result.drivers,
            explanation=result.explanation,
            **({"confirmation": confirmed} if confirmed else {}),
        ), result

    def assess_ice(
        self,
        pid: str,
        items: dict[str, int | None],
        *,
        consciousness: str = "alert",
        seizure: str = "none",
        motor: str = "none",
        cerebral_edema: str = "none",
        recorded_by: str,
        effective_at: datetime | None = None,
    ) -> tuple[EventBase, IcansResult]:
        """Score ICE item by item (None = not assessable), grade ICANS, record it."""
        names = ("orientation", "naming", "commands", "writing", "attention")
        unknown = set(items) - set(names)
        if unknown:
            raise InputError(f"items: unknown ICE item(s) {sorted(unknown)}")
        values = {n: items.get(n) for n in names}
        score = None if any(v is None for v in values.values()) else sum(values.values())  # type: ignore[arg-type]
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        icans_in = _validate(
            IcansInput,
            {
                "ice_score": score,
                "consciousness": consciousness,
                "seizure": seizure,
                "motor": motor,
                "cerebral_edema": cerebral_edema,
            },
            "icans",
        )
        result = icans_grade(icans_in, protocol)
        return self._append(
            pid,
            "ice_assessment",
            recorded_by=recorded_by,
            effective_at=effective_at,
            **values,
            ice_score=score,
            consciousness=consciousness,
            seizure=seizure,
            motor=motor,
            cerebral_edema=cerebral_edema,
            grade=result.grade,
            drivers=result.drivers,
            explanation=result.explanation,
        ), result

    def record_lab(
        self,
        pid: str,
        *,
        test: str,
        value: float,
        unit: str,
        lln: float | None = None,
        recorded_by: str,
        effective_at: datetime | None = None,
    ) -> EventBase:
        """Record a lab value; haematology tests get their CTCAE grade computed."""
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        grade = None
        explanation = None
        if test in CTCAE_TESTS:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                enforce(check_lab(test, float(value), unit, protocol), None)
            data: dict[str, Any] = {"test": test, "value": value, "unit": unit}
            if lln is not None:
                data["lln"] = lln
            res = ctcae_grade(_validate(CtcaeInput, data, "lab"), protocol)
            grade, explanation = res.grade, res.explanation
        else:
            want = protocol.toxicity.lab_units.get(test)
            if want is None:
                raise InputError(f"test: {test!r} is not a laboratory test this protocol knows")
            if unit != want:
                raise InputError(f"unit: {test.replace('_', ' ')} is charted in {want}")
            if lln is not None:
                raise InputError("lln: only for the CTCAE-graded blood counts")
        return self._append(
            pid,
            "lab",
            recorded_by=recorded_by,
            effective_at=effective_at,
            test=test,
            value=value,
            unit=unit,
            lln=lln,
            ctcae_grade=grade,
            explanation=explanation,
        )

    def screen_eligibility(
        self,
        pid: str,
        inputs: dict[str, Any],
        *,
        recorded_by: str,
        criteria_reason: str | None = None,
    ) -> tuple[EventBase, EligibilityResult]:
        """Screen eligibility and record the result.

        Raises:
            InputError: bad inputs, or a superseded label version without a reason
                (``criteria_reason``, at least 5 characters); nothing is written.
        """
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        elig_in = _validate(EligibilityInput, inputs, "eligibility")
        result = eligibility(elig_in, protocol)
        reason = criteria_reason.strip() if criteria_reason else None
        if result.superseded and (reason is None or len(reason) < 5):
            raise InputError(
                f"criteria_reason: '{result.criteria_title}' is superseded — write why this "
                "older label version is used (at least 5 characters)"
            )
        if not result.superseded and reason:
            raise InputError("criteria_reason: only needed for a superseded label version")
        return self._append(
            pid,
            "eligibility",
            recorded_by=recorded_by,
            criteria=elig_in.criteria,
            product=elig_in.product,
            prior_lines=elig_in.prior_lines,
            exposed_to=list(elig_in.exposed_to),
            inputs=elig_in.model_dump(mode="json"),
            status=result.status,
            unmet=result.unmet,
            cautions=result.cautions,
            explanation=result.explanation,
            superseded=result.superseded,
            criteria_reason=reason,
        ), result

    def plan_tocilizumab(self, pid: str, at: datetime | None = None) -> DosePlan:
        """The tocilizumab plan (:meth:`plan_dose` for tocilizumab)."""
        return self.plan_dose(pid, "tocilizumab", at)

    def plan_dose(self, pid: str, drug: str, at: datetime | None = None) -> DosePlan:
        """Compute the dose of a dose-limited drug and check every limit at ``at``.

        Nothing is written. ``drug`` is a key of the protocol's ``dose_limits``.
        """
        rec = self.record(pid)
        protocol = self.protocol_for(rec)
        limits = limits_of(protocol, drug)
        patient = project(rec).patient
        at = at or self.clock.now()
        confirmations: list[Finding] = []
        stale = False
        weight: float | None = None
        if limits.basis == "mg/kg":
            if patient.weight_kg is None or patient.weight_measured_at is None:
                raise InputError("weight_kg: no weight recorded; weigh the patient first")
            weight = patient.weight_kg
            weight_findings = check_weight(patient.weight_kg, None, protocol)
            hard = [f for f in weight_findings if f.hard]
            if hard:
                raise InputError(
                    hard[0].text() + " Record the correct weight before calculating the dose."
                )
            if limits.weight_max_age_h is not None:
                max_age = timedelta(hours=limits.weight_max_age_h.value)
                age = at - patient.weight_measured_at
                stale = age > max_age
                if stale:
                    confirmations.append(
                        Finding(
                            "weight_reason",
                            "stale_weight",
                            f"The weight ({patient.weight_kg:g} kg) was measured "
                            f"{age.total_seconds() / 3600:.0f} h ago, more than the "
                            f"{max_age.total_seconds() / 3600:g} h the protocol allows. Weigh "
                            "the patient if you can; to give the dose on the last weight, "
                            "write why.",
                            hard=False,
                            needs_reason=True,
                        )
                    )
            confirmations += weight_findings
        dose = limited_dose(limits, weight, protocol)
        if weight is not None and dose.max_dose_mg is not None:
            if dose.capped:
                confirmations.append(
                    Finding(
                        "weight_confirmed",
                        "dose_capped",
                        f"The dose is capped at {dose.max_dose_mg:g} mg (by weight it would be "
                        f"{dose.uncapped_mg:g} mg); confirm the weight first.",
                        hard=False,
                    )
                )
            if not dose.capped and dose.uncapped_mg >= dose.max_dose_mg:
                confirmations.append(
                    Finding(
                        "weight_confirmed",
                        "dose_at_max",
                        f"The dose is exactly the {dose.max_dose_mg:g} mg maximum "
                        f"({weight:g} kg): confirm the weight is in kilograms.",
                        hard=False,
                    )
                )
        dose_findings = check_dose(drug, None, dose.dose_mg, "mg", None, protocol)
        enforce([f for f in dose_findings if f.hard], None)
        confirmations += dose_findings
        budget = dose_budget(rec, protocol, at, drug)
        if self.time_guard is not None:  # a clock anomaly never makes a dose allowed
            budget = self.time_guard.restrict(rec, protocol, at, self.clock.now(), budget)
        return DosePlan(
            dose=dose,
            check=budget.check,
            budget=budget,
            weight_kg=weight,
            weight_measured_at=patient.weight_measured_at if weight is not None else None,
            confirmations=tuple(confirmations),
            weight_stale=stale,
            drug=drug,
            route=limits.route.value if limits.route is not None else None,
        )

    def give_tocilizumab(
        self,
        pid: str,
        *,
        given_by: str,
        checked_by: str,
        effective_at: datetime | None = None,
        weight_confirmed: bool = False,
        override: dict[str, Any] | None = None,
        confirmation: dict[str, Any] | None = None,
    ) -> Medication:
        """Record a tocilizumab dose (:meth:`give_dose` for tocilizumab)."""
        return self.give_dose(
            pid,
            "tocilizumab",
            given_by=given_by,
            checked_by=checked_by,
            effective_at=effective_at,
            weight_confirmed=weight_confirmed,
            override=override,
            confirmation=confirmation,
        )

    def give_dose(
        self,
        pid: str,
        drug: str,
        *,
        given_by: str,
        checked_by: str,
        effective_at: datetime | None = None,
        weight_confirmed: bool = False,
        override: dict[str, Any] | None = None,
        confirmation: dict[str, Any] | None = None,
        route: str | None = None,
    ) -> Medication:
        """Record a dose of a dose-limited drug after the dose calculation and every limit check.

        The budget decides (:meth:`DoseBudget.override_for`): a hard limit is never passed;
        a soft limit or an incomplete history needs a valid override.

        Raises:
            InputError: no usable weight, bad override fields, a route missing or contrary
                to the protocol.
            ConfirmationRequired: a soft finding (capped dose, weight outside the usual
                range, a stale weight without a written reason) is not confirmed;
                ``weight_confirmed`` confirms the capped dose and the weight range.
            LimitError: a hard limit is reached, or a soft limit without a valid override.
        """
        at = effective_at or self.clock.now()
        plan = self.plan_dose(pid, drug, at)
        if plan.hard_block:
            raise LimitError("Cannot give: " + plan.check.explanation)
        given = list((confirmation or {}).get("limits") or [])
        if weight_confirmed:
            given += [
                f.code
                for f in plan.confirmations
                if f.code in ("dose_capped", "dose_at_max", "weight_soft_range")
                and f.code not in given
            ]
        confirmed = enforce(
            list(plan.confirmations),
            {"limits": given, "reason": (confirmation or {}).get("reason")},
        )
        ov = plan.budget.override_for(override, given_by)
        protocol = self.protocol_for(self.record(pid))
        limits = limits_of(protocol, drug)
        if plan.route is not None:
            if route is not None and route != plan.route:
                raise InputError(
                    f"route: the protocol gives {limits.label.lower()} {plan.route}, not {route}"
                )
            route = plan.route
        elif route is None:
            raise InputError(
                f"route: the protocol gives no route for {limits.label.lower()}; "
                "choose the route that was ordered"
            )
        named = (
            {"drug": drug}
            if drug in get_args(Drug)
            else {
                "drug": "other",
                "drug_name": limits.label,
            }
        )
        saved = self._append(
            pid,
            "medication",
            recorded_by=given_by,
            effective_at=at,
            **named,
            dose=plan.dose.dose_mg,
            unit="mg",
            route=route,
            every_h=limits.min_interval.value if limits.min_interval is not None else None,
            given_by=given_by,
            checked_by=checked_by,
            weight_kg_used=plan.weight_kg,
            override=ov.model_dump() if ov else None,
            **({"confirmation": confirmed} if confirmed else {}),
        )
        assert isinstance(saved, Medication)
        return saved

    def record_prior_dose(
        self,
        pid: str,
        *,
        effective_at: datetime,
        dose_mg: float,
        source: str,
        recorded_by: str,
        confirmation: dict[str, Any] | None = None,
    ) -> EventBase:
        """Record a tocilizumab dose given before the patient reached this workstation.

        The dose is checked against the drug library (a soft limit needs ``confirmation``).
        """
        rec = self.record(pid)
        findings = check_dose(
            "tocilizumab",
            None,
            float(dose_mg),
            "mg",
            project(rec).patient.weight_kg,
            self.protocol_for(rec),
        )
        confirmed = enforce(findings, confirmation)
        return self._append(
            pid,
            "medication",
            recorded_by=recorded_by,
            effective_at=effective_at,
            drug="tocilizumab",
            dose=dose_mg,
            unit="mg",
            route="IV",
            given_by=recorded_by,
            prior=True,
            prior_source=source,
            **({"confirmation": confirmed} if confirmed else {}),
        )

    def correct(
        self,
        pid: str,
        target_id: str,
        *,
        action: str,
        reason: str,
        recorded_by: str,
        amended: dict[str, Any] | None = None,
        reason_code: str | None = None,
        second_nurse: str | None = None,
    ) -> EventBase:
        """Void or amend an earlier event (the original stays visible).

        Voiding or amending a medication (a dose: it changes what counts against the
        limits) needs a reason picked from :data:`~bedside.clinical.record.CORRECTION_REASONS`, a
        free-text reason of at least 5 characters, and a second nurse's initials
        (different from ``recorded_by``); all are recorded in the correction.
        """
        rec = self.record(pid)
        targets = [e for e in rec.events if e.id == target_id]
        if not targets:
            raise InputError(f"target_id: no event {target_id!r} in this record")
        target = targets[0]
        if isinstance(target, Correction):
            raise InputError("target_id: a correction cannot itself be corrected; add a new one")
        if target.id not in {e.id for e in project(rec).events}:
            raise InputError("target_id: this event is already voided")
        if action == "amend":
            validate_amendment(target, amended or {})
            # An amendment passes the same hard drug-library limits as a new entry.
            merged = {**event_to_json(target), **(amended or {})}
            kind = str(merged.get("kind"))
            if kind == "lab":
                value = merged.get("value")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    findings = check_lab(
                        str(merged.get("test")),
                        float(value),
                        str(merged.get("unit")),
                        self.protocol_for(rec),
                    )
                else:
                    findings = []
            else:
                findings = self._charting_findings(pid, kind, merged)
            enforce([f for f in findings if f.hard], None)
            if isinstance(target, Medication):
                self._check_limited_amendment(rec, target, merged)
        extra: dict[str, Any] = {}
        if reason_code is not None:
            extra["reason_code"] = reason_code
        if isinstance(target, Medication):
            if reason_code not in CORRECTION_REASONS:
                raise InputError(
                    "reason_code: choose why this dose is corrected ("
                    + "; ".join(CORRECTION_REASONS.values())
                    + ")"
                )
            if len((reason or "").strip()) < 5:
                raise InputError("reason: describe what happened (at least 5 characters)")
            second = normalise_initials(second_nurse)
            if not second:
                raise InputError(
                    "second_nurse: correcting a dose needs a second nurse to check it; "
                    "type their initials"
                )
            if second == normalise_initials(recorded_by):
                raise InputError("second_nurse: must be a different nurse from you")
            extra["second_nurse"] = second
        elif second_nurse:
            extra["second_nurse"] = normalise_initials(second_nurse)
        return self._append(
            pid,
            "correction",
            recorded_by=recorded_by,
            target_id=target_id,
            action=action,
            reason=reason,
            amended=amended,
            **extra,
        )


def _validate(model: Any, data: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, what=what)) from None


def open_ward(
    root: Path, clock: Clock, *, read_only: bool = False, workstation: str | None = None
) -> Ward:
    """Open a ward folder as ``workstation`` (default: this machine's id; see
    :mod:`bedside.store.workstation`). Takes that workstation's lock unless ``read_only``."""
    return Ward(root=root, clock=clock, read_only=read_only, workstation=workstation).open()


__all__ = ["DosePlan", "Ward", "open_ward", "tocilizumab_doses"]

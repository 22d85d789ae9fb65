"""Export patients as the patient file (json), a flat event table (csv) or a FHIR R4 Bundle.

``python -m bedside export --data-dir DIR --format {json,csv,fhir} --out PATH [--patient ID]``

* ``json`` — the patient file itself: the exact bytes of ``patients/<id>.json`` (with
  its integrity checksum), verified before it is written. ``python -m bedside import``
  loads it on another workstation.
* ``csv`` — every event of the record, one row each, in chain order, corrections
  included (UTF-8 with a BOM so Excel opens it; times in UTC ISO 8601 and local time
  with the offset; cells that a spreadsheet would take for a formula are prefixed with
  an apostrophe). A second file holds the episode summary (one row per patient).
* ``fhir`` — a FHIR R4 ``Bundle`` of type ``collection`` per patient: Patient,
  Procedure (the CAR-T infusion), Observations (vital signs with LOINC, CRS and ICANS
  grades and the ICE score with local codes, labs with LOINC, the episode summary),
  Conditions (CRS and ICANS episodes with ICD-10-CM graded codes, onset and
  abatement; toxicities) and MedicationAdministrations (dose, route, performer,
  checker, override reason). Voided events are exported with status
  ``entered-in-error``, amended ones with their amended values.

Without ``--patient``, ``--out`` is a directory and one file per patient is written
there (``<id>.json``, ``<id>.csv`` + ``episode-summary.csv``, ``<id>.fhir.json``).
The ward is opened read-only: export never takes the writer lock and works while the
application runs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside import __version__
from bedside.clinical.escalations import derive_due
from bedside.clinical.protocol import Protocol
from bedside.clinical.record import (
    Correction,
    CrsAssessment,
    EventBase,
    IceAssessment,
    Lab,
    Medication,
    Record,
    Toxicity,
    Vitals,
    event_to_json,
)
from bedside.clinical.views import project
from bedside.common.errors import BedsideError
from bedside.common.timeutil import iso_utc, local_zone
from bedside.reports import fhir_codes as fc
from bedside.reports.presenters import event_line
from bedside.reports.summary import EpisodeSummary, SyndromeSummary, drug_label, summarize
from bedside.store.storage import atomic_write
from bedside.ward.transfer import parse_patient_bytes

logger = logging.getLogger(__name__)

FORMATS = ("json", "csv", "fhir")
NAMESPACE = uuid.UUID("6f1c2a4e-7c1b-4f59-9d0e-3b8f1f2d9a10")
"""Namespace of the deterministic FHIR ids (uuid5) of derived resources."""

# --------------------------------------------------------------------------- json


def export_json_bytes(ward: Any, pid: str) -> bytes:
    """The patient file's exact bytes, verified (strict JSON, checksum, schema, chain)."""
    ward.record(pid)  # raises InputError for an unknown patient
    try:
        data: bytes = ward.store.envelope_bytes(pid)  # journals merged (issue 15)
    except OSError as exc:
        raise BedsideError(f"{pid}: the patient file cannot be read ({exc.strerror})") from None
    parse_patient_bytes(data, f"{pid}.json")
    return data


# --------------------------------------------------------------------------- csv

CSV_COLUMNS = (
    "patient_id",
    "seq",
    "event_id",
    "kind",
    "status",
    "effective_at_utc",
    "effective_at_local",
    "recorded_at_utc",
    "recorded_at_local",
    "recorded_by",
    "description",
    "grade",
    "drug",
    "dose",
    "unit",
    "route",
    "given_by",
    "checked_by",
    "override_limits",
    "override_reason",
    "override_second_nurse",
    "override_prescriber",
    "test",
    "value",
    "ctcae_grade",
    "target_id",
    "origin",
    "details_json",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_COMMON = frozenset(
    {"id", "kind", "effective_at", "recorded_at", "recorded_by", "origin", "prev_hash", "hash"}
)


def _local_iso(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone(local_zone()).isoformat(timespec="seconds")


def _utc(dt: datetime | None) -> str:
    return "" if dt is None else iso_utc(dt)


def describe_event(ev: EventBase) -> str:
    """A one-line human description of any event (for the CSV): the kind and the same
    line the timeline shows (:func:`bedside.reports.presenters.event_line`)."""
    return event_line(ev)


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _statuses(record: Record) -> dict[str, str]:
    status: dict[str, str] = {}
    for ev in record.events:
        if isinstance(ev, Correction):
            status[ev.id] = "correction"
            if ev.action == "void":
                status[ev.target_id] = "voided"
            elif status.get(ev.target_id) != "voided":
                status[ev.target_id] = "amended"
    return status


def csv_rows(record: Record) -> list[dict[str, object]]:
    """One row per event in chain order (corrections included; originals as recorded)."""
    pid = record.patient.patient_id
    status = _statuses(record)
    rows: list[dict[str, object]] = []
    for seq, ev in enumerate(record.events, start=1):
        data = event_to_json(ev)
        details = {k: v for k, v in data.items() if k not in _COMMON}
        row: dict[str, object] = dict.fromkeys(CSV_COLUMNS, "")
        row.update(
            patient_id=pid,
            seq=seq,
            event_id=ev.id,
            kind=data["kind"],
            status=status.get(ev.id, "recorded"),
            effective_at_utc=_utc(ev.effective_at),
            effective_at_local=_local_iso(ev.effective_at),
            recorded_at_utc=_utc(ev.recorded_at),
            recorded_at_local=_local_iso(ev.recorded_at),
            recorded_by=ev.recorded_by,
            description=describe_event(ev),
            origin=ev.origin or "",
            details_json=json.dumps(details, ensure_ascii=False, sort_keys=True),
            hash=ev.hash,
        )
        if isinstance(ev, CrsAssessment | IceAssessment):
            row["grade"] = ev.grade
        if isinstance(ev, Medication):
            row.update(
                drug=drug_label(ev),
                dose=ev.dose,
                unit=ev.unit,
                route=ev.route,
                given_by=ev.given_by,
                checked_by=ev.checked_by or "",
            )
            if ev.override:
                row.update(
                    override_limits=" ".join(ev.override.limits),
                    override_reason=ev.override.reason,
                    override_second_nurse=ev.override.second_nurse,
                    override_prescriber=ev.override.prescriber or "",
                )
        if isinstance(ev, Lab):
            row.update(test=ev.test, value=ev.value, unit=ev.unit)
            row["ctcae_grade"] = "" if ev.ctcae_grade is None else ev.ctcae_grade
        if isinstance(ev, Toxicity):
            row["ctcae_grade"] = "" if ev.ctcae_grade is None else ev.ctcae_grade
        if isinstance(ev, Correction):
            row["target_id"] = ev.target_id
        rows.append(row)
    return rows


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _safe_cell(row.get(k, "")) for k in columns})
    return buf.getvalue()


def export_csv_text(record: Record) -> str:
    """The events of a record as CSV text (without the BOM)."""
    return _csv_text(CSV_COLUMNS, csv_rows(record))


SUMMARY_COLUMNS = (
    "patient_id",
    "mrn",
    "product",
    "infusion_at_utc",
    "crs_occurred",
    "crs_onset_utc",
    "crs_onset_day",
    "crs_max_grade",
    "crs_max_grade_at_utc",
    "crs_resolved_utc",
    "crs_ongoing",
    "crs_episodes",
    "crs_therapies",
    "icans_occurred",
    "icans_onset_utc",
    "icans_onset_day",
    "icans_max_grade",
    "icans_max_grade_at_utc",
    "icans_resolved_utc",
    "icans_ongoing",
    "icans_episodes",
    "icans_therapies",
    "tocilizumab_doses",
    "tocilizumab_doses_given_elsewhere",
    "tocilizumab_history_complete",
    "first_crs_grade2_utc",
    "first_tocilizumab_utc",
    "grade2_to_tocilizumab_min",
    "grade2_to_tocilizumab_note",
    "overdue_timers",
    "alarms_raised",
    "limit_overrides",
    "computed_at_utc",
)


def _syndrome_fields(prefix: str, sy: SyndromeSummary) -> dict[str, object]:
    if sy.assessments == 0:
        occurred = "not assessed"
    else:
        occurred = "yes" if sy.occurred else "no"
    return {
        f"{prefix}_occurred": occurred,
        f"{prefix}_onset_utc": _utc(sy.onset_at),
        f"{prefix}_onset_day": "" if sy.onset_day is None else sy.onset_day,
        f"{prefix}_max_grade": "" if sy.max_grade is None else sy.max_grade,
        f"{prefix}_max_grade_at_utc": _utc(sy.max_grade_at),
        f"{prefix}_resolved_utc": _utc(sy.resolved_at),
        f"{prefix}_ongoing": "yes" if sy.ongoing else "no",
        f"{prefix}_episodes": len(sy.episodes),
        f"{prefix}_therapies": "; ".join(f"{t.label} x{t.doses}" for t in sy.therapies),
    }


def summary_row(record: Record, s: EpisodeSummary) -> dict[str, object]:
    """The episode summary of one patient as one CSV row."""
    patient = project(record).patient
    row: dict[str, object] = {
        "patient_id": s.patient_id,
        "mrn": patient.mrn,
        "product": s.product,
        "infusion_at_utc": _utc(s.infusion_at),
        "tocilizumab_doses": s.tocilizumab_total,
        "tocilizumab_doses_given_elsewhere": s.tocilizumab_prior,
        "tocilizumab_history_complete": "yes" if s.tocilizumab_history_complete else "no",
        "first_crs_grade2_utc": _utc(s.first_crs_grade2_at),
        "first_tocilizumab_utc": _utc(s.first_tocilizumab_at),
        "grade2_to_tocilizumab_min": (
            ""
            if s.grade2_to_tocilizumab is None
            else round(s.grade2_to_tocilizumab.total_seconds() / 60)
        ),
        "grade2_to_tocilizumab_note": s.grade2_to_tocilizumab_note,
        "overdue_timers": s.overdue_timer_count,
        "alarms_raised": s.alarms_raised,
        "limit_overrides": s.override_count,
        "computed_at_utc": _utc(s.computed_at),
    }
    row.update(_syndrome_fields("crs", s.crs))
    row.update(_syndrome_fields("icans", s.icans))
    return row


def export_summary_csv_text(items: Sequence[tuple[Record, EpisodeSummary]]) -> str:
    """Episode summaries, one row per patient, as CSV text (without the BOM)."""
    return _csv_text(SUMMARY_COLUMNS, [summary_row(r, s) for r, s in items])


# --------------------------------------------------------------------------- FHIR


def _fid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(
    codings: Sequence[tuple[str, str, str | None]], text: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [_coding(*c) for c in codings]}
    if text:
        out["text"] = text
    return out


def _local(code: str, text: str, system: str = fc.LOCAL_OBSERVATION) -> dict[str, Any]:
    return _concept([(system, code, text)], text)


def _loinc(pair: tuple[str, str]) -> tuple[str, str, str]:
    return (fc.LOINC, pair[0], pair[1])


def _quantity(value: float, unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value, "unit": unit}
    code = fc.UCUM_UNITS.get(unit)
    if code:
        out.update(system=fc.UCUM, code=code)
    return out


def _category(code: str) -> list[dict[str, Any]]:
    return [_concept([(fc.OBS_CATEGORY, code, None)])]


class _FhirBuilder:
    """Builds the resources of one patient's Bundle."""

    def __init__(self, record: Record, protocol: Protocol, now: datetime) -> None:
        self.record = record
        self.protocol = protocol
        self.now = now
        self.patient = project(record).patient
        self.patient_uuid = _fid("patient", self.patient.patient_id)
        self.subject = {"reference": f"urn:uuid:{self.patient_uuid}"}
        self.entries: list[dict[str, Any]] = []
        status = _statuses(record)
        self.voided = {k for k, v in status.items() if v == "voided"}
        self.amended = {k for k, v in status.items() if v == "amended"}
        self.effective = {e.id: e for e in project(record).events}

    def add(self, resource: dict[str, Any]) -> None:
        self.entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})

    # ---------------------------------------------------------------- resources

    def patient_resource(self) -> None:
        p = self.patient
        self.add(
            {
                "resourceType": "Patient",
                "id": self.patient_uuid,
                "identifier": [
                    {
                        "use": "usual",
                        "type": _concept([(fc.IDENTIFIER_TYPE, "MR", "Medical record number")]),
                        "system": fc.LOCAL_MRN,
                        "value": p.mrn,
                    },
                    {"use": "secondary", "system": fc.LOCAL_PATIENT_ID, "value": p.patient_id},
                ],
                "name": [{"text": p.name}],
                "gender": p.sex,
                "birthDate": p.date_of_birth.isoformat(),
            }
        )

    def infusion(self) -> None:
        p = self.patient
        if p.infusion_at is None:
            return
        res: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": _fid("infusion", p.patient_id),
            "status": "completed",
            "code": _local("car-t-infusion", f"CAR T-cell infusion ({p.product})"),
            "subject": self.subject,
            "performedDateTime": iso_utc(p.infusion_at),
        }
        if p.lot_number:
            res["note"] = [{"text": f"Product {p.product}, lot {p.lot_number}"}]
        self.add(res)

    def _obs(
        self, ev: EventBase, suffix: str, category: str, code: dict[str, Any], **value: Any
    ) -> dict[str, Any]:
        status = "final"
        if ev.id in self.voided:
            status = "entered-in-error"
        elif ev.id in self.amended:
            status = "amended"
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _fid("obs", ev.id, suffix),
            "identifier": [{"system": fc.LOCAL_EVENT_ID, "value": f"{ev.id}/{suffix}"}],
            "status": status,
            "category": _category(category),
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": iso_utc(ev.effective_at),
            "issued": iso_utc(ev.recorded_at),
            "performer": [{"display": ev.recorded_by}],
        }
        res.update(value)
        if ev.origin:
            res.setdefault("note", []).append({"text": f"origin: {ev.origin}"})
        return res

    def vitals(self, ev: Vitals) -> None:
        singles = (
            ("temp", ev.temperature_c, fc.BODY_TEMPERATURE, "Cel"),
            ("hr", ev.heart_rate, fc.HEART_RATE, "/min"),
            ("rr", ev.respiratory_rate, fc.RESPIRATORY_RATE, "/min"),
        )
        for suffix, value, code, unit in singles:
            if value is not None:
                self.add(
                    self._obs(
                        ev,
                        suffix,
                        "vital-signs",
                        _concept([_loinc(code)], code[1]),
                        valueQuantity=_quantity(value, unit),
                    )
                )
        if ev.systolic_mmhg is not None or ev.diastolic_mmhg is not None:
            bp_comps = [
                {
                    "code": _concept([_loinc(code)], code[1]),
                    "valueQuantity": _quantity(value, "mm[Hg]"),
                }
                for value, code in (
                    (ev.systolic_mmhg, fc.SYSTOLIC),
                    (ev.diastolic_mmhg, fc.DIASTOLIC),
                )
                if value is not None
            ]
            self.add(
                self._obs(
                    ev,
                    "bp",
                    "vital-signs",
                    _concept([_loinc(fc.BP_PANEL)], "Blood pressure"),
                    component=bp_comps,
                )
            )
        comps: list[dict[str, Any]] = [
            {
                "code": _local("oxygen-device", "Oxygen delivery device", fc.LOCAL_COMPONENT),
                "valueString": ev.oxygen_device,
            }
        ]
        if ev.oxygen_flow_l_min is not None:
            comps.append(
                {
                    "code": _concept([_loinc(fc.O2_FLOW)], fc.O2_FLOW[1]),
                    "valueQuantity": _quantity(ev.oxygen_flow_l_min, "L/min"),
                }
            )
        if ev.vasopressors:
            comps.append(
                {
                    "code": _local("vasopressors", "Vasopressors running", fc.LOCAL_COMPONENT),
                    "valueString": ", ".join(ev.vasopressors),
                }
            )
        if ev.spo2_pct is not None:
            self.add(
                self._obs(
                    ev,
                    "spo2",
                    "vital-signs",
                    _concept([_loinc(fc.SPO2_PULSE_OX), _loinc(fc.SPO2_ARTERIAL)], "SpO2"),
                    valueQuantity=_quantity(ev.spo2_pct, "%"),
                    component=comps,
                )
            )

    def crs(self, ev: CrsAssessment) -> None:
        self.add(
            self._obs(
                ev,
                "crs",
                "exam",
                _local("crs-grade-astct", "Cytokine release syndrome grade (ASTCT 2019)"),
                valueInteger=ev.grade,
                note=[{"text": ev.explanation}],
            )
        )

    def ice(self, ev: IceAssessment) -> None:
        items = (
            ("orientation", ev.orientation, "ICE orientation (0-4)"),
            ("naming", ev.naming, "ICE naming (0-3)"),
            ("commands", ev.commands, "ICE following commands (0-1)"),
            ("writing", ev.writing, "ICE writing (0-1)"),
            ("attention", ev.attention, "ICE attention (0-1)"),
        )
        comps = []
        for name, value, text in items:
            comp: dict[str, Any] = {"code": _local(f"ice-{name}", text, fc.LOCAL_COMPONENT)}
            if value is None:
                comp["dataAbsentReason"] = _concept(
                    [(fc.DATA_ABSENT, "unknown", "Unknown")], "not assessable"
                )
            else:
                comp["valueInteger"] = value
            comps.append(comp)
        ice_value: dict[str, Any] = (
            {"valueInteger": ev.ice_score}
            if ev.ice_score is not None
            else {
                "dataAbsentReason": _concept(
                    [(fc.DATA_ABSENT, "unknown", "Unknown")], "ICE not scorable"
                )
            }
        )
        ice_res = self._obs(
            ev,
            "ice",
            "survey",
            _local("ice-score", "Immune effector cell encephalopathy (ICE) score (0-10)"),
            component=comps,
            **ice_value,
        )
        self.add(ice_res)
        findings = [
            ("consciousness", ev.consciousness, "Level of consciousness"),
            ("seizure", ev.seizure, "Seizure"),
            ("motor", ev.motor, "Motor findings"),
            ("cerebral-edema", ev.cerebral_edema, "Raised ICP / cerebral oedema"),
        ]
        self.add(
            self._obs(
                ev,
                "icans",
                "exam",
                _local(
                    "icans-grade-astct",
                    "Immune effector cell-associated neurotoxicity syndrome grade (ASTCT 2019)",
                ),
                valueInteger=ev.grade,
                component=[
                    {
                        "code": _local(code, text, fc.LOCAL_COMPONENT),
                        "valueString": value,
                    }
                    for code, value, text in findings
                ],
                derivedFrom=[{"reference": f"urn:uuid:{ice_res['id']}"}],
                note=[{"text": ev.explanation}],
            )
        )

    def lab(self, ev: Lab) -> None:
        loinc = fc.LAB_LOINC.get(ev.test)
        code = _concept([_loinc(loinc)], ev.test) if loinc else _local(f"lab-{ev.test}", ev.test)
        extra: dict[str, Any] = {"valueQuantity": _quantity(ev.value, ev.unit)}
        if ev.lln is not None:
            extra["referenceRange"] = [{"low": _quantity(ev.lln, ev.unit)}]
            if ev.value < ev.lln:
                extra["interpretation"] = [_concept([(fc.OBS_INTERPRETATION, "L", "Low")])]
        if ev.ctcae_grade is not None:
            extra["component"] = [
                {
                    "code": _local(
                        "ctcae-grade",
                        f"CTCAE v{self.protocol.ctcae.version} grade",
                        fc.LOCAL_COMPONENT,
                    ),
                    "valueInteger": ev.ctcae_grade,
                }
            ]
        self.add(self._obs(ev, "lab", "laboratory", code, **extra))

    def medication(self, ev: Medication) -> None:
        status = "entered-in-error" if ev.id in self.voided else "completed"
        atc = fc.DRUG_ATC.get(ev.drug)
        label = drug_label(ev)
        med = _concept([(fc.ATC, atc[0], atc[1])], label) if atc else {"text": label}
        performers = [
            {
                "function": _concept([(fc.PERFORM_FUNCTION, "performer", "Performer")]),
                "actor": {"display": ev.given_by},
            }
        ]
        if ev.checked_by:
            performers.append(
                {
                    "function": _concept([(fc.PERFORM_FUNCTION, "verifier", "Verifier")]),
                    "actor": {"display": ev.checked_by},
                }
            )
        notes = []
        if ev.override:
            performers.append(
                {
                    "function": _concept([(fc.PERFORM_FUNCTION, "witness", "Witness")]),
                    "actor": {"display": ev.override.second_nurse},
                }
            )
            ordered = ""
            if ev.override.prescriber:
                performers.append(
                    {
                        "function": {
                            "coding": [
                                {
                                    "system": fc.LOCAL_PERFORM_FUNCTION,
                                    "code": "prescriber",
                                    "display": "Prescriber who ordered the dose",
                                }
                            ],
                            "text": "Prescriber",
                        },
                        "actor": {"display": ev.override.prescriber},
                    }
                )
                ordered = f" — ordered by {ev.override.prescriber}"
            notes.append(
                {
                    "text": f"Limit override ({', '.join(ev.override.limits)}): "
                    f"{ev.override.reason} — second nurse {ev.override.second_nurse}{ordered}"
                }
            )
        if ev.prior:
            notes.append({"text": f"Given elsewhere; recorded from: {ev.prior_source}"})
        if ev.id in self.amended:
            notes.append({"text": "Amended after recording (see the Bedside audit trail)"})
        if ev.origin:
            notes.append({"text": f"origin: {ev.origin}"})
        route = fc.ROUTE_SNOMED.get(ev.route)
        dosage: dict[str, Any] = {
            "text": f"{ev.dose:g} {ev.unit} {ev.route}"
            + (f" every {ev.every_h:g} h" if ev.every_h else ""),
            "route": _concept([(fc.SNOMED, route[0], route[1])], ev.route)
            if route
            else {"text": ev.route},
            "dose": _quantity(ev.dose, ev.unit),
        }
        res: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": _fid("med", ev.id),
            "identifier": [{"system": fc.LOCAL_EVENT_ID, "value": ev.id}],
            "status": status,
            "medicationCodeableConcept": med,
            "subject": self.subject,
            "effectiveDateTime": iso_utc(ev.effective_at),
            "performer": performers,
            "dosage": dosage,
        }
        if notes:
            res["note"] = notes
        self.add(res)

    def conditions(self, s: EpisodeSummary) -> None:
        for sy, codes in ((s.crs, fc.CRS_ICD10CM), (s.icans, fc.ICANS_ICD10CM)):
            if not sy.occurred or sy.max_grade is None:
                continue
            code, display = codes[max(1, min(sy.max_grade, 5))]
            clinical = "active" if sy.ongoing else "resolved"
            res: dict[str, Any] = {
                "resourceType": "Condition",
                "id": _fid("condition", s.patient_id, sy.name),
                "clinicalStatus": _concept([(fc.CONDITION_CLINICAL, clinical, None)]),
                "verificationStatus": _concept([(fc.CONDITION_VERIFICATION, "confirmed", None)]),
                "category": [_concept([(fc.CONDITION_CATEGORY, "encounter-diagnosis", None)])],
                "severity": {"text": f"maximum ASTCT grade {sy.max_grade}"},
                "code": _concept([(fc.ICD10CM, code, display)], display),
                "subject": self.subject,
                "onsetDateTime": iso_utc(sy.onset_at) if sy.onset_at else None,
                "note": [
                    {
                        "text": f"{len(sy.episodes)} episode(s); therapies given while active: "
                        + ("; ".join(f"{t.label} x{t.doses}" for t in sy.therapies) or "none")
                    }
                ],
            }
            if sy.resolved_at is not None:
                res["abatementDateTime"] = iso_utc(sy.resolved_at)
            self.add({k: v for k, v in res.items() if v is not None})

    def toxicities(self, events: Sequence[EventBase]) -> None:
        episodes: dict[str, list[Toxicity]] = {}
        for ev in sorted(
            (e for e in events if isinstance(e, Toxicity)), key=lambda e: e.effective_at
        ):
            episodes.setdefault(ev.episode_id or ev.id, []).append(ev)
        for key, items in episodes.items():
            first, last = items[0], items[-1]
            grades = [t.ctcae_grade for t in items if t.ctcae_grade is not None]
            res: dict[str, Any] = {
                "resourceType": "Condition",
                "id": _fid("toxicity", key),
                "clinicalStatus": _concept(
                    [
                        (
                            fc.CONDITION_CLINICAL,
                            "active" if last.status == "active" else "resolved",
                            None,
                        )
                    ]
                ),
                "verificationStatus": _concept([(fc.CONDITION_VERIFICATION, "confirmed", None)]),
                "category": [
                    _concept([(fc.CONDITION_CATEGORY, "encounter-diagnosis", None)]),
                    _local(first.category, first.category.replace("_", " "), fc.LOCAL_TOXICITY),
                ],
                "code": {"text": last.description},
                "subject": self.subject,
                "onsetDateTime": iso_utc(first.effective_at),
            }
            if grades:
                res["severity"] = {"text": f"maximum CTCAE grade {max(grades)}"}
            if last.status == "resolved":
                res["abatementDateTime"] = iso_utc(last.effective_at)
            self.add(res)

    def summary_observation(self, s: EpisodeSummary) -> None:
        comps: list[dict[str, Any]] = [
            {
                "code": _local(
                    "tocilizumab-doses", "Tocilizumab doses in the course", fc.LOCAL_COMPONENT
                ),
                "valueInteger": s.tocilizumab_total,
            },
            {
                "code": _local(
                    "tocilizumab-history-complete",
                    "Tocilizumab dose history known to be complete",
                    fc.LOCAL_COMPONENT,
                ),
                "valueBoolean": s.tocilizumab_history_complete,
            },
            {
                "code": _local("overdue-timers", "Timers that went overdue", fc.LOCAL_COMPONENT),
                "valueInteger": s.overdue_timer_count,
            },
            {
                "code": _local(
                    "limit-overrides", "Doses given with a limit override", fc.LOCAL_COMPONENT
                ),
                "valueInteger": s.override_count,
            },
        ]
        g2: dict[str, Any] = {
            "code": _local(
                "crs-grade2-to-tocilizumab",
                "Time from first grade >= 2 CRS to first tocilizumab",
                fc.LOCAL_COMPONENT,
            )
        }
        if s.grade2_to_tocilizumab is not None:
            g2["valueQuantity"] = _quantity(
                round(s.grade2_to_tocilizumab.total_seconds() / 60), "min"
            )
        else:
            g2["dataAbsentReason"] = _concept(
                [(fc.DATA_ABSENT, "not-applicable", "Not Applicable")], s.grade2_to_tocilizumab_note
            )
        comps.append(g2)
        self.add(
            {
                "resourceType": "Observation",
                "id": _fid("summary", s.patient_id),
                "status": "final",
                "code": _local("episode-summary", "Bedside CAR-T episode summary"),
                "subject": self.subject,
                "effectiveDateTime": iso_utc(s.computed_at),
                "component": comps,
            }
        )

    def build(self, summary: EpisodeSummary) -> dict[str, Any]:
        self.patient_resource()
        self.infusion()
        for ev in self.record.events:
            if isinstance(ev, Correction):
                continue
            shown = self.effective.get(ev.id, ev)  # amended values, or the voided original
            if isinstance(shown, Vitals):
                self.vitals(shown)
            elif isinstance(shown, CrsAssessment):
                self.crs(shown)
            elif isinstance(shown, IceAssessment):
                self.ice(shown)
            elif isinstance(shown, Lab):
                self.lab(shown)
            elif isinstance(shown, Medication):
                self.medication(shown)
        self.conditions(summary)
        self.toxicities(list(self.effective.values()))
        self.summary_observation(summary)
        return {
            "resourceType": "Bundle",
            "id": _fid("bundle", self.patient.patient_id, iso_utc(self.now)),
            "meta": {"lastUpdated": iso_utc(self.now)},
            "identifier": {
                "system": "urn:bedside:export",
                "value": _fid("bundle", self.patient.patient_id, iso_utc(self.now)),
            },
            "type": "collection",
            "timestamp": iso_utc(self.now),
            "entry": self.entries,
        }


def export_fhir_bundle(record: Record, protocol: Protocol, now: datetime) -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection) of one patient (a JSON-ready dict)."""
    summary = summarize(record, now, due=derive_due(record, protocol, now))
    return _FhirBuilder(record, protocol, now).build(summary)


# --------------------------------------------------------------------------- writing


def _write(path: Path, data: bytes) -> None:
    """Write an export atomically, mode 0600; the folder must already exist."""
    if not path.parent.is_dir():
        raise BedsideError(f"--out: the folder {path.parent} does not exist; nothing was written")
    atomic_write(path, data)


def export_patient(ward: Any, pid: str, fmt: str, out: Path, now: datetime) -> list[Path]:
    """Write one patient's export to ``out`` (a file); return the files written."""
    if fmt == "json":
        _write(out, export_json_bytes(ward, pid))
        return [out]
    record = ward.record(pid)
    protocol = ward.protocol_for(record)
    if fmt == "csv":
        _write(out, b"\xef\xbb\xbf" + export_csv_text(record).encode("utf-8"))
        summary = summarize(record, now, due=derive_due(record, protocol, now))
        side = out.with_name(out.stem + "-summary.csv")
        _write(side, b"\xef\xbb\xbf" + export_summary_csv_text([(record, summary)]).encode())
        return [out, side]
    if fmt == "fhir":
        bundle = export_fhir_bundle(record, protocol, now)
        text = json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
        _write(out, text.encode("utf-8"))
        return [out]
    raise BedsideError(f"format: unknown export format {fmt!r} (use {', '.join(FORMATS)})")


_SUFFIX = {"json": ".json", "csv": ".csv", "fhir": ".fhir.json"}


def export_ward(
    ward: Any, fmt: str, out_dir: Path, now: datetime, problems: dict[str, str] | None = None
) -> list[Path]:
    """Write one file per patient under ``out_dir`` (and the ward summary for csv).

    A patient whose export fails is left out and listed in ``problems`` (when given) with
    the reason; the other patients are exported (one record never stops the ward's export).
    """
    written: list[Path] = []
    summaries: list[tuple[Record, EpisodeSummary]] = []
    if not out_dir.parent.is_dir():
        raise BedsideError(
            f"--out: the folder {out_dir.parent} does not exist; nothing was written"
        )
    try:
        out_dir.mkdir(mode=0o700, exist_ok=True)  # one level only: its parent must exist
    except OSError as exc:
        raise BedsideError(f"--out: cannot create {out_dir.name} ({exc.strerror})") from None
    for pid in sorted(ward.records):
        try:
            _export_one(ward, pid, fmt, out_dir, now, written, summaries)
        except Exception as exc:  # noqa: BLE001 - isolated, reported, logged without values
            logger.error("export of one patient failed: %s", type(exc).__name__)
            if problems is not None:
                problems[pid] = f"cannot export ({type(exc).__name__}: {exc})"
    if fmt == "csv":
        path = out_dir / "episode-summary.csv"
        _write(path, b"\xef\xbb\xbf" + export_summary_csv_text(summaries).encode("utf-8"))
        written.append(path)
    return written


def _export_one(
    ward: Any,
    pid: str,
    fmt: str,
    out_dir: Path,
    now: datetime,
    written: list[Path],
    summaries: list[tuple[Record, EpisodeSummary]],
) -> None:
    """Export one patient (csv: its table, and its row of the episode summary)."""
    if fmt != "csv":
        written.extend(export_patient(ward, pid, fmt, out_dir / f"{pid}{_SUFFIX[fmt]}", now))
        return
    record = ward.record(pid)
    protocol = ward.protocol_for(record)
    summary = summarize(record, now, due=derive_due(record, protocol, now))
    _write(out_dir / f"{pid}.csv", b"\xef\xbb\xbf" + export_csv_text(record).encode("utf-8"))
    written.append(out_dir / f"{pid}.csv")
    summaries.append((record, summary))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def main(argv: list[str]) -> int:
    """``python -m bedside export --data-dir DIR --format F --out PATH [--patient ID]``."""
    from bedside.common.clock import SystemClock
    from bedside.store.paths import resolve_data_dir
    from bedside.ward.service import open_ward

    parser = argparse.ArgumentParser(
        prog="python -m bedside export",
        description="Export patients as the patient file (json), a CSV table or FHIR R4.",
    )
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument(
        "--out", type=Path, required=True, help="file (with --patient) or directory"
    )
    parser.add_argument("--patient", help="one patient id (default: every patient)")
    ns = parser.parse_args(argv)
    root = resolve_data_dir(ns.data_dir)
    from bedside.store.storage import is_data_dir, not_a_data_dir

    if not is_data_dir(root):
        sys.stderr.write(f"error: {not_a_data_dir(root)}\n")
        return 2
    if _inside(ns.out, root):
        sys.stderr.write("error: --out must not be inside the data directory\n")
        return 2
    clock = SystemClock()
    problems: dict[str, str] = {}
    try:
        ward = open_ward(root, clock, read_only=True)
        now = clock.now()
        if ns.patient:
            written = export_patient(ward, ns.patient, ns.format, ns.out, now)
        else:
            if ns.out.exists() and not ns.out.is_dir():
                sys.stderr.write("error: without --patient, --out must be a directory\n")
                return 2
            written = export_ward(ward, ns.format, ns.out, now, problems)
    except BedsideError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    failures = {} if ns.patient else {**ward.failures, **problems}
    for pid, problem in sorted(failures.items()):
        sys.stderr.write(f"warning: {pid} NOT exported — {problem}\n")
    sys.stdout.write(
        f"exported {len(written)} file(s) as {ns.format} (Bedside {__version__})"
        + (f"; {len(failures)} patient(s) could not be exported" if failures else "")
        + "\n"
    )
    return 1 if failures else 0


__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "SUMMARY_COLUMNS",
    "csv_rows",
    "describe_event",
    "export_csv_text",
    "export_fhir_bundle",
    "export_json_bytes",
    "export_patient",
    "export_summary_csv_text",
    "export_ward",
]

"""The patient record: a patient header plus an append-only, hash-chained event list.

Nothing is ever deleted or rewritten. A correction is a new event that voids or amends
an earlier one (the original stays in the list and stays visible). Each event carries
``prev_hash`` and ``hash``: ``hash = sha256(prev_hash + canonical JSON of the event
without its hash fields)``, so editing, removing or reordering an event is detected by
:func:`chain_problems`. The envelope also stores the head of the chain (count and hash).

**The chain is bound to its patient** (issue 12): the first event's ``prev_hash`` (the
*genesis*) is :func:`chain_genesis` — SHA-256 of a domain tag, the chain format version
and the patient id — instead of 64 zeros. Every hash depends on the genesis, so a chain
(or a suffix of one) taken from another patient's record, ward or export does not verify
under a new patient id: the first event "belongs to a different patient record". Binding
the genesis rather than putting the patient id into every hashed body was chosen because
the events' content stays byte-identical (older files keep loading; a re-seal changes only
``prev_hash``/``hash``), the check costs one hash per record, and an event keeps the same
content when it travels between workstations (imports and journals compare content without
the chain fields). A hash without a secret cannot stop someone from re-sealing a whole
forged chain under the new id; that is caught by identity checks (MRN, name, date of
birth), by event ids already charted on another patient, and by ``verify`` comparing
backups.

**Older format.** Records sealed before the binding start at 64 zeros
(:data:`GENESIS_HASH`): they still open and verify and are reported "not yet bound (older
format)" (:func:`chain_binding`). The ward never saves a single file any more: on load the
old file is migrated into a journal whose merged chain is re-sealed from the bound genesis
(event content byte-identical, only the chain fields change), so it is bound from then on.

All models are strict: unknown keys, NaN/infinity, strings where numbers belong and
datetimes without an offset are refused with a message naming the field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bedside import __version__
from bedside.clinical.protocol import DrugClass, LabelVersion, Product, format_validation_error
from bedside.clinical.rules import (
    CerebralEdema,
    Consciousness,
    LimitReason,
    Motor,
    OxygenDevice,
    Seizure,
    Vasopressor,
)
from bedside.common.errors import InputError
from bedside.common.timeutil import Instant, iso_utc, local_zone

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Literal[1] = 1
GENESIS_HASH = "0" * 64
"""The genesis of chains sealed before they were bound to the patient (older format)."""
CHAIN_FORMAT = 2
"""Version of the chain binding, part of :func:`chain_genesis` (1 was the zero genesis)."""
_CHAIN_TAG = b"bedside/patient-event-chain"
PATIENT_ID_RE = r"^[A-Za-z0-9_-]{1,64}$"


UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
INITIALS_FIELDS = ("recorded_by", "given_by", "checked_by", "second_nurse")

INITIALS_PATTERN = r"^[A-Z][A-Z.'-]{1,5}$"
INITIALS_RE = re.compile(INITIALS_PATTERN)
Initials = Annotated[str, Field(pattern=INITIALS_PATTERN)]
"""A nurse's initials: 2–6 capital letters (input is upper-cased by :func:`normalise_initials`)."""


def normalise_initials(value: object) -> object:
    """Upper-case and strip initials typed by a nurse; other values pass through unchanged."""
    return value.strip().upper() if isinstance(value, str) else value


class Strict(BaseModel):
    """Base of every persisted model.

    ``defer_build``: a model's validator is built when it first validates, not at import
    (start-up builds none for a ward loaded from the record cache).
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True
    )


# --------------------------------------------------------------------------- patient


class Patient(Strict):
    """The patient header (identity and admission facts)."""

    patient_id: str = Field(pattern=PATIENT_ID_RE)
    mrn: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    date_of_birth: date
    sex: Literal["female", "male", "other", "unknown"]
    weight_kg: float | None = Field(default=None, gt=0, le=500)
    weight_measured_at: Instant | None = None
    product: Product
    lot_number: str | None = Field(default=None, max_length=200)  # a scanned GS1 string
    infusion_at: Instant | None = None
    protocol_id: str = Field(min_length=1)
    protocol_version: str = Field(min_length=1)
    baseline_ice: int | None = Field(default=None, ge=0, le=10)
    baseline_handwriting: str | None = Field(default=None, max_length=500)
    bed: str | None = Field(default=None, max_length=20)
    admitted_at: Instant
    dose_history_complete: bool = Field(
        description="False when doses may have been given before this workstation knew the patient"
    )

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        return value

    @model_validator(mode="after")
    def _weight_dated(self) -> Patient:
        if (self.weight_kg is None) != (self.weight_measured_at is None):
            raise ValueError("weight_kg and weight_measured_at must be given together")
        return self


UPDATABLE_FIELDS = {
    "weight_kg",
    "weight_measured_at",
    "lot_number",
    "infusion_at",
    "baseline_ice",
    "baseline_handwriting",
    "bed",
    "product",
}


# --------------------------------------------------------------------------- events


class Confirmation(Strict):
    """Soft limits the recording nurse knowingly confirmed (drug library, stale weight...)."""

    limits: list[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]] = Field(min_length=1)
    reason: str | None = Field(default=None, min_length=5, max_length=500)


def _omit_none(value: object) -> bool:
    return value is None


class EventBase(Strict):
    """Fields every event carries."""

    id: str = Field(pattern=UUID_PATTERN)
    effective_at: Instant
    recorded_at: Instant
    recorded_by: Initials
    origin: str | None = Field(default=None, max_length=200)
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


class Vitals(EventBase):
    """A set of vital signs; ``None`` means not measured (never zero)."""

    kind: Literal["vitals"] = "vitals"
    temperature_c: float | None = Field(default=None, ge=25, le=45)
    heart_rate: int | None = Field(default=None, ge=0, le=300)
    systolic_mmhg: int | None = Field(default=None, ge=0, le=300)
    diastolic_mmhg: int | None = Field(default=None, ge=0, le=250)
    spo2_pct: int | None = Field(default=None, ge=0, le=100)
    respiratory_rate: int | None = Field(default=None, ge=0, le=80)
    oxygen_device: OxygenDevice = "none"
    oxygen_flow_l_min: float | None = Field(default=None, ge=0)
    vasopressors: list[Vasopressor] = Field(default_factory=list)


class CrsAssessment(EventBase):
    """A CRS assessment: the inputs and the computed ASTCT grade."""

    kind: Literal["crs_assessment"] = "crs_assessment"
    inputs: dict[str, Any]
    grade: int = Field(ge=0, le=4)
    drivers: list[str]
    explanation: str
    confirmation: Confirmation | None = Field(default=None, exclude_if=_omit_none)
    """Soft limits confirmed by ``recorded_by`` (absent when none applied: older files
    stay byte-identical, so their hashes hold)."""


IceItem = int | None


class IceAssessment(EventBase):
    """An ICE/ICANS assessment; an item of ``None`` was not assessable (not zero)."""

    kind: Literal["ice_assessment"] = "ice_assessment"
    orientation: IceItem = Field(default=None, ge=0, le=4)
    naming: IceItem = Field(default=None, ge=0, le=3)
    commands: IceItem = Field(default=None, ge=0, le=1)
    writing: IceItem = Field(default=None, ge=0, le=1)
    attention: IceItem = Field(default=None, ge=0, le=1)
    ice_score: int | None = Field(default=None, ge=0, le=10)
    consciousness: Consciousness = "alert"
    seizure: Seizure = "none"
    motor: Motor = "none"
    cerebral_edema: CerebralEdema = "none"
    grade: int = Field(ge=0, le=4)
    drivers: list[str]
    explanation: str


Drug = Literal[
    "tocilizumab", "dexamethasone", "methylprednisolone", "anakinra", "levetiracetam", "other"
]


class Override(Strict):
    """A soft limit knowingly passed: which limits, why, and the second nurse."""

    limits: list[LimitReason | Literal["history_incomplete"]]
    reason: str = Field(min_length=5, max_length=500)
    second_nurse: Initials
    prescriber: str | None = Field(default=None, min_length=2, max_length=80)
    """Who ordered the dose beyond the label maxima (required by the protocol's override policy
    for new overrides; absent on overrides recorded before that rule)."""


class Medication(EventBase):
    """A medication administration (or a prior dose given elsewhere)."""

    kind: Literal["medication"] = "medication"
    drug: Drug
    drug_name: str | None = Field(default=None, max_length=80)
    dose: float = Field(gt=0)
    unit: Literal["mg", "g", "mg/kg", "units", "mL"]
    route: Literal["IV", "PO", "SC", "IM"]
    every_h: float | None = Field(default=None, gt=0, le=168)
    given_by: Initials
    checked_by: Initials | None = None
    weight_kg_used: float | None = Field(default=None, gt=0)
    prior: bool = False
    prior_source: str | None = Field(default=None, max_length=200)
    override: Override | None = None
    confirmation: Confirmation | None = Field(default=None, exclude_if=_omit_none)
    """Soft limits confirmed by ``recorded_by`` (absent when none applied: older files
    stay byte-identical, so their hashes hold)."""

    @model_validator(mode="after")
    def _coherent(self) -> Medication:
        if self.drug == "other" and not self.drug_name:
            raise ValueError("drug_name is required when drug is 'other'")
        if self.prior and not self.prior_source:
            raise ValueError("prior_source is required for a dose given elsewhere")
        if self.checked_by is not None and self.checked_by == self.given_by:
            raise ValueError("checked_by must be a different nurse from given_by")
        if self.override is not None and self.override.second_nurse == self.given_by:
            raise ValueError("override.second_nurse must be a different nurse from given_by")
        return self


class Lab(EventBase):
    """A laboratory result with its computed CTCAE grade (when the test has one)."""

    kind: Literal["lab"] = "lab"
    test: str = Field(min_length=1, max_length=40)
    value: float = Field(ge=0)
    unit: str = Field(min_length=1, max_length=20)
    lln: float | None = Field(default=None, gt=0)
    ctcae_grade: int | None = Field(default=None, ge=0, le=5)
    explanation: str | None = None


ToxicityCategory = Literal[
    "infection",
    "iec_hs",
    "movement_neurocognitive",
    "cranial_nerve_palsy",
    "hypogammaglobulinaemia",
    "other",
]


class Toxicity(EventBase):
    """A toxicity event (onset, change or resolution)."""

    kind: Literal["toxicity"] = "toxicity"
    category: ToxicityCategory
    description: str = Field(min_length=1, max_length=500)
    ctcae_grade: int | None = Field(default=None, ge=1, le=5)
    status: Literal["active", "resolved"] = "active"
    episode_id: str | None = None


NeuroFinding = Literal[
    "handwriting",
    "movement",
    "tremor",
    "bradykinesia",
    "rigidity",
    "gait",
    "facial_palsy",
    "cranial_nerve_palsy_other",
    "limb_weakness",
    "numbness_tingling",
    "reflexes_reduced",
    "personality",
]
"""Items of the daily neurological check (labels and alert severities in the protocol)."""

LEGACY_NEURO_FINDINGS: dict[str, str] = {
    "handwriting_changed": "handwriting",
    "movement_changed": "movement",
    "facial_asymmetry": "facial_palsy",
    "personality_changed": "personality",
}


class NeuroCheck(EventBase):
    """Daily neurological check: handwriting, movement, cranial nerves, limbs, personality.

    The four booleans are the original cilta-cel check; ``findings`` lists every positive
    item of the full check (boxed-warning parkinsonism, Guillain-Barré syndrome,
    neuropathy, cranial nerve palsies). A positive item raises an alert.
    """

    kind: Literal["neuro_check"] = "neuro_check"
    handwriting_changed: bool
    movement_changed: bool
    facial_asymmetry: bool
    personality_changed: bool
    findings: list[NeuroFinding] = Field(default_factory=list)

    @property
    def positive(self) -> list[str]:
        """Every positive item (the booleans mapped to their items, then ``findings``)."""
        out = [item for flag, item in LEGACY_NEURO_FINDINGS.items() if getattr(self, flag)]
        return out + [f for f in self.findings if f not in out]

    handwriting_sample: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=500)


class ChecklistCheck(EventBase):
    """One item of the boxed-warning checklist (prophylaxis, CMV/HBV, IgG, TLS) confirmed or not.

    ``item`` is a key of the protocol's ``toxicity.checklist``; the latest check of an item
    is its state. ``done`` false records that it was looked at and is still open.
    """

    kind: Literal["checklist"] = "checklist"
    item: str = Field(pattern=r"^[a-z0-9_]{1,60}$")
    done: bool
    detail: str | None = Field(default=None, max_length=500)


class EligibilityScreen(EventBase):
    """An eligibility screening result with its inputs."""

    kind: Literal["eligibility"] = "eligibility"
    criteria: LabelVersion
    product: Product
    prior_lines: int = Field(ge=0)
    exposed_to: list[DrugClass]
    inputs: dict[str, Any]
    status: Literal["eligible", "not_eligible", "review"]
    unmet: list[str]
    cautions: list[str]
    explanation: str
    superseded: bool = False
    criteria_reason: str | None = Field(default=None, min_length=5, max_length=500)
    """Why a superseded label version was used (required for new screenings under one)."""


class AlertAck(EventBase):
    """A change of an alert's state: seen, acknowledged, snoozed or raised."""

    kind: Literal["alert"] = "alert"
    alert_key: str = Field(min_length=1, max_length=200)
    alert_kind: str = Field(min_length=1, max_length=60)
    due_at: Instant
    action: Literal["raised", "acknowledged", "snoozed"]
    snooze_until: Instant | None = None
    reason: str | None = Field(default=None, max_length=500)


class ClockAnomaly(EventBase):
    """The wall clock went backwards or jumped; recorded for audit."""

    kind: Literal["clock_anomaly"] = "clock_anomaly"
    anomaly: Literal["backwards", "forward_jump"]
    delta_s: float
    high_water: Instant


class Note(EventBase):
    """A free-text nursing note."""

    kind: Literal["note"] = "note"
    text: str = Field(min_length=1, max_length=4000)


CorrectionReason = Literal[
    "charted_in_error",
    "wrong_patient",
    "wrong_time",
    "wrong_dose",
    "duplicate_entry",
    "not_given",
    "other",
]
CORRECTION_REASONS: dict[str, str] = {
    "charted_in_error": "Charted in error",
    "wrong_patient": "Charted on the wrong patient",
    "wrong_time": "Wrong time",
    "wrong_dose": "Wrong dose or values",
    "duplicate_entry": "Duplicate entry (charted twice)",
    "not_given": "Prepared but not given",
    "other": "Other (explain)",
}
"""The reasons a nurse picks from when voiding or amending a dose (plus free text)."""


class Correction(EventBase):
    """Void or amend an earlier event; the original stays in the record.

    A correction of a medication (a dose) also carries ``reason_code`` (from
    :data:`CORRECTION_REASONS`) and the ``second_nurse`` who checked it
    (enforced by :meth:`bedside.ward.service.Ward.correct`).
    """

    kind: Literal["correction"] = "correction"
    target_id: str
    action: Literal["void", "amend"]
    reason: str = Field(min_length=3, max_length=500)
    amended: dict[str, Any] | None = None
    reason_code: CorrectionReason | None = None
    second_nurse: Initials | None = None

    @model_validator(mode="after")
    def _amend_has_fields(self) -> Correction:
        if self.action == "amend" and not self.amended:
            raise ValueError("an amendment must give the amended fields")
        if self.action == "void" and self.amended:
            raise ValueError("a void carries no amended fields")
        if self.second_nurse is not None and self.second_nurse == self.recorded_by:
            raise ValueError("second_nurse must be a different nurse from recorded_by")
        return self


class PatientUpdate(EventBase):
    """A change of a header fact (new weight, infusion time, bed, baseline...)."""

    kind: Literal["patient_update"] = "patient_update"
    changes: dict[str, Any]
    confirmation: Confirmation | None = Field(default=None, exclude_if=_omit_none)
    """Soft limits confirmed by ``recorded_by`` (absent when none applied: older files
    stay byte-identical, so their hashes hold)."""

    @field_validator("changes")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"cannot update field(s) {sorted(unknown)}")
        if not value:
            raise ValueError("an update must change at least one field")
        return value


class HistoryConfirmation(EventBase):
    """The prior dose history was checked against an independent source (e.g. the MAR)."""

    kind: Literal["history_confirmation"] = "history_confirmation"
    source: str = Field(min_length=3, max_length=200)
    complete: bool


class Restored(EventBase):
    """The record was restored from a backup: later doses may be missing."""

    kind: Literal["restored"] = "restored"
    backup_name: str


class DoctorInformed(EventBase):
    """The doctor was told about a due escalation review: who, the plan, the next review.

    ``effective_at`` is when the doctor was informed; the review item is not due again until
    ``next_review_at`` (a new alert then).
    """

    kind: Literal["doctor_informed"] = "doctor_informed"
    alert_key: str = Field(min_length=1, max_length=200)
    alert_kind: str = Field(min_length=1, max_length=60)
    due_at: Instant
    review_of: str = Field(min_length=1, max_length=200)
    doctor: str = Field(min_length=2, max_length=80)
    plan: str = Field(min_length=3, max_length=1000)
    next_review_at: Instant


Event = Annotated[
    Vitals
    | CrsAssessment
    | IceAssessment
    | Medication
    | Lab
    | Toxicity
    | NeuroCheck
    | ChecklistCheck
    | EligibilityScreen
    | AlertAck
    | ClockAnomaly
    | Note
    | Correction
    | PatientUpdate
    | HistoryConfirmation
    | Restored
    | DoctorInformed,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))
EVENT_TYPES: dict[str, type[EventBase]] = {
    t.model_fields["kind"].default: t
    for t in (
        Vitals,
        CrsAssessment,
        IceAssessment,
        Medication,
        Lab,
        Toxicity,
        NeuroCheck,
        ChecklistCheck,
        EligibilityScreen,
        AlertAck,
        ClockAnomaly,
        Note,
        Correction,
        PatientUpdate,
        HistoryConfirmation,
        Restored,
        DoctorInformed,
    )
}


class ChainHead(Strict):
    """The head of the hash chain as saved in the envelope."""

    count: int = Field(ge=0)
    hash: str


class Record(Strict):
    """A patient file: header, events and chain head (the JSON envelope)."""

    schema_version: Literal[1]
    app_version: str
    saved_at: Instant
    patient: Patient
    events: list[Event]
    head: ChainHead


# --------------------------------------------------------------------------- hashing


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes used for hashing."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def event_to_json(event: EventBase) -> dict[str, Any]:
    """The JSON form of an event (datetimes as ISO UTC)."""
    return event.model_dump(mode="json")


def event_hash(event_json: dict[str, Any], prev_hash: str) -> str:
    """sha256 over the previous hash and the event without its hash fields."""
    body = {k: v for k, v in event_json.items() if k not in {"hash", "prev_hash"}}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()


def chain_genesis(patient_id: str) -> str:
    """The first ``prev_hash`` of ``patient_id``'s chain: binds the chain to the patient.

    SHA-256 over a domain tag, :data:`CHAIN_FORMAT` and the patient id (NUL-separated), so
    it can never equal another patient's genesis, a journal line's genesis or an event hash.
    """
    data = _CHAIN_TAG + b"\0v%d\0" % CHAIN_FORMAT + patient_id.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


ChainBinding = Literal["bound", "legacy", "foreign"]


def chain_binding(first_prev: str | None, patient_id: str) -> ChainBinding:
    """How a chain whose genesis is ``first_prev`` relates to ``patient_id``.

    ``bound``: sealed for this patient (or an empty record, ``None``); ``legacy``: the
    older format's zero genesis (not bound to any patient); ``foreign``: sealed for a
    different patient record.
    """
    if first_prev is None or first_prev == chain_genesis(patient_id):
        return "bound"
    if first_prev == GENESIS_HASH:
        return "legacy"
    return "foreign"


def foreign_chain_text(patient_id: str) -> str:
    """The nurse's words for a chain sealed for another patient (no field values)."""
    return (
        f"these events belong to a different patient record (their hash chain was sealed "
        f"for another patient, not {patient_id})"
    )


def _genesis_of(first_prev: str | None, patient_id: str | None) -> str:
    """The genesis a chain is checked against: bound, or the older zero genesis."""
    if patient_id is None:
        return first_prev if first_prev is not None else GENESIS_HASH
    if chain_binding(first_prev, patient_id) == "legacy":
        return GENESIS_HASH
    return chain_genesis(patient_id)


def chain_problems(
    events: list[EventBase], head: ChainHead | None = None, *, patient_id: str | None = None
) -> list[str]:
    """Every break in the hash chain (empty when sound). Messages name event positions.

    With ``patient_id`` the chain must begin at that patient's genesis (or the older
    zero genesis); without it only the links are checked.
    """
    problems: list[str] = []
    genesis = _genesis_of(events[0].prev_hash if events else None, patient_id)
    prev = genesis
    seen: set[str] = set()
    for i, ev in enumerate(events):
        if ev.id in seen:
            problems.append(f"event #{i + 1}: duplicate event id")
        seen.add(ev.id)
        if i == 0 and patient_id is not None and ev.prev_hash != prev:
            problems.append(f"event #1: {foreign_chain_text(patient_id)}")
        elif ev.prev_hash != prev:
            problems.append(f"event #{i + 1}: does not follow event #{i} (removed or reordered)")
        expected = event_hash(event_to_json(ev), ev.prev_hash)
        if ev.hash != expected:
            problems.append(f"event #{i + 1}: content does not match its hash (edited)")
        prev = ev.hash
    if head is not None:
        if head.count != len(events):
            problems.append(f"chain head says {head.count} events, file holds {len(events)}")
        elif events and head.hash != events[-1].hash:
            problems.append("chain head hash does not match the last event")
        elif not events and head.hash not in {genesis, GENESIS_HASH}:
            problems.append("chain head hash does not match an empty record")
    return problems


def raw_chain_problems(
    events: list[dict[str, Any]], head: ChainHead, patient_id: str | None = None
) -> list[str]:
    """Chain check over the events exactly as stored (their JSON), for loading.

    Hashing the stored JSON rather than re-serialised models is both faster and stricter:
    any change to a stored value's representation breaks the chain. With ``patient_id``
    the chain must begin at :func:`chain_genesis` of it or at the older zero genesis.
    """
    problems: list[str] = []
    genesis = _genesis_of(events[0].get("prev_hash") if events else None, patient_id)
    prev = genesis
    seen: set[str] = set()
    for i, ev in enumerate(events):
        if ev["id"] in seen:
            problems.append(f"event #{i + 1}: duplicate event id")
        seen.add(ev["id"])
        if i == 0 and patient_id is not None and ev["prev_hash"] != prev:
            problems.append(f"event #1: {foreign_chain_text(patient_id)}")
        elif ev["prev_hash"] != prev:
            problems.append(f"event #{i + 1}: does not follow event #{i} (removed or reordered)")
        if ev["hash"] != event_hash(ev, ev["prev_hash"]):
            problems.append(f"event #{i + 1}: content does not match its hash (edited)")
        prev = ev["hash"]
    if head.count != len(events):
        problems.append(f"chain head says {head.count} events, file holds {len(events)}")
    elif head.hash != prev and (events or head.hash != GENESIS_HASH):
        problems.append("chain head hash does not match the last event")
    return problems


def record_binding(record: Record) -> ChainBinding:
    """Whether ``record``'s chain is bound to its patient, of the older format, or foreign."""
    first = record.events[0].prev_hash if record.events else None
    if first is None and record.head.hash == GENESIS_HASH:
        return "legacy"  # an empty record of the older format
    return chain_binding(first, record.patient.patient_id)


def seal(event: EventBase, prev_hash: str) -> EventBase:
    """Return ``event`` with ``prev_hash`` and ``hash`` filled in."""
    chained = event.model_copy(update={"prev_hash": prev_hash, "hash": ""})
    digest = event_hash(event_to_json(chained), prev_hash)
    return chained.model_copy(update={"hash": digest})


# --------------------------------------------------------------------------- building


def new_event_id() -> str:
    """A fresh random UUID for an event."""
    return str(uuid.uuid4())


def make_event(kind: str, **fields: Any) -> EventBase:
    """Validate and build an unsealed event of ``kind``; raise InputError naming the field."""
    if kind not in EVENT_TYPES:
        raise InputError(f"kind: unknown event kind {kind!r}")
    data = {"kind": kind, "id": fields.pop("id", None) or new_event_id(), **fields}
    for name in INITIALS_FIELDS:
        if name in data:
            data[name] = normalise_initials(data[name])
    if isinstance(data.get("override"), dict):
        ov = dict(data["override"])
        ov["second_nurse"] = normalise_initials(ov.get("second_nurse"))
        data["override"] = ov
    try:
        return EVENT_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, what=kind)) from None


def parse_record(data: dict[str, Any]) -> Record:
    """Validate an envelope dict into a :class:`Record` (strict; raises InputError)."""
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, what="patient file")) from None


def record_to_json(record: Record) -> dict[str, Any]:
    """The JSON envelope of a record."""
    return record.model_dump(mode="json")


def envelope_json(record: Record, events_json: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON envelope of ``record`` reusing the already-serialised events.

    Events are immutable, so their JSON never changes once written; only the new tail,
    the header and the chain head are serialised again on each save.
    """
    if len(events_json) != len(record.events):
        raise ValueError("events_json does not match the record")
    return {
        "schema_version": record.schema_version,
        "app_version": record.app_version,
        "saved_at": iso_utc(record.saved_at),
        "patient": record.patient.model_dump(mode="json"),
        "events": events_json,
        "head": record.head.model_dump(mode="json"),
    }


def appended_validator(previous: Record) -> Callable[[dict[str, Any]], Record | None]:
    """Validator for saving ``previous`` plus new events (used instead of a full re-check).

    The prefix of the chain is the same immutable, already verified events, so only the
    envelope fields, the header, the new events and their chain links are validated on the
    bytes that will be written. Loading always runs the full :func:`validate_envelope`.
    """
    known = len(previous.events)
    genesis = chain_genesis(previous.patient.patient_id)
    head_hash = previous.events[-1].hash if previous.events else genesis

    def validate(data: dict[str, Any]) -> Record | None:
        events = data.get("events")
        if not isinstance(events, list) or len(events) < known:
            raise InputError("events: fewer events than the record already held")
        tail = events[known:]
        try:
            Patient.model_validate(data.get("patient"))
            head = ChainHead.model_validate(data.get("head"))
            parsed = [EVENT_ADAPTER.validate_python(e) for e in tail]
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, what="patient file")) from None
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError("schema_version: not the current schema")
        prev = events[known - 1]["hash"] if known else head_hash
        if prev != head_hash:
            raise InputError("events: the saved prefix does not end where the record did")
        for raw in tail:
            if raw.get("prev_hash") != prev or event_hash(raw, prev) != raw.get("hash"):
                raise InputError("hash chain broken in the new events")
            prev = raw["hash"]
        if head.count != len(events) or head.hash != prev:
            raise InputError("head: does not match the events")
        _ = parsed
        return None

    return validate


class ForeignChainError(InputError):
    """The events' hash chain was sealed for a different patient record (a graft)."""


def validate_envelope(data: dict[str, Any]) -> Record:
    """Validator for storage: schema + hash chain bound to the patient; raises on any problem.

    Raises:
        ForeignChainError: The chain begins at another patient's genesis.
        InputError: Any other problem.
    """
    record = parse_record(data)
    problems = raw_chain_problems(data["events"], record.head, record.patient.patient_id)
    if problems:
        cls = ForeignChainError if "different patient record" in problems[0] else InputError
        raise cls("hash chain broken: " + "; ".join(problems[:5]))
    return record


def new_record(patient: Patient, events: list[EventBase], saved_at: datetime) -> Record:
    """Build a record from a header and already-sealed events."""
    genesis = chain_genesis(patient.patient_id)
    head = ChainHead(count=len(events), hash=events[-1].hash if events else genesis)
    return Record(
        schema_version=SCHEMA_VERSION,
        app_version=__version__,
        saved_at=saved_at,
        patient=patient,
        events=list(events),  # type: ignore[arg-type]
        head=head,
    )


def append(record: Record, event: EventBase, saved_at: datetime) -> Record:
    """Return a new record with ``event`` sealed onto the end of the chain."""
    if any(e.id == event.id for e in record.events):
        raise InputError(f"id: event {event.id} is already in the record")
    prev = record.events[-1].hash if record.events else chain_genesis(record.patient.patient_id)
    sealed = seal(event, prev)
    return new_record(record.patient, [*record.events, sealed], saved_at)


# --------------------------------------------------------------------------- derived views


def effective_events(record: Record) -> list[EventBase]:
    """Events as they now stand: voided ones removed, amended ones replaced.

    Corrections themselves and the originals stay in ``record.events``; this is the
    view the rules and timers use. An amendment is re-validated; one that no longer
    validates is ignored (and logged) rather than silently coerced.
    """
    corrections = [ev for ev in record.events if isinstance(ev, Correction)]
    if not corrections:
        return list(record.events)  # nothing voided or amended (most records, most of the time)
    voided: set[str] = set()
    amended: dict[str, dict[str, Any]] = {}
    for fix in corrections:
        if fix.action == "void":
            voided.add(fix.target_id)
        elif fix.amended:
            amended.setdefault(fix.target_id, {}).update(fix.amended)
    out: list[EventBase] = []
    for ev in record.events:
        if isinstance(ev, Correction) or ev.id in voided:
            continue
        current: EventBase = ev
        if ev.id in amended:
            data = {**event_to_json(ev), **amended[ev.id]}
            try:
                current = EVENT_TYPES[data["kind"]].model_validate(data)
            except ValidationError:
                logger.warning("amendment of an event no longer validates; original kept")
        out.append(current)
    return out


def current_patient(record: Record) -> Patient:
    """The header with every (non-voided) patient update applied in effective order."""
    return header_from(record, effective_events(record))


def header_from(record: Record, events: list[EventBase]) -> Patient:
    """The current header of ``record`` from its effective ``events`` (already derived)."""
    updates = [e for e in events if isinstance(e, PatientUpdate)]
    if not updates:
        return record.patient  # the validated header itself (immutable): nothing to apply
    data = record.patient.model_dump(mode="json")
    for upd in sorted(updates, key=lambda e: (e.effective_at, e.recorded_at)):
        data.update(upd.changes)
    return Patient.model_validate(data)


def validate_amendment(target: EventBase, amended: dict[str, Any]) -> None:
    """Raise InputError when an amendment would not validate or touches fixed fields."""
    fixed = {"id", "kind", "recorded_at", "recorded_by", "prev_hash", "hash", "origin"}
    bad = set(amended) & fixed
    if bad:
        raise InputError(f"amended: field(s) {sorted(bad)} cannot be amended")
    data = {**event_to_json(target), **amended}
    try:
        EVENT_TYPES[data["kind"]].model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, what="amendment")) from None


def day_post_infusion(patient: Patient, now: datetime, zone: tzinfo | None = None) -> int | None:
    """Calendar day relative to infusion in the ward's zone (day 0 = infusion day).

    Negative before the infusion; None when no infusion is recorded yet.
    """
    if patient.infusion_at is None:
        return None
    return calendar_day(patient.infusion_at, now, zone)


def calendar_day(infusion_at: datetime, at: datetime, zone: tzinfo | None = None) -> int:
    """Calendar days from the infusion to ``at`` in the ward's zone (the one definition of
    the day post-infusion: board, timers, handover, summary)."""
    tz = zone or local_zone()
    return (at.astimezone(tz).date() - infusion_at.astimezone(tz).date()).days


__all__ = [
    "CHAIN_FORMAT",
    "CORRECTION_REASONS",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AlertAck",
    "ClockAnomaly",
    "Confirmation",
    "Correction",
    "CrsAssessment",
    "DoctorInformed",
    "EligibilityScreen",
    "Event",
    "EventBase",
    "ForeignChainError",
    "HistoryConfirmation",
    "IceAssessment",
    "Lab",
    "Medication",
    "NeuroCheck",
    "Note",
    "Patient",
    "PatientUpdate",
    "Record",
    "Restored",
    "Toxicity",
    "Vitals",
    "append",
    "calendar_day",
    "chain_binding",
    "chain_genesis",
    "chain_problems",
    "current_patient",
    "effective_events",
    "foreign_chain_text",
    "header_from",
    "iso_utc",
    "make_event",
    "new_record",
    "record_binding",
    "validate_envelope",
]


def events_lost_since(
    older: list[dict[str, Any]],
    now_by_id: dict[str, dict[str, Any]],
    backup_name: str,
    where: str,
    *,
    ignore: frozenset[str] = frozenset({"prev_hash", "hash"}),
) -> list[str]:
    """Events (as JSON) an older backup holds that ``where`` lost or changed since.

    The record is append-only: every event of a backup must still be there with the same
    content (fields in ``ignore`` aside). Worded VANISHED / CHANGED with kinds and
    positions only, never values. Used by ``verify`` for single files and journals.
    """
    vanished: list[str] = []
    changed: list[str] = []
    for i, event in enumerate(older, start=1):
        mine = now_by_id.get(str(event.get("id")))
        kind = str(event.get("kind", "event"))
        if mine is None:
            vanished.append(f"#{i} {kind}")
        elif {k: v for k, v in mine.items() if k not in ignore} != {
            k: v for k, v in event.items() if k not in ignore
        }:
            changed.append(f"#{i} {kind}")
    out: list[str] = []
    if vanished:
        out.append(
            f"{len(vanished)} event(s) in backup {backup_name} VANISHED from {where} "
            f"({', '.join(vanished[:5])})"
        )
    if changed:
        out.append(
            f"{len(changed)} event(s) CHANGED since backup {backup_name} ({', '.join(changed[:5])})"
        )
    return out

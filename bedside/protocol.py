"""The clinical protocol: every number the rules use, as versioned, sourced data.

A protocol is a JSON file (``resources/protocols/*.json``) validated by the pydantic
models below. Every clinical value carries its ``source`` (a key of the protocol's
``sources`` table) and a ``verified`` flag; unverified values are shown as such in the
UI and printouts. A malformed protocol fails to load with a :class:`ProtocolError`
whose message names the offending field.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bedside.errors import BedsideError, ProtocolError

logger = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
PROTOCOL_DIR = RESOURCES / "protocols"
DEFAULT_PROTOCOL = PROTOCOL_DIR / "default.json"

Product = Literal["ide-cel", "cilta-cel"]
LabelVersion = Literal["label-2024", "label-2021"]
DrugClass = Literal["imid", "pi", "anti_cd38", "bcma"]
Enforcement = Literal["hard", "soft"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Sourced(_Model):
    """Provenance shared by every clinical entry."""

    source: str = Field(min_length=1)
    verified: bool
    note: str | None = None


class Number(Sourced):
    """A sourced, non-negative clinical number with its unit."""

    value: float = Field(ge=0)
    unit: str = Field(min_length=1)


class PositiveNumber(Sourced):
    """A sourced clinical number that must be strictly positive (intervals, rates)."""

    value: float = Field(gt=0)
    unit: str = Field(min_length=1)


class Count(Sourced):
    """A sourced dose-count limit and whether it may be overridden."""

    value: int = Field(ge=1)
    enforcement: Enforcement


class Interval(Sourced):
    """A sourced minimum interval between doses (hours) and its enforcement."""

    value: float = Field(gt=0)
    unit: Literal["h"]
    enforcement: Enforcement


class Text(Sourced):
    """A sourced piece of guidance text."""

    text: str = Field(min_length=1)
    discrepancies: list[str] = Field(default_factory=list)


class SignOff(_Model):
    """Who approved this protocol for use (null fields mean not signed off)."""

    signed_off_by: str | None
    role: str | None
    signed_off_on: date | None = None


class Tocilizumab(_Model):
    """Tocilizumab dosing and timing limits."""

    mg_per_kg: PositiveNumber
    low_weight_threshold_kg: PositiveNumber
    mg_per_kg_below_threshold: PositiveNumber
    max_dose_mg: PositiveNumber
    concentration_mg_per_ml: PositiveNumber
    plausible_weight_min_kg: PositiveNumber
    plausible_weight_max_kg: PositiveNumber
    weight_max_age_h: PositiveNumber
    min_interval: Interval
    max_per_24h: Count
    max_total: Count
    window_h: PositiveNumber
    override_requires_second_nurse: Literal[True]
    """Bedside always asks a second nurse for an override; a protocol cannot switch that off."""

    @model_validator(mode="after")
    def _coherent(self) -> Tocilizumab:
        if self.max_per_24h.value > self.max_total.value:
            raise ValueError(
                f"tocilizumab.max_per_24h.value ({self.max_per_24h.value}) is above "
                f"tocilizumab.max_total.value ({self.max_total.value})"
            )
        if self.plausible_weight_min_kg.value >= self.plausible_weight_max_kg.value:
            raise ValueError("tocilizumab.plausible_weight_min_kg must be below the maximum")
        return self


class CrsGrading(_Model):
    """ASTCT 2019 CRS grading thresholds and device categories."""

    fever_threshold_c: Number
    plausible_temperature_min_c: Number
    plausible_temperature_max_c: Number
    low_flow_max_l_min: PositiveNumber
    hypoxia_grade_by_device: dict[str, int]
    source: str = Field(min_length=1)
    verified: bool

    @model_validator(mode="after")
    def _grades(self) -> CrsGrading:
        for device, grade in self.hypoxia_grade_by_device.items():
            if grade not in (0, 2, 3, 4):
                raise ValueError(f"crs.hypoxia_grade_by_device.{device}: grade {grade} not 0/2/3/4")
        return self


class IceBand(_Model):
    """ICE score range mapped to an ICANS grade."""

    min: int = Field(ge=0, le=10)
    max: int = Field(ge=0, le=10)
    grade: int = Field(ge=0, le=4)


class IcansGrading(_Model):
    """ASTCT 2019 ICANS grading (adults)."""

    ice_bands: list[IceBand]
    consciousness_grade: dict[str, int]
    seizure_grade: dict[str, int]
    motor_grade: dict[str, int]
    cerebral_edema_grade: dict[str, int]
    source: str = Field(min_length=1)
    verified: bool

    @model_validator(mode="after")
    def _bands_cover(self) -> IcansGrading:
        covered = sorted(s for b in self.ice_bands for s in range(b.min, b.max + 1))
        if covered != list(range(11)):
            raise ValueError("icans.ice_bands must cover every ICE score 0-10 exactly once")
        return self


class CtcaeTest(_Model):
    """CTCAE cut-offs for one laboratory test, in its canonical unit."""

    label: str
    canonical_unit: str
    cutoffs: list[float] = Field(min_length=1)
    default_lln: Number
    max_grade_from_value: int = Field(ge=1, le=4)

    @model_validator(mode="after")
    def _descending(self) -> CtcaeTest:
        if any(a <= b for a, b in zip(self.cutoffs, self.cutoffs[1:], strict=False)):
            raise ValueError("ctcae cutoffs must be strictly descending")
        return self


class Ctcae(_Model):
    """CTCAE version and haematology thresholds."""

    version: str
    source: str = Field(min_length=1)
    verified: bool
    tests: dict[str, CtcaeTest]
    unit_factors: dict[str, dict[str, float]]


class Indication(Sourced):
    """One product's indication under one label version."""

    min_prior_lines: int = Field(ge=0)
    required_exposure: list[DrugClass]
    lenalidomide_refractory_required: bool
    summary: str


class LabelCriteria(_Model):
    """A label version (e.g. current US label) with its per-product indications."""

    title: str
    products: dict[Product, Indication]


class Caution(Sourced):
    """A screening caution; ``blocking`` ones send the verdict to review."""

    blocking: bool
    text: str


class Eligibility(_Model):
    """Eligibility indications per label version and screening cautions."""

    default_criteria: LabelVersion
    criteria: dict[LabelVersion, LabelCriteria]
    cautions: dict[str, Caution]
    ecog_review_at_or_above: Count


Severity = Literal["info", "warning", "critical"]


class SeverityList(Sourced):
    """A sourced set of alert severities (e.g. those whose acknowledgement needs a reason)."""

    severities: list[Severity]


class Monitoring(_Model):
    """Monitoring intervals and escalation delays (hours unless stated)."""

    vitals_interval_h: PositiveNumber
    vitals_interval_febrile_h: PositiveNumber
    ice_interval_h: PositiveNumber
    ice_recheck_after_drop_min: PositiveNumber
    tocilizumab_reassess_h: PositiveNumber
    crs_escalation_after_first_tocilizumab_h: PositiveNumber
    crs_prolonged_grade1_h: PositiveNumber
    daily_monitoring_days: dict[Product, PositiveNumber]
    delayed_neurotox_check_interval_h: PositiveNumber
    delayed_neurotox_check_days: PositiveNumber
    snooze_max_min: PositiveNumber
    future_event_tolerance_min: PositiveNumber
    clock_jump_tolerance_min: PositiveNumber
    due_grace_min: PositiveNumber
    ack_reason_required_for: SeverityList


class Management(_Model):
    """Management guidance text per grade (keys "1".."4")."""

    crs: dict[str, Text]
    icans: dict[str, Text]


class Discrepancy(_Model):
    """Where the seed article and current labels or guidelines disagree."""

    id: str
    topic: str
    protocol_follows: str
    current_position: str
    source: str = Field(min_length=1)


class Protocol(_Model):
    """A complete, versioned clinical protocol."""

    format: Literal["bedside-protocol/1"]
    protocol_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: str
    effective_date: date
    sign_off: SignOff
    sources: dict[str, str]
    tocilizumab: Tocilizumab
    crs: CrsGrading
    icans: IcansGrading
    ctcae: Ctcae
    eligibility: Eligibility
    monitoring: Monitoring
    management: Management
    discrepancies: list[Discrepancy]

    @model_validator(mode="after")
    def _sources_known(self) -> Protocol:
        for path, src in _iter_sources(self):
            for key in (s.strip() for s in src.split(",")):
                if key and key not in self.sources:
                    raise ValueError(f"{path}.source: unknown source key {key!r}")
        return self

    @property
    def label(self) -> str:
        """Short display label: ``id v version``."""
        return f"{self.protocol_id} v{self.version}"

    @property
    def signed_off(self) -> bool:
        """True when a named person signed this protocol off."""
        return bool(self.sign_off.signed_off_by)


def _iter_sources(obj: object, path: str = "protocol") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(obj, BaseModel):
        if "source" in type(obj).model_fields:
            out.append((path, obj.source))  # type: ignore[attr-defined]
        for name in type(obj).model_fields:
            out.extend(_iter_sources(getattr(obj, name), f"{path}.{name}"))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_iter_sources(v, f"{path}.{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_iter_sources(v, f"{path}[{i}]"))
    return out


_FRIENDLY = {
    r"^[A-Z][A-Z.'-]{1,5}$": "must be the nurse's initials (2–6 letters)",
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$": "must be a UUID",
    r"^[A-Za-z0-9_-]{1,64}$": "must be 1–64 letters, digits, '-' or '_'",
}


def format_validation_error(exc: ValidationError, *, what: str) -> str:
    """Turn a pydantic error into one readable message naming each field and value."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = _FRIENDLY.get(str(err.get("ctx", {}).get("pattern", "")), err["msg"])
        parts.append(f"{loc}: {msg} (got {shown})")
    return f"{what}: " + "; ".join(parts)


def parse_protocol(text: str, *, what: str = "protocol") -> Protocol:
    """Validate protocol JSON text (JSON mode: ISO dates are accepted, types stay strict)."""
    try:
        return Protocol.model_validate_json(text)
    except ValidationError as exc:
        raise ProtocolError(format_validation_error(exc, what=what)) from None


def load_protocol(path: Path) -> Protocol:
    """Load and validate a protocol file.

    Raises:
        ProtocolError: the file is unreadable, not JSON, or fails validation.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProtocolError(f"{path.name}: cannot read protocol ({exc.strerror})") from None
    from bedside.jsonio import strict_loads  # the one strict JSON reader (no cycle at import)

    try:
        data = strict_loads(raw, source=path.name)
    except BedsideError as exc:
        raise ProtocolError(str(exc)) from None
    text = raw.decode("utf-8")
    if not isinstance(data, dict):
        raise ProtocolError(f"{path.name}: a protocol must be a JSON object")
    protocol = parse_protocol(text, what=path.name)
    logger.info("loaded protocol %s", protocol.label)
    return protocol


@lru_cache(maxsize=1)
def load_default_protocol() -> Protocol:
    """Return the shipped default protocol (cached)."""
    return load_protocol(DEFAULT_PROTOCOL)


def find_protocol(protocol_id: str, version: str | None = None) -> Protocol:
    """Find a shipped protocol by id (and version, when given)."""
    for path in sorted(PROTOCOL_DIR.glob("*.json")):
        p = load_protocol(path)
        if p.protocol_id == protocol_id and (version is None or p.version == version):
            return p
    wanted = protocol_id if version is None else f"{protocol_id} v{version}"
    raise ProtocolError(f"protocol {wanted!r} not found in {PROTOCOL_DIR}")


def is_expired(protocol: Protocol, today: datetime) -> bool:
    """True when the protocol's effective date lies after ``today`` (not yet in force)."""
    return protocol.effective_date > today.date()

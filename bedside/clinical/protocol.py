"""The clinical protocol: every number the rules use, as versioned, sourced data.

A protocol is a JSON file (``resources/protocols/*.json``) validated by the pydantic
models below. Every clinical value carries its ``source`` (a key of the protocol's
``sources`` table) and a ``verified`` flag; unverified values are shown as such in the
UI and printouts. A malformed protocol fails to load with a :class:`ProtocolError`
whose message names the offending field.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bedside.common.errors import BedsideError, ProtocolError

if TYPE_CHECKING:
    from bedside.common.signedcache import SignedPickles

logger = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
PROTOCOL_DIR = RESOURCES / "protocols"
DEFAULT_PROTOCOL = PROTOCOL_DIR / "default.json"

Product = Literal["ide-cel", "cilta-cel"]
LabelVersion = Literal["label-2024", "label-2021"]
DrugClass = Literal["imid", "pi", "anti_cd38", "bcma"]
Enforcement = Literal["hard", "soft"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True
    )


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


class OverridePolicy(Sourced):
    """How the soft dose limits may be passed (ward policy, cited LOCAL)."""

    requires_prescriber: bool


Route = Literal["IV", "PO", "SC", "IM"]
DoseBasis = Literal["mg/kg", "fixed"]


class RouteSpec(Sourced):
    """The sourced route of a dose-limited drug."""

    value: Route


class DoseLimits(_Model):
    """One dose-limited drug: how a dose is sized and the limits every dose is checked against.

    A pharmacist adds a drug by adding a block to the protocol's ``dose_limits``: no code
    change. Every number carries its ``source`` and ``verified`` flag. A limit that is absent
    (``null``) is not checked; an absent limit never means "zero".

    Attributes:
        label: The drug's name as the nurse reads it.
        names: Other words a nurse may type for this drug when charting it by name.
        basis: ``mg/kg`` (dose from the recorded weight, capped at ``max_dose_mg``) or
            ``fixed`` (``dose_mg`` every time).
        route: The route of the dose; absent when no source gives one (the nurse picks it).
        min_interval: Minimum time between consecutive doses (hard or soft).
        max_per_24h: Most doses in any rolling window ``(t - window_h, t]``.
        max_total: Most doses in the treatment course (counted across episodes).
        concentration_mg_per_ml: Concentrate strength for the volume shown (absent: no volume).
    """

    label: str = Field(min_length=1)
    names: list[str] = Field(default_factory=list)
    basis: DoseBasis
    route: RouteSpec | None = None
    mg_per_kg: PositiveNumber | None = None
    low_weight_threshold_kg: PositiveNumber | None = None
    mg_per_kg_below_threshold: PositiveNumber | None = None
    dose_mg: PositiveNumber | None = None
    max_dose_mg: PositiveNumber | None = None
    concentration_mg_per_ml: PositiveNumber | None = None
    plausible_weight_min_kg: PositiveNumber | None = None
    plausible_weight_max_kg: PositiveNumber | None = None
    weight_max_age_h: PositiveNumber | None = None
    min_interval: Interval | None = None
    max_per_24h: Count | None = None
    max_total: Count | None = None
    window_h: PositiveNumber | None = None
    override_requires_second_nurse: Literal[True]
    """Bedside always asks a second nurse for an override; a protocol cannot switch that off."""
    override_policy: OverridePolicy
    """Whether a prescriber's name is needed too (beyond the label maxima is an order)."""
    note: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> DoseLimits:
        if self.basis == "mg/kg":
            need = ("mg_per_kg", "plausible_weight_min_kg", "plausible_weight_max_kg")
            missing = [n for n in need if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a mg/kg drug needs {', '.join(missing)}")
            if self.dose_mg is not None:
                raise ValueError("dose_mg is for a fixed dose; a mg/kg drug uses mg_per_kg")
            lo, hi = self.plausible_weight_min_kg, self.plausible_weight_max_kg
            if lo is not None and hi is not None and lo.value >= hi.value:
                raise ValueError("plausible_weight_min_kg must be below the maximum")
        else:
            if self.dose_mg is None:
                raise ValueError("a fixed-dose drug needs dose_mg")
            if self.mg_per_kg is not None or self.mg_per_kg_below_threshold is not None:
                raise ValueError("mg_per_kg is for a mg/kg drug; a fixed-dose drug uses dose_mg")
            if self.max_dose_mg is not None and self.dose_mg.value > self.max_dose_mg.value:
                raise ValueError("dose_mg is above max_dose_mg")
        if (self.low_weight_threshold_kg is None) != (self.mg_per_kg_below_threshold is None):
            raise ValueError("low_weight_threshold_kg and mg_per_kg_below_threshold go together")
        if self.max_per_24h is not None and self.window_h is None:
            raise ValueError("max_per_24h needs window_h (the length of the rolling window)")
        if (
            self.max_per_24h is not None
            and self.max_total is not None
            and self.max_per_24h.value > self.max_total.value
        ):
            raise ValueError(
                f"max_per_24h.value ({self.max_per_24h.value}) is above "
                f"max_total.value ({self.max_total.value})"
            )
        if all(
            x is None
            for x in (self.min_interval, self.max_per_24h, self.max_total, self.max_dose_mg)
        ):
            raise ValueError(
                "a dose-limited drug needs at least one limit (min_interval, max_per_24h, "
                "max_total or max_dose_mg)"
            )
        return self

    def limit(self, reason: str) -> Interval | Count | None:
        """The limit behind a reason code (``min_interval``, ``max_per_24h``, ``max_total``)."""
        if reason == "min_interval":
            return self.min_interval
        if reason == "max_per_24h":
            return self.max_per_24h
        if reason == "max_total":
            return self.max_total
        return None

    def is_hard(self, reason: str) -> bool:
        """Whether the limit behind ``reason`` can never be passed (unknown reasons: hard)."""
        found = self.limit(reason)
        return found is None or found.enforcement == "hard"


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
    """A label version (e.g. current US label) with its per-product indications.

    A superseded version (``superseded_by`` set) can still be chosen, for a patient
    screened under it, but Bedside asks for a reason and shows it as superseded.
    """

    title: str
    products: dict[Product, Indication]
    superseded_by: LabelVersion | None = None
    discrepancies: list[str] = Field(default_factory=list)


class Caution(Sourced):
    """A screening caution; ``blocking`` ones send the verdict to review."""

    blocking: bool
    text: str


class Eligibility(_Model):
    """Eligibility indications per label version and screening cautions."""

    default_criteria: LabelVersion
    criteria: dict[LabelVersion, LabelCriteria]
    superseded_reason_required: Sourced
    """Choosing a superseded label version needs a documented reason (ward policy)."""
    cautions: dict[str, Caution]
    ecog_review_at_or_above: Count


Severity = Literal["info", "warning", "critical"]


class SeverityList(Sourced):
    """A sourced set of alert severities (e.g. those whose acknowledgement needs a reason)."""

    severities: list[Severity]


class PostInfusionVersion(_Model):
    """Post-infusion monitoring, proximity and driving figures under one label version."""

    title: str
    in_force_from: date
    superseded: bool
    daily_monitoring_days: dict[Product, PositiveNumber]
    total_monitoring_days: dict[Product, PositiveNumber]
    proximity_days: dict[Product, PositiveNumber]
    driving_days: dict[Product, PositiveNumber]
    discrepancies: list[str] = Field(default_factory=list)


class Monitoring(_Model):
    """Monitoring intervals and escalation delays (hours unless stated)."""

    vitals_interval_h: PositiveNumber
    vitals_interval_febrile_h: PositiveNumber
    ice_interval_h: PositiveNumber
    ice_recheck_after_drop_min: PositiveNumber
    ice_recheck_window_h: PositiveNumber
    ice_recheck_stable_h: PositiveNumber
    tocilizumab_reassess_h: PositiveNumber
    crs_escalation_after_first_tocilizumab_h: PositiveNumber
    crs_prolonged_grade1_h: PositiveNumber
    crs_early_onset_h: PositiveNumber
    vitals_tachycardia_above_bpm: PositiveNumber
    vitals_frequent_while_crs_at_or_above: Count
    post_infusion_current: str
    post_infusion: dict[str, PostInfusionVersion]
    delayed_neurotox_check_interval_h: PositiveNumber
    delayed_neurotox_check_days: dict[Product, PositiveNumber]
    snooze_max_min: PositiveNumber
    future_event_tolerance_min: PositiveNumber
    clock_jump_tolerance_min: PositiveNumber
    peer_stale_after_min: PositiveNumber
    peer_clock_tolerance_min: PositiveNumber
    due_grace_min: PositiveNumber
    ack_reason_required_for: SeverityList
    alarm_repeat_due_s: PositiveNumber
    alarm_repeat_overdue_s: PositiveNumber
    alarm_repeat_critical_s: PositiveNumber
    doctor_review_max_h: PositiveNumber

    @model_validator(mode="after")
    def _current_version(self) -> Monitoring:
        if self.post_infusion_current not in self.post_infusion:
            raise ValueError(
                f"monitoring.post_infusion_current: {self.post_infusion_current!r} is not a key "
                "of monitoring.post_infusion"
            )
        return self

    @property
    def daily_monitoring_days(self) -> dict[Product, PositiveNumber]:
        """Daily-monitoring days per product under the label version in force."""
        return self.post_infusion[self.post_infusion_current].daily_monitoring_days


class NeuroItem(Sourced):
    """One item of the daily neurological check and the alert a positive finding raises."""

    label: str = Field(min_length=1)
    severity: Literal["warning", "critical"]


class TlsCriterion(Sourced):
    """A laboratory tumour-lysis criterion (value at or above / at or below a limit)."""

    limit: Literal["at_or_above", "at_or_below"]
    value: float = Field(ge=0)
    unit: str = Field(min_length=1)


class ToxicityRules(_Model):
    """Boxed-warning toxicities beyond CRS/ICANS: neuro checks, cytopenias, IEC-HS, IgG, TLS."""

    neuro_check_items: dict[str, NeuroItem] = Field(min_length=1)
    febrile_neutropenia_temp_c: Number
    febrile_neutropenia_anc_below: PositiveNumber
    febrile_neutropenia_anc_max_age_h: PositiveNumber
    prolonged_cytopenia_day: PositiveNumber
    prolonged_cytopenia_anc_below: PositiveNumber
    prolonged_cytopenia_platelets_below: PositiveNumber
    igg_check_interval_days: PositiveNumber
    igg_check_window_days: PositiveNumber
    igg_ivig_at_or_below_mg_dl: PositiveNumber
    iec_hs_fibrinogen_below_mg_dl: PositiveNumber
    iec_hs_anc_below: PositiveNumber
    iec_hs_platelets_below: PositiveNumber
    tls_criteria: dict[str, TlsCriterion] = Field(min_length=1)
    tls_min_criteria: Count
    tls_window_h: PositiveNumber
    lab_units: dict[str, str]
    checklist: dict[str, Text]
    discharge: dict[str, Text]

    @model_validator(mode="after")
    def _tls_units(self) -> ToxicityRules:
        for key, crit in self.tls_criteria.items():
            if self.lab_units.get(key) != crit.unit:
                raise ValueError(f"toxicity.tls_criteria.{key}.unit: not the unit of lab_units")
        return self


class Management(_Model):
    """Management guidance text per grade (keys "1".."4")."""

    crs: dict[str, Text]
    icans: dict[str, Text]


DiscrepancyArea = Literal[
    "eligibility",
    "crs_grading",
    "crs_management",
    "icans_management",
    "infections",
    "monitoring",
    "discharge",
    "toxicities",
    "labs",
]


class Discrepancy(_Model):
    """Where the seed article and current labels or guidelines disagree.

    Attributes:
        seed_statement: What the seed article says.
        current_position: What the current label or guideline says (with ``source``).
        protocol_follows: What this protocol encodes.
        shown_in: The screens / rules where a nurse must see this note.
    """

    id: str
    topic: str
    seed_statement: str = Field(min_length=1)
    current_position: str = Field(min_length=1)
    protocol_follows: str = Field(min_length=1)
    source: str = Field(min_length=1)
    shown_in: list[DiscrepancyArea] = Field(min_length=1)


class DoseRange(Sourced):
    """Per-dose limits of one drug, as in a smart pump's drug library (values in ``unit``).

    Outside ``soft_min``..``soft_max`` the dose needs an explicit confirmation; outside
    ``hard_min``..``hard_max`` it is refused. ``names`` are the words a nurse may type for
    a drug recorded by name; ``antipyretic`` marks drugs that mask fever (ASTCT).
    """

    unit: Literal["mg"]
    soft_min: float | None = Field(default=None, ge=0)
    soft_max: float | None = Field(default=None, gt=0)
    hard_min: float | None = Field(default=None, ge=0)
    hard_max: float | None = Field(default=None, gt=0)
    names: list[str] = Field(default_factory=list)
    antipyretic: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> DoseRange:
        values = [self.hard_min, self.soft_min, self.soft_max, self.hard_max]
        given = [v for v in values if v is not None]
        if given != sorted(given):
            raise ValueError("dose range must satisfy hard_min <= soft_min <= soft_max <= hard_max")
        return self


class OxygenFlowRule(Sourced):
    """The flows that make sense for one oxygen device (L/min); others are refused."""

    min_l_min: float | None = Field(default=None, ge=0)
    max_l_min: float = Field(ge=0)
    flow_required: bool = False


class DrugLibrary(_Model):
    """Dose error reduction: weight, dose, temperature, lab and oxygen plausibility (LOCAL)."""

    source: str = Field(min_length=1)
    verified: bool
    note: str | None = None
    weight_soft_min_kg: PositiveNumber
    weight_soft_max_kg: PositiveNumber
    weight_hard_min_kg: PositiveNumber
    weight_hard_max_kg: PositiveNumber
    weight_change_confirm_pct: PositiveNumber
    pounds_per_kg: PositiveNumber
    pounds_match_tolerance_pct: PositiveNumber
    fahrenheit_hint_min: PositiveNumber
    fahrenheit_hint_max: PositiveNumber
    lab_max: dict[str, PositiveNumber]
    oxygen_flow: dict[str, OxygenFlowRule]
    doses: dict[str, DoseRange]
    volume_round_ml: PositiveNumber
    dose_round_mg: PositiveNumber

    @model_validator(mode="after")
    def _coherent(self) -> DrugLibrary:
        w = (
            self.weight_hard_min_kg.value,
            self.weight_soft_min_kg.value,
            self.weight_soft_max_kg.value,
            self.weight_hard_max_kg.value,
        )
        if list(w) != sorted(w) or w[0] == w[-1]:
            raise ValueError(
                "drug_library weights must satisfy hard_min <= soft_min <= soft_max <= hard_max"
            )
        return self


class DrugList(Sourced):
    """A sourced list of drug keys."""

    drugs: list[str] = Field(min_length=1)


class Flag(Sourced):
    """A sourced yes/no policy."""

    value: bool


class CrsSupport(_Model):
    """What the CRS form and the "grade CRS now" prompt need beyond the grading table."""

    source: str = Field(min_length=1)
    verified: bool
    anti_cytokine_drugs: DrugList
    antipyretics_mask_fever: Flag
    hypotension_systolic_below_mmhg: PositiveNumber


class Protocol(_Model):
    """A complete, versioned clinical protocol."""

    format: Literal["bedside-protocol/1"]
    protocol_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: str
    effective_date: date
    sign_off: SignOff
    sources: dict[str, str]
    dose_limits: dict[str, DoseLimits] = Field(min_length=1)
    """Every dose-limited drug by its key (the record's ``drug``, or ``other`` + a name)."""
    crs: CrsGrading
    icans: IcansGrading
    ctcae: Ctcae
    eligibility: Eligibility
    monitoring: Monitoring
    toxicity: ToxicityRules
    management: Management
    discrepancies: list[Discrepancy]
    drug_library: DrugLibrary
    crs_support: CrsSupport

    @model_validator(mode="after")
    def _dose_limits_coherent(self) -> Protocol:
        toc = self.dose_limits.get("tocilizumab")
        if toc is None:
            raise ValueError("dose_limits.tocilizumab: the tocilizumab block is required")
        need = ("min_interval", "max_per_24h", "max_total", "window_h", "concentration_mg_per_ml")
        missing = [n for n in need if getattr(toc, n) is None]
        if toc.basis != "mg/kg" or toc.max_dose_mg is None or missing:
            raise ValueError(
                "dose_limits.tocilizumab: must be mg/kg with max_dose_mg, "
                + ", ".join(need)
                + (f" (missing {', '.join(missing)})" if missing else "")
            )
        seen: dict[str, str] = {}
        for key, drug in self.dose_limits.items():
            if key == "other":
                raise ValueError("dose_limits.other: 'other' is not a drug key")
            for word in (key, *drug.names):
                w = word.strip().lower()
                if w in seen and seen[w] != key:
                    raise ValueError(f"dose_limits.{key}.names: {word!r} already names {seen[w]!r}")
                seen[w] = key
        return self

    @model_validator(mode="after")
    def _sources_known(self) -> Protocol:
        for path, src in _iter_sources(self):
            for key in (s.strip() for s in src.split(",")):
                if key and key not in self.sources:
                    raise ValueError(f"{path}.source: unknown source key {key!r}")
        return self

    @model_validator(mode="after")
    def _discrepancy_ids_known(self) -> Protocol:
        known = {d.id for d in self.discrepancies}
        cited: list[tuple[str, list[str]]] = [
            (f"management.{syn}.{g}", t.discrepancies)
            for syn, table in (("crs", self.management.crs), ("icans", self.management.icans))
            for g, t in table.items()
        ]
        cited += [
            (f"eligibility.criteria.{k}", c.discrepancies)
            for k, c in self.eligibility.criteria.items()
        ]
        cited += [
            (f"monitoring.post_infusion.{k}", v.discrepancies)
            for k, v in self.monitoring.post_infusion.items()
        ]
        for path, ids in cited:
            for d_id in ids:
                if d_id not in known:
                    raise ValueError(f"{path}.discrepancies: unknown discrepancy {d_id!r}")
        for key, crit in self.eligibility.criteria.items():
            if (
                crit.superseded_by is not None
                and crit.superseded_by not in self.eligibility.criteria
            ):
                raise ValueError(f"eligibility.criteria.{key}.superseded_by: unknown version")
        return self

    def discrepancies_for(self, *areas: DiscrepancyArea) -> list[Discrepancy]:
        """The discrepancy notes a nurse must see where the rules of ``areas`` are used."""
        return [d for d in self.discrepancies if any(a in d.shown_in for a in areas)]

    def discrepancy_lines(self, *areas: DiscrepancyArea, ids: list[str] | None = None) -> list[str]:
        """Readable notes for the discrepancies of ``areas`` (or the listed ``ids``)."""
        chosen = (
            [d for d in self.discrepancies if d.id in ids]
            if ids is not None
            else self.discrepancies_for(*areas)
        )
        return [discrepancy_text(d) for d in chosen]

    @property
    def tocilizumab(self) -> DoseLimits:
        """Tocilizumab's limits (required by the protocol; every limit present)."""
        return self.dose_limits["tocilizumab"]

    def limited_drug(self, drug: str, drug_name: str | None = None) -> str | None:
        """The ``dose_limits`` key of a charted drug (by key, or a name typed for "other").

        A typed name matches a key or one of its ``names`` exactly, or as the first word
        ("Anakinra 100 mg" is anakinra); case and surrounding spaces do not matter.
        """
        if drug != "other" and drug in self.dose_limits:
            return drug
        if not drug_name:
            return None
        typed = " ".join(drug_name.strip().lower().split())
        for key, entry in self.dose_limits.items():
            for word in (key, entry.label, *entry.names):
                w = word.strip().lower()
                if w and (typed == w or typed.startswith(w + " ")):
                    return key
        return None

    @property
    def label(self) -> str:
        """Short display label: ``id v version``."""
        return f"{self.protocol_id} v{self.version}"

    @property
    def signed_off(self) -> bool:
        """True when a named person signed this protocol off."""
        return bool(self.sign_off.signed_off_by)


def discrepancy_text(d: Discrepancy) -> str:
    """One discrepancy in the nurse's words: what the seed said, what holds now, what we do."""
    return (
        f"Sources disagree ({d.id}, {d.topic}): the seed article says “{d.seed_statement}”; "
        f"current position [{d.source}]: {d.current_position}. This protocol follows: "
        f"{d.protocol_follows}."
    )


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
    cache, name, key = _protocol_cache(path, raw)
    cached = cache.get(name, key)
    if isinstance(cached, Protocol):
        # These exact bytes passed every check below before (signed, same code).
        logger.info("loaded protocol %s (validated before)", cached.label)
        return cached
    from bedside.common.jsonio import (
        strict_loads,  # the one strict JSON reader (no cycle at import)
    )

    try:
        data = strict_loads(raw, source=path.name)
    except BedsideError as exc:
        raise ProtocolError(str(exc)) from None
    text = raw.decode("utf-8")
    if not isinstance(data, dict):
        raise ProtocolError(f"{path.name}: a protocol must be a JSON object")
    protocol = parse_protocol(text, what=path.name)
    logger.info("loaded protocol %s", protocol.label)
    cache.put(name, key, protocol)
    return protocol


def _protocol_cache(path: Path, raw: bytes) -> tuple[SignedPickles, str, bytes]:
    """Where the validated protocol of these exact bytes is kept: (cache, name, key).

    Validating the protocol builds the validators of every protocol model (the largest
    part of start-up before the first paint); a start with an unchanged protocol file
    unpickles the object validated the first time instead. The key covers the file's
    exact bytes and the code (this module, Bedside and pydantic-core versions).
    """
    from bedside.common.signedcache import SignedPickles, code_fingerprint, user_cache_path

    name = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:20]
    key = hashlib.sha256(
        b"bedside-protocol-cache-1\0" + code_fingerprint(__file__) + hashlib.sha256(raw).digest()
    ).digest()
    return SignedPickles(user_cache_path("protocols")), name, key


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

"""The rules engine: pure, typed functions over strict pydantic inputs.

Every function has the shape ``rule(input_model, protocol) -> result_model`` and
follows ``design/validation-vectors.md`` exactly. Every number comes from the
:class:`~bedside.clinical.protocol.Protocol`; every result carries a plain-language
``explanation`` a nurse can read, naming the rule's source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bedside.clinical.labels import PRODUCT_LABELS
from bedside.clinical.protocol import DoseLimits, DrugClass, LabelVersion, Product, Protocol
from bedside.common.errors import InputError
from bedside.common.timeutil import Instant

logger = logging.getLogger(__name__)

OxygenDevice = Literal[
    "none",
    "nasal_cannula",
    "blow_by",
    "high_flow_nasal_cannula",
    "face_mask",
    "non_rebreather",
    "venturi",
    "cpap",
    "bipap",
    "mechanical_ventilation",
]
Vasopressor = Literal[
    "norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin", "angiotensin_ii"
]
Consciousness = Literal[
    "alert", "awakens_spontaneously", "awakens_to_voice", "awakens_to_touch", "unarousable"
]
Seizure = Literal["none", "resolved", "prolonged_or_repetitive"]
Motor = Literal["none", "deep_focal_weakness"]
CerebralEdema = Literal["none", "focal", "diffuse"]
LabTest = Literal["neutrophils", "platelets", "hemoglobin", "lymphocytes", "wbc"]
LabUnit = Literal["10^9/L", "/uL", "g/dL", "g/L"]
LimitReason = Literal["min_interval", "max_per_24h", "max_total"]
EligibilityStatus = Literal["eligible", "not_eligible", "review"]

DEVICE_LABELS: dict[str, str] = {
    "none": "room air",
    "nasal_cannula": "nasal cannula",
    "blow_by": "blow-by oxygen",
    "high_flow_nasal_cannula": "high-flow nasal cannula",
    "face_mask": "face mask",
    "non_rebreather": "non-rebreather mask",
    "venturi": "Venturi mask",
    "cpap": "CPAP",
    "bipap": "BiPAP",
    "mechanical_ventilation": "mechanical ventilation",
}


class StrictInput(BaseModel):
    """Base of every rule input: strict types, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True
    )


class Result(BaseModel):
    """Base of every rule result."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    explanation: str


def _src(protocol: Protocol, keys: str) -> str:
    return ", ".join(k.strip() for k in keys.split(","))


# --------------------------------------------------------------------------- CRS


class CrsInput(StrictInput):
    """What the nurse observes for one CRS assessment."""

    temperature_c: float | None = Field(default=None, ge=0.0)
    fever_masked: bool = False
    hypotension: bool = False
    vasopressors: list[Vasopressor] = Field(default_factory=list)
    oxygen_device: OxygenDevice = "none"
    oxygen_flow_l_min: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _flow_for_cannula(self) -> CrsInput:
        if self.oxygen_device == "nasal_cannula" and self.oxygen_flow_l_min is None:
            raise ValueError("oxygen_flow_l_min is required when oxygen_device is nasal_cannula")
        return self


class CrsResult(Result):
    """ASTCT 2019 CRS grade with what drove it."""

    grade: int
    drivers: list[str]
    fever: bool
    hypotension_grade: int
    hypoxia_grade: int


def _hypotension_grade(inp: CrsInput) -> tuple[int, str]:
    agents = sorted(set(inp.vasopressors))
    if not inp.hypotension and not agents:
        return 0, ""
    non_vaso = [a for a in agents if a != "vasopressin"]
    if len(non_vaso) >= 2:
        return 4, f"multiple vasopressors ({', '.join(agents)})"
    if agents:
        return 3, f"one vasopressor ({', '.join(agents)})"
    return 2, "hypotension not needing vasopressors"


def hypoxia_rank(device: str | None, flow: float | None, protocol: Protocol) -> int:
    """The hypoxia grade an oxygen device and flow stand for (0: none or not charted).

    For comparing charted oxygen with the last assessment (the CRS form, "grade CRS now");
    the grade itself, with its wording, comes from :func:`crs_grade`.
    """
    if device is None:
        return 0
    grade = protocol.crs.hypoxia_grade_by_device.get(device, 0)
    if (
        device == "nasal_cannula"
        and flow is not None
        and flow > protocol.crs.low_flow_max_l_min.value
    ):
        return 3
    return grade


def _hypoxia_grade(inp: CrsInput, protocol: Protocol) -> tuple[int, str]:
    device = inp.oxygen_device
    grade = protocol.crs.hypoxia_grade_by_device[device]
    label = DEVICE_LABELS[device]
    if device == "nasal_cannula":
        flow = inp.oxygen_flow_l_min or 0.0
        limit = protocol.crs.low_flow_max_l_min.value
        if flow > limit:
            return 3, f"nasal cannula {flow:g} L/min (> {limit:g} L/min, high flow)"
        return 2, f"nasal cannula {flow:g} L/min (≤ {limit:g} L/min, low flow)"
    return grade, label if grade else ""


def crs_grade(inp: CrsInput, protocol: Protocol) -> CrsResult:
    """Grade CRS by ASTCT 2019 from one assessment."""
    threshold = protocol.crs.fever_threshold_c.value
    lo, hi = (
        protocol.crs.plausible_temperature_min_c.value,
        protocol.crs.plausible_temperature_max_c.value,
    )
    if inp.temperature_c is not None and not lo <= inp.temperature_c <= hi:
        raise InputError(
            f"temperature_c: {inp.temperature_c:g} °C is outside the plausible range "
            f"{lo:g}–{hi:g} °C (check the unit: degrees Celsius)"
        )
    fever = inp.temperature_c is not None and inp.temperature_c >= threshold
    hypo_g, hypo_txt = _hypotension_grade(inp)
    oxy_g, oxy_txt = _hypoxia_grade(inp, protocol)
    src = f"ASTCT 2019 [{protocol.crs.source}]"
    if not fever and not inp.fever_masked:
        why = (
            "no temperature recorded"
            if inp.temperature_c is None
            else f"temperature {inp.temperature_c:g} °C is below {threshold:g} °C"
        )
        extra = ""
        if hypo_g or oxy_g:
            extra = (
                "; hypotension/hypoxia without fever is not graded as CRS unless antipyretic"
                " or anti-cytokine therapy has been given"
            )
        return CrsResult(
            grade=0,
            drivers=[],
            fever=False,
            hypotension_grade=hypo_g,
            hypoxia_grade=oxy_g,
            explanation=f"Grade 0: no CRS — {why}{extra} — {src}",
        )
    base = 1 if fever else 0
    grade = max(base, hypo_g, oxy_g)
    if grade == 0:
        return CrsResult(
            grade=0,
            drivers=[],
            fever=False,
            hypotension_grade=0,
            hypoxia_grade=0,
            explanation=(
                "Grade 0: fever is masked by antipyretic/anti-cytokine therapy and there is "
                f"neither hypotension nor hypoxia — {src}"
            ),
        )
    if grade == 1:
        return CrsResult(
            grade=1,
            drivers=["fever"],
            fever=fever,
            hypotension_grade=hypo_g,
            hypoxia_grade=oxy_g,
            explanation=(
                f"Grade 1: fever {inp.temperature_c:g} °C (≥ {threshold:g} °C) without "
                f"hypotension or hypoxia — {src}"
            ),
        )
    drivers: list[str] = []
    reasons: list[str] = []
    if hypo_g == grade:
        drivers.append("hypotension")
        reasons.append(hypo_txt)
    if oxy_g == grade:
        drivers.append("hypoxia")
        reasons.append(oxy_txt)
    masked = " (fever masked by treatment)" if inp.fever_masked and not fever else ""
    return CrsResult(
        grade=grade,
        drivers=drivers,
        fever=fever,
        hypotension_grade=hypo_g,
        hypoxia_grade=oxy_g,
        explanation=f"Grade {grade}: {' and '.join(reasons)}{masked} — {src}",
    )


# --------------------------------------------------------------------------- ICE / ICANS


class IceInput(StrictInput):
    """The five ICE items."""

    orientation: int = Field(ge=0, le=4)
    naming: int = Field(ge=0, le=3)
    commands: int = Field(ge=0, le=1)
    writing: int = Field(ge=0, le=1)
    attention: int = Field(ge=0, le=1)


class IceResult(Result):
    """The 10-point ICE score."""

    score: int


def ice_score(inp: IceInput, protocol: Protocol) -> IceResult:
    """Sum the ICE items (orientation 4, naming 3, commands 1, writing 1, attention 1)."""
    score = inp.orientation + inp.naming + inp.commands + inp.writing + inp.attention
    return IceResult(
        score=score,
        explanation=(
            f"ICE {score}/10: orientation {inp.orientation}/4, naming {inp.naming}/3, "
            f"commands {inp.commands}/1, writing {inp.writing}/1, attention {inp.attention}/1 "
            f"— ASTCT 2019 [{protocol.icans.source}]"
        ),
    )


class IcansInput(StrictInput):
    """The ICANS domains (adults)."""

    ice_score: int | None = Field(default=None, ge=0, le=10)
    consciousness: Consciousness = "alert"
    seizure: Seizure = "none"
    motor: Motor = "none"
    cerebral_edema: CerebralEdema = "none"


class IcansResult(Result):
    """ASTCT 2019 ICANS grade with the domains that set it."""

    grade: int
    drivers: list[str]
    domain_grades: dict[str, int]


_DOMAIN_TEXT = {
    "consciousness": {
        "awakens_spontaneously": "awakens spontaneously",
        "awakens_to_voice": "awakens to voice",
        "awakens_to_touch": "awakens only to touch",
        "unarousable": "unarousable",
    },
    "seizure": {
        "resolved": "seizure that resolved",
        "prolonged_or_repetitive": "prolonged or repetitive seizure",
    },
    "motor": {"deep_focal_weakness": "deep focal motor weakness"},
    "cerebral_edema": {"focal": "focal cerebral oedema", "diffuse": "diffuse cerebral oedema"},
}


def icans_grade(inp: IcansInput, protocol: Protocol) -> IcansResult:
    """Grade ICANS by ASTCT 2019 (adults): the highest domain grade."""
    cfg = protocol.icans
    if inp.ice_score is None:
        ice_g = 0
    elif inp.ice_score == 0 and inp.consciousness == "unarousable":
        ice_g = 4
    else:
        ice_g = next(b.grade for b in cfg.ice_bands if b.min <= inp.ice_score <= b.max)
    grades = {
        "ice": ice_g,
        "consciousness": cfg.consciousness_grade[inp.consciousness],
        "seizure": cfg.seizure_grade[inp.seizure],
        "motor": cfg.motor_grade[inp.motor],
        "cerebral_edema": cfg.cerebral_edema_grade[inp.cerebral_edema],
    }
    grade = max(grades.values())
    src = f"ASTCT 2019 [{cfg.source}]"
    if grade == 0:
        ice_txt = "ICE not assessable" if inp.ice_score is None else f"ICE {inp.ice_score}/10"
        return IcansResult(
            grade=0,
            drivers=[],
            domain_grades=grades,
            explanation=f"Grade 0: no ICANS — {ice_txt}, no other domain affected — {src}",
        )
    drivers = [d for d, g in grades.items() if g == grade]
    reasons = []
    for d in drivers:
        if d == "ice":
            unar = " in an unarousable patient" if ice_g == 4 else ""
            reasons.append(f"ICE {inp.ice_score}/10{unar}")
        else:
            reasons.append(_DOMAIN_TEXT[d][getattr(inp, d)])
    note = " (ICE not assessable; graded from the other domains)" if inp.ice_score is None else ""
    return IcansResult(
        grade=grade,
        drivers=drivers,
        domain_grades=grades,
        explanation=f"Grade {grade}: {' and '.join(reasons)}{note} — {src}",
    )


# --------------------------------------------------------------------------- CTCAE


class CtcaeInput(StrictInput):
    """One laboratory value to grade."""

    test: LabTest
    value: float = Field(ge=0)
    unit: LabUnit
    lln: float | None = Field(default=None, gt=0)


class CtcaeResult(Result):
    """CTCAE grade of a laboratory value."""

    grade: int
    value_canonical: float
    canonical_unit: str
    lln_canonical: float
    lln_source: Literal["input", "protocol default"]


def ctcae_grade(inp: CtcaeInput, protocol: Protocol) -> CtcaeResult:
    """Grade a haematology value by the protocol's CTCAE version (half-open intervals)."""
    spec = protocol.ctcae.tests[inp.test]
    factors = protocol.ctcae.unit_factors[spec.canonical_unit]
    if inp.unit not in factors:
        allowed = " or ".join(factors)
        raise InputError(f"unit: {inp.unit!r} does not fit test {inp.test!r} (use {allowed})")
    factor = Decimal(str(factors[inp.unit]))
    value = Decimal(str(inp.value)) / factor
    if inp.lln is not None:
        lln = Decimal(str(inp.lln)) / factor
        lln_source: Literal["input", "protocol default"] = "input"
    else:
        lln = Decimal(str(spec.default_lln.value))
        lln_source = "protocol default"
    # Grades 2-4 are absolute intervals; only grade 1 ("< LLN - first cut-off") hangs on the LLN.
    below_cutoffs = sum(1 for c in spec.cutoffs if value < Decimal(str(c)))
    if below_cutoffs:
        grade = 1 + below_cutoffs
    else:
        grade = 1 if value < lln else 0
    grade = min(grade, spec.max_grade_from_value)
    unit = spec.canonical_unit
    shown = f"{inp.value:g} {inp.unit}"
    if inp.unit != unit:
        shown += f" (= {float(value):g} {unit})"
    lln_txt = f"LLN {float(lln):g} {unit}" + (" (protocol default)" if inp.lln is None else "")
    verdict = "within normal limits" if grade == 0 else spec.label.lower()
    return CtcaeResult(
        grade=grade,
        value_canonical=float(value),
        canonical_unit=unit,
        lln_canonical=float(lln),
        lln_source=lln_source,
        explanation=(
            f"Grade {grade}: {shown}, {lln_txt} — {verdict} — CTCAE v{protocol.ctcae.version} "
            f"[{protocol.ctcae.source}]"
        ),
    )


# --------------------------------------------------------------------------- tocilizumab


class TocilizumabDoseInput(StrictInput):
    """The patient's weight for a tocilizumab dose."""

    weight_kg: float = Field(gt=0)


class DoseResult(Result):
    """A dose of a dose-limited drug, its volume, and the uncapped dose when the cap applied.

    ``volume_ml`` is None when the protocol gives no concentration; ``mg_per_kg`` is None
    for a fixed dose; ``max_dose_mg`` is None when the protocol gives no per-dose cap.
    """

    dose_mg: float
    uncapped_mg: float
    capped: bool
    volume_ml: float | None
    mg_per_kg: float | None
    max_dose_mg: float | None


TocilizumabDoseResult = DoseResult
"""The tocilizumab dose is the generic dose of its protocol block (same fields)."""


def limited_dose(limits: DoseLimits, weight_kg: float | None, protocol: Protocol) -> DoseResult:
    """The dose of a dose-limited drug: mg/kg by weight band, or fixed; capped at its maximum.

    Raises:
        InputError: a mg/kg drug without a weight, or a weight outside the plausible range.
    """
    per_kg: float | None = None
    if limits.basis == "mg/kg":
        assert limits.mg_per_kg is not None  # the protocol model guarantees it
        lo_w, hi_w = limits.plausible_weight_min_kg, limits.plausible_weight_max_kg
        if weight_kg is None:
            raise InputError("weight_kg: no weight recorded; weigh the patient first")
        if lo_w is not None and hi_w is not None and not lo_w.value <= weight_kg <= hi_w.value:
            raise InputError(
                f"weight_kg: {weight_kg:g} kg is outside the plausible range "
                f"{lo_w.value:g}–{hi_w.value:g} kg (check the unit: kilograms, not pounds)"
            )
        threshold, low_rate = limits.low_weight_threshold_kg, limits.mg_per_kg_below_threshold
        below = threshold is not None and low_rate is not None and weight_kg < threshold.value
        per_kg = low_rate.value if below and low_rate is not None else limits.mg_per_kg.value
        uncapped = Decimal(str(weight_kg)) * Decimal(str(per_kg))
        band = (
            f"{per_kg:g} mg/kg (weight below {threshold.value:g} kg)"
            if below and threshold is not None
            else f"{per_kg:g} mg/kg"
        )
        basis_text = f"{weight_kg:g} kg × {band}"
        src = limits.mg_per_kg.source
    else:
        assert limits.dose_mg is not None  # the protocol model guarantees it
        uncapped = Decimal(str(limits.dose_mg.value))
        basis_text = f"fixed dose of {limits.label.lower()}"
        src = limits.dose_mg.source
    cap = Decimal(str(limits.max_dose_mg.value)) if limits.max_dose_mg is not None else None
    capped = cap is not None and uncapped > cap
    dose = cap if capped and cap is not None else uncapped
    text = f"{float(dose):g} mg = {basis_text}"
    if capped and cap is not None:
        text = (
            f"{float(dose):g} mg: capped at the {float(cap):g} mg maximum — the weight-based dose "
            f"would be {float(uncapped):g} mg ({basis_text}); confirm the weight"
        )
    volume: Decimal | None = None
    conc = limits.concentration_mg_per_ml
    if conc is not None:
        volume = dose / Decimal(str(conc.value))
        step = Decimal(str(protocol.drug_library.volume_round_ml.value))
        shown_ml = (volume / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        text += f"; {float(shown_ml):g} mL of {conc.value:g} mg/mL concentrate"
    text += f" [{_src(protocol, src)}]"
    return DoseResult(
        dose_mg=float(dose),
        uncapped_mg=float(uncapped),
        capped=capped,
        volume_ml=float(volume) if volume is not None else None,
        mg_per_kg=per_kg,
        max_dose_mg=float(cap) if cap is not None else None,
        explanation=text,
    )


def tocilizumab_dose(inp: TocilizumabDoseInput, protocol: Protocol) -> DoseResult:
    """Tocilizumab dose: mg/kg by weight band, capped at the protocol maximum."""
    return limited_dose(protocol.tocilizumab, inp.weight_kg, protocol)


class TocilizumabCheckInput(StrictInput):
    """Doses already recorded in this course and the proposed time."""

    given_at: list[Instant]
    at: Instant


class DoseCheckResult(Result):
    """Whether a dose may be given at ``at``, and if not, why and when."""

    allowed: bool
    reasons: list[LimitReason]
    hard_limit: bool
    next_allowed_at: datetime | None
    doses_last_24h: int
    total: int
    window_frees_at: datetime | None
    reason_text: dict[str, str]


TocilizumabCheckResult = DoseCheckResult
"""The tocilizumab check is the generic check of its protocol block (same fields)."""


def _violations(doses: list[datetime], at: datetime, limits: DoseLimits) -> list[LimitReason]:
    """Limits broken by adding a dose at ``at`` to the recorded ``doses`` (absent: unchecked)."""
    reasons: list[LimitReason] = []
    if limits.min_interval is not None:
        gap = timedelta(hours=limits.min_interval.value)
        if any(abs(d - at) < gap for d in doses):
            reasons.append("min_interval")
    if limits.max_per_24h is not None and limits.window_h is not None:
        window = timedelta(hours=limits.window_h.value)
        most = limits.max_per_24h.value
        everything = [*doses, at]
        # Only windows (end - 24 h, end] that contain ``at`` can be changed by the new dose;
        # the busiest such window ends at ``at`` or at a later recorded dose.
        ends = [e for e in everything if at <= e < at + window]
        if any(sum(1 for d in everything if e - window < d <= e) > most for e in ends):
            reasons.append("max_per_24h")
    if limits.max_total is not None and len(doses) + 1 > limits.max_total.value:
        reasons.append("max_total")
    return reasons


def limits_check(
    limits: DoseLimits, given_at: list[datetime], at: datetime, protocol: Protocol
) -> DoseCheckResult:
    """Check a proposed dose of a dose-limited drug against its interval, 24 h and course limits.

    The same rule as ``tocilizumab_check`` (validation-vectors.md), with the numbers of the
    drug's protocol block; a limit the block does not give is not checked.
    """
    doses = sorted(given_at)
    window_h = limits.window_h.value if limits.window_h is not None else 24.0
    window = timedelta(hours=window_h)
    reasons = _violations(doses, at, limits)
    last24 = sum(1 for d in doses if at - window < d <= at)
    next_at: datetime | None
    if limits.max_total is not None and len(doses) >= limits.max_total.value:
        next_at = None
    else:
        steps = [window]
        if limits.min_interval is not None:
            steps.append(timedelta(hours=limits.min_interval.value))
        candidates = sorted({at, *(d + s for d in doses for s in steps)})
        next_at = next(
            (c for c in candidates if c >= at and not _violations(doses, c, limits)), None
        )
    in_window = [d for d in doses if at - window < d <= at]
    most = limits.max_per_24h.value if limits.max_per_24h is not None else None
    frees = (min(in_window) + window) if most is not None and len(in_window) >= most else None
    texts: dict[str, str] = {}
    if limits.min_interval is not None:
        texts["min_interval"] = (
            f"less than {limits.min_interval.value:g} h from another dose "
            f"({limits.min_interval.enforcement} limit)"
        )
    if limits.max_per_24h is not None:
        texts["max_per_24h"] = (
            f"would make more than {limits.max_per_24h.value} doses in a {window_h:g} h window "
            f"({limits.max_per_24h.enforcement} limit)"
        )
    if limits.max_total is not None:
        texts["max_total"] = (
            f"course maximum of {limits.max_total.value} doses reached "
            f"({limits.max_total.enforcement} limit)"
        )
    hard = any(limits.is_hard(r) for r in reasons)
    cited = [x for x in (limits.max_total, limits.max_per_24h, limits.min_interval) if x]
    src = _src(protocol, cited[0].source) if cited else "LOCAL"
    if not reasons:
        course = (
            f"dose {len(doses) + 1} of at most {limits.max_total.value}"
            if limits.max_total is not None
            else f"dose {len(doses) + 1} (no course maximum in the protocol)"
        )
        explanation = f"Allowed: {course}; {last24} in the last {window_h:g} h [{src}]"
    else:
        explanation = "Not allowed: " + "; ".join(texts[r] for r in reasons) + f" [{src}]"
    return DoseCheckResult(
        allowed=not reasons,
        reasons=reasons,
        hard_limit=hard,
        next_allowed_at=next_at,
        doses_last_24h=last24,
        total=len(doses),
        window_frees_at=frees,
        reason_text={r: texts[r] for r in reasons},
        explanation=explanation,
    )


def tocilizumab_check(inp: TocilizumabCheckInput, protocol: Protocol) -> DoseCheckResult:
    """Check a proposed tocilizumab dose against the interval, 24 h and course limits."""
    return limits_check(protocol.tocilizumab, list(inp.given_at), inp.at, protocol)


# --------------------------------------------------------------------------- eligibility


class EligibilityInput(StrictInput):
    """Screening facts for one product under one label version."""

    product: Product
    criteria: LabelVersion
    prior_lines: int = Field(ge=0, le=30)
    exposed_to: list[DrugClass] = Field(default_factory=list)
    lenalidomide_refractory: bool = False
    ecog: int | None = Field(default=None, ge=0, le=5)
    active_infection: bool = False
    prior_bcma_therapy: bool = False
    cns_involvement: bool = False
    rapid_progression: bool = False


class CriterionResult(BaseModel):
    """One line of the screening checklist."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    key: str
    kind: Literal["indication", "caution"]
    met: bool
    text: str
    source: str
    verified: bool


class EligibilityResult(Result):
    """The screening verdict with every unmet criterion and caution spelled out."""

    status: EligibilityStatus
    unmet: list[str]
    cautions: list[str]
    items: list[CriterionResult]
    criteria_title: str
    superseded: bool
    superseded_by: str | None
    discrepancies: list[str]


_CLASS_NAMES = {
    "imid": "an immunomodulatory drug (IMiD)",
    "pi": "a proteasome inhibitor (PI)",
    "anti_cd38": "an anti-CD38 antibody",
    "bcma": "a BCMA-directed agent",
}


def eligibility(inp: EligibilityInput, protocol: Protocol) -> EligibilityResult:
    """Screen eligibility against the chosen label version's indication and cautions."""
    crit = protocol.eligibility.criteria[inp.criteria]
    ind = crit.products[inp.product]
    items: list[CriterionResult] = []
    unmet: list[str] = []

    def add(key: str, met: bool, text: str) -> None:
        items.append(
            CriterionResult(
                key=key,
                kind="indication",
                met=met,
                text=text,
                source=ind.source,
                verified=ind.verified,
            )
        )
        if not met:
            unmet.append(key)

    add(
        "prior_lines",
        inp.prior_lines >= ind.min_prior_lines,
        f"At least {ind.min_prior_lines} prior line(s) of therapy (recorded: {inp.prior_lines})",
    )
    for cls in ("imid", "pi", "anti_cd38"):
        if cls in ind.required_exposure:
            add(cls, cls in inp.exposed_to, f"Prior exposure to {_CLASS_NAMES[cls]}")
    if ind.lenalidomide_refractory_required:
        add(
            "lenalidomide_refractory",
            inp.lenalidomide_refractory,
            "Refractory to lenalidomide",
        )
    cfg = protocol.eligibility.cautions
    present = {
        "active_infection": inp.active_infection,
        "ecog": inp.ecog is not None
        and inp.ecog >= protocol.eligibility.ecog_review_at_or_above.value,
        "cns_involvement": inp.cns_involvement,
        "prior_bcma_therapy": inp.prior_bcma_therapy or "bcma" in inp.exposed_to,
        "rapid_progression": inp.rapid_progression,
    }
    cautions = [k for k, on in present.items() if on]
    for key in cautions:
        c = cfg[key]
        text = c.text if key != "ecog" else f"{c.text} (recorded ECOG {inp.ecog})"
        items.append(
            CriterionResult(
                key=key, kind="caution", met=False, text=text, source=c.source, verified=c.verified
            )
        )
    blocking = [k for k in cautions if cfg[k].blocking]
    if unmet:
        status: EligibilityStatus = "not_eligible"
    elif blocking:
        status = "review"
    else:
        status = "eligible"
    name = PRODUCT_LABELS[inp.product]
    lines = {
        "eligible": f"Eligible for {name} under {crit.title}",
        "not_eligible": f"Not eligible for {name} under {crit.title}",
        "review": f"Indication met for {name} under {crit.title}, but needs review before infusion",
    }
    detail = [f"unmet: {i.text}" for i in items if i.kind == "indication" and not i.met]
    detail += [f"caution: {cfg[k].text}" for k in cautions]
    explanation = lines[status] + (" — " + "; ".join(detail) if detail else "")
    explanation += f" [{ind.source}]"
    superseded_by = crit.superseded_by
    if superseded_by is not None:
        current = protocol.eligibility.criteria[superseded_by]
        explanation = (
            f"SUPERSEDED label version: the current indication is {current.title} "
            f"({current.products[inp.product].summary}). " + explanation
        )
    return EligibilityResult(
        status=status,
        unmet=unmet,
        cautions=cautions,
        items=items,
        criteria_title=crit.title,
        superseded=superseded_by is not None,
        superseded_by=superseded_by,
        discrepancies=list(crit.discrepancies),
        explanation=explanation,
    )


RuleFn = Callable[[BaseModel, Protocol], Result]

RULES: dict[str, tuple[type[StrictInput], Callable[..., Result]]] = {
    "crs_grade": (CrsInput, crs_grade),
    "ice_score": (IceInput, ice_score),
    "icans_grade": (IcansInput, icans_grade),
    "ctcae_grade": (CtcaeInput, ctcae_grade),
    "tocilizumab_dose": (TocilizumabDoseInput, tocilizumab_dose),
    "tocilizumab_check": (TocilizumabCheckInput, tocilizumab_check),
    "eligibility": (EligibilityInput, eligibility),
}
"""Every rule by its contract name: (input model, function)."""

"""The rules engine: pure, typed functions over strict pydantic inputs.

Every function has the shape ``rule(input_model, protocol) -> result_model`` and
follows ``design/validation-vectors.md`` exactly. Every number comes from the
:class:`~bedside.protocol.Protocol`; every result carries a plain-language
``explanation`` a nurse can read, naming the rule's source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bedside.errors import InputError
from bedside.labels import PRODUCT_LABELS
from bedside.protocol import DrugClass, LabelVersion, Product, Protocol
from bedside.timeutil import Instant

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


class TocilizumabDoseResult(Result):
    """The tocilizumab dose, its volume, and the uncapped dose when the cap applied."""

    dose_mg: float
    uncapped_mg: float
    capped: bool
    volume_ml: float
    mg_per_kg: float
    max_dose_mg: float


def tocilizumab_dose(inp: TocilizumabDoseInput, protocol: Protocol) -> TocilizumabDoseResult:
    """Tocilizumab dose: mg/kg by weight band, capped at the protocol maximum."""
    t = protocol.tocilizumab
    lo, hi = t.plausible_weight_min_kg.value, t.plausible_weight_max_kg.value
    if not lo <= inp.weight_kg <= hi:
        raise InputError(
            f"weight_kg: {inp.weight_kg:g} kg is outside the plausible range {lo:g}–{hi:g} kg "
            "(check the unit: kilograms, not pounds)"
        )
    below = inp.weight_kg < t.low_weight_threshold_kg.value
    per_kg = t.mg_per_kg_below_threshold.value if below else t.mg_per_kg.value
    uncapped = Decimal(str(inp.weight_kg)) * Decimal(str(per_kg))
    cap = Decimal(str(t.max_dose_mg.value))
    capped = uncapped > cap
    dose = cap if capped else uncapped
    volume = dose / Decimal(str(t.concentration_mg_per_ml.value))
    band = (
        f"{per_kg:g} mg/kg (weight below {t.low_weight_threshold_kg.value:g} kg)"
        if below
        else f"{per_kg:g} mg/kg"
    )
    text = f"{float(dose):g} mg = {inp.weight_kg:g} kg × {band}"
    if capped:
        text = (
            f"{float(dose):g} mg: capped at the {float(cap):g} mg maximum — the weight-based dose "
            f"would be {float(uncapped):g} mg ({inp.weight_kg:g} kg × {band}); confirm the weight"
        )
    step = Decimal(str(protocol.drug_library.volume_round_ml.value))
    shown_ml = (volume / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    text += (
        f"; {float(shown_ml):g} mL of {t.concentration_mg_per_ml.value:g} mg/mL concentrate "
        f"[{_src(protocol, t.mg_per_kg.source)}]"
    )
    return TocilizumabDoseResult(
        dose_mg=float(dose),
        uncapped_mg=float(uncapped),
        capped=capped,
        volume_ml=float(volume),
        mg_per_kg=per_kg,
        max_dose_mg=float(cap),
        explanation=text,
    )


class TocilizumabCheckInput(StrictInput):
    """Doses already recorded in this course and the proposed time."""

    given_at: list[Instant]
    at: Instant


class TocilizumabCheckResult(Result):
    """Whether a dose may be given at ``at``, and if not, why and when."""

    allowed: bool
    reasons: list[LimitReason]
    hard_limit: bool
    next_allowed_at: datetime | None
    doses_last_24h: int
    total: int
    window_frees_at: datetime | None
    reason_text: dict[str, str]


def _violations(doses: list[datetime], at: datetime, protocol: Protocol) -> list[LimitReason]:
    """Limits broken by adding a dose at ``at`` to the recorded ``doses``."""
    t = protocol.tocilizumab
    gap = timedelta(hours=t.min_interval.value)
    window = timedelta(hours=t.window_h.value)
    reasons: list[LimitReason] = []
    if any(abs(d - at) < gap for d in doses):
        reasons.append("min_interval")
    everything = [*doses, at]
    # Only windows (end - 24 h, end] that contain ``at`` can be changed by the new dose; the
    # busiest such window ends at ``at`` or at a later recorded dose.
    ends = [e for e in everything if at <= e < at + window]
    if any(sum(1 for d in everything if e - window < d <= e) > t.max_per_24h.value for e in ends):
        reasons.append("max_per_24h")
    if len(doses) + 1 > t.max_total.value:
        reasons.append("max_total")
    return reasons


def tocilizumab_check(inp: TocilizumabCheckInput, protocol: Protocol) -> TocilizumabCheckResult:
    """Check a proposed tocilizumab dose against the interval, 24 h and course limits."""
    t = protocol.tocilizumab
    doses = sorted(inp.given_at)
    at = inp.at
    gap = timedelta(hours=t.min_interval.value)
    window = timedelta(hours=t.window_h.value)
    reasons = _violations(doses, at, protocol)
    last24 = sum(1 for d in doses if at - window < d <= at)
    next_at: datetime | None
    if len(doses) >= t.max_total.value:
        next_at = None
    else:
        candidates = sorted({at, *(d + gap for d in doses), *(d + window for d in doses)})
        next_at = next(c for c in candidates if c >= at and not _violations(doses, c, protocol))
    in_window = [d for d in doses if at - window < d <= at]
    frees = (min(in_window) + window) if len(in_window) >= t.max_per_24h.value else None
    enforcement = {
        "min_interval": t.min_interval.enforcement,
        "max_per_24h": t.max_per_24h.enforcement,
        "max_total": t.max_total.enforcement,
    }
    texts = {
        "min_interval": (
            f"less than {t.min_interval.value:g} h from another dose "
            f"({t.min_interval.enforcement} limit)"
        ),
        "max_per_24h": (
            f"would make more than {t.max_per_24h.value} doses in a {t.window_h.value:g} h window "
            f"({t.max_per_24h.enforcement} limit)"
        ),
        "max_total": (
            f"course maximum of {t.max_total.value} doses reached ({t.max_total.enforcement} limit)"
        ),
    }
    hard = any(enforcement[r] == "hard" for r in reasons)
    src = _src(protocol, t.max_total.source)
    if not reasons:
        explanation = (
            f"Allowed: dose {len(doses) + 1} of at most {t.max_total.value}; "
            f"{last24} in the last {t.window_h.value:g} h [{src}]"
        )
    else:
        explanation = "Not allowed: " + "; ".join(texts[r] for r in reasons) + f" [{src}]"
    return TocilizumabCheckResult(
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

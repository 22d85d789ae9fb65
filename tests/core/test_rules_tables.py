"""Table tests of the rules engine from the worked examples of the clinical reference.

Each row cites the section of ``reference/clinical.md`` it comes from; the expected
values are the reference's, not the engine's. The second half checks that bad input
is rejected with an error that names the offending field, so a nurse (or the log)
can tell which entry to correct.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.rules import (
    CrsInput,
    CtcaeInput,
    EligibilityInput,
    IcansInput,
    IceInput,
    TocilizumabCheckInput,
    TocilizumabDoseInput,
    crs_grade,
    ctcae_grade,
    eligibility,
    icans_grade,
    ice_score,
    tocilizumab_check,
    tocilizumab_dose,
)
from bedside.common.errors import InputError

PROTOCOL = load_default_protocol()


# --------------------------------------------------------------------------- CRS (section 1)


@pytest.mark.parametrize(
    ("source", "data", "grade", "drivers"),
    [
        (
            "R2 Lee worked example: T 39.5 + 1 vasopressor + low-flow NC",
            {
                "temperature_c": 39.5,
                "vasopressors": ["norepinephrine"],
                "oxygen_device": "nasal_cannula",
                "oxygen_flow_l_min": 2,
            },
            3,
            {"hypotension"},
        ),
        ("R1 fever is >= 38.0", {"temperature_c": 38.0}, 1, {"fever"}),
        ("R1 37.9 is no fever", {"temperature_c": 37.9}, 0, set()),
        (
            "D5 non-febrile hypotension without antipyretic is not CRS",
            {"temperature_c": 37.2, "hypotension": True},
            0,
            set(),
        ),
        (
            "R3 after tocilizumab/steroids fever is not required",
            {"temperature_c": 37.2, "hypotension": True, "fever_masked": True},
            2,
            {"hypotension"},
        ),
        (
            "1.1 hypotension without vasopressor",
            {"temperature_c": 38.6, "hypotension": True},
            2,
            {"hypotension"},
        ),
        (
            "R4 vasopressin added to one agent is still one",
            {"temperature_c": 38.6, "vasopressors": ["norepinephrine", "vasopressin"]},
            3,
            {"hypotension"},
        ),
        (
            "R4 norepinephrine + phenylephrine is multiple",
            {"temperature_c": 38.6, "vasopressors": ["norepinephrine", "phenylephrine"]},
            4,
            {"hypotension"},
        ),
        (
            "R4 norepinephrine + dopamine is multiple",
            {"temperature_c": 38.6, "vasopressors": ["norepinephrine", "dopamine"]},
            4,
            {"hypotension"},
        ),
        (
            "R5 blow-by is low flow",
            {"temperature_c": 38.6, "oxygen_device": "blow_by"},
            2,
            {"hypoxia"},
        ),
        (
            "R5 low flow is <= 6 L/min",
            {"temperature_c": 38.6, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6},
            2,
            {"hypoxia"},
        ),
        (
            "R5 high flow is > 6 L/min",
            {"temperature_c": 38.6, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6.5},
            3,
            {"hypoxia"},
        ),
        ("1.1 Venturi mask", {"temperature_c": 38.6, "oxygen_device": "venturi"}, 3, {"hypoxia"}),
        (
            "1.1 positive pressure",
            {"temperature_c": 38.6, "oxygen_device": "bipap"},
            4,
            {"hypoxia"},
        ),
        (
            "R2 the more severe of hypotension and hypoxia",
            {
                "temperature_c": 38.6,
                "vasopressors": ["norepinephrine"],
                "oxygen_device": "mechanical_ventilation",
            },
            4,
            {"hypoxia"},
        ),
        (
            "R2 equal grades: both drive",
            {"temperature_c": 38.6, "vasopressors": ["epinephrine"], "oxygen_device": "face_mask"},
            3,
            {"hypotension", "hypoxia"},
        ),
    ],
)
def test_crs_reference_table(
    source: str, data: dict[str, Any], grade: int, drivers: set[str]
) -> None:
    result = crs_grade(CrsInput.model_validate(data), PROTOCOL)
    assert result.grade == grade, source
    assert set(result.drivers) == drivers, source
    assert result.explanation, source


# --------------------------------------------------------------------------- ICE / ICANS (2)


@pytest.mark.parametrize(
    ("items", "score"),
    [
        ((4, 3, 1, 1, 1), 10),
        ((2, 3, 1, 0, 0), 6),  # year and month right, names all 3 objects, follows command
        ((0, 0, 0, 0, 0), 0),
    ],
)
def test_ice_score_reference(items: tuple[int, ...], score: int) -> None:
    keys = ("orientation", "naming", "commands", "writing", "attention")
    result = ice_score(IceInput.model_validate(dict(zip(keys, items, strict=True))), PROTOCOL)
    assert result.score == score


@pytest.mark.parametrize(
    ("source", "data", "grade", "drivers"),
    [
        (
            "N1 ICE 3 + generalised seizure that resolved",
            {"ice_score": 3, "seizure": "resolved"},
            3,
            {"seizure"},
        ),
        (
            "N2 awake patient with ICE 0 (global aphasia)",
            {"ice_score": 0, "consciousness": "alert"},
            3,
            {"ice"},
        ),
        (
            "N2 ICE 0 because unarousable",
            {"ice_score": 0, "consciousness": "unarousable"},
            4,
            {"ice", "consciousness"},
        ),
        ("2.2 ICE 7-9", {"ice_score": 7}, 1, {"ice"}),
        ("2.2 ICE 3-6", {"ice_score": 6}, 2, {"ice"}),
        (
            "2.2 awakens only to touch",
            {"ice_score": 10, "consciousness": "awakens_to_touch"},
            3,
            {"consciousness"},
        ),
        (
            "2.2 seizure > 5 min",
            {"ice_score": 8, "seizure": "prolonged_or_repetitive"},
            4,
            {"seizure"},
        ),
        ("2.2 hemiparesis", {"ice_score": 9, "motor": "deep_focal_weakness"}, 4, {"motor"}),
        (
            "N5 CN VI palsy / papilloedema are raised ICP (diffuse)",
            {"ice_score": 9, "cerebral_edema": "diffuse"},
            4,
            {"cerebral_edema"},
        ),
        ("2.2 focal oedema", {"ice_score": 10, "cerebral_edema": "focal"}, 3, {"cerebral_edema"}),
        (
            "anchors 7: ICE not assessable is not ICE 0",
            {"ice_score": None, "consciousness": "alert"},
            0,
            set(),
        ),
    ],
)
def test_icans_reference_table(
    source: str, data: dict[str, Any], grade: int, drivers: set[str]
) -> None:
    result = icans_grade(IcansInput.model_validate(data), PROTOCOL)
    assert result.grade == grade, source
    assert set(result.drivers) == drivers, source


@pytest.mark.parametrize("key", ["tremor", "myoclonus", "facial_palsy", "headache"])
def test_non_icans_findings_are_not_inputs(key: str) -> None:
    """N3/N5: tremor, myoclonus, facial (VII) palsy are graded elsewhere, never ICANS."""
    with pytest.raises(ValidationError) as exc:
        IcansInput.model_validate({"ice_score": 10, key: True})
    assert (key,) in [tuple(e["loc"]) for e in exc.value.errors()]


# --------------------------------------------------------------------------- CTCAE (5.1)


@pytest.mark.parametrize(
    ("data", "grade"),
    [
        ({"test": "neutrophils", "value": 1400, "unit": "/uL"}, 2),
        ({"test": "neutrophils", "value": 1.4, "unit": "10^9/L"}, 2),
        ({"test": "neutrophils", "value": 400, "unit": "/uL"}, 4),
        ({"test": "platelets", "value": 20000, "unit": "/uL"}, 4),
        ({"test": "platelets", "value": 60, "unit": "10^9/L"}, 2),
        ({"test": "hemoglobin", "value": 7.9, "unit": "g/dL"}, 3),
        ({"test": "hemoglobin", "value": 79, "unit": "g/L"}, 3),
        ({"test": "hemoglobin", "value": 3.0, "unit": "g/dL"}, 3),  # never 4 from a value
        ({"test": "hemoglobin", "value": 9.0, "unit": "g/dL"}, 2),
        ({"test": "lymphocytes", "value": 150, "unit": "/uL"}, 4),
        ({"test": "lymphocytes", "value": 0.6, "unit": "10^9/L"}, 2),
        ({"test": "wbc", "value": 2.5, "unit": "10^9/L"}, 2),
        ({"test": "wbc", "value": 1500, "unit": "/uL"}, 3),
        ({"test": "neutrophils", "value": 1.9, "unit": "10^9/L", "lln": 1.8}, 0),
        ({"test": "neutrophils", "value": 1.9, "unit": "10^9/L", "lln": 2.5}, 1),
    ],
)
def test_ctcae_reference_table(data: dict[str, Any], grade: int) -> None:
    assert ctcae_grade(CtcaeInput.model_validate(data), PROTOCOL).grade == grade


@pytest.mark.parametrize(
    ("data", "grade"),
    [
        # Duffy-null reference range: neutrophil LLN about 1.2 x10^9/L
        ({"test": "neutrophils", "value": 1.3, "unit": "10^9/L", "lln": 1.2}, 2),
        ({"test": "neutrophils", "value": 1300, "unit": "/uL", "lln": 1200}, 2),
        ({"test": "lymphocytes", "value": 0.75, "unit": "10^9/L", "lln": 0.7}, 2),
    ],
)
def test_ctcae_lln_below_a_grade_cutoff(data: dict[str, Any], grade: int) -> None:
    """5.1: the grade 2-4 intervals are absolute; only grade 1 is anchored on the LLN."""
    assert ctcae_grade(CtcaeInput.model_validate(data), PROTOCOL).grade == grade


# --------------------------------------------------------------------------- tocilizumab (3.1)


@pytest.mark.parametrize(
    ("weight", "dose", "uncapped", "capped", "volume"),
    [
        (70, 560, 560, False, 28),  # 8 mg/kg, 0.4 mL/kg of 20 mg/mL
        (50, 400, 400, False, 20),
        (20, 240, 240, False, 12),  # 12 mg/kg below 30 kg, 0.6 mL/kg
        (30, 240, 240, False, 12),  # 30 kg is not "below 30 kg"
        (100, 800, 800, False, 40),
        (120, 800, 960, True, 40),  # 800 mg maximum per dose
    ],
)
def test_tocilizumab_dose_reference(
    weight: float, dose: float, uncapped: float, capped: bool, volume: float
) -> None:
    result = tocilizumab_dose(TocilizumabDoseInput.model_validate({"weight_kg": weight}), PROTOCOL)
    assert result.dose_mg == pytest.approx(dose)
    assert result.uncapped_mg == pytest.approx(uncapped)
    assert result.capped is capped
    assert result.volume_ml == pytest.approx(volume)


T0 = datetime(2026, 4, 1, 6, tzinfo=UTC)


def _check(given: list[datetime], at: datetime):
    return tocilizumab_check(
        TocilizumabCheckInput.model_validate({"given_at": given, "at": at}), PROTOCOL
    )


def test_q8h_fourth_dose_on_the_24h_boundary_is_allowed() -> None:
    """3.1: "at exactly q8h the 4th dose falls on the 24-h boundary"; window is (t-24h, t]."""
    given = [T0, T0 + timedelta(hours=8), T0 + timedelta(hours=16)]
    on_time = _check(given, T0 + timedelta(hours=24))
    assert on_time.allowed
    assert on_time.doses_last_24h == 2
    early = _check(given, T0 + timedelta(hours=24, seconds=-1))
    assert not early.allowed
    assert set(early.reasons) == {"min_interval", "max_per_24h"}
    assert early.next_allowed_at == T0 + timedelta(hours=24)


def test_max_four_doses_per_course() -> None:
    given = [T0 + timedelta(hours=h) for h in (0, 12, 24, 36)]
    result = _check(given, T0 + timedelta(days=3))
    assert not result.allowed
    assert result.reasons == ["max_total"]
    assert result.next_allowed_at is None
    assert result.total == 4


# --------------------------------------------------------------------------- eligibility (7)


@pytest.mark.parametrize(
    ("source", "data", "status", "unmet", "cautions"),
    [
        (
            "7.1 ide-cel 2024: >= 2 lines incl. IMiD, PI, anti-CD38",
            {"product": "ide-cel", "criteria": "label-2024", "prior_lines": 2,
             "exposed_to": ["imid", "pi", "anti_cd38"]},
            "eligible", set(), set(),
        ),
        (
            "D1 the seed's >= 4 lines (label-2021) for the same patient",
            {"product": "ide-cel", "criteria": "label-2021", "prior_lines": 2,
             "exposed_to": ["imid", "pi", "anti_cd38"]},
            "not_eligible", {"prior_lines"}, set(),
        ),
        (
            "7.1 cilta-cel 2024: >= 1 line incl. PI + IMiD, lenalidomide-refractory",
            {"product": "cilta-cel", "criteria": "label-2024", "prior_lines": 1,
             "exposed_to": ["pi", "imid"], "lenalidomide_refractory": True},
            "eligible", set(), set(),
        ),
        (
            "D2 cilta-cel 2024 needs lenalidomide-refractory disease",
            {"product": "cilta-cel", "criteria": "label-2024", "prior_lines": 1,
             "exposed_to": ["pi", "imid"]},
            "not_eligible", {"lenalidomide_refractory"}, set(),
        ),
        (
            "7.3 prior BCMA therapy is a warning, not a hard stop",
            {"product": "cilta-cel", "criteria": "label-2024", "prior_lines": 2,
             "exposed_to": ["pi", "imid", "bcma"], "lenalidomide_refractory": True,
             "prior_bcma_therapy": True},
            "eligible", set(), {"prior_bcma_therapy"},
        ),
        (
            "7.1 no infusion with active infection",
            {"product": "ide-cel", "criteria": "label-2024", "prior_lines": 3,
             "exposed_to": ["imid", "pi", "anti_cd38"], "active_infection": True},
            "review", set(), {"active_infection"},
        ),
    ],
)  # fmt: skip
def test_eligibility_reference_table(
    source: str, data: dict[str, Any], status: str, unmet: set[str], cautions: set[str]
) -> None:
    result = eligibility(EligibilityInput.model_validate(data), PROTOCOL)
    assert result.status == status, source
    assert set(result.unmet) == unmet, source
    assert set(result.cautions) == cautions, source


# --------------------------------------------------------------------------- bad input


NAIVE = datetime(2026, 4, 1, 8, 0)  # deliberately without an offset


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (TocilizumabDoseInput, {"weight_kg": "70"}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": math.nan}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": math.inf}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": -math.inf}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": -1}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": 0}, ("weight_kg",)),
        (TocilizumabDoseInput, {"weight_kg": True}, ("weight_kg",)),
        (TocilizumabDoseInput, {"wieght_kg": 70}, ("wieght_kg",)),
        (TocilizumabDoseInput, {"weight_kg": 70, "height_cm": 170}, ("height_cm",)),
        (TocilizumabCheckInput, {"given_at": [], "at": NAIVE}, ("at",)),
        (TocilizumabCheckInput, {"given_at": [], "at": "2026-04-01T08:00:00"}, ("at",)),
        (TocilizumabCheckInput, {"given_at": [NAIVE], "at": T0}, ("given_at", 0)),
        (TocilizumabCheckInput, {"given_at": [T0, NAIVE], "at": T0}, ("given_at", 1)),
        (TocilizumabCheckInput, {"given_at": T0, "at": T0}, ("given_at",)),
        (TocilizumabCheckInput, {"given_at": [], "at": 1775030400}, ("at",)),
        (CrsInput, {"temperature_c": math.nan}, ("temperature_c",)),
        (CrsInput, {"temperature_c": "39"}, ("temperature_c",)),
        (CrsInput, {"temprature_c": 39.0}, ("temprature_c",)),
        (CrsInput, {"oxygen_device": "nasal_prongs"}, ("oxygen_device",)),
        (
            CrsInput,
            {"oxygen_device": "nasal_cannula", "oxygen_flow_l_min": math.inf},
            ("oxygen_flow_l_min",),
        ),
        (CrsInput, {"vasopressors": "norepinephrine"}, ("vasopressors",)),
        (IceInput, {"orientation": 5, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
         ("orientation",)),
        (IceInput, {"orientation": 4, "naming": 3, "commands": 1.0, "writing": 1, "attention": 1},
         ("commands",)),
        (IceInput, {"orientation": 4, "naming": 3, "commands": 1, "writing": 1}, ("attention",)),
        (IcansInput, {"ice_score": 11}, ("ice_score",)),
        (IcansInput, {"ice_score": 5, "consciousness": "drowsy"}, ("consciousness",)),
        (CtcaeInput, {"test": "neutrophils", "value": math.nan, "unit": "10^9/L"}, ("value",)),
        (CtcaeInput, {"test": "neutrophils", "value": -1, "unit": "10^9/L"}, ("value",)),
        (CtcaeInput, {"test": "anc", "value": 1.0, "unit": "10^9/L"}, ("test",)),
        (EligibilityInput, {"product": "ide-cel", "criteria": "label-2024", "prior_lines": 2,
                            "exposed_to": ["imid", "dara"]}, ("exposed_to", 1)),
        (EligibilityInput, {"product": "ide-cel", "criteria": "label-2024", "prior_lines": 2,
                            "exposed_to": [], "ecog": 6}, ("ecog",)),
        (EligibilityInput, {"product": "ide-cel", "criteria": "label-2024", "prior_lines": -1,
                            "exposed_to": []}, ("prior_lines",)),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(model: type[BaseModel], data: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    locs = [tuple(e["loc"]) for e in exc.value.errors()]
    assert loc in locs, locs
    assert str(loc[0]) in str(exc.value)


@pytest.mark.parametrize(
    ("model", "fn", "data", "field"),
    [
        (TocilizumabDoseInput, tocilizumab_dose, {"weight_kg": 1000}, "weight_kg"),
        (TocilizumabDoseInput, tocilizumab_dose, {"weight_kg": 0.5}, "weight_kg"),
        (CrsInput, crs_grade, {"temperature_c": 39.0, "oxygen_device": "nasal_cannula"},
         "oxygen_flow_l_min"),
        (CtcaeInput, ctcae_grade, {"test": "platelets", "value": 100, "unit": "g/dL"}, "unit"),
        (CtcaeInput, ctcae_grade, {"test": "hemoglobin", "value": 9, "unit": "/uL"}, "unit"),
    ],
)  # fmt: skip
def test_rule_level_rejections_name_the_field(
    model: type[BaseModel], fn: Any, data: dict, field: str
) -> None:
    """Rejections that need the protocol or several fields: still an error naming the field."""
    with pytest.raises((ValidationError, InputError)) as exc:
        fn(model.model_validate(data), PROTOCOL)
    assert field in str(exc.value)

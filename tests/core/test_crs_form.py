"""The CRS form shows the patient's real state (issue 10, item 3), from the core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.crsform import crs_prefill, crs_verdict, fever_masking
from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.record import CrsAssessment
from bedside.clinical.rules import CrsInput, crs_grade
from bedside.common.clock import FakeClock
from bedside.common.errors import ConfirmationRequired
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
P = load_default_protocol()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Ward:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


@pytest.fixture
def pid(ward: Ward, clock: FakeClock) -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="MRN-1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=T0,
        product="ide-cel",
        infusion_at=T0 - 48 * H,
        dose_history_complete=True,
    )


def vitals(ward: Ward, clock: FakeClock, pid: str, **kw: object) -> None:
    clock.advance(H)
    ward.chart(pid, "vitals", recorded_by="AB", **kw)


def prefill(ward: Ward, pid: str):  # type: ignore[no-untyped-def]
    return crs_prefill(ward.record(pid), P, ward.clock.now())


def test_highest_temperature_since_last_assessment_not_the_latest(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    vitals(ward, clock, pid, temperature_c=37.0)
    ward.assess_crs(pid, {"temperature_c": 37.0}, recorded_by="AB")
    vitals(ward, clock, pid, temperature_c=39.1)
    vitals(ward, clock, pid, temperature_c=37.4)
    pre = prefill(ward, pid)
    assert pre.inputs["temperature_c"] == 39.1
    assert "Highest since the last assessment" in pre.notes["temperature_c"]
    assert pre.recorded_grade == 0


def test_paracetamol_after_fever_masks_and_grade_is_not_zero(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    """Issue: 39.1 °C three hours ago, then paracetamol, showed "GRADE 0 — no CRS"."""
    vitals(ward, clock, pid, temperature_c=39.1)
    clock.advance(H)
    ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="other",
        drug_name="Paracetamol",
        dose=1000.0,
        unit="mg",
        route="PO",
        given_by="AB",
    )
    vitals(ward, clock, pid, temperature_c=37.2)
    pre = prefill(ward, pid)
    assert pre.inputs["temperature_c"] == 39.1
    assert pre.inputs["fever_masked"] is True
    assert "Paracetamol (antipyretic)" in pre.masking.reason
    result = crs_grade(CrsInput.model_validate(pre.inputs), P)
    assert result.grade == 1


def test_antipyretic_premedication_before_any_crs_does_not_mask(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="other",
        drug_name="acetaminophen",
        dose=650.0,
        unit="mg",
        route="PO",
        given_by="AB",
    )
    vitals(ward, clock, pid, temperature_c=37.0)
    assert not fever_masking(ward.record(pid), P, clock.now()).masked


def test_hypotension_pressors_oxygen_carried_forward_until_resolved(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.advance(H)
    ward.assess_crs(
        pid,
        {
            "temperature_c": 38.9,
            "hypotension": True,
            "vasopressors": ["norepinephrine"],
            "oxygen_device": "nasal_cannula",
            "oxygen_flow_l_min": 3.0,
        },
        recorded_by="AB",
    )
    vitals(ward, clock, pid, temperature_c=38.2, oxygen_device="face_mask", oxygen_flow_l_min=8.0)
    vitals(ward, clock, pid, temperature_c=37.9)  # latest vitals on room air
    pre = prefill(ward, pid)
    assert pre.inputs["hypotension"] is True
    assert pre.inputs["vasopressors"] == ["norepinephrine"]
    assert pre.inputs["oxygen_device"] == "face_mask"  # the worst since, not the latest
    assert pre.inputs["temperature_c"] == 38.2
    assert "carried forward" in pre.notes["hypotension"]
    assert pre.recorded_grade == 3
    # The nurse marks them resolved: the next prefill no longer carries them.
    clock.advance(H)
    ward.assess_crs(
        pid,
        {"temperature_c": 38.2, "hypotension": False},
        recorded_by="AB",
        confirmation={"limits": ["crs_improved"]},
    )
    pre = prefill(ward, pid)
    assert pre.inputs["hypotension"] is False and pre.inputs["vasopressors"] == []
    assert pre.inputs["oxygen_device"] == "none"


def test_low_systolic_since_the_assessment_prefills_hypotension(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    vitals(ward, clock, pid, temperature_c=38.4, systolic_mmhg=84, diastolic_mmhg=50)
    pre = prefill(ward, pid)
    assert pre.inputs["hypotension"] is True and "systolic 84 mmHg" in pre.notes["hypotension"]


def test_lower_grade_needs_improved_confirmation_naming_both(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    ward.assess_crs(pid, {"temperature_c": 38.9, "hypotension": True}, recorded_by="AB")
    clock.advance(H)
    n = len(ward.record(pid).events)
    with pytest.raises(ConfirmationRequired) as err:
        ward.assess_crs(pid, {"temperature_c": 38.4}, recorded_by="AB")
    assert err.value.needed == ["crs_improved"]
    assert "grade 2" in str(err.value) and "grade 1" in str(err.value)
    assert len(ward.record(pid).events) == n
    ev, result = ward.assess_crs(
        pid,
        {"temperature_c": 38.4},
        recorded_by="AB",
        confirmation={"limits": ["crs_improved"]},
    )
    assert result.grade == 1
    assert isinstance(ev, CrsAssessment) and ev.confirmation is not None
    assert ev.confirmation.limits == ["crs_improved"]
    # The same or a higher grade needs nothing.
    clock.advance(H)
    ward.assess_crs(pid, {"temperature_c": 38.4}, recorded_by="AB")


def test_masking_stays_on_after_an_interim_grade_0(ward: Ward, clock: FakeClock, pid: str) -> None:
    """Issue: the box unticked itself after an interim grade 0 following tocilizumab."""
    ward.assess_crs(pid, {"temperature_c": 38.9, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(2 * H)
    ward.assess_crs(
        pid, {"temperature_c": 36.8}, recorded_by="AB", confirmation={"limits": ["crs_improved"]}
    )
    clock.advance(2 * H)
    pre = prefill(ward, pid)
    assert pre.inputs["fever_masked"] is True
    assert "Tocilizumab" in pre.masking.reason and "rest of this course" in pre.masking.reason
    # The service applies the record's masking even when a caller leaves it off.
    ev, result = ward.assess_crs(
        pid, {"temperature_c": 36.9, "hypotension": True}, recorded_by="AB"
    )
    assert result.grade == 2
    assert isinstance(ev, CrsAssessment) and ev.inputs["fever_masked"] is True


def test_grade_0_with_hypotension_without_fever_is_a_warning() -> None:
    result = crs_grade(
        CrsInput.model_validate({"temperature_c": 37.0, "vasopressors": ["norepinephrine"]}), P
    )
    kind, text = crs_verdict(result)
    assert result.grade == 0 and kind == "warning"
    assert "not CRS by ASTCT without fever" in text and "tell the doctor" in text
    ok = crs_grade(CrsInput.model_validate({"temperature_c": 37.0}), P)
    assert crs_verdict(ok)[0] == "ok"
    hypoxic = crs_grade(
        CrsInput.model_validate({"temperature_c": 37.0, "oxygen_device": "cpap"}), P
    )
    assert crs_verdict(hypoxic)[0] == "warning"


# --------------------------------------------------------------------------- grade CRS now


def grade_now(ward: Ward, pid: str):  # type: ignore[no-untyped-def]
    from bedside.clinical.escalations import derive_due

    items = derive_due(ward.record(pid), P, ward.clock.now(), zone=UTC)
    return [i for i in items if i.kind == "crs_grade_now"]


def test_new_fever_prompts_grading_until_graded(ward: Ward, clock: FakeClock, pid: str) -> None:
    vitals(ward, clock, pid, temperature_c=37.2)
    assert grade_now(ward, pid) == []
    vitals(ward, clock, pid, temperature_c=38.6)
    fever_at = clock.now()
    (item,) = grade_now(ward, pid)
    assert item.due_at == fever_at and item.state == "due"
    assert "Grade CRS now" in item.message and "38.6 °C" in item.message
    clock.advance(H)
    assert grade_now(ward, pid)[0].state == "overdue"
    ward.assess_crs(pid, {"temperature_c": 38.6}, recorded_by="AB")
    assert grade_now(ward, pid) == []
    # A later fever after that assessment prompts again.
    vitals(ward, clock, pid, temperature_c=38.1)
    assert len(grade_now(ward, pid)) == 1


def test_new_hypotension_or_oxygen_prompts_but_carried_ones_do_not(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    vitals(ward, clock, pid, temperature_c=37.0, systolic_mmhg=82, diastolic_mmhg=45)
    (item,) = grade_now(ward, pid)
    assert "systolic 82 mmHg" in item.message
    ward.assess_crs(pid, {"temperature_c": 37.0, "hypotension": True}, recorded_by="AB")
    vitals(ward, clock, pid, temperature_c=37.0, systolic_mmhg=85, diastolic_mmhg=45)
    assert grade_now(ward, pid) == []  # hypotension already graded
    vitals(
        ward, clock, pid, temperature_c=37.0, oxygen_device="nasal_cannula", oxygen_flow_l_min=2.0
    )
    (item,) = grade_now(ward, pid)
    assert "new oxygen (nasal cannula)" in item.message


def test_fever_before_infusion_does_not_prompt(ward: Ward, clock: FakeClock) -> None:
    pid = ward.create_patient(
        recorded_by="AB",
        patient_id="p2",
        mrn="MRN-2",
        name="Not Infused",
        date_of_birth="1960-05-01",
        sex="male",
        weight_kg=70.0,
        weight_measured_at=T0,
        product="cilta-cel",
    )
    vitals(ward, clock, pid, temperature_c=38.9)
    assert grade_now(ward, pid) == []


def test_contract_escalations_still_hold_with_the_new_kind() -> None:
    from bedside.clinical.escalations import compare_escalations, contract_escalations

    got = contract_escalations(
        {
            "events": [{"kind": "vitals", "at": "2026-03-01T10:00:00Z", "temperature_c": 38.5}],
            "now": "2026-03-01T10:30:00Z",
        },
        P,
    )
    kinds = {d["kind"] for d in got["due"]}
    assert {"vitals_next", "crs_grade_now"} <= kinds
    assert (
        compare_escalations(
            {"due": [{"kind": "vitals_next", "due_at": "2026-03-01T12:00:00Z"}]}, got
        )
        == []
    )


def test_no_temperature_since_the_assessment_falls_back_to_the_last_24_h(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    vitals(ward, clock, pid, temperature_c=38.7)
    vitals(ward, clock, pid, temperature_c=38.2)
    clock.advance(timedelta(minutes=5))
    ward.assess_crs(pid, {"temperature_c": 38.2}, recorded_by="AB")
    pre = prefill(ward, pid)
    assert pre.inputs["temperature_c"] == 38.7
    assert "highest in the last 24 h" in pre.notes["temperature_c"]
    clock.advance(30 * H)
    assert prefill(ward, pid).inputs["temperature_c"] is None

"""Dose error reduction (issue 10, item 5): the drug library enforced in the ward service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.dosecheck import (
    check_dose,
    check_lab,
    check_oxygen,
    check_temperature,
    check_weight,
    round_to,
    shown_volume_ml,
)
from bedside.clinical.protocol import DEFAULT_PROTOCOL, load_default_protocol, parse_protocol
from bedside.clinical.record import Medication, PatientUpdate, Vitals
from bedside.clinical.rules import TocilizumabDoseInput, tocilizumab_dose
from bedside.common.clock import FakeClock
from bedside.common.errors import ConfirmationRequired, InputError
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
P = load_default_protocol()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Ward:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def _add(ward: Ward, clock: FakeClock, weight: float = 64.0) -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="MRN-1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=weight,
        weight_measured_at=clock.now(),
        product="ide-cel",
    )


def _weigh(ward: Ward, pid: str, kg: float, **kw: object) -> object:
    return ward.chart(
        pid,
        "patient_update",
        recorded_by="AB",
        changes={"weight_kg": kg, "weight_measured_at": ward.clock.now().isoformat()},
        **kw,
    )


# --------------------------------------------------------------------------- protocol data


def test_every_library_number_is_sourced_and_local_is_unverified() -> None:
    lib = P.drug_library
    entries = [
        lib.weight_soft_min_kg,
        lib.weight_soft_max_kg,
        lib.weight_hard_min_kg,
        lib.weight_hard_max_kg,
        lib.weight_change_confirm_pct,
        lib.pounds_match_tolerance_pct,
        lib.fahrenheit_hint_min,
        lib.fahrenheit_hint_max,
        lib.volume_round_ml,
        lib.dose_round_mg,
        *lib.lab_max.values(),
        *lib.oxygen_flow.values(),
        *lib.doses.values(),
        P.crs_support.hypotension_systolic_below_mmhg,
    ]
    for e in entries:
        assert e.source
        if "LOCAL" in e.source:
            assert e.verified is False, e
    # Every drug the protocol can record by key has a range.
    for drug in ("tocilizumab", "dexamethasone", "methylprednisolone", "anakinra", "levetiracetam"):
        assert drug in lib.doses
    assert lib.doses["tocilizumab"].hard_max == P.tocilizumab.max_dose_mg.value


def test_incoherent_dose_range_is_refused() -> None:
    data = json.loads(DEFAULT_PROTOCOL.read_text(encoding="utf-8"))
    data["drug_library"]["doses"]["dexamethasone"]["soft_max"] = 50  # above hard_max 40
    with pytest.raises(Exception, match="hard_min <= soft_min"):
        parse_protocol(json.dumps(data))


# --------------------------------------------------------------------------- pure checks


def test_weight_checks() -> None:
    assert check_weight(66.0, 64.0, P) == []
    (hard,) = check_weight(7.0, 64.0, P)
    assert hard.hard and hard.code == "weight_hard_range"
    codes = {f.code for f in check_weight(100.0, 64.0, P)}
    assert codes == {"weight_change"}
    pounds = check_weight(141.0, 64.0, P)  # 64 kg typed in pounds
    assert any("looks like pounds" in f.message and "64" in f.message for f in pounds)
    assert not any(f.hard for f in pounds)
    assert {f.code for f in check_weight(35.0, None, P)} == {"weight_soft_range"}
    assert check_weight(400.0, None, P)[0].hard


def test_dose_checks() -> None:
    (hard,) = check_dose("dexamethasone", None, 100.0, "mg", 70.0, P)
    assert hard.hard and "40 mg" in hard.message
    (soft,) = check_dose("dexamethasone", None, 30.0, "mg", 70.0, P)
    assert not soft.hard and soft.code == "dose_soft_limit"
    assert check_dose("dexamethasone", None, 10.0, "mg", 70.0, P) == []
    assert check_dose("methylprednisolone", None, 1.0, "g", 70.0, P) == []
    assert check_dose("methylprednisolone", None, 3.0, "g", 70.0, P)[0].hard
    assert check_dose("methylprednisolone", None, 2.0, "mg/kg", 70.0, P) == []
    (unchecked,) = check_dose("dexamethasone", None, 2.0, "mL", 70.0, P)
    assert unchecked.code == "dose_unchecked" and not unchecked.hard
    # Drugs charted by name are found through the vocabulary.
    assert check_dose("other", "Acetaminophen", 2000.0, "mg", 70.0, P)[0].hard
    assert check_dose("other", "paracetamol", 1000.0, "mg", 70.0, P) == []
    assert check_dose("other", "vancomycin", 99999.0, "mg", 70.0, P) == []


def test_temperature_fahrenheit_hint() -> None:
    (f,) = check_temperature(100.4, P)
    assert f.hard and "Fahrenheit" in f.message and "38.0 °C" in f.message
    assert check_temperature(38.6, P) == []
    assert "not a possible temperature" in check_temperature(60.0, P)[0].message


def test_lab_unit_hint() -> None:
    (f,) = check_lab("neutrophils", 400.0, "10^9/L", P)
    assert f.hard and "cells/µL" in f.message and "0.4" in f.message
    assert check_lab("neutrophils", 400.0, "/uL", P) == []
    assert check_lab("neutrophils", 4.0, "10^9/L", P) == []
    assert "g/L" in check_lab("hemoglobin", 95.0, "g/dL", P)[0].message


@pytest.mark.parametrize(
    ("device", "flow", "ok"),
    [
        ("nasal_cannula", 0.0, False),
        ("nasal_cannula", None, False),
        ("nasal_cannula", 2.0, True),
        ("none", 10.0, False),
        ("none", None, True),
        ("none", 0.0, True),
        ("high_flow_nasal_cannula", 2.0, False),
        ("high_flow_nasal_cannula", 40.0, True),
        ("face_mask", 1.0, False),
        ("cpap", None, True),
    ],
)
def test_oxygen_contradictions(device: str, flow: float | None, ok: bool) -> None:
    found = check_oxygen(device, flow, P)
    assert (found == []) is ok
    assert all(f.hard for f in found)


def test_volume_rounding_rule() -> None:
    dose = tocilizumab_dose(TocilizumabDoseInput(weight_kg=64.3), P)
    assert dose.volume_ml == pytest.approx(25.72)
    assert shown_volume_ml(dose.volume_ml, P) == "25.7 mL"
    assert round_to(25.75, 0.1) == pytest.approx(25.8)


# --------------------------------------------------------------------------- the service


def test_weight_typing_errors_never_reach_the_dose(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    n = len(ward.record(pid).events)
    with pytest.raises(InputError, match="cannot be right"):
        _weigh(ward, pid, 7.0)
    with pytest.raises(ConfirmationRequired) as err:
        _weigh(ward, pid, 100.0)  # 56 % more than 64 kg
    assert err.value.needed == ["weight_change"]
    assert len(ward.record(pid).events) == n  # nothing written
    with pytest.raises(InputError, match="no longer needs"):
        _weigh(ward, pid, 65.0, confirmation={"limits": ["weight_change"]})
    saved = _weigh(ward, pid, 100.0, confirmation={"limits": ["weight_change"]})
    assert isinstance(saved, PatientUpdate)
    assert saved.confirmation is not None and saved.confirmation.limits == ["weight_change"]
    assert ward.patient(pid).weight_kg == 100.0


def test_admission_weight_outside_hard_range_refused(ward: Ward, clock: FakeClock) -> None:
    with pytest.raises(InputError, match="cannot be right"):
        _add(ward, clock, weight=7.0)
    assert ward.records == {}


def test_dose_outside_weight_range_needs_confirmation(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, weight=35.0)
    plan = ward.plan_tocilizumab(pid)
    assert [f.code for f in plan.confirmations] == ["weight_soft_range"]
    with pytest.raises(ConfirmationRequired):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    dose = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", weight_confirmed=True)
    assert dose.confirmation is not None and dose.confirmation.limits == ["weight_soft_range"]


def test_capped_dose_confirmation_recorded(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, weight=120.0)
    dose = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", weight_confirmed=True)
    assert dose.confirmation is not None and dose.confirmation.limits == ["dose_capped"]


def test_medication_limits_enforced(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    n = len(ward.record(pid).events)
    kw = {"drug": "dexamethasone", "unit": "mg", "route": "IV", "given_by": "AB"}
    with pytest.raises(InputError, match="hard limit"):
        ward.chart(pid, "medication", recorded_by="AB", dose=100.0, **kw)
    with pytest.raises(ConfirmationRequired):
        ward.chart(pid, "medication", recorded_by="AB", dose=30.0, **kw)
    assert len(ward.record(pid).events) == n
    ok = ward.chart(pid, "medication", recorded_by="AB", dose=10.0, **kw)
    assert isinstance(ok, Medication) and ok.confirmation is None
    soft = ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        dose=30.0,
        confirmation={"limits": ["dose_soft_limit"]},
        **kw,
    )
    assert isinstance(soft, Medication) and soft.confirmation is not None
    with pytest.raises(InputError, match="hard limit"):
        ward.record_prior_dose(
            pid, effective_at=clock.now(), dose_mg=1200.0, source="transfer", recorded_by="AB"
        )


def test_vitals_and_labs_refused_with_unit_hints(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    n = len(ward.record(pid).events)
    with pytest.raises(InputError, match="Fahrenheit"):
        ward.chart(pid, "vitals", recorded_by="AB", temperature_c=100.4)
    with pytest.raises(InputError, match="Room air with oxygen"):
        ward.chart(pid, "vitals", recorded_by="AB", oxygen_device="none", oxygen_flow_l_min=10.0)
    with pytest.raises(InputError, match="does not fit"):
        ward.chart(
            pid, "vitals", recorded_by="AB", oxygen_device="nasal_cannula", oxygen_flow_l_min=0.0
        )
    with pytest.raises(InputError, match="cells/µL"):
        ward.record_lab(pid, test="neutrophils", value=400.0, unit="10^9/L", recorded_by="AB")
    with pytest.raises(InputError, match="does not fit"):
        ward.assess_crs(
            pid,
            {
                "temperature_c": 38.5,
                "oxygen_device": "high_flow_nasal_cannula",
                "oxygen_flow_l_min": 2.0,
            },
            recorded_by="AB",
        )
    assert len(ward.record(pid).events) == n
    v = ward.chart(pid, "vitals", recorded_by="AB", temperature_c=38.0)
    assert isinstance(v, Vitals)
    clock.advance(timedelta(minutes=1))
    ward.record_lab(pid, test="neutrophils", value=400.0, unit="/uL", recorded_by="AB")


def test_old_files_stay_byte_identical() -> None:
    """An event without a confirmation serialises without the key (hashes of old files hold)."""
    from bedside.clinical.record import event_to_json, make_event

    ev = make_event(
        "medication",
        effective_at=T0,
        recorded_at=T0,
        recorded_by="AB",
        drug="dexamethasone",
        dose=10.0,
        unit="mg",
        route="IV",
        given_by="AB",
    )
    assert "confirmation" not in event_to_json(ev)


def test_exactly_800_mg_asks_to_confirm_the_weight(ward: Ward, clock: FakeClock) -> None:
    """Issue: "100" (pounds typed as kg) gave exactly 800 mg with no cap warning."""
    pid = _add(ward, clock, weight=100.0)
    plan = ward.plan_tocilizumab(pid)
    assert not plan.dose.capped and plan.dose.dose_mg == 800.0
    assert [f.code for f in plan.confirmations] == ["dose_at_max"]
    with pytest.raises(ConfirmationRequired):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    dose = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", weight_confirmed=True)
    assert dose.confirmation is not None and dose.confirmation.limits == ["dose_at_max"]


def test_amendments_pass_the_hard_limits(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    dex = ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="dexamethasone",
        dose=10.0,
        unit="mg",
        route="IV",
        given_by="AB",
    )
    with pytest.raises(InputError, match="hard limit"):
        ward.correct(
            pid,
            dex.id,
            action="amend",
            reason="typed the wrong dose",
            reason_code="wrong_dose",
            second_nurse="CD",
            recorded_by="AB",
            amended={"dose": 100.0},
        )
    upd = _weigh(ward, pid, 65.0)
    with pytest.raises(InputError, match="cannot be right"):
        ward.correct(
            pid,
            upd.id,
            action="amend",
            reason="typo",
            recorded_by="AB",
            amended={"changes": {"weight_kg": 6.5, "weight_measured_at": clock.now().isoformat()}},
        )
    lab = ward.record_lab(pid, test="neutrophils", value=0.4, unit="10^9/L", recorded_by="AB")
    with pytest.raises(InputError, match="cells/µL"):
        ward.correct(
            pid, lab.id, action="amend", reason="typo", recorded_by="AB", amended={"value": 400.0}
        )
    ward.correct(
        pid,
        dex.id,
        action="amend",
        reason="typed the wrong dose",
        reason_code="wrong_dose",
        second_nurse="CD",
        recorded_by="AB",
        amended={"dose": 8.0},
    )

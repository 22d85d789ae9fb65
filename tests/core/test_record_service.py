"""The patient record, its hash chain, and the ward service's safety rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.record import (
    Medication,
    chain_problems,
    current_patient,
    effective_events,
    make_event,
)
from bedside.common.clock import FakeClock
from bedside.common.errors import ConfirmationRequired, InputError, LimitError, LockedError
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Ward:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def _add(ward: Ward, clock: FakeClock, pid: str = "p1", **kw: object) -> str:
    fields = {
        "patient_id": pid,
        "mrn": f"MRN-{pid}",
        "name": "Test Person",
        "date_of_birth": "1960-05-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": clock.now(),
        "product": "ide-cel",
    }
    fields.update(kw)
    return ward.create_patient(recorded_by="AB", **fields)


def test_nurse_dose_path_and_limits(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    first = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    assert first.dose == 560.0 and first.unit == "mg" and first.weight_kg_used == 70.0
    # 7 h 59 min 59 s later: soft interval limit -> needs an override.
    clock.advance(timedelta(hours=8) - timedelta(seconds=1))
    with pytest.raises(LimitError, match="min_interval"):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(seconds=1))
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(hours=8))
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(hours=7))  # fourth dose within 24 h of the first
    plan = ward.plan_tocilizumab(pid)
    assert set(plan.needs_override) == {"min_interval", "max_per_24h"}
    assert not plan.hard_block
    with pytest.raises(LimitError):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    with pytest.raises(InputError, match="second_nurse"):
        ward.give_tocilizumab(
            pid,
            given_by="AB",
            checked_by="CD",
            override={
                "reason": "consultant order, refractory",
                "second_nurse": "AB",
                "prescriber": "Dr A. Okafor",
            },
        )
    with pytest.raises(InputError, match=r"override\.prescriber"):
        ward.give_tocilizumab(
            pid,
            given_by="AB",
            checked_by="CD",
            override={"reason": "consultant order, refractory", "second_nurse": "EF"},
        )
    with pytest.raises(InputError, match=r"override\.prescriber"):
        ward.give_tocilizumab(
            pid,
            given_by="AB",
            checked_by="CD",
            override={"reason": "consultant order", "second_nurse": "EF", "prescriber": "  "},
        )
    assert ward.budget(pid).total == 3  # nothing written by the refused attempts
    fourth = ward.give_tocilizumab(
        pid,
        given_by="AB",
        checked_by="CD",
        override={
            "reason": "consultant order, refractory",
            "second_nurse": "EF",
            "prescriber": " Dr A. Okafor ",
        },
    )
    assert fourth.override is not None
    assert set(fourth.override.limits) == {"min_interval", "max_per_24h"}
    assert fourth.override.prescriber == "Dr A. Okafor"
    clock.advance(timedelta(days=2))
    plan = ward.plan_tocilizumab(pid)
    assert plan.hard_block and plan.check.reasons == ["max_total"]
    with pytest.raises(LimitError, match="Cannot give"):
        ward.give_tocilizumab(
            pid,
            given_by="AB",
            checked_by="CD",
            override={"reason": "x" * 10, "second_nurse": "EF", "prescriber": "Dr B"},
        )
    assert ward.budget(pid).total == 4


def test_capped_dose_needs_weight_confirmation(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, weight_kg=120.0)
    plan = ward.plan_tocilizumab(pid)
    assert plan.dose.capped and plan.dose.uncapped_mg == 960.0 and plan.dose.dose_mg == 800.0
    with pytest.raises(InputError, match="weight_confirmed"):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", weight_confirmed=True)


def test_stale_weight_is_a_soft_stop(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    clock.advance(timedelta(hours=73))
    plan = ward.plan_tocilizumab(pid)
    assert plan.weight_stale and [f.code for f in plan.confirmations] == ["stale_weight"]
    assert plan.dose.dose_mg == 560.0
    with pytest.raises(ConfirmationRequired, match="73 h ago") as err:
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    assert err.value.needed == ["stale_weight"] and err.value.needs_reason
    # Confirming without a written reason is not enough.
    with pytest.raises(ConfirmationRequired):
        ward.give_tocilizumab(
            pid, given_by="AB", checked_by="CD", confirmation={"limits": ["stale_weight"]}
        )
    assert ward.budget(pid).total == 0
    dose = ward.give_tocilizumab(
        pid,
        given_by="AB",
        checked_by="CD",
        confirmation={"limits": ["stale_weight"], "reason": "hypotensive, cannot stand on scale"},
    )
    assert dose.confirmation is not None
    assert dose.confirmation.limits == ["stale_weight"]
    assert dose.confirmation.reason == "hypotensive, cannot stand on scale"
    assert dose.weight_kg_used == 70.0
    # A fresh weight removes the soft stop.
    ward.chart(
        pid,
        "patient_update",
        recorded_by="AB",
        changes={"weight_kg": 71.0, "weight_measured_at": clock.now().isoformat()},
    )
    plan = ward.plan_tocilizumab(pid)
    assert plan.dose.dose_mg == 568.0 and not plan.weight_stale and not plan.confirmations


def test_unknown_history_is_not_zero(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, infusion_at=T0 - timedelta(days=2))
    budget = ward.budget(pid)
    assert not budget.history_complete
    assert "history incomplete" in budget.summary()
    assert not budget.allowed_now
    with pytest.raises(LimitError, match="history_incomplete"):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    ward.record_prior_dose(
        pid, effective_at=T0 - timedelta(hours=10), dose_mg=560, source="ICU MAR", recorded_by="AB"
    )
    ward.chart(pid, "history_confirmation", recorded_by="AB", source="MAR checked", complete=True)
    budget = ward.budget(pid)
    assert budget.history_complete and budget.total == 1 and budget.allowed_now


def test_future_event_is_refused_and_nothing_written(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    before = len(ward.record(pid).events)
    with pytest.raises(InputError, match="effective_at"):
        ward.chart(
            pid,
            "note",
            recorded_by="AB",
            text="later",
            effective_at=clock.now() + timedelta(minutes=30),
        )
    assert len(ward.record(pid).events) == before


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"temperature_c": "38.5"}, "temperature_c"),
        ({"temperature_c": float("nan")}, "temperature_c"),
        ({"heart_rate": -3}, "heart_rate"),
        ({"spo2_pct": 101}, "spo2_pct"),
        ({"temprature_c": 38.0}, "temprature_c"),
        ({"effective_at": "2026-03-28T10:00:00"}, "effective_at"),
    ],
)
def test_bad_vitals_name_the_field(ward: Ward, clock: FakeClock, fields: dict, name: str) -> None:
    pid = _add(ward, clock)
    with pytest.raises(InputError, match=name):
        ward.chart(pid, "vitals", recorded_by="AB", **fields)
    assert ward.record(pid).events == []


def test_corrections_keep_the_original(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    ev = ward.chart(pid, "vitals", recorded_by="AB", temperature_c=39.5)
    clock.advance(timedelta(minutes=5))
    ward.correct(
        pid, ev.id, action="amend", reason="typo", recorded_by="AB", amended={"temperature_c": 38.5}
    )
    eff = [e for e in effective_events(ward.record(pid)) if e.id == ev.id]
    assert eff[0].temperature_c == 38.5  # type: ignore[attr-defined]
    assert any(e.id == ev.id and e.temperature_c == 39.5 for e in ward.record(pid).events)  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="temperature_c"):
        ward.correct(
            pid,
            ev.id,
            action="amend",
            reason="typo",
            recorded_by="AB",
            amended={"temperature_c": "x"},
        )
    ward.correct(pid, ev.id, action="void", reason="wrong patient", recorded_by="AB")
    assert all(e.id != ev.id for e in effective_events(ward.record(pid)))
    assert len(ward.record(pid).events) == 3
    with pytest.raises(InputError, match="already voided"):
        ward.correct(pid, ev.id, action="void", reason="again", recorded_by="AB")


def test_voided_dose_does_not_count(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    dose = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(hours=1))
    assert not ward.budget(pid).check.allowed
    with pytest.raises(InputError, match="reason_code"):
        ward.correct(
            pid, dose.id, action="void", reason="charted on wrong patient", recorded_by="AB"
        )
    with pytest.raises(InputError, match="second_nurse"):
        ward.correct(
            pid,
            dose.id,
            action="void",
            reason="charted on wrong patient",
            reason_code="wrong_patient",
            recorded_by="AB",
        )
    with pytest.raises(InputError, match="second_nurse: must be a different nurse"):
        ward.correct(
            pid,
            dose.id,
            action="void",
            reason="charted on wrong patient",
            reason_code="wrong_patient",
            second_nurse="ab",
            recorded_by="AB",
        )
    with pytest.raises(InputError, match="at least 5 characters"):
        ward.correct(
            pid,
            dose.id,
            action="void",
            reason="oops",
            reason_code="other",
            second_nurse="CD",
            recorded_by="AB",
        )
    assert ward.budget(pid).total == 1  # nothing was written by the refusals
    void = ward.correct(
        pid,
        dose.id,
        action="void",
        reason="charted on wrong patient",
        reason_code="wrong_patient",
        second_nurse="cd",
        recorded_by="AB",
    )
    assert void.second_nurse == "CD" and void.reason_code == "wrong_patient"
    assert ward.budget(pid).total == 0 and ward.budget(pid).check.allowed
    assert [d.id for d in ward.budget(pid).voided] == [dose.id]


def test_hash_chain_detects_edit_removal_reorder(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    for t in (37.0, 38.2, 38.9):
        clock.advance(timedelta(minutes=10))
        ward.chart(pid, "vitals", recorded_by="AB", temperature_c=t)
    events = list(ward.record(pid).events)
    head = ward.record(pid).head
    assert chain_problems(events, head) == []
    edited = [events[0], events[1].model_copy(update={"temperature_c": 36.0}), events[2]]
    assert any("edited" in p for p in chain_problems(edited))
    assert any("removed or reordered" in p for p in chain_problems([events[0], events[2]]))
    assert chain_problems([events[1], events[0], events[2]])
    assert chain_problems(events[:2], head)  # truncated tail: head count mismatch


def test_restart_finds_everything(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "d", clock)
    pid = _add(w, clock)
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    w.close()
    w2 = open_ward(tmp_path / "d", clock)
    assert isinstance(w2.record(pid).events[0], Medication)
    assert w2.budget(pid).total == 1
    w2.close()


def test_second_writer_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "d", clock)
    try:
        with pytest.raises(LockedError):
            open_ward(tmp_path / "d", clock)
    finally:
        w.close()


def test_patient_update_applies_in_effective_order(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    ward.chart(pid, "patient_update", recorded_by="AB", changes={"bed": "B2"})
    ward.chart(
        pid,
        "patient_update",
        recorded_by="AB",
        changes={"bed": "B1"},
        effective_at=clock.now() - timedelta(hours=1),
    )
    assert current_patient(ward.record(pid)).bed == "B2"


def test_duplicate_mrn_and_bad_header_refused(ward: Ward, clock: FakeClock) -> None:
    _add(ward, clock)
    with pytest.raises(InputError, match="mrn"):
        _add(ward, clock, pid="p2", mrn="MRN-p1")
    with pytest.raises(InputError, match="weight_kg"):
        _add(ward, clock, pid="p3", weight_kg="70")
    with pytest.raises(InputError, match="patient_id"):
        _add(ward, clock, pid="../etc")


def test_make_event_rejects_unknown_kind_and_keys() -> None:
    with pytest.raises(InputError, match="kind"):
        make_event("potion", effective_at=T0, recorded_at=T0, recorded_by="AB")
    with pytest.raises(InputError, match="colour"):
        make_event("note", effective_at=T0, recorded_at=T0, recorded_by="AB", text="x", colour=1)
    with pytest.raises(InputError, match="recorded_by"):
        make_event("note", effective_at=T0, recorded_at=T0, recorded_by="1", text="x")


def test_saved_file_is_strict_json_with_schema(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    ward.chart(pid, "note", recorded_by="AB", text="hello")
    # Issue 15: one JSON Lines journal per patient per workstation, header line then events.
    journal = ward.root / "journals" / pid / f"{ward.workstation}.jsonl"
    lines = [json.loads(line) for line in journal.read_bytes().splitlines()]
    assert [line["b"]["t"] for line in lines] == ["header", "event"]
    assert [line["b"]["seq"] for line in lines] == [0, 1]
    assert lines[1]["p"] == lines[0]["h"]  # chained
    assert all(line["b"]["ws"] == ward.workstation and line["b"]["user"] for line in lines)
    assert lines[1]["b"]["event"]["effective_at"].endswith("Z")
    assert ward.record(pid).head.count == 1


def test_quarantined_file_is_restored_from_backup_and_history_marked_incomplete(
    tmp_path: Path, clock: FakeClock
) -> None:
    w = open_ward(tmp_path / "d", clock)
    pid = _add(w, clock)
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    assert w.budget(pid).history_complete
    w.close()
    path = tmp_path / "d" / "journals" / pid / f"{w.workstation}.jsonl"
    damaged = path.read_bytes().replace(b'"sex":"female"', b'"sex":"male"', 1)
    assert damaged != path.read_bytes()
    path.write_bytes(damaged)
    w = open_ward(tmp_path / "d", clock)
    assert pid in w.failures and pid not in w.records
    assert w.newest_backup(pid) is not None
    assert path.read_bytes() == damaged  # never overwritten by loading
    w.restore_from_backup(pid, recorded_by="AB")
    assert pid not in w.failures
    budget = w.budget(pid)
    assert not budget.history_complete and "history incomplete" in budget.summary()
    assert list((tmp_path / "d" / "quarantine").rglob("*.jsonl"))  # the damaged copy is kept
    w.close()

"""Issue 15: a possible duplicate dose is a critical alert on every workstation (not a banner).

Two workstations open one ward folder on one machine (no Syncthing: the folder is the
replica). A's dose is hidden from B while B gives its own 2 h later (the network was down),
then A's journal arrives: both workstations derive the same critical alert, with the same
identity, from the record; an acknowledgement on A reaches B through A's journal.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.record import AlertAck, Medication, effective_events
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError, LimitError
from bedside.reports.handover import build_handover
from bedside.ward import alerts
from bedside.ward.service import Ward, open_ward
from bedside.ward.wardsync import unacknowledged_duplicates

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def two(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Ward, Ward]]:
    a = open_ward(tmp_path / "ward", clock, workstation="4A-PC1")
    b = open_ward(tmp_path / "ward", clock, workstation="4A-PC2")
    yield a, b
    a.close()
    b.close()


def _admit(ward: Ward, clock: FakeClock, pid: str = "p1") -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
        infusion_at=clock.now() - 48 * H,
        dose_history_complete=True,
    )


def _doses_two_hours_apart(a: Ward, b: Ward, clock: FakeClock, tmp_path: Path) -> str:
    """A gives a dose; B, cut off from A's journal, gives one 2 h later; then A's arrives."""
    pid = _admit(a, clock)
    b.reload()
    a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    a_journal = a.root / "journals" / pid / "4A-PC1.jsonl"
    away = tmp_path / "away.jsonl"
    shutil.move(str(a_journal), str(away))
    a_journal.write_bytes(away.read_bytes().splitlines(keepends=True)[0])  # header only
    clock.advance(2 * H)
    b.give_tocilizumab(pid, given_by="EF", checked_by="GH")
    shutil.move(str(away), str(a_journal))  # the network is back: A's dose arrives
    return pid


def _duplicates(ward: Ward, pid: str) -> list[alerts.AlertStatus]:
    return [s for s in alerts.patient_alerts(ward, pid) if s.item.kind == "duplicate_dose"]


def test_duplicate_dose_is_a_critical_alert_on_both_and_an_ack_on_a_reaches_b(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _doses_two_hours_apart(a, b, clock, tmp_path)
    on_a, on_b = _duplicates(a, pid), _duplicates(b, pid)
    assert len(on_a) == len(on_b) == 1
    for st in (on_a[0], on_b[0]):
        assert st.item.severity == "critical"
        assert st.state == "active" and st.sounding
        assert "Possible duplicate dose" in st.item.message
        assert "4A-PC1" in st.item.message and "4A-PC2" in st.item.message
        assert st.item.rule == "dose_limits.tocilizumab.min_interval"
    # One identity on both workstations, derived from the record: the same key and instant.
    assert on_a[0].item.key == on_b[0].item.key
    assert on_a[0].item.due_at == on_b[0].item.due_at == T0 + 2 * H
    # The dose check keeps counting both doses on both workstations.
    for ward in (a, b):
        doses = [e for e in effective_events(ward.record(pid)) if isinstance(e, Medication)]
        assert len(doses) == 2
        budget = ward.budget(pid)
        assert budget.total == 2 and not budget.allowed_now
    # Deriving it wrote nothing, and it is still the same alert later (no ticks).
    clock.advance(3 * H)
    later = _duplicates(b, pid)
    assert [s.item.key for s in later] == [on_b[0].item.key]
    assert later[0].item.due_at == on_b[0].item.due_at and later[0].sounding
    assert not [e for e in effective_events(b.record(pid)) if isinstance(e, AlertAck)]
    key = on_a[0].item.key
    # Critical: it cannot be snoozed; an acknowledgement needs initials and a reason.
    with pytest.raises(LimitError):
        alerts.snooze(a, pid, key, "AB", 10)
    with pytest.raises(InputError, match="reason"):
        alerts.acknowledge(a, pid, key, "AB")
    with pytest.raises(InputError, match="initials"):
        alerts.acknowledge(a, pid, key, "", reason="checked both charts")
    alerts.acknowledge(a, pid, key, "AB", reason="checked: one dose given, B's charted in error")
    assert _duplicates(a, pid)[0].state == "acknowledged"
    # B merges A's journal (the ack is an event in it) and shows it acknowledged by AB.
    st_b = _duplicates(b, pid)[0]
    assert st_b.state == "acknowledged" and st_b.by == "AB" and not st_b.sounding
    assert st_b.last_action is not None and "charted in error" in (st_b.last_action.reason or "")
    with pytest.raises(InputError, match="already acknowledged"):
        alerts.acknowledge(b, pid, key, "EF", reason="seen here too")
    # The handover on B lists it as a critical item, acknowledged.
    doc = build_handover(b, clock.now(), pid)
    entries = [d for d in doc.patients[0].due if d.kind == "duplicate_dose"]
    assert len(entries) == 1 and entries[0].severity == "critical"
    assert "acknowledged" in entries[0].alert and "AB" in entries[0].alert
    # Acknowledged: no longer in the danger banners; listed until the later dose leaves the
    # dose window, then history (the doses and the acknowledgement stay in the record).
    assert unacknowledged_duplicates(a, pid) == [] == unacknowledged_duplicates(b, pid)
    assert not [line for line in doc.sync if "duplicate" in line]
    window = timedelta(hours=a.protocol_for(a.record(pid)).tocilizumab.window_h.value)
    clock.set(T0 + 2 * H + window - timedelta(minutes=1))
    assert _duplicates(b, pid)[0].state == "acknowledged"
    clock.advance(timedelta(minutes=1))
    assert _duplicates(a, pid) == [] and _duplicates(b, pid) == []
    acks = [e for e in effective_events(b.record(pid)) if isinstance(e, AlertAck)]
    assert [(e.alert_key, e.action, e.recorded_by) for e in acks] == [(key, "acknowledged", "AB")]


def test_an_unacknowledged_duplicate_never_leaves(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _doses_two_hours_apart(a, b, clock, tmp_path)
    clock.advance(timedelta(days=10))
    for ward in (a, b):
        (st,) = _duplicates(ward, pid)
        assert st.sounding and st.item.state == "overdue"
        assert len(unacknowledged_duplicates(ward, pid)) == 1
        assert any(
            "Possible duplicate dose" in line for line in build_handover(ward, clock.now()).sync
        )


def test_doses_on_one_workstation_or_far_apart_raise_no_duplicate_alert(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _admit(a, clock)
    b.reload()
    a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    interval = a.protocol_for(a.record(pid)).tocilizumab.min_interval.value
    clock.advance(timedelta(hours=interval))
    b.give_tocilizumab(pid, given_by="EF", checked_by="GH")  # exactly the minimum interval
    assert _duplicates(a, pid) == [] and _duplicates(b, pid) == []


def test_voiding_one_of_the_two_doses_ends_the_alert(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _doses_two_hours_apart(a, b, clock, tmp_path)
    assert len(_duplicates(a, pid)) == 1
    mine = next(
        e
        for e in effective_events(b.record(pid))
        if isinstance(e, Medication) and e.recorded_by == "EF"
    )
    b.correct(
        pid,
        mine.id,
        action="void",
        reason="the dose was not given here",
        reason_code="charted_in_error",
        recorded_by="EF",
        second_nurse="GH",
    )
    assert _duplicates(a, pid) == [] and _duplicates(b, pid) == []


def test_a_second_limited_drug_is_checked_too(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    """Every drug of the protocol's dose_limits with a minimum interval (anakinra, q6h):
    doses 2 h apart from two workstations are one critical alert naming the drug."""
    a, b = two
    pid = _admit(a, clock)
    b.reload()
    a.give_dose(pid, "anakinra", given_by="AB", checked_by="CD", route="SC")
    a_journal = a.root / "journals" / pid / "4A-PC1.jsonl"
    away = tmp_path / "away.jsonl"
    shutil.move(str(a_journal), str(away))
    a_journal.write_bytes(away.read_bytes().splitlines(keepends=True)[0])  # header only
    clock.advance(2 * H)
    b.give_dose(pid, "anakinra", given_by="EF", checked_by="GH", route="SC")
    shutil.move(str(away), str(a_journal))
    for ward in (a, b):
        found = _duplicates(ward, pid)
        assert len(found) == 1
        item = found[0].item
        assert item.severity == "critical" and found[0].sounding
        assert "Anakinra" in item.message and "minimum interval 6 h" in item.message
        assert item.rule == "dose_limits.anakinra.min_interval"
    # Doses 7 h apart (beyond anakinra's 6 h) from two workstations raise nothing more.
    clock.advance(7 * H)
    a.reload()
    a.give_dose(pid, "anakinra", given_by="AB", checked_by="CD", route="SC")
    b.reload()
    assert len(_duplicates(b, pid)) == 1

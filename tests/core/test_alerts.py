"""Alerts: acknowledgement, snooze, critical items, audit events, and refused bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.escalations import derive_due
from bedside.clinical.record import AlertAck, effective_events
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError, LimitError
from bedside.ward.alerts import (
    AlertStatus,
    acknowledge,
    alarm_call,
    alert_states,
    inform_doctor,
    patient_alerts,
    record_raised,
    snooze,
)
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


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
    """A patient with grade 2 CRS and one tocilizumab dose at T0."""
    p = ward.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="MRN-1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=T0,
        product="ide-cel",
        dose_history_complete=True,
    )
    ward.assess_crs(p, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(p, given_by="AB", checked_by="CD")
    return p


def item(ward: Ward, pid: str, kind: str) -> AlertStatus:
    return next(s for s in patient_alerts(ward, pid) if s.item.kind == kind)


def alert_events(ward: Ward, pid: str) -> list[AlertAck]:
    return [e for e in ward.record(pid).events if isinstance(e, AlertAck)]


def test_acknowledge_writes_an_audit_event_and_silences_that_alert(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.set(T0 + 8 * H)
    status = item(ward, pid, "tocilizumab_reassess")
    assert status.state == "active" and status.sounding
    event = acknowledge(ward, pid, status.item.key, "ef")
    assert event.action == "acknowledged" and event.recorded_by == "EF"
    assert event.alert_key == status.item.key and event.due_at == status.item.due_at
    assert event.alert_kind == "tocilizumab_reassess"
    after = item(ward, pid, "tocilizumab_reassess")
    assert after.state == "acknowledged" and not after.sounding and after.by == "EF"
    with pytest.raises(InputError, match="already acknowledged by EF"):
        acknowledge(ward, pid, status.item.key, "GH")
    # A new dose gives a new key: a fresh alert, not covered by the old acknowledgement.
    ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.set(T0 + 16 * H)
    fresh = item(ward, pid, "tocilizumab_reassess")
    assert fresh.item.key != status.item.key and fresh.state == "active"


def test_snooze_is_capped_and_expires(ward: Ward, clock: FakeClock, pid: str) -> None:
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    event = snooze(ward, pid, key, "EF", 15)
    assert event.snooze_until == T0 + 8 * H + 15 * M
    status = item(ward, pid, "tocilizumab_reassess")
    assert status.state == "snoozed" and status.snoozed_until == event.snooze_until
    assert not status.sounding
    clock.advance(15 * M)
    assert item(ward, pid, "tocilizumab_reassess").state == "active"
    # A second snooze is allowed (audited), each capped.
    snooze(ward, pid, key, "EF", 5.5)
    assert item(ward, pid, "tocilizumab_reassess").state == "snoozed"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initials": ""}, "initials"),
        ({"initials": "   "}, "initials"),
        ({"initials": None}, "initials"),
        ({"initials": "X"}, "initials"),
        ({"initials": "A1"}, "initials"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": -5}, "minutes"),
        ({"minutes": 15.01}, "minutes"),
        ({"minutes": 60}, "minutes"),
        ({"minutes": float("nan")}, "minutes"),
        ({"minutes": float("inf")}, "minutes"),
        ({"minutes": "10"}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"key": "p1/vitals_next/nope"}, "key"),
        ({"key": ""}, "key"),
    ],
)
def test_bad_snooze_is_refused_and_nothing_written(
    ward: Ward, clock: FakeClock, pid: str, kwargs: dict, field: str
) -> None:
    clock.set(T0 + 8 * H)
    args = {
        "key": item(ward, pid, "tocilizumab_reassess").item.key,
        "initials": "EF",
        "minutes": 10,
    }
    args.update(kwargs)
    before = ward.record(pid)
    with pytest.raises(InputError) as err:
        snooze(ward, pid, args["key"], args["initials"], args["minutes"])
    assert str(err.value).startswith(f"{field}:"), str(err.value)
    assert ward.record(pid) is before
    assert alert_events(ward, pid) == []


def test_snooze_cap_comes_from_the_protocol(ward: Ward, clock: FakeClock, pid: str) -> None:
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    with pytest.raises(InputError, match=r"at most 15 min \(protocol monitoring.snooze_max_min\)"):
        snooze(ward, pid, key, "EF", 16)


def test_bad_acknowledgement_is_refused_and_nothing_written(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    for initials in ("", None, "1", "toolongname"):
        with pytest.raises(InputError, match=r"^initials:"):
            acknowledge(ward, pid, key, initials)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^key:"):
        acknowledge(ward, pid, "p1/tocilizumab_reassess/other", "EF")
    with pytest.raises(InputError, match=r"^reason:"):
        acknowledge(ward, pid, key, "EF", reason="x")
    assert alert_events(ward, pid) == []


def test_upcoming_items_cannot_be_acknowledged_early(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    key = item(ward, pid, "tocilizumab_reassess").item.key
    with pytest.raises(InputError, match="not due until"):
        acknowledge(ward, pid, key, "EF")
    with pytest.raises(InputError, match="not due until"):
        snooze(ward, pid, key, "EF", 10)
    assert alert_events(ward, pid) == []


def test_critical_items_cannot_be_snoozed_and_need_a_reason(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.set(T0 + 24 * H + M)  # escalation review due: critical
    status = item(ward, pid, "crs_escalation")
    assert status.item.severity == "critical"
    with pytest.raises(LimitError, match="cannot be snoozed"):
        snooze(ward, pid, status.item.key, "EF", 5)
    with pytest.raises(InputError, match=r"^reason:"):
        acknowledge(ward, pid, status.item.key, "EF")
    assert alert_events(ward, pid) == []
    event = acknowledge(
        ward, pid, status.item.key, "EF", reason="Dr Khan informed, plan ICU review"
    )
    assert event.reason == "Dr Khan informed, plan ICU review"
    assert item(ward, pid, "crs_escalation").state == "acknowledged"


def test_a_snooze_stops_counting_when_the_item_turns_critical(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    # Hand-written snooze of the escalation while it was only a warning (e.g. older version).
    clock.set(T0 + 24 * H)
    status = item(ward, pid, "crs_escalation")
    assert status.item.severity == "critical"
    record = ward.record(pid)
    snoozed = AlertAck(
        id="00000000-0000-4000-8000-000000000001",
        effective_at=clock.now(),
        recorded_at=clock.now(),
        recorded_by="EF",
        alert_key=status.item.key,
        alert_kind=status.item.kind,
        due_at=status.item.due_at,
        action="snoozed",
        snooze_until=clock.now() + 10 * M,
    )
    ward.add_event(pid, snoozed)
    items = derive_due(ward.record(pid), ward.protocol_for(record), clock.now())
    states = {s.item.kind: s for s in alert_states(ward.record(pid), items, clock.now())}
    assert states["crs_escalation"].state == "active"


def test_voided_acknowledgement_does_not_count(ward: Ward, clock: FakeClock, pid: str) -> None:
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    ack = acknowledge(ward, pid, key, "EF")
    ward.correct(pid, ack.id, action="void", reason="wrong patient", recorded_by="EF")
    assert item(ward, pid, "tocilizumab_reassess").state == "active"
    assert ack.id not in {e.id for e in effective_events(ward.record(pid))}


def test_info_items_can_be_acknowledged_any_time(ward: Ward, clock: FakeClock) -> None:
    p = ward.create_patient(
        recorded_by="AB",
        patient_id="p2",
        mrn="MRN-2",
        name="Other Person",
        date_of_birth="1955-01-01",
        sex="male",
        product="cilta-cel",
        infusion_at=T0 - 2 * 24 * H,
        dose_history_complete=True,
    )
    status = item(ward, p, "monitoring_day")
    assert status.item.state == "upcoming" and status.item.severity == "info"
    acknowledge(ward, p, status.item.key, "EF")
    assert item(ward, p, "monitoring_day").state == "acknowledged"


def test_record_raised_writes_each_alert_once(ward: Ward, clock: FakeClock, pid: str) -> None:
    assert record_raised(ward, pid, "SYS") == []  # nothing due yet
    clock.set(T0 + 8 * H)
    raised = record_raised(ward, pid, "EF")
    assert [e.alert_kind for e in raised] == ["tocilizumab_reassess"]
    assert raised[0].action == "raised"
    assert record_raised(ward, pid, "EF") == []
    # Raised is an audit entry only: the alert still sounds.
    assert item(ward, pid, "tocilizumab_reassess").sounding
    with pytest.raises(InputError, match=r"^initials:"):
        record_raised(ward, pid, "")


def test_alert_state_survives_a_restart(
    ward: Ward, clock: FakeClock, pid: str, tmp_path: Path
) -> None:
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    snooze(ward, pid, key, "EF", 10)
    ward.close()
    reopened = open_ward(tmp_path / "data", clock)
    try:
        status = next(
            s for s in patient_alerts(reopened, pid) if s.item.kind == "tocilizumab_reassess"
        )
        assert status.state == "snoozed"
    finally:
        reopened.close()
    ward.open()  # the fixture closes it again


def test_logs_and_messages_carry_no_patient_identity(
    ward: Ward, clock: FakeClock, pid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    clock.set(T0 + 8 * H)
    key = item(ward, pid, "tocilizumab_reassess").item.key
    snooze(ward, pid, key, "EF", 10)
    acknowledge(ward, pid, key, "EF")
    messages = []
    for bad in (f"{key}x", key):
        with pytest.raises(InputError) as err:
            acknowledge(ward, pid, bad, "EF")
        messages.append(str(err.value))
    text = caplog.text + " ".join(messages)
    for secret in (pid, "MRN-1", "Test Person"):
        assert secret not in text


# --------------------------------------------------------------------------- doctor informed


def test_doctor_informed_closes_the_escalation_review_until_the_next_review(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.set(T0 + 24 * H + 20 * M)
    review = item(ward, pid, "crs_escalation")
    assert review.item.state == "overdue" and review.item.severity == "critical"
    event = inform_doctor(
        ward, pid, review.item.key, "ab", "Dr Smith", "Dexamethasone 10 mg, ICU review", T0 + 28 * H
    )
    assert event.kind == "doctor_informed" and event.recorded_by == "AB"
    assert event.doctor == "Dr Smith" and event.next_review_at == T0 + 28 * H
    after = item(ward, pid, "crs_escalation")
    assert after.item.key != review.item.key  # a new alert
    assert after.item.state == "upcoming" and after.item.due_at == T0 + 28 * H
    assert not after.sounding
    text = after.item.message
    assert text.startswith("Doctor informed ") and "(Dr Smith), review " in text
    assert "Plan: Dexamethasone 10 mg, ICU review" in text
    assert after.item.rule == "monitoring.doctor_review_max_h"
    # At the review time it is due again (critical), and can be closed again.
    clock.set(T0 + 28 * H)
    again = item(ward, pid, "crs_escalation")
    assert again.item.state == "due" and again.item.severity == "critical" and again.sounding
    inform_doctor(ward, pid, again.item.key, "AB", "Dr Jones", "continue", T0 + 30 * H)
    third = item(ward, pid, "crs_escalation")
    assert third.item.due_at == T0 + 30 * H and "(Dr Jones)" in third.item.message


@pytest.mark.parametrize(
    ("doctor", "plan", "hours", "field"),
    [
        ("", "plan", 4, "doctor"),
        ("Dr Smith", " ", 4, "plan"),
        ("Dr Smith", "plan", 0, "next_review_at"),
        ("Dr Smith", "plan", -1, "next_review_at"),
        ("Dr Smith", "plan", 25, "next_review_at"),
    ],
)
def test_doctor_informed_refuses_bad_input_and_writes_nothing(
    ward: Ward, clock: FakeClock, pid: str, doctor: str, plan: str, hours: int, field: str
) -> None:
    clock.set(T0 + 24 * H + 20 * M)
    review = item(ward, pid, "crs_escalation")
    before = len(ward.record(pid).events)
    with pytest.raises(InputError, match=f"^{field}:"):
        inform_doctor(ward, pid, review.item.key, "AB", doctor, plan, clock.now() + hours * H)
    assert len(ward.record(pid).events) == before


def test_doctor_informed_only_for_an_escalation_review(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    clock.set(T0 + 8 * H)
    other = item(ward, pid, "tocilizumab_reassess")
    with pytest.raises(InputError, match="only an escalation review"):
        inform_doctor(ward, pid, other.item.key, "AB", "Dr Smith", "plan", T0 + 10 * H)


# --------------------------------------------------------------------------- alarm repetition


def test_alarm_call_repeats_per_interval_and_is_silent_when_dealt_with(
    ward: Ward, clock: FakeClock, pid: str
) -> None:
    mon = ward.protocol_for(ward.record(pid)).monitoring
    clock.set(T0 + 8 * H)  # reassessment due (warning)
    status = item(ward, pid, "tocilizumab_reassess")
    call = alarm_call(status, clock.now(), mon)
    assert call is not None and call.tone == "due" and call.round == 0
    later = alarm_call(status, T0 + 8 * H + timedelta(seconds=mon.alarm_repeat_due_s.value), mon)
    assert later is not None and later.round == 1 and later.identity != call.identity
    clock.set(T0 + 9 * H)  # overdue: critical tone, overdue interval, counted from overdue
    status = item(ward, pid, "tocilizumab_reassess")
    call = alarm_call(status, clock.now(), mon)
    overdue_since = status.item.due_at + timedelta(minutes=mon.due_grace_min.value)
    assert call is not None and call.tone == "critical" and call.since == overdue_since
    assert call.round == (clock.now() - overdue_since) // timedelta(
        seconds=mon.alarm_repeat_overdue_s.value
    )
    acknowledge(ward, pid, status.item.key, "AB")
    assert alarm_call(item(ward, pid, "tocilizumab_reassess"), clock.now(), mon) is None

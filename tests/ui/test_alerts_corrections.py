"""Timers panel alarms, acknowledgements and snoozes; corrections in the Timeline tab."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtWidgets import QLabel
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import AlertAck, Correction, Vitals
from ui import dialogs
from ui.models import ROW_KEY_ROLE


def _banner(frame) -> str:
    return frame.findChild(QLabel, "bannerText").text()


def _chart_vitals(session, pid: str, temp: float) -> Vitals:
    ev = session.controller.chart(
        pid, "vitals", recorded_by="AB", temperature_c=temp, heart_rate=90, systolic_mmhg=120
    )
    assert isinstance(ev, Vitals)
    return ev


def _row(session, kind: str):
    return next(r for r in session.controller.due_rows() if r.item.kind == kind)


def test_due_item_sounds_the_alarm_and_can_be_acknowledged(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _chart_vitals(session, pid, 36.8)
    assert _row(session, "vitals_next").item.state == "upcoming"
    # The alarm path is tested by its signal: no sound device here, so it beeps.
    with qtbot.waitSignal(session.alarm.sounded, timeout=2000) as blocker:
        sessions.advance(session, timedelta(hours=4, minutes=1))
    assert blocker.args == ["beep"]
    assert not session.alarm.available
    assert not session.window.timers.sound_warning.isHidden()
    row = _row(session, "vitals_next")
    assert row.item.state == "due" and row.alert.state == "active"
    panel = session.window.timers
    assert panel.select_key(row.item.key)
    status = panel.model.index(panel.model.row_of(row.item.key), 0).data()
    assert status.startswith("DUE NOW") and "ALARM ON" in status

    def ack(dlg: dialogs.AlertDialog) -> bool:
        assert dlg.mode == "acknowledge"
        return dlg.submit()

    dialog_log.on(dialogs.AlertDialog, ack)
    panel.acknowledge()
    row = _row(session, "vitals_next")
    assert row.alert.state == "acknowledged" and row.alert.by == "AB"
    acks = [e for e in session.controller.record(pid).events if isinstance(e, AlertAck)]
    assert [a.action for a in acks] == ["raised", "acknowledged"]
    # The acknowledgement is on the timeline with who and when.
    ws = session.window.open_patient(pid, "timeline")
    kinds = [ws.timeline.model.index(i, 2).data() for i in range(ws.timeline.model.rowCount())]
    assert kinds.count("Alert") == 2
    # Becoming overdue does not sound again for an acknowledged alert.
    with qtbot.assertNotEmitted(session.alarm.sounded):
        sessions.advance(session, timedelta(minutes=20))
    assert _row(session, "vitals_next").item.state == "overdue"


def test_overdue_banner_and_critical_alert_cannot_be_snoozed(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    c = session.controller
    _chart_vitals(session, pid, 39.0)
    c.assess_crs(pid, {"temperature_c": 39.0, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    sessions.advance(session, timedelta(hours=24, minutes=20))
    row = _row(session, "crs_escalation")
    assert row.item.state == "overdue" and row.item.severity == "critical"
    window = session.window
    assert not window.overdue_banner.isHidden()
    assert "OVERDUE" in _banner(window.overdue_banner)
    panel = window.timers
    panel.select_key(row.item.key)
    assert not panel.snooze_button.isEnabled()
    dlg = dialogs.AlertDialog(c, row, "AB", mode="snooze")
    assert not dlg.ok_button.isEnabled()
    # Acknowledging a critical alert needs a reason.
    dlg = dialogs.AlertDialog(c, row, "AB", mode="acknowledge")
    assert not dlg.submit()
    assert "reason" in dlg.form.errors["reason"].text()
    dlg.reason.setText("Doctor informed, reviewed at bedside")
    assert dlg.submit()
    assert _row(session, "crs_escalation").alert.state == "acknowledged"
    # F8 goes to the most urgent item's patient, on the right tab.
    window.go_most_urgent()
    assert window.workspace.pid == pid and window.workspace.current_tab_key() == "crs"


def test_snooze_expires_and_the_alarm_sounds_again(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _chart_vitals(session, pid, 38.6)  # febrile: vitals every 2 h
    sessions.advance(session, timedelta(hours=2, minutes=1))
    row = _row(session, "vitals_next")
    assert row.item.state == "due" and row.item.snoozable
    dlg = dialogs.AlertDialog(session.controller, row, "AB", mode="snooze")
    dlg.minutes.setValue(10)
    assert dlg.minutes.maximum() == 15  # protocol cap
    assert dlg.submit()
    assert _row(session, "vitals_next").alert.state == "snoozed"
    with qtbot.assertNotEmitted(session.alarm.sounded):
        sessions.advance(session, timedelta(minutes=5))
    with qtbot.waitSignal(session.alarm.sounded, timeout=2000):
        sessions.advance(session, timedelta(minutes=6))
    assert _row(session, "vitals_next").alert.state == "active"


def test_the_fake_timer_drives_the_countdown(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _chart_vitals(session, pid, 36.9)
    timer = sessions.timers[-1]
    key = _row(session, "vitals_next").item.key
    model = session.window.timers.model
    assert "in 4 h 00 min" in model.index(model.row_of(key), 0).data()
    sessions.clock.advance(timedelta(minutes=90))
    timer.fire()  # one timeout: the ticker re-reads the clock (nothing is counted)
    assert "in 2 h 30 min" in model.index(model.row_of(key), 0).data()


def test_void_and_amend_keep_the_original_visible(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    wrong = _chart_vitals(session, pid, 39.9)
    typo = _chart_vitals(session, pid, 37.2)
    ws = session.window.open_patient(pid, "timeline")
    tl = ws.timeline
    assert tl.select_event(wrong.id)
    assert tl.void_button.isEnabled()

    def void(dlg: dialogs.CorrectionDialog) -> bool:
        assert not dlg.submit()  # no reason given
        assert "reason" in dlg.form.errors["reason"].text()
        dlg.reason.setText("Charted on the wrong patient")
        return dlg.submit()

    dialog_log.on(dialogs.CorrectionDialog, void)
    tl.correct("void")
    row = tl.model.row_at(tl.model.row_of(wrong.id))
    assert row.voided and "VOIDED by AB" in row.status and "wrong patient" in row.status
    assert "39.9" in row.what  # the original stays readable
    assert wrong.id not in {e.id for e in session.controller.events(pid)}

    assert tl.select_event(typo.id)

    def amend(dlg: dialogs.CorrectionDialog) -> bool:
        dlg.fields["temperature_c"].setText("37.8")
        dlg.reason.setText("Misread thermometer")
        return dlg.submit()

    dialog_log.on(dialogs.CorrectionDialog, amend)
    tl.correct("amend")
    row = tl.model.row_at(tl.model.row_of(typo.id))
    assert row.amended and "37.2" in row.what and "Misread" in row.status
    (effective,) = [e for e in session.controller.events(pid) if isinstance(e, Vitals)]
    assert effective.temperature_c == 37.8
    corrections = [e for e in session.controller.record(pid).events if isinstance(e, Correction)]
    assert [c.action for c in corrections] == ["void", "amend"]
    # A voided entry cannot be corrected again; the buttons say so by being disabled.
    assert tl.select_event(wrong.id)
    assert not tl.void_button.isEnabled()
    keys = {
        tl.view.model().index(i, 0).data(ROW_KEY_ROLE) for i in range(tl.view.model().rowCount())
    }
    assert {wrong.id, typo.id} <= keys


def test_bad_amendment_is_refused_next_to_the_field(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    ev = _chart_vitals(session, pid, 37.0)
    dlg = dialogs.CorrectionDialog(session.controller, pid, ev, "AB", action="amend")
    dlg.fields["temperature_c"].setText("70")
    dlg.reason.setText("typo")
    assert not dlg.submit()
    shown = dlg.amend_form.errors["temperature_c"].text() + dlg.form.form_error.text()
    assert "temperature_c" in shown or "45" in shown
    assert not any(isinstance(e, Correction) for e in session.controller.record(pid).events)


def test_clock_jump_pauses_dosing_until_a_nurse_confirms_the_time(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    mono = [1000.0]
    session = sessions.open(data_dir, monotonic=lambda: mono[0])
    pid = add_patient(session, dialog_log)
    window = session.window
    assert window.clock_banner.isHidden()
    # The wall clock jumps 2 h forward while the monotonic clock moves 1 s.
    sessions.clock.advance(timedelta(hours=2))
    mono[0] += 1
    session.ticker.tick()
    assert not window.clock_banner.isHidden()
    assert "jumped forward" in _banner(window.clock_banner)
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and dlg.plan.hard_block
    assert not dlg.ok_button.isEnabled()

    def confirm(d: dialogs.ClockDialog) -> bool:
        return d.submit()

    dialog_log.on(dialogs.ClockDialog, confirm)
    window.confirm_clock()
    assert window.clock_banner.isHidden()
    assert not session.controller.dosing_suspended
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and not dlg.plan.hard_block

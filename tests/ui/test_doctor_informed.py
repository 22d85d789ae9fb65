"""Closing alerts properly: doctor informed, snooze reasons, selected rows keep their colour."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtWidgets import QApplication
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import AlertAck, DoctorInformed
from bedside.common.timeutil import local_zone
from ui import dialogs
from ui.models import OVERDUE_BG
from ui.models.board import COL_NEXT


def _row(session, kind: str):
    return next(r for r in session.controller.due_rows() if r.item.kind == kind)


def _escalation_overdue(sessions: Sessions, data_dir: Path, dialog_log: DialogLog):
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    c = session.controller
    c.chart(pid, "vitals", recorded_by="AB", temperature_c=39.0, heart_rate=90, systolic_mmhg=120)
    c.assess_crs(pid, {"temperature_c": 39.0, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    sessions.advance(session, timedelta(hours=24, minutes=20))
    return session, pid


def test_doctor_informed_closes_the_review_until_the_next_review(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session, pid = _escalation_overdue(sessions, data_dir, dialog_log)
    c = session.controller
    row = _row(session, "crs_escalation")
    assert row.item.state == "overdue"
    panel = session.window.timers
    assert panel.select_key(row.item.key)
    assert panel.doctor_button.isEnabled()
    review_at = c.now + timedelta(hours=4)

    def fill(dlg: dialogs.DoctorInformedDialog) -> bool:
        assert not dlg.submit()  # nothing typed: refused, nothing written
        assert "doctor" in dlg.form.errors["doctor"].text()
        dlg.doctor.setText("Dr Smith")
        dlg.plan.setText("Dexamethasone 10 mg IV, ICU outreach")
        dlg.review_at.set_instant(review_at)
        return dlg.submit()

    dialog_log.on(dialogs.DoctorInformedDialog, fill)
    panel.doctor_informed()
    told = [e for e in c.record(pid).events if isinstance(e, DoctorInformed)]
    assert len(told) == 1 and told[0].doctor == "Dr Smith" and told[0].recorded_by == "AB"
    after = _row(session, "crs_escalation")
    assert after.item.state == "upcoming"
    local = c.now.astimezone(local_zone())
    expected = (
        f"Doctor informed {local:%H:%M} {local:%Z} (Dr Smith), "
        f"review {review_at.astimezone(local_zone()):%H:%M}"
    )
    assert expected in after.item.message
    # Shown where the nurse looks: the timers panel's line for the review.
    panel.show_upcoming.setChecked(True)
    what = panel.model.index(panel.model.row_of(after.item.key), 1).data()
    assert expected in what and "Plan: Dexamethasone 10 mg IV, ICU outreach" in what
    # Four hours later the review is due again, as a new critical alert.
    sessions.advance(session, timedelta(hours=4))
    again = _row(session, "crs_escalation")
    assert again.item.state == "due" and again.item.severity == "critical"
    assert again.alert.state == "active"


def test_snooze_keeps_its_reason_and_shows_it(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    session.controller.chart(
        pid, "vitals", recorded_by="AB", temperature_c=38.6, heart_rate=90, systolic_mmhg=120
    )
    sessions.advance(session, timedelta(hours=2, minutes=1))
    row = _row(session, "vitals_next")
    dlg = dialogs.AlertDialog(session.controller, row, "AB", mode="snooze")
    hint_texts = " ".join(w.text() for w in dlg.findChildren(dialogs.QLabel))
    assert "Snoozing silences this alarm" in hint_texts
    assert "Acknowledging" not in hint_texts
    dlg.minutes.setValue(10)
    dlg.reason.setText("patient in the shower")
    assert dlg.submit()
    acks = [e for e in session.controller.record(pid).events if isinstance(e, AlertAck)]
    assert acks[-1].action == "snoozed" and acks[-1].reason == "patient in the shower"
    now_row = _row(session, "vitals_next")
    assert now_row.alert.reason == "patient in the shower"
    panel = session.window.timers
    status = panel.model.index(panel.model.row_of(now_row.item.key), 0).data()
    assert "snoozed to" in status and "patient in the shower" in status
    board = session.window.board
    text = board.model.index(board.model.row_of(pid), COL_NEXT).data()
    assert "snoozed until" in text and "(patient in the shower)" in text
    ack = dialogs.AlertDialog(session.controller, now_row, "AB", mode="acknowledge")
    ack_text = " ".join(w.text() for w in ack.findChildren(dialogs.QLabel))
    assert "Acknowledging says you have seen this alert" in ack_text


def test_selected_overdue_row_keeps_its_colour(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session, pid = _escalation_overdue(sessions, data_dir, dialog_log)
    board = session.window.board
    board.select(pid)
    QApplication.processEvents()
    view = board.table
    index = board.model.index(board.model.row_of(pid), COL_NEXT)
    assert view.selectionModel().isRowSelected(index.row(), index.parent())
    assert index.data(0x8) is not None  # BackgroundRole: the overdue colour
    rect = view.visualRect(index)
    image = view.viewport().grab().toImage()
    # Inside the frame, above the state icon: the state colour, not the selection colour.
    probe = image.pixelColor(rect.left() + 8, rect.top() + 6)
    assert probe.name() == OVERDUE_BG.name(), probe.name()
    frame = image.pixelColor(rect.left() + 1, rect.center().y())
    assert frame.name() != OVERDUE_BG.name()  # the selection frame

"""The nurse's path end to end (issue 5, item 6), through the real window.

Add a patient, screen eligibility, record the infusion, chart vitals with fever, grade
CRS 2, give tocilizumab 560 mg for 70 kg, see the 8 h countdown, give the next doses,
have a fourth dose within 24 h refused, take the override path (reason + second nurse),
then restart the application over the same data directory and find everything as it was.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel
from ui_helpers import T0, DialogLog, Sessions, add_patient

from bedside.clinical.record import CrsAssessment, EligibilityScreen, Medication
from ui import dialogs
from ui.models.board import COL_CRS, COL_NEXT, COL_TOCI


def _toci(session, pid: str) -> list[Medication]:
    return [
        e
        for e in session.controller.events(pid)
        if isinstance(e, Medication) and e.drug == "tocilizumab"
    ]


def _board_text(session, pid: str, column: int) -> str:
    model = session.window.board.model
    row = model.row_of(pid)
    return model.index(row, column).data()


def _chart_fever(session, dialog_log: DialogLog, qtbot) -> None:
    def fill(dlg: dialogs.VitalsDialog) -> bool:
        dlg.temp.setText("38,9")  # decimal comma as typed on a European keyboard
        dlg.hr.setText("118")
        dlg.sbp.setText("84")
        dlg.dbp.setText("48")
        dlg.spo2.setText("95")
        dlg.rr.setText("22")
        return dlg.submit()

    dialog_log.on(dialogs.VitalsDialog, fill)
    action = session.window.findChild(QAction, "vitals")
    assert action.shortcut().toString() == "F2"
    action.trigger()


def _grade_crs_2(session) -> None:
    ws = session.window.open_patient(session.window.current_pid(), "crs")
    crs = ws.crs
    crs.prefill()
    assert crs.temp.text() == "38.9"  # taken from the vitals just charted
    crs.hypotension.setChecked(True)
    assert "CRS GRADE 2" in crs.grade_banner.findChild(QLabel, "bannerText").text()
    crs.by.setText("AB")
    crs.record()


def _give(session, dialog_log: DialogLog, *, checker: str = "CD", override=None) -> dict:
    seen: dict = {}

    def fill(dlg: dialogs.DoseDialog) -> bool:
        seen["dose"] = dlg.dose_big.text()
        seen["plan"] = dlg.plan
        seen["button"] = dlg.ok_button.text()
        dlg.checked_by.setText(checker)
        if override is not None:
            reason, second, *rest = override
            dlg.reason.setPlainText(reason)
            dlg.second.setText(second)
            if rest:
                dlg.prescriber.setText(rest[0])
        seen["ok"] = dlg.submit()
        seen["override_errors"] = [
            e.text() for e in dlg.override_form.errors.values() if not e.isHidden()
        ]
        seen["form_error"] = dlg.form.form_error.text()
        return seen["ok"]

    dialog_log.on(dialogs.DoseDialog, fill)
    action = session.window.findChild(QAction, "dose")
    assert action.shortcut().toString() == "F4"
    action.trigger()
    return seen


def test_nurse_path_end_to_end(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot
) -> None:
    session = sessions.open(data_dir)
    window = session.window
    window.initials_edit.setText("AB")
    assert window.board.stack.currentWidget() is window.board.empty_page

    # 1. Add a patient (70 kg).
    pid = add_patient(session, dialog_log, weight="70")
    assert window.workspace is not None and window.workspace.pid == pid
    assert window.workspace.current_tab_key() == "eligibility"

    # 2. Screen eligibility (ide-cel, current label: >= 2 lines incl. IMiD, PI, anti-CD38).
    elig = window.workspace.eligibility
    elig.lines.setValue(3)
    for key in ("imid", "pi", "anti_cd38"):
        elig.exposed[key].setChecked(True)
    elig.ecog.setCurrentIndex(elig.ecog.findData(1))
    assert "ELIGIBLE" in elig.verdict.findChild(type(elig.saved_line), "bannerText").text()
    elig.save()
    screens = [e for e in session.controller.events(pid) if isinstance(e, EligibilityScreen)]
    assert [s.status for s in screens] == ["eligible"]

    # 3. Record the infusion (day 0).
    def infuse(dlg: dialogs.InfusionDialog) -> bool:
        dlg.lot.setText("LOT-42")
        return dlg.submit()

    dialog_log.on(dialogs.InfusionDialog, infuse)
    window.workspace._infusion()
    assert session.controller.patient(pid).infusion_at == T0
    assert "Day 0" in window.workspace.facts.text()

    # 4. A day later: vitals with fever and hypotension (F2), then grade 2 CRS.
    sessions.advance(session, timedelta(hours=30))
    _chart_fever(session, dialog_log, qtbot)
    _grade_crs_2(session)
    crs = [e for e in session.controller.events(pid) if isinstance(e, CrsAssessment)]
    assert [c.grade for c in crs] == [2]
    assert _board_text(session, pid, COL_CRS).startswith("Grade 2")

    # 5. Tocilizumab 560 mg (8 mg/kg x 70 kg, 28 mL) with an independent checker (F4).
    seen = _give(session, dialog_log)
    assert seen["ok"], seen
    assert seen["dose"].startswith("560 mg") and "28.0 mL" in seen["dose"]
    doses = _toci(session, pid)
    assert [(d.dose, d.given_by, d.checked_by) for d in doses] == [(560.0, "AB", "CD")]

    # 6. The 8 h countdown: derived from the record, so it follows the clock.
    reassess = [r for r in session.controller.due_rows() if r.item.kind == "tocilizumab_reassess"]
    assert reassess and reassess[0].item.due_at == doses[0].effective_at + timedelta(hours=8)
    assert "in 8 h 00 min" in _board_text(session, pid, COL_TOCI)
    sessions.advance(session, timedelta(hours=1))
    assert "in 7 h 00 min" in _board_text(session, pid, COL_TOCI)
    panel_row = window.timers.model.row_of(reassess[0].item.key)
    assert "in 7 h 00 min" in window.timers.model.index(panel_row, 0).data()

    # 7. The next doses at 8 h intervals: allowed without override.
    sessions.advance(session, timedelta(hours=7))
    seen = _give(session, dialog_log, checker="CD")
    assert seen["ok"] and "override" not in seen["button"]
    sessions.advance(session, timedelta(hours=8))
    seen = _give(session, dialog_log, checker="GH")
    assert seen["ok"]
    assert len(_toci(session, pid)) == 3

    # 8. A fourth dose within 24 h of the first is refused without an override...
    sessions.advance(session, timedelta(hours=4))
    seen = _give(session, dialog_log)
    assert not seen["ok"]
    assert set(seen["plan"].needs_override) >= {"min_interval", "max_per_24h"}
    assert "with override" in seen["button"]
    assert any("second nurse" in t for t in seen["override_errors"])
    assert len(_toci(session, pid)) == 3  # nothing written

    # 9. ... not without the prescriber who ordered it (beyond the label maxima) ...
    seen = _give(
        session,
        dialog_log,
        override=("Refractory hypotension, consultant asked for dose 4 now", "EF"),
    )
    assert not seen["ok"]
    assert any("prescriber" in e for e in seen["override_errors"]), seen
    # ... and given with a reason, a second nurse's initials and the prescriber's name.
    seen = _give(
        session,
        dialog_log,
        override=("Refractory hypotension, consultant asked for dose 4 now", "EF", "Dr Okafor"),
    )
    assert seen["ok"], seen
    fourth = _toci(session, pid)[-1]
    assert fourth.override is not None
    assert fourth.override.second_nurse == "EF"
    assert fourth.override.prescriber == "Dr Okafor"
    assert set(fourth.override.limits) >= {"min_interval", "max_per_24h"}

    # 10. The course maximum is a hard limit: the dialog cannot give a fifth dose.
    sessions.advance(session, timedelta(hours=9))
    seen = _give(session, dialog_log)
    assert not seen["ok"] and seen["plan"].hard_block
    assert len(_toci(session, pid)) == 4
    assert "4/4 course" in _board_text(session, pid, COL_TOCI)

    # 11. Restart the application over the same data directory.
    before_ids = [e.id for e in session.controller.record(pid).events]
    before_next = _board_text(session, pid, COL_NEXT)
    session.close()
    again = sessions.open(data_dir)
    assert again.controller.patient_ids() == [pid]
    assert [e.id for e in again.controller.record(pid).events] == before_ids
    assert _board_text(again, pid, COL_CRS).startswith("Grade 2")
    assert "4/4 course" in _board_text(again, pid, COL_TOCI)
    assert _board_text(again, pid, COL_NEXT) == before_next
    ws = again.window.open_patient(pid, "timeline")
    assert ws.timeline.model.rowCount() == len(before_ids)
    assert again.controller.patient(pid).infusion_at == T0
    assert "Day +" in ws.facts.text()
    assert Qt.Key.Key_F2  # shortcuts documented above

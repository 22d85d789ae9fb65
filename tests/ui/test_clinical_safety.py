"""Issue 10 items 3-6 wired into the window: CRS real state, grade CRS now, drug library."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import CrsAssessment, Medication, PatientUpdate
from ui import dialogs


def _banner(frame) -> str:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QLabel

    return frame.findChild(QLabel, "bannerText").text()


def _error(form, name: str) -> str:  # type: ignore[no-untyped-def]
    err = form.errors[name]
    return "" if err.isHidden() else err.text()


def _infuse(session, pid: str) -> None:  # type: ignore[no-untyped-def]
    c = session.controller
    c.update_patient(
        pid,
        {"infusion_at": (c.now - timedelta(days=2)).isoformat()},
        recorded_by="AB",
        effective_at=c.now - timedelta(days=2),
    )


def test_crs_tab_opens_on_the_real_state_and_guards_a_downgrade(
    sessions: Sessions,
    data_dir: Path,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _infuse(session, pid)
    c = session.controller
    c.assess_crs(pid, {"temperature_c": 39.1, "hypotension": True}, recorded_by="AB")
    sessions.advance(session, timedelta(hours=1))
    c.chart(pid, "vitals", recorded_by="AB", temperature_c=38.2, systolic_mmhg=95)
    sessions.advance(session, timedelta(hours=1))
    c.chart(pid, "vitals", recorded_by="AB", temperature_c=37.6)
    crs = session.window.open_patient(pid, "crs").crs
    crs.reset()
    # Highest since the assessment, hypotension carried forward, recorded grade shown.
    assert crs.temp.text() == "38.2"
    assert crs.hypotension.isChecked()
    assert "carried forward" in crs.bp_line.text()
    text = _banner(crs.grade_banner)
    assert "CRS GRADE 2 (preview" in text and "recorded: grade 2" in text
    # The nurse marks hypotension resolved: a lower grade, flagged in the preview...
    crs.hypotension.setChecked(False)
    assert "Lower than the recorded grade 2" in _banner(crs.grade_banner)
    crs.by.setText("AB")
    asked: list[str] = []

    def say_no(_parent: object, _title: str, text: str, **kw: object) -> bool:
        asked.append(text)
        assert kw.get("default_no") is True  # Enter never confirms a lower grade
        assert kw.get("yes") == "Improved: grade 2 → grade 1"
        return False

    monkeypatch.setattr(dialogs, "confirm", say_no)
    before = sum(isinstance(e, CrsAssessment) for e in c.events(pid))
    crs.record()
    assert asked and "grade 2" in asked[0] and "grade 1" in asked[0]
    assert sum(isinstance(e, CrsAssessment) for e in c.events(pid)) == before
    assert "Not recorded" in _banner(crs.grade_banner)
    # ...recorded only with the explicit "improved" confirmation.
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)
    crs.record()
    last = [e for e in c.events(pid) if isinstance(e, CrsAssessment)][-1]
    assert last.grade == 1 and last.confirmation is not None
    assert last.confirmation.limits == ["crs_improved"]


def test_masking_locked_with_reason_and_grade_0_hypotension_is_a_warning(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _infuse(session, pid)
    crs = session.window.open_patient(pid, "crs").crs
    crs.reset()
    crs.temp.setText("37.0")
    crs.pressors["norepinephrine"].setChecked(True)
    assert not crs.masked.isChecked() and crs.masked.isEnabled()
    assert crs.grade_banner.property("banner") == "warning"  # never green
    assert "not CRS by ASTCT without fever — tell the doctor" in _banner(crs.grade_banner)
    c = session.controller
    c.assess_crs(pid, {"temperature_c": 38.9, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    sessions.advance(session, timedelta(hours=2))
    crs.reset()
    assert crs.masked.isChecked() and not crs.masked.isEnabled()
    assert "Tocilizumab" in crs.masked_line.text()
    assert "rest of this course" in crs.masked_line.text()


def test_new_fever_puts_grade_crs_now_on_the_board(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    _infuse(session, pid)
    c = session.controller
    c.chart(pid, "vitals", recorded_by="AB", temperature_c=38.6)
    c.refresh()
    rows = [r for r in c.due_rows() if r.pid == pid and r.item.kind == "crs_grade_now"]
    assert rows and "Grade CRS now" in rows[0].item.message
    c.assess_crs(pid, {"temperature_c": 38.6}, recorded_by="AB")
    c.refresh()
    assert not [r for r in c.due_rows() if r.item.kind == "crs_grade_now"]


def test_weight_dialog_refuses_7_and_confirms_a_big_change(
    sessions: Sessions,
    data_dir: Path,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, weight="64")
    c = session.controller
    dlg = dialogs.WeightDialog(c, pid, "AB")
    dlg.weight.setText("7")
    assert not dlg.submit()
    assert "cannot be right" in _error(dlg.form, "weight_kg")
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: False)
    dlg.weight.setText("141")  # 64 kg typed in pounds
    assert not dlg.submit()
    assert "looks like pounds" in _error(dlg.form, "weight_kg")
    assert not [e for e in c.events(pid) if isinstance(e, PatientUpdate)]
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)
    dlg.weight.setText("75")  # 17 % more: confirmed, and the confirmation is recorded
    assert dlg.submit()
    (upd,) = [e for e in c.events(pid) if isinstance(e, PatientUpdate)]
    assert upd.confirmation is not None and upd.confirmation.limits == ["weight_change"]


def test_medication_dialog_refuses_dexamethasone_100_mg(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.MedicationDialog(session.controller, pid, "AB", drug="dexamethasone")
    dlg.dose.setText("100")
    assert not dlg.submit()
    assert "hard limit" in _error(dlg.form, "dose")
    assert not [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    dlg.dose.setText("10")
    assert dlg.submit()


def test_lab_in_the_wrong_unit_is_refused_with_a_hint(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    tox = session.window.open_patient(pid, "toxicity").toxicity
    tox.test.setCurrentIndex(tox.test.findData("neutrophils"))
    tox.unit.setCurrentIndex(tox.unit.findData("10^9/L"))
    tox.value.setText("400")
    assert "cells/µL" in _error(tox.lab_form, "value")
    assert "GRADE 0" not in _banner(tox.lab_grade)  # never "within normal limits"
    tox.lab_by.setText("AB")
    tox.record_lab()
    assert not [e for e in session.controller.events(pid) if e.kind == "lab"]


def test_vitals_dialog_fahrenheit_and_oxygen_contradiction(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.VitalsDialog(session.controller, pid, "AB")
    dlg.temp.setText("100.4")
    assert not dlg.submit()
    assert "Fahrenheit" in _error(dlg.form, "temperature_c")
    dlg.temp.setText("38.0")
    dlg.flow.setText("10")  # device still "room air"
    assert not dlg.submit()
    assert "Room air with oxygen" in _error(dlg.form, "oxygen_flow_l_min")
    assert not [e for e in session.controller.events(pid) if e.kind == "vitals"]
    dlg.flow.setText("")
    assert dlg.submit()


def test_dose_dialog_exactly_800_mg_and_rounded_volume(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, weight="100")
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and not dlg.plan.dose.capped
    assert not dlg.cap_banner.isHidden()
    assert "exactly the 800 mg maximum" in _banner(dlg.cap_banner)
    assert dlg.dose_big.text().replace(" ", "") == "800mg·40.0mL"
    dlg.checked_by.setText("CD")
    assert not dlg.submit()  # the weight box is not ticked
    assert not [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    dlg.confirm_weight.setChecked(True)
    assert dlg.submit()
    (dose,) = [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    assert dose.confirmation is not None and dose.confirmation.limits == ["dose_at_max"]

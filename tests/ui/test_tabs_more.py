"""More tab workflows: keyboard, steroids with their interval, dose history, neuro checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import ChecklistCheck, HistoryConfirmation, Medication, NeuroCheck
from ui import dialogs


def test_f2_key_opens_the_vitals_dialog(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    window = session.window
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    seen: list[str] = []
    dialog_log.on(dialogs.VitalsDialog, lambda d: seen.append(d.pid) is not None)
    qtbot.keyClick(window, Qt.Key.Key_F2)
    assert seen == [pid]
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.stack.currentWidget() is window.board


def test_dexamethasone_with_its_ordered_interval(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.MedicationDialog(session.controller, pid, "AB", drug="dexamethasone")
    dlg.dose.setText("10")
    dlg.every.setText("six")
    assert not dlg.submit()
    assert "not a number" in dlg.form.errors["every_h"].text()
    dlg.every.setText("6")
    assert dlg.submit()
    (med,) = [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    assert (med.drug, med.dose, med.every_h) == ("dexamethasone", 10.0, 6.0)
    nxt = [r for r in session.controller.due_rows() if r.item.kind == "dexamethasone_next"]
    assert nxt and nxt[0].item.due_at == med.effective_at + timedelta(hours=6)
    crs = session.window.open_patient(pid, "crs").crs
    assert "dexamethasone" in crs.steroid_line.text().lower()


def test_prior_dose_and_history_confirmation(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    prior = dialogs.PriorDoseDialog(session.controller, pid, "AB")
    prior.dose.setText("560")
    assert not prior.submit()  # source missing
    prior.source.setText("Transfer letter from ICU")
    assert prior.submit()
    hist = dialogs.HistoryDialog(session.controller, pid, "AB")
    assert not hist.submit()  # no choice
    hist.complete.set_value(True)
    hist.source.setText("MAR checked with pharmacy")
    assert hist.submit()
    events = session.controller.events(pid)
    assert any(isinstance(e, Medication) and e.prior for e in events)
    assert any(isinstance(e, HistoryConfirmation) and e.complete for e in events)
    assert session.controller.budget(pid).total == 1


def test_cilta_cel_delayed_neurotoxicity_check(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, product="cilta-cel")
    neuro = session.window.open_patient(pid, "neuro").neuro
    assert not neuro.delayed_box.isHidden()
    neuro.record_check()
    assert "yes or no" in neuro.xform.errors["handwriting_changed"].text()
    neuro.hand.set_value(True)
    neuro.movement.set_value(False)
    neuro.face.set_value(False)
    neuro.person.set_value(False)
    neuro.sample.setText("Small cramped letters compared with baseline")
    neuro.record_check()
    (check,) = [e for e in session.controller.events(pid) if isinstance(e, NeuroCheck)]
    assert check.handwriting_changed and not check.movement_changed
    assert "CHANGE RECORDED" in neuro.xresult.text()
    # Ide-cel has the daily neurological check too; a new limb weakness is charted as a finding.
    ide = add_patient(session, dialog_log, product="ide-cel", name="Other", mrn="MRN-2")
    neuro = session.window.open_patient(ide, "neuro").neuro
    assert not neuro.delayed_box.isHidden()
    for c in (neuro.hand, neuro.movement, neuro.face, neuro.person):
        c.set_value(False)
    neuro.findings["limb_weakness"].setChecked(True)
    neuro.record_check()
    (check,) = [e for e in session.controller.events(ide) if isinstance(e, NeuroCheck)]
    assert check.findings == ["limb_weakness"] and "CHANGE RECORDED" in neuro.xresult.text()
    assert not neuro.findings["limb_weakness"].isChecked()  # cleared after recording
    alert = [i for i in session.controller.due_items(ide) if i.kind == "neuro_check_positive"]
    assert alert and alert[0].severity == "critical"


def test_baseline_ice_and_change(sessions: Sessions, data_dir: Path, dialog_log: DialogLog) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    neuro = session.window.open_patient(pid, "neuro").neuro
    for name, c in neuro.items.items():
        c.set_value({"orientation": 4, "naming": 3}.get(name, 1))
    neuro.consciousness.set_value("alert")
    neuro.set_baseline.setChecked(True)
    neuro.record()
    assert session.controller.patient(pid).baseline_ice == 10
    for name, c in neuro.items.items():
        c.set_value({"orientation": 2, "naming": 3}.get(name, 1))
    neuro.consciousness.set_value("alert")
    assert "DOWN 2 from baseline" in neuro.baseline_line.text()


def test_boxed_warning_checklist_is_charted_from_the_toxicity_tab(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, product="cilta-cel")
    tox = session.window.open_patient(pid, "toxicity").toxicity
    assert "0 of 8 confirmed" in tox.check_status.text()
    tox.check_boxes["pjp_prophylaxis"].setChecked(True)
    tox.check_boxes["cmv_monitoring"].setChecked(True)
    tox.record_checklist()
    checks = [e for e in session.controller.events(pid) if isinstance(e, ChecklistCheck)]
    assert {(c.item, c.done) for c in checks} == {
        ("pjp_prophylaxis", True),
        ("cmv_monitoring", True),
    }
    assert "2 of 8 confirmed" in tox.check_status.text()
    tox.record_checklist()  # nothing changed: nothing written
    assert len([e for e in session.controller.events(pid) if isinstance(e, ChecklistCheck)]) == 2
    # The discrepancy notes of the toxicity, infection and lab rules are on the tab.
    notes = tox.discrepancy_notes.text()
    assert all(d in notes for d in ("D10", "D14", "D15", "D16"))

"""Each tab's forms with bad input: the reason is shown next to the field, nothing is saved."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import IceAssessment, Lab, Medication, Vitals
from ui import dialogs
from ui.forms import UNSET, split_error


def _error(form, name: str) -> str:
    err = form.errors[name]
    return "" if err.isHidden() else err.text()


def _banner(frame) -> str:
    from PySide6.QtWidgets import QLabel

    return frame.findChild(QLabel, "bannerText").text()


def _count(session, pid: str, kind: type) -> int:
    return sum(1 for e in session.controller.record(pid).events if isinstance(e, kind))


def test_split_error_finds_the_field() -> None:
    assert split_error("crs: temperature_c: too high (got 50)") == [
        ("temperature_c", "too high (got 50)")
    ]
    assert split_error("override.second_nurse: bad") == [("second_nurse", "bad")]
    assert split_error("something went wrong") == [(None, "something went wrong")]


def test_crs_tab_bad_input(sessions: Sessions, data_dir: Path, dialog_log: DialogLog) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    crs = session.window.open_patient(pid, "crs").crs
    crs.temp.setText("hot")
    assert "not a number" in _error(crs.form, "temperature_c")
    assert "fix the field" in _banner(crs.grade_banner)
    crs.temp.setText("50")  # caught by the core's plausibility range
    assert "not a possible temperature" in _error(crs.form, "temperature_c")
    crs.temp.setText("100.4")  # typed in °F: the core names the unit and the conversion
    assert "Fahrenheit" in _error(crs.form, "temperature_c")
    assert "38.0 °C" in _error(crs.form, "temperature_c")
    crs.temp.setText("38.4")
    crs.device.setCurrentIndex(crs.device.findData("nasal_cannula"))
    assert "nasal cannula flow" in _error(crs.form, "oxygen_flow_l_min")
    crs.flow.setText("0")  # nasal cannula at 0 L/min is a contradiction, not oxygen
    assert "does not fit" in _error(crs.form, "oxygen_flow_l_min")
    assert "fix the field" in _banner(crs.grade_banner)
    assert "oxygen_flow_l_min" not in _error(crs.form, "oxygen_flow_l_min")
    crs.flow.setText("4")
    assert "GRADE 2" in _banner(crs.grade_banner)
    crs.by.setText("")
    crs.record()
    assert "initials" in _banner(crs.grade_banner)
    assert session.controller.record(pid).events == []


def test_vitals_dialog_bad_input(sessions: Sessions, data_dir: Path, dialog_log: DialogLog) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.VitalsDialog(session.controller, pid, "AB")
    assert not dlg.submit()  # nothing measured
    assert "at least one" in _error(dlg.form, "temperature_c")
    dlg.hr.setText("fast")
    assert not dlg.submit()
    assert "not a number" in _error(dlg.form, "heart_rate")
    dlg.hr.setText("90")
    dlg.spo2.setText("150")
    assert not dlg.submit()
    assert "100" in _error(dlg.form, "spo2_pct")
    dlg.spo2.setText("97")
    dlg.by.setText("")
    assert not dlg.submit()
    assert "initials" in _error(dlg.form, "recorded_by")
    assert _count(session, pid, Vitals) == 0
    dlg.by.setText("AB")
    assert dlg.submit()
    assert _count(session, pid, Vitals) == 1


def test_neuro_tab_requires_every_item_and_keeps_not_assessable_apart(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    neuro = session.window.open_patient(pid, "neuro").neuro
    neuro.by.setText("AB")
    neuro.record()
    for name in neuro.items:
        assert "score this item" in _error(neuro.form, name)
    assert "consciousness" in _error(neuro.dform, "consciousness")
    assert _count(session, pid, IceAssessment) == 0

    # All zeros: the arousability question appears; arousable -> grade 3, unarousable -> 4.
    for c in neuro.items.values():
        c.set_value(0)
    assert not neuro.arousal_banner.isHidden()
    neuro.consciousness.set_value("alert")
    assert "ICANS GRADE 3" in _banner(neuro.grade_banner)
    neuro.consciousness.set_value("unarousable")
    assert "ICANS GRADE 4" in _banner(neuro.grade_banner)

    # "Not assessable" is not zero: the ICE score is unknown and grading uses the other domains.
    for c in neuro.items.values():
        c.set_value(1)
    neuro.items["writing"].set_value(None)
    neuro.consciousness.set_value("alert")
    assert "NOT ASSESSABLE" in neuro.total.text()
    assert "ICANS GRADE 0" in _banner(neuro.grade_banner)
    neuro.record()
    (ice,) = [e for e in session.controller.events(pid) if isinstance(e, IceAssessment)]
    assert ice.writing is None and ice.ice_score is None and ice.grade == 0
    assert neuro.items["orientation"].value() is UNSET  # form reset after recording


def test_toxicity_tab_units_and_bad_values(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    tox = session.window.open_patient(pid, "toxicity").toxicity
    tox.test.setCurrentIndex(tox.test.findData("hemoglobin"))
    tox.unit.setCurrentIndex(tox.unit.findData("g/L"))
    tox.value.setText("x")
    assert "not a number" in _error(tox.lab_form, "value")
    tox.value.setText("-3")
    assert _error(tox.lab_form, "value")
    tox.value.setText("78")  # 78 g/L = 7.8 g/dL: CTCAE grade 3 anaemia
    assert "CTCAE GRADE 3" in _banner(tox.lab_grade)
    tox.lab_by.setText("AB")
    tox.record_lab()
    (lab,) = [e for e in session.controller.events(pid) if isinstance(e, Lab)]
    assert (lab.value, lab.unit, lab.ctcae_grade) == (78.0, "g/L", 3)
    assert tox.hb_chart.points and abs(tox.hb_chart.points[0][1] - 7.8) < 1e-9
    tox.description.setText("")
    tox.record_toxicity()
    assert "describe" in _error(tox.tox_form, "description")


def test_eligibility_needs_initials_and_shows_unmet(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    session.window.initials_edit.setText("")
    pid = add_patient(session, dialog_log)
    elig = session.window.open_patient(pid, "eligibility").eligibility
    elig.lines.setValue(1)
    text = _banner(elig.verdict)
    assert "NOT ELIGIBLE" in text and "prior line" in text
    elig.by.setText("")
    elig.save()
    assert "initials" in elig.form.form_error.text()
    assert session.controller.record(pid).events == []


def test_superseded_label_needs_a_reason_and_says_superseded(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, product="cilta-cel")
    elig = session.window.open_patient(pid, "eligibility").eligibility
    elig.product.setCurrentIndex(elig.product.findData("cilta-cel"))
    elig.criteria.setCurrentIndex(elig.criteria.findData("label-2021"))
    elig.lines.setValue(4)
    for cb in elig.exposed.values():
        cb.setChecked(True)
    text = _banner(elig.verdict)
    assert "SUPERSEDED" in text and "refractory to lenalidomide" in text
    assert "D2" in elig.discrepancy_notes.text() and elig.criteria_reason.isEnabled()
    elig.by.setText("AB")
    elig.save()  # no reason: refused, nothing written
    assert "superseded" in _error(elig.form, "criteria_reason")
    assert session.controller.record(pid).events == []
    elig.criteria_reason.setText("Approved by the MDT in March 2024")
    elig.save()
    (ev,) = session.controller.record(pid).events
    assert ev.superseded and ev.criteria_reason == "Approved by the MDT in March 2024"
    elig.criteria.setCurrentIndex(elig.criteria.findData("label-2024"))
    assert not elig.criteria_reason.isEnabled() and "NOT ELIGIBLE" in _banner(elig.verdict)


def test_dose_dialog_needs_an_independent_checker(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert not dlg.submit()
    assert "checking nurse" in _error(dlg.form, "checked_by")
    dlg.checked_by.setText("ab")
    assert not dlg.submit()
    assert "different nurse" in _error(dlg.form, "checked_by")
    assert _count(session, pid, Medication) == 0


def test_dose_dialog_stale_weight_is_a_soft_stop(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    sessions.advance(session, timedelta(days=4))
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and dlg.plan.weight_stale
    assert dlg.weight_banner.isHidden() and not dlg.stale_banner.isHidden()
    assert "more than the 72 h" in _banner(dlg.stale_banner)
    assert dlg.ok_button.isEnabled()
    dlg.checked_by.setText("CD")
    # No reason: not given, the dialog stays open and says why.
    assert not dlg.submit()
    assert _count(session, pid, Medication) == 0
    assert "write why" in dlg.form.form_error.text()
    dlg.weight_reason.setText("hypotensive at night, cannot be weighed")
    assert dlg.submit()
    (dose,) = [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    assert dose.confirmation is not None and dose.confirmation.limits == ["stale_weight"]
    assert dose.confirmation.reason == "hypotensive at night, cannot be weighed"


def test_dose_dialog_new_weight_clears_the_stale_stop(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    sessions.advance(session, timedelta(days=4))
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")

    def weigh(w: dialogs.WeightDialog) -> bool:
        w.weight.setText("71.5")
        return w.submit()

    dialog_log.on(dialogs.WeightDialog, weigh)
    dlg._record_weight()
    assert dlg.plan is not None and dlg.plan.dose.dose_mg == 572.0
    assert not dlg.plan.weight_stale and dlg.stale_banner.isHidden()
    assert dlg.ok_button.isEnabled()


def test_capped_dose_needs_weight_confirmation(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, weight="120")
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and dlg.plan.dose.capped
    assert "960 mg" in _banner(dlg.cap_banner)
    dlg.checked_by.setText("CD")
    assert not dlg.submit()
    assert "confirm the weight" in dlg.form.form_error.text()
    dlg.confirm_weight.setChecked(True)
    assert dlg.submit()
    (dose,) = [e for e in session.controller.events(pid) if isinstance(e, Medication)]
    assert dose.dose == 800.0


def test_incomplete_history_needs_override(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)

    def fill(dlg: dialogs.AddPatientDialog) -> bool:
        dlg.name.setText("Transfer In")
        dlg.mrn.setText("MRN-T")
        dlg.weight.setText("80")
        dlg.infused.setChecked(True)
        dlg.infusion_at.set_instant(session.controller.now - timedelta(days=2))
        assert not dlg.submit()  # history question unanswered
        dlg.history.set_value(False)
        return dlg.submit()

    dialog_log.on(dialogs.AddPatientDialog, fill)
    session.window.add_patient()
    (pid,) = session.controller.patient_ids()
    assert "INCOMPLETE" in session.window.workspace.status.text()
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert "history_incomplete" in dlg.plan.needs_override
    assert not dlg.history_banner.isHidden()
    assert not dlg.override_box.isHidden()

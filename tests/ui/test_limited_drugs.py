"""The dose dialog for any drug with dose limits shows the core's decision (issue 14)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtWidgets import QLabel
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import Medication
from ui import dialogs


def _meds(session, pid: str) -> list[Medication]:
    return [e for e in session.controller.record(pid).events if isinstance(e, Medication)]


def _error(form, name: str) -> str:
    err = form.errors[name]
    return "" if err.isHidden() else err.text()


def _banner(frame) -> str:
    return frame.findChild(QLabel, "bannerText").text()


def test_anakinra_dialog_fixed_dose_route_and_override(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.DoseDialog(session.controller, pid, "AB", drug="anakinra")
    assert dlg.plan is not None and dlg.plan.drug == "anakinra"
    assert dlg.dose_big.text() == "100 mg"  # fixed dose, no volume (no concentration)
    assert "No concentration in the protocol" in dlg.volume.text()
    assert "Fixed dose" in dlg.weight_line.text()
    assert "Allowed now" in dlg.budget_line.text()
    assert "no course maximum" in dlg.budget_line.text()
    assert dlg.route.isEnabled() and dlg.override_box.isHidden()
    dlg.checked_by.setText("CD")
    assert not dlg.submit()  # the protocol gives no route: the nurse must choose
    assert "route" in _error(dlg.form, "route")
    assert _meds(session, pid) == []
    dlg.route.setCurrentIndex(dlg.route.findData("SC"))
    assert dlg.submit()
    (dose,) = _meds(session, pid)
    assert (dose.drug, dose.dose, dose.route) == ("anakinra", 100.0, "SC")

    sessions.advance(session, timedelta(hours=2))
    again = dialogs.DoseDialog(session.controller, pid, "AB", drug="anakinra")
    assert again.plan is not None
    # What the dialog shows is the budget's decision.
    assert not again.plan.budget.allowed_now
    assert again.plan.needs_override == ["min_interval"]
    assert not again.override_box.isHidden() and not again.limit_banner.isHidden()
    assert "less than 6 h" in _banner(again.limit_banner)
    assert "with override" in again.ok_button.text()
    again.checked_by.setText("CD")
    again.route.setCurrentIndex(again.route.findData("SC"))
    again.second.setText("ab")  # the same nurse: the core says no
    assert not again.submit()
    assert "different nurse" in _error(again.override_form, "second_nurse")
    assert "write why" in _error(again.override_form, "reason")
    assert "prescriber" in _error(again.override_form, "prescriber")
    assert len(_meds(session, pid)) == 1
    again.reason.setPlainText("ICANS grade 3 not improving, ordered")
    again.second.setText("EF")
    again.prescriber.setText("Dr Okafor")
    assert again.submit()
    second = _meds(session, pid)[-1]
    assert second.override is not None and second.override.limits == ["min_interval"]


def test_dose_dialog_switches_drug_without_losing_input(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.DoseDialog(session.controller, pid, "AB")
    assert dlg.plan is not None and dlg.plan.drug == "tocilizumab"
    assert "20 mg/mL" in dlg.dose_calc.text() and not dlg.route.isEnabled()  # from the protocol
    dlg.checked_by.setText("CD")
    dlg.drug_box.setCurrentIndex(dlg.drug_box.findData("anakinra"))
    assert dlg.plan is not None and dlg.plan.drug == "anakinra"
    assert "Anakinra" in dlg.windowTitle() or "anakinra" in dlg.windowTitle()
    assert dlg.route.isEnabled() and dlg.route.currentData() == ""
    assert dlg.checked_by.value() == "CD"


def test_medication_dialog_offers_no_limited_drug(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    dlg = dialogs.MedicationDialog(session.controller, pid, "AB")
    offered = [dlg.drug.itemData(i) for i in range(dlg.drug.count())]
    assert "anakinra" not in offered and "tocilizumab" not in offered
    assert "dexamethasone" in offered
    # Typed as "other", the core refuses it and says where it belongs.
    dlg.drug.setCurrentIndex(dlg.drug.findData("other"))
    dlg.drug_name.setText("Anakinra")
    dlg.dose.setText("100")
    assert not dlg.submit()
    assert "Give dose (F4)" in (_error(dlg.form, "drug") + dlg.form.form_error.text())
    assert _meds(session, pid) == []

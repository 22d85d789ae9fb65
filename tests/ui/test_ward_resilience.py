"""Issue 12 in the application: one patient never takes down the ward, the import review
with a nurse's initials, a read-only ward when the folder cannot be written, and a dose
correction that needs a second nurse and a reason from the list."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel
from ui_helpers import DialogLog, Sessions

from bedside.clinical import escalations
from bedside.clinical.escalations import derive_timeline as real_derive_timeline
from bedside.clinical.record import Correction, Medication
from bedside.common.clock import FakeClock
from bedside.common.errors import StorageError
from bedside.reports.export import export_json_bytes
from bedside.store.journal import JournalStore
from bedside.ward.service import Ward, open_ward
from ui import dialogs, transfer_actions
from ui.models.board import COL_PATIENT

SECRET_NAME = "Zebedee Canaryfield"


def _seed(root: Path, clock: FakeClock) -> Ward:
    ward = open_ward(root, clock)
    for pid, mrn, name, dob in (
        ("p1", "MRN-1", "Ada Lovelace", "1961-01-01"),
        ("p2", "MRN-2", SECRET_NAME, "1950-02-02"),
    ):
        ward.create_patient(
            recorded_by="AB",
            patient_id=pid,
            mrn=mrn,
            name=name,
            date_of_birth=dob,
            sex="female",
            weight_kg=70.0,
            weight_measured_at=clock.now(),
            product="ide-cel",
            dose_history_complete=True,
        )
    ward.assess_crs("p1", {"temperature_c": 38.6, "hypotension": False}, recorded_by="AB")
    ward.give_tocilizumab("p1", given_by="AB", checked_by="CD")
    return ward


def test_a_patient_whose_timers_fail_is_set_aside_and_the_ward_works(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _seed(data_dir, clock).close()

    def derive_timeline(timeline: Any, *args: Any, **kwargs: Any) -> Any:
        if timeline.patient_id == "p2":
            raise OverflowError("date value out of range")  # not a BedsideError
        return real_derive_timeline(timeline, *args, **kwargs)

    # The timers of p2 cannot be derived (the read side's view at an instant).
    monkeypatch.setattr(escalations, "derive_timeline", derive_timeline)
    caplog.set_level(logging.INFO)
    session = sessions.open(data_dir)
    c = session.controller
    assert c.patient_ids() == ["p1"]
    assert "p2" in c.failures() and c.failures()["p2"].startswith("cannot display")
    rows = {r.pid: r for r in c.board_rows()}
    assert rows["p1"].failure is None and rows["p1"].budget is not None
    assert rows["p2"].failure is not None
    model = session.window.board.model
    texts = [model.index(i, COL_PATIENT).data() for i in range(model.rowCount())]
    assert "Cannot display, details…" in texts
    assert session.window.failure_banner.isVisibleTo(session.window)
    # The rest of the ward keeps working: chart on p1, tick, handover.
    c.chart("p1", "note", recorded_by="AB", text="still charting")
    sessions.advance(session, timedelta(minutes=1))
    assert "p1" in c.patient_ids()
    # Logged, without the patient's name or id.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot be displayed" in logged
    assert SECRET_NAME not in logged and "'p2'" not in logged
    # Double-clicking the row shows the details (with the backups that can be restored).
    shown: list[str] = []

    def details(dlg: Any) -> bool:
        shown.extend(w.text() for w in dlg.findChildren(QLabel))
        return False

    dialog_log.on(dialogs.RestoreDialog, details)
    row = next(i for i, t in enumerate(texts) if t == "Cannot display, details…")
    session.window.board._open_index(model.index(row, COL_PATIENT))
    assert any("cannot be displayed" in t and "timers" in t and "OverflowError" in t for t in shown)


def test_gui_import_shows_voided_local_doses_and_needs_initials(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _seed(data_dir, clock).close()
    # The other workstation got a copy of the ward and voided the dose there.
    other = tmp_path / "other"
    shutil.copytree(data_dir, other)
    (other / "bedside.lock").unlink(missing_ok=True)
    ward_b = open_ward(other, clock)
    dose = next(e for e in ward_b.record("p1").events if isinstance(e, Medication))
    ward_b.correct(
        "p1",
        dose.id,
        action="void",
        reason="charted twice on the other ward",
        reason_code="duplicate_entry",
        second_nurse="CD",
        recorded_by="XY",
    )
    # Its patient file as exported (the ward keeps journals since issue 15).
    source = tmp_path / "p1.json"
    source.write_bytes(export_json_bytes(ward_b, "p1"))
    ward_b.close()

    session = sessions.open(data_dir)
    shown: list[str] = []
    answers: list[str | None] = [None, "ef"]

    def review(parent: Any, name: str, plan: Any) -> str | None:
        shown.append(transfer_actions.import_review_html(name, plan))
        return answers.pop(0)

    monkeypatch.setattr(transfer_actions, "ask_import_confirmation", review)
    monkeypatch.setattr(transfer_actions, "ask_open_files", lambda *a: [source])
    session.window.import_files()
    assert "color:#b00020" in shown[0] and "would be VOIDED" in shown[0]
    assert session.controller.budget("p1").total == 1  # declined: nothing changed
    assert any("NOT imported" in m[2] for m in dialog_log.messages)
    session.window.import_files()
    budget = session.controller.budget("p1")
    assert budget.total == 0 and len(budget.voided) == 1
    void = [e for e in session.controller.record("p1").events if isinstance(e, Correction)]
    assert void and void[-1].origin and "confirmed by EF" in void[-1].origin


def test_unwritable_ward_opens_read_only_with_a_banner(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(data_dir, clock).close()

    def full(self: JournalStore) -> None:
        raise StorageError("cannot take the writer lock: ENOSPC: No space left on device")

    monkeypatch.setattr(JournalStore, "acquire_writer_lock", full)  # the ward's store (issue 15)
    session = sessions.open(data_dir)
    c = session.controller
    assert c.ward.read_only and sorted(c.patient_ids()) == ["p1", "p2"]
    banner = session.window.storage_banner
    assert banner.isVisibleTo(session.window)
    text = " ".join(w.text() for w in banner.findChildren(dialogs.QLabel))
    assert "READ-ONLY" in text and "No space left" in text and "chart on paper" in text
    with pytest.raises(StorageError, match="read-only"):
        c.chart("p1", "note", recorded_by="AB", text="cannot be saved")


def test_low_free_space_shows_a_warning(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(data_dir, clock).close()
    usage = shutil.disk_usage(data_dir)
    monkeypatch.setattr(
        "bedside.store.storage.shutil.disk_usage",
        lambda _p: type(usage)(usage.total, usage.total - 50 * 2**20, 50 * 2**20),
    )
    session = sessions.open(data_dir)
    banner = session.window.storage_banner
    assert banner.isVisibleTo(session.window)
    text = " ".join(w.text() for w in banner.findChildren(dialogs.QLabel))
    assert "LOW DISK SPACE" in text and "50 MB" in text


def test_dose_correction_dialog_needs_a_reason_from_the_list_and_a_second_nurse(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    dialog_log: DialogLog,
) -> None:
    _seed(data_dir, clock).close()
    session = sessions.open(data_dir)
    dose = next(e for e in session.controller.record("p1").events if isinstance(e, Medication))
    dlg = dialogs.CorrectionDialog(session.controller, "p1", dose, initials="AB")
    try:
        dlg.action.set_value("void")
        dlg.reason.setText("charted on the wrong patient")
        assert not dlg.submit()  # no reason from the list, no second nurse
        assert dlg.reason_code is not None and dlg.second is not None
        dlg.reason_code.setCurrentIndex(dlg.reason_code.findData("wrong_patient"))
        assert not dlg.submit()  # still no second nurse
        dlg.second.setText("AB")
        assert not dlg.submit()  # the same nurse twice
        assert session.controller.budget("p1").total == 1
        dlg.second.setText("CD")
        assert dlg.submit()
    finally:
        dlg.close()
    budget = session.controller.budget("p1")
    assert budget.total == 0 and len(budget.voided) == 1
    (void,) = [e for e in session.controller.record("p1").events if isinstance(e, Correction)]
    assert void.second_nurse == "CD" and void.reason_code == "wrong_patient"


def _validate_like_pydantic(values: dict[str, Any]) -> None:
    raise ValueError(f"invalid input {values!r}")  # the message quotes the values


def test_log_file_keeps_tracebacks_without_field_values(tmp_path: Path) -> None:
    import os
    import stat

    from ui.app import NoFieldValues, _private_log_dir, _PrivateRotatingFileHandler

    folder = tmp_path / "logs"
    _private_log_dir(folder)
    handler = _PrivateRotatingFileHandler(folder / "bedside.log", encoding="utf-8")
    handler.addFilter(NoFieldValues())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.privacy")
    log.addHandler(handler)
    try:
        values = {"weight_kg": 600.0, "name": SECRET_NAME}  # runtime values, as in a record
        try:
            _validate_like_pydantic(values)
        except ValueError:
            log.exception("a record could not be prepared")
    finally:
        log.removeHandler(handler)
        handler.close()
    text = (folder / "bedside.log").read_text("utf-8")
    assert "ValueError (message omitted)" in text and "Traceback" in text
    assert SECRET_NAME not in text and "600.0" not in text
    if os.name == "posix":
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "bedside.log").stat().st_mode) == 0o600


def test_a_tab_that_fails_for_one_patient_sets_only_that_patient_aside(
    sessions: Sessions,
    data_dir: Path,
    clock: FakeClock,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(data_dir, clock).close()
    session = sessions.open(data_dir)
    window = session.window
    ws = window.open_patient("p1")
    window.show_board()
    tab = next(iter(ws.pages.values()))
    original = type(tab).set_patient

    def set_patient(self: Any, pid: str) -> None:
        if pid == "p2":
            raise KeyError("a value the tab did not expect")
        original(self, pid)

    monkeypatch.setattr(type(tab), "set_patient", set_patient)
    window.open_patient("p2")
    assert window.stack.currentWidget() is window.board
    assert "p2" in session.controller.failures() and "p2" not in session.controller.patient_ids()
    assert any("Cannot display this patient" in m[1] for m in dialog_log.messages)
    ws = window.open_patient("p1")  # the rest of the ward works
    assert ws.pid == "p1" and window.stack.currentWidget() is ws


def test_record_infusion_accepts_a_scanned_gs1_lot_and_names_an_overlong_one(
    sessions: Sessions, data_dir: Path, clock: FakeClock, dialog_log: DialogLog
) -> None:
    _seed(data_dir, clock).close()
    session = sessions.open(data_dir)
    gs1 = "01095011015300031721123110" + "A" * 74  # 100 characters, as a scanner types it
    dlg = dialogs.InfusionDialog(session.controller, "p2", initials="AB")
    try:
        dlg.lot.setText("X" * 260)
        assert not dlg.submit()
        error = dlg.form.errors["lot_number"].text()
        assert "200" in error and dlg.form.errors["lot_number"].isVisibleTo(dlg)
        assert dlg.lot.text() == "X" * 260  # what the nurse typed is kept
        dlg.lot.setText(gs1)
        assert dlg.submit()
    finally:
        dlg.close()
    assert session.controller.patient("p2").lot_number == gs1
    assert sorted(session.controller.patient_ids()) == ["p1", "p2"]  # the ward still works


def test_same_name_and_birth_date_needs_the_nurse_to_confirm_a_different_person(
    sessions: Sessions,
    data_dir: Path,
    dialog_log: DialogLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ui_helpers import add_patient

    session = sessions.open(data_dir)
    add_patient(session, dialog_log, name="Sam Same", mrn="MRN-A")
    asked: list[str] = []

    def answer(parent: Any, title: str, text: str, **kw: Any) -> bool:
        asked.append(title)
        return False

    monkeypatch.setattr(dialogs, "confirm", answer)
    with pytest.raises(ValueError):  # the dialog stays open: no second patient
        add_patient(session, dialog_log, name="sam  SAME", mrn="MRN-B")
    assert asked == ["Same name and date of birth"] and len(session.controller.patient_ids()) == 1
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)
    add_patient(session, dialog_log, name="Sam Same", mrn="MRN-C")
    assert len(session.controller.patient_ids()) == 2
    # The same MRN (normalised) is never confirmable.
    with pytest.raises(ValueError):
        add_patient(session, dialog_log, name="Other Person", mrn=" mrn-a ")
    assert len(session.controller.patient_ids()) == 2

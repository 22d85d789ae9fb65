"""Restore from backup through the real dialog (issue 14, item 5).

From a corrupted patient file: the board sets the patient aside, a double-click on its row
opens "Restore from backup…", the nurse chooses a backup, confirms and types her initials
with real key events, and the board shows the patient again with "history incomplete".
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QWidget
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import Medication, Restored
from bedside.tools.commands import NAMES
from bedside.ward.service import Ward, open_ward
from ui import app, dialogs
from ui.app import CORE_COMMANDS
from ui.models.board import COL_PATIENT, COL_TOCI


def _focus() -> QWidget:
    w = QApplication.focusWidget()
    assert w is not None
    return w


def _corrupt(session: Any, pid: str) -> bytes:
    """Damage the patient's journal on disk (as a failing disk would) and reload the ward."""
    path = session.controller.ward.store.own_journal(pid)
    data = path.read_bytes()
    bad = data.replace(b'"sex":"female"', b'"sex":"male"', 1)
    assert bad != data
    path.write_bytes(bad)
    session.controller.reload()
    return bad


def test_every_cli_command_runs_in_the_frozen_build() -> None:
    assert NAMES <= CORE_COMMANDS and "restore" in CORE_COMMANDS


def test_corrupted_patient_restored_through_the_dialog_with_keys(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot: Any
) -> None:
    session = sessions.open(data_dir)
    c = session.controller
    pid = add_patient(session, dialog_log, name="Keyboard Patient", bed="4A-07")
    c.chart(pid, "note", recorded_by="AB", text="before the backup")
    sessions.advance(session, timedelta(days=1))
    c.chart(pid, "note", recorded_by="AB", text="in the second backup")  # a new day's backup
    sessions.advance(session, timedelta(minutes=1))
    c.assess_crs(pid, {"temperature_c": 38.9, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")  # within 10 min: not backed up
    assert c.budget(pid) is not None and c.budget(pid).history_complete  # type: ignore[union-attr]
    bad = _corrupt(session, pid)

    window = session.window
    assert pid not in c.patient_ids() and pid in c.failures()
    model = window.board.model
    texts = [model.index(i, COL_PATIENT).data() for i in range(model.rowCount())]
    row = texts.index("Cannot display, details…")
    assert model.index(row, COL_PATIENT).data() == "Cannot display, details…"
    assert window.failure_banner.isVisibleTo(window)
    assert window.restore_button.isVisibleTo(window)

    outcome: dict[str, Any] = {}

    def drive(dlg: dialogs.RestoreDialog) -> bool:
        dlg.show()
        dlg.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg, timeout=2000)
        texts = " ".join(w.text() for w in dlg.findChildren(QLabel))
        assert "cannot be displayed" in texts and pid in texts
        items = [dlg.backup.itemText(i) for i in range(dlg.backup.count())]
        outcome["items"] = items
        assert len(items) == 2 and all("verified: yes" in t for t in items), items
        assert all(" events" in t for t in items)
        assert "Keyboard Patient" in dlg.confirm.text()
        # Opens in the initials (the only empty field); Enter without the confirmation:
        # stays open, says what is missing, nothing written.
        assert _focus() is dlg.by
        QTest.keyClicks(dlg.by, "ab")
        QTest.keyClick(_focus(), Qt.Key.Key_Return)
        assert dlg.isVisible() and dlg.form.has_errors()
        assert not dlg.form.errors["confirm"].isHidden()
        assert session.controller.ward.store.own_journal(pid).read_bytes() == bad
        # Shift+Tab back to the backups: the older one (Down), then the confirmation (Space).
        for _ in range(4):
            if _focus() is dlg.backup:
                break
            QTest.keyClick(_focus(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
        assert _focus() is dlg.backup
        QTest.keyClick(dlg.backup, Qt.Key.Key_Down)
        assert dlg.backup.currentIndex() == 1
        outcome["name"] = dlg.backup.currentData()
        QTest.keyClick(_focus(), Qt.Key.Key_Tab)
        assert _focus() is dlg.confirm
        QTest.keyClick(dlg.confirm, Qt.Key.Key_Space)
        assert dlg.confirm.isChecked()
        QTest.keyClick(_focus(), Qt.Key.Key_Return)
        return dlg.result() == QDialog.DialogCode.Accepted

    dialog_log.on(dialogs.RestoreDialog, drive)
    window.initials_edit.setText("")  # the nurse types her initials in the dialog
    window.board.table.selectRow(row)
    window.board.table.setFocus()
    window.board._open_selected()
    assert dialog_log.ran and isinstance(dialog_log.ran[-1], dialogs.RestoreDialog)

    # The board shows the patient again, with "history incomplete".
    assert pid in c.patient_ids() and pid not in c.failures()
    assert not window.failure_banner.isVisibleTo(window)
    model = window.board.model
    rows = [
        i
        for i in range(model.rowCount())
        if model.index(i, COL_PATIENT).data() != "Cannot display, details…"
    ]
    toci = " ".join(str(model.index(i, COL_TOCI).data()) for i in rows)
    assert "history incomplete" in toci
    events = c.events(pid)
    assert isinstance(events[-1], Restored) and events[-1].backup_name == outcome["name"]
    assert events[-1].recorded_by == "AB"
    assert not any(isinstance(e, Medication) for e in events)  # after the backup: missing
    assert window.saved_label.text().startswith("✓ Saved: restored from backup")
    kept = [p.read_bytes() for p in (data_dir / "quarantine").rglob(f"{pid}.*")]
    assert bad in kept  # the damaged journal is kept


def test_read_only_ward_refuses_the_restore_clearly_and_writes_nothing(
    sessions: Sessions,
    data_dir: Path,
    dialog_log: DialogLog,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, name="Read Only Patient", bed="4A-09")
    bad = _corrupt(session, pid)
    session.close()
    sessions.opened.clear()

    def read_only(root: Path, clk: Any) -> Ward:
        ward = open_ward(root, clk, read_only=True)
        ward.read_only_reason = "the disk is full"
        return ward

    monkeypatch.setattr(app, "open_ward_or_read_only", read_only)
    session = sessions.open(data_dir)
    window = session.window
    assert pid in session.controller.failures()
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    refused: list[str] = []

    def drive(dlg: dialogs.RestoreDialog) -> bool:
        texts = " ".join(w.text() for w in dlg.findChildren(QLabel))
        assert "Nothing can be restored here: this ward is open read-only" in texts
        assert not dlg.ok_button.isEnabled()
        dlg.confirm.setChecked(True)
        dlg.by.setText("AB")
        assert not dlg.submit()  # even if asked, the core refuses
        refused.append(dlg.form.form_error.text())
        return False

    dialog_log.on(dialogs.RestoreDialog, drive)
    window.restore_button.click()  # the banner's button: the one patient set aside
    assert refused and "read-only" in refused[0] and "nothing was restored" in refused[0]
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == before
    assert session.controller.ward.store.own_journal(pid).read_bytes() == bad
    assert pid in session.controller.failures()


def test_the_application_entry_point_runs_the_restore_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The frozen executable's ``bedside restore …`` reaches the core command."""
    empty = tmp_path / "not-a-ward"
    empty.mkdir()
    assert app.main(["restore", "--data-dir", str(empty), "p1", "--list"]) == 2
    assert "not a Bedside data directory; nothing was changed" in capsys.readouterr().err
    assert not any(empty.iterdir())

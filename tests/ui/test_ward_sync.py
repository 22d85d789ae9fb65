"""Issue 15 on screen: another workstation's dose appears, its silence and duplicates are named."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from ui_helpers import DialogLog, Sessions, add_patient

from bedside.ward.service import open_ward
from bedside.ward.wardsync import write_heartbeat
from ui import dialogs
from ui.forms import banner_text


def test_other_workstation_dose_staleness_and_duplicate_on_screen(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    window = session.window
    pid = add_patient(session, dialog_log)
    ws = session.controller.ward.workstation
    assert ws and f"workstation {ws}" in window.status_label.text()  # the name nurses see
    # A third workstation that was cut off before bay 2's dose: its own copy of the folder.
    cut_off = data_dir.parent / "pc3"
    shutil.copytree(data_dir / "journals", cut_off / "journals")
    other = open_ward(data_dir, sessions.clock, workstation="4A-PC2")  # bay 2, same folder
    try:
        other.give_tocilizumab(pid, given_by="EF", checked_by="GH", weight_confirmed=True)
        sessions.advance(session, timedelta(seconds=1))
        budget = session.controller.budget(pid)
        assert budget is not None and budget.total == 1  # the dose given in bay 2 counts here
        assert window.sync_banner.isHidden()
        # Bay 2 falls silent (its network is down) for 35 minutes.
        sessions.advance(session, timedelta(minutes=35))
        expected = "4A-PC2 last synced 35 min ago — doses given there since may be missing"
        assert not window.sync_banner.isHidden()
        assert expected in banner_text(window.sync_banner).text()
        dlg = dialogs.DoseDialog(session.controller, pid, "AB")
        assert not dlg.sync_banner.isHidden()
        assert expected in banner_text(dlg.sync_banner).text()
        dlg.reject()
        write_heartbeat(other.store)  # bay 2 is back in touch
        sessions.advance(session, timedelta(seconds=1))
        assert window.sync_banner.isHidden()
        # PC3, cut off, gave a dose it could not know was too soon; its journal arrives.
        pc3 = open_ward(cut_off, sessions.clock, workstation="4A-PC3")
        try:
            pc3.give_tocilizumab(pid, given_by="JK", checked_by="LM", weight_confirmed=True)
        finally:
            pc3.close()
        shutil.copy(cut_off / "journals" / pid / "4A-PC3.jsonl", data_dir / "journals" / pid)
        sessions.advance(session, timedelta(seconds=1))
        text = banner_text(window.sync_banner).text()
        assert not window.sync_banner.isHidden()
        assert "Possible duplicate dose: Tocilizumab given on 4A-PC2 and on 4A-PC3" in text
        budget = session.controller.budget(pid)
        assert budget is not None and budget.total == 2
    finally:
        other.close()

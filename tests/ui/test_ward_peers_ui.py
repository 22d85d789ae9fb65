"""Issue 15 on screen: a workstation with no heartbeat, or a clock that disagrees, is named."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ui_helpers import DialogLog, Sessions, add_patient

from bedside.common.clock import FakeClock
from bedside.ward.service import open_ward
from bedside.ward.wardsync import write_heartbeat
from ui import dialogs
from ui.forms import banner_text


def test_no_heartbeat_and_clock_disagreement_are_named_on_the_board_and_dose_dialog(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    window = session.window
    pid = add_patient(session, dialog_log)
    bay3_clock = FakeClock(sessions.clock.now())
    bay3 = open_ward(data_dir, bay3_clock, workstation="4A-PC3")
    try:
        bay3.chart(pid, "note", recorded_by="EF", text="seen in bay 3")
        sessions.advance(session, timedelta(seconds=1))
        assert window.sync_banner.isHidden()  # its heartbeat is fresh
        (data_dir / "workstations" / "4A-PC3.json").unlink()  # its journal came, no heartbeat
        sessions.advance(session, timedelta(seconds=1))
        expected = (
            "4A-PC3: no heartbeat — when it last synced is unknown; doses given there may be "
            "missing"
        )
        assert not window.sync_banner.isHidden()
        assert expected in banner_text(window.sync_banner).text()
        dlg = dialogs.DoseDialog(session.controller, pid, "AB")
        assert not dlg.sync_banner.isHidden()
        assert expected in banner_text(dlg.sync_banner).text()
        dlg.reject()
        # Its heartbeat comes back, written by a clock 30 min ahead of this one.
        tol = session.controller.protocol.monitoring.peer_clock_tolerance_min.value
        bay3_clock.set(sessions.clock.now() + timedelta(minutes=tol + 25))
        write_heartbeat(bay3.store)
        sessions.advance(session, timedelta(seconds=1))
        text = banner_text(window.sync_banner).text()
        assert "no heartbeat" not in text
        assert "4A-PC3's clock is at least" in text and "ahead of this workstation's" in text
        dlg = dialogs.DoseDialog(session.controller, pid, "AB")
        assert "4A-PC3's clock is at least" in banner_text(dlg.sync_banner).text()
        dlg.reject()
    finally:
        bay3.close()

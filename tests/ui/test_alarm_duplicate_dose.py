"""Issue 15: a possible duplicate dose rings the critical alarm like any critical alert.

This workstation gives a dose; bay 2, cut off from the ward folder, gives another 2 h later
(it could not know); when bay 2's journal arrives, the critical alarm sounds here, the item
heads the timers panel and the board, cannot be snoozed, and is acknowledged with initials and
a reason through the alert dialog — and bay 2 sees that acknowledgement once it merges.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from test_alarm_repeat import RecordingPlayer, _step
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.ward import alerts
from bedside.ward.service import open_ward
from ui import dialogs
from ui.alarm import Alarm
from ui.forms import banner_text
from ui.models.board import COL_NEXT


def test_duplicate_dose_from_another_workstation_rings_the_critical_alarm_until_acknowledged(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    player = RecordingPlayer()
    session = sessions.open(data_dir, alarm=Alarm(player=player))
    c = session.controller
    pid = add_patient(session, dialog_log)
    critical_s = int(c.protocol.monitoring.alarm_repeat_critical_s.value)
    cut_off = data_dir.parent / "bay2"  # bay 2's copy of the folder, before our dose
    shutil.copytree(data_dir / "journals", cut_off / "journals")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD", weight_confirmed=True)
    sessions.advance(session, timedelta(hours=2))
    for row in c.due_rows():  # deal with what is due, so only the duplicate can sound
        if row.item.active and not row.alert.silenced:
            c.acknowledge(pid, row.item.key, "AB", reason="done at the bedside")
    sessions.advance(session, timedelta(seconds=1))
    assert not [r for r in c.due_rows() if r.item.kind == "duplicate_dose"]
    before = len(player.starts())
    bay2 = open_ward(cut_off, sessions.clock, workstation="4A-PC2")
    try:
        bay2.give_tocilizumab(pid, given_by="EF", checked_by="GH", weight_confirmed=True)
    finally:
        bay2.close()
    shutil.copy(cut_off / "journals" / pid / "4A-PC2.jsonl", data_dir / "journals" / pid)
    sessions.advance(session, timedelta(seconds=1))  # replication delivered bay 2's journal
    # The critical alarm sounds, and the alert heads the timers panel and the board.
    assert len(player.starts()) == before + 1 and player.starts()[-1] == "start critical"
    (row,) = [r for r in c.due_rows() if r.item.kind == "duplicate_dose"]
    assert row.item.severity == "critical" and row.alert.state == "active"
    panel = session.window.timers
    assert panel.rows()[0].item.key == row.item.key
    assert panel.select_key(row.item.key)
    assert panel.ack_button.isEnabled() and not panel.snooze_button.isEnabled()
    board = next(b for b in c.board_rows() if b.pid == pid)
    assert board.next_due is not None and board.next_due.item.key == row.item.key
    model = session.window.board.model
    text = model.index(0, COL_NEXT).data(Qt.ItemDataRole.DisplayRole)
    assert "Possible duplicate dose" in text
    sync = session.window.sync_banner
    assert not sync.isHidden() and "Possible duplicate dose" in banner_text(sync).text()
    # It repeats at the critical interval while nobody deals with it.
    _step(sessions, session, 15, critical_s // 15)
    assert len(player.starts()) == before + 2
    # A snooze is refused; an acknowledgement needs a reason, then the sound stops.
    snooze = dialogs.AlertDialog(c, row, "AB", mode="snooze")
    assert not snooze.ok_button.isEnabled()
    snooze.reject()
    ack = dialogs.AlertDialog(c, row, "AB", mode="acknowledge")
    assert not ack.submit()  # no reason
    assert next(r for r in c.due_rows() if r.item.key == row.item.key).alert.state == "active"
    ack.reason.setText("checked both charts with bay 2: one dose given")
    assert ack.submit()
    assert player.log[-1] == "stop"
    _step(sessions, session, critical_s, 3)
    assert len(player.starts()) == before + 2
    (acked,) = [r for r in c.due_rows() if r.item.key == row.item.key]
    assert acked.alert.state == "acknowledged" and acked.alert.by == "AB"
    assert "Possible duplicate dose" not in banner_text(sync).text()  # shown acknowledged
    # Bay 2 merges this workstation's journal: acknowledged there too.
    shutil.copy(
        data_dir / "journals" / pid / f"{c.ward.workstation}.jsonl", cut_off / "journals" / pid
    )
    bay2 = open_ward(cut_off, sessions.clock, workstation="4A-PC2", read_only=True)
    try:
        (st,) = [s for s in alerts.patient_alerts(bay2, pid) if s.item.kind == "duplicate_dose"]
        assert st.item.key == row.item.key and st.state == "acknowledged" and st.by == "AB"
    finally:
        bay2.close()

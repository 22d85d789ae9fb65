"""The alarm repeats at the protocol's intervals while nobody deals with it (fake clock).

The player is a recorder: each test sees which tone was started and when it was stopped.
Time moves with the fake clock and one tick per step, as the 1 s timer would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import Vitals
from ui import dialogs
from ui.alarm import Alarm


class RecordingPlayer:
    """A player with a sound device that remembers what it was asked to do."""

    name = "recorder"

    def __init__(self) -> None:
        self.log: list[str] = []

    def probe(self) -> str:
        return ""

    def start(self, path: Path) -> None:
        self.log.append(f"start {path.stem}")

    def stop(self) -> None:
        self.log.append("stop")

    def play_blocking(self, path: Path, timeout: float) -> str:
        self.log.append(f"play {path.stem}")
        return ""

    def starts(self) -> list[str]:
        return [e for e in self.log if e.startswith("start")]


def _open(sessions: Sessions, data_dir: Path, dialog_log: DialogLog):
    player = RecordingPlayer()
    session = sessions.open(data_dir, alarm=Alarm(player=player))
    pid = add_patient(session, dialog_log)
    return session, pid, player


def _vitals(session, pid: str, temp: float) -> None:
    ev = session.controller.chart(
        pid, "vitals", recorded_by="AB", temperature_c=temp, heart_rate=90, systolic_mmhg=120
    )
    assert isinstance(ev, Vitals)


def _row(session, kind: str):
    return next(r for r in session.controller.due_rows() if r.item.kind == kind)


def _step(sessions: Sessions, session, seconds: int, count: int) -> None:
    for _ in range(count):
        sessions.advance(session, timedelta(seconds=seconds))


def test_overdue_alarm_repeats_every_interval_until_acknowledged(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session, pid, player = _open(sessions, data_dir, dialog_log)
    mon = session.controller.protocol.monitoring
    due_s = int(mon.alarm_repeat_due_s.value)
    overdue_s = int(mon.alarm_repeat_overdue_s.value)
    grace_s = int(mon.due_grace_min.value * 60)
    _vitals(session, pid, 36.8)  # next vitals in 4 h
    sessions.advance(session, timedelta(hours=4) - timedelta(seconds=1))
    assert player.starts() == []
    sessions.advance(session, timedelta(seconds=1))  # due now
    assert player.starts() == ["start due"]
    # While due: again every alarm_repeat_due_s (ticks every 10 s; the count is not ticks).
    _step(sessions, session, 10, due_s // 10 - 1)
    assert player.starts() == ["start due"]
    _step(sessions, session, 10, 1)
    assert player.starts() == ["start due"] * 2
    # Overdue after the grace window: the critical tone, then every alarm_repeat_overdue_s.
    due_at = _row(session, "vitals_next").item.due_at
    sessions.advance(session, due_at + timedelta(seconds=grace_s) - session.controller.now)
    assert _row(session, "vitals_next").item.state == "overdue"
    assert player.starts()[-1] == "start critical"
    n = len(player.starts())
    _step(sessions, session, 30, overdue_s // 30 - 1)
    assert len(player.starts()) == n
    _step(sessions, session, 30, 1)
    assert len(player.starts()) == n + 1
    # A long gap (the computer was busy): one sounding, not one per missed interval.
    sessions.advance(session, timedelta(seconds=overdue_s * 3))
    assert len(player.starts()) == n + 2
    # Acknowledged: the sound stops at once and does not come back.
    row = _row(session, "vitals_next")
    session.controller.acknowledge(pid, row.item.key, "AB")
    assert player.log[-1] == "stop"
    _step(sessions, session, overdue_s, 3)
    assert len(player.starts()) == n + 2


def test_critical_alarm_repeats_every_minute_and_a_snooze_silences(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session, pid, player = _open(sessions, data_dir, dialog_log)
    c = session.controller
    critical_s = int(c.protocol.monitoring.alarm_repeat_critical_s.value)
    _vitals(session, pid, 39.0)
    c.assess_crs(pid, {"temperature_c": 39.0, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    # Deal with everything but the escalation review as it comes due.
    sessions.advance(session, timedelta(hours=24))
    row = _row(session, "crs_escalation")
    assert row.item.severity == "critical" and row.alert.state == "active"
    for other in c.due_rows():
        if other.item.key != row.item.key and other.item.active and not other.alert.silenced:
            c.acknowledge(pid, other.item.key, "AB", reason="done at the bedside")
    before = len(player.starts())
    _step(sessions, session, 15, critical_s // 15)
    assert len(player.starts()) == before + 1
    assert player.starts()[-1] == "start critical"
    _step(sessions, session, 15, critical_s // 15)
    assert len(player.starts()) == before + 2
    c.acknowledge(pid, row.item.key, "AB", reason="doctor called, reviewing")
    assert player.log[-1] == "stop"
    _step(sessions, session, critical_s, 3)
    assert len(player.starts()) == before + 2


def test_snoozed_alarm_is_silent_and_resumes_after_the_snooze(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session, pid, player = _open(sessions, data_dir, dialog_log)
    _vitals(session, pid, 38.6)  # febrile: vitals every 2 h
    sessions.advance(session, timedelta(hours=2))
    assert player.starts() == ["start due"]
    row = _row(session, "vitals_next")
    dlg = dialogs.AlertDialog(session.controller, row, "AB", mode="snooze")
    dlg.minutes.setValue(10)
    assert dlg.submit()
    assert player.log[-1] == "stop"
    _step(sessions, session, 60, 9)
    assert player.starts() == ["start due"]
    _step(sessions, session, 60, 1)
    assert player.starts() == ["start due"] * 2


def test_help_test_alarm_sound_plays_the_critical_alarm_or_says_why_not(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, tmp_path: Path
) -> None:
    from ui.alarm import NoPlayer

    player = RecordingPlayer()
    session = sessions.open(data_dir, alarm=Alarm(player=player))
    actions = {a.objectName(): a for a in session.window.findChildren(QAction)}
    help_menu = next(
        m for m in session.window.menuBar().findChildren(QMenu) if m.title() == "&Help"
    )
    assert actions["test_alarm"] in help_menu.actions()
    session.window.test_alarm()
    assert player.starts() == ["start critical"]
    kind, title, text = dialog_log.messages[-1]
    assert (kind, title) == ("inform", "Test alarm sound") and "critical alarm" in text
    silent = sessions.open(
        tmp_path / "other", alarm=Alarm(player=NoPlayer("no sound card was found"))
    )
    silent.window.test_alarm()
    kind, title, text = dialog_log.messages[-1]
    assert kind == "warn" and "No alarm sound: no sound card was found" in text
    assert "Test alarm sound" in text  # what to do next
    assert not silent.alarm.available
    assert (
        "no sound card was found"
        in silent.window.timers.sound_warning.findChild(QLabel, "bannerText").text()
    )

"""The application shell: command line, single instance, crash hook, first run, a11y, models."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
)
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.common.errors import LockedError
from ui import app as ui_app
from ui import dialogs
from ui.chart import TrendChart, ctcae_bands
from ui.crash import CrashHandler, redactor_for
from ui.resources import ICON_NAMES, icon
from ui.ticker import Ticker

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_version_prints_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    assert ui_app.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bedside ") and "protocol bedside-bcma-cart" in out


@pytest.mark.slow
def test_smoke_test_and_quit_after_show_in_a_subprocess(tmp_path: Path) -> None:
    data = tmp_path / "ward"
    smoke = subprocess.run(
        [sys.executable, "-m", "ui", "--demo", "--data-dir", str(data), "--smoke-test"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert smoke.returncode == 0, smoke.stderr
    assert re.search(r"smoke test: ok \(\d+ screens rendered, 7 patients\)", smoke.stdout)
    shown = subprocess.run(
        [sys.executable, "-m", "ui", "--data-dir", str(data), "--quit-after-show"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "first-paint-monotonic=" in shown.stdout


@pytest.mark.slow
def test_second_instance_is_refused_with_the_holder(tmp_path: Path, qtbot) -> None:
    data = tmp_path / "ward"
    first = subprocess.Popen(
        [sys.executable, "-m", "ui", "--data-dir", str(data), "--no-error-dialog"],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Issue 15: the single-instance lock is per workstation, in locks/<workstation>.lock
        qtbot.waitUntil(
            lambda: bool(list(data.glob("locks/*.lock.info"))) and first.poll() is None,
            timeout=60000,
        )
        second = subprocess.run(
            [sys.executable, "-m", "ui", "--data-dir", str(data), "--no-error-dialog"],
            env=_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr
        assert "already open" in second.stderr
        assert first.poll() is None  # the first copy keeps running
    finally:
        first.kill()
        first.wait(timeout=30)


def test_same_directory_twice_in_process_is_locked(sessions: Sessions, data_dir: Path) -> None:
    sessions.open(data_dir)
    with pytest.raises(LockedError, match="pid"):
        sessions.open(data_dir)


def test_crash_hook_logs_without_patient_data_and_shows_one_dialog(
    sessions: Sessions,
    data_dir: Path,
    dialog_log: DialogLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = sessions.open(data_dir)
    add_patient(session, dialog_log, name="Zebedee Quartermaine", mrn="MRN-77")
    handler = CrashHandler(redact=redactor_for(session.controller.redaction_terms))
    caplog.set_level(logging.ERROR, logger="ui.crash")
    dialog_log.messages.clear()
    try:
        raise RuntimeError("bad state for Zebedee Quartermaine MRN-77")
    except RuntimeError as exc:
        # Called directly: PySide6 does not route slot exceptions reliably under pytest.
        handler.excepthook(type(exc), exc, exc.__traceback__)
    text = caplog.text
    assert "RuntimeError" in text and "<patient>" in text
    assert "Zebedee" not in text and "MRN-77" not in text
    assert [k for k, _t, _m in dialog_log.messages] == ["crash"]
    assert "Zebedee" not in dialog_log.messages[0][2]
    # While a dialog is open, further errors are logged but not stacked.
    handler._dialog_open = True
    handler.excepthook(ValueError, ValueError("again"), None)
    assert [k for k, _t, _m in dialog_log.messages] == ["crash"]
    assert handler.count == 2
    # The window still works afterwards.
    session.ticker.tick()
    assert session.controller.patient_ids()


def test_crash_hook_install_and_uninstall() -> None:
    before = sys.excepthook
    handler = CrashHandler(show_dialog=False)
    handler.install()
    assert sys.excepthook == handler.excepthook
    handler.uninstall()
    assert sys.excepthook is before


def test_empty_ward_explains_and_offers_demo(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    calls: list[str] = []
    session = sessions.open(data_dir, demo_launcher=lambda: calls.append("demo"))
    board = session.window.board
    assert board.stack.currentWidget() is board.empty_page
    board.demo_button.click()
    assert calls == ["demo"]
    add_patient(session, dialog_log)
    session.window.show_board()
    assert board.stack.currentWidget() is board.board_page


def test_demo_ward_is_bannered(sessions: Sessions, data_dir: Path, clock) -> None:
    from bedside.tools.demo import write_demo_ward

    write_demo_ward(data_dir, clock)
    session = sessions.open(data_dir)
    window = session.window
    assert session.controller.demo
    assert not window.demo_banner.isHidden()
    assert "DEMO" in window.windowTitle()
    assert "bedside-bcma-cart v" in window.protocol_label.text()
    assert len(session.controller.patient_ids()) >= 6
    rows = session.controller.board_rows()
    keys = [r.urgency for r in rows]
    assert keys == sorted(keys)  # most urgent first
    # Every tab of every demo patient renders.
    for pid in session.controller.patient_ids():
        ws = window.open_patient(pid)
        for key in ws.tab_keys():
            ws.show_tab(key)
            assert not window.grab().isNull()


def test_every_control_has_a_name(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    window = session.window
    window.open_patient(pid)
    dialogs_to_check = [
        dialogs.VitalsDialog(session.controller, pid, "AB"),
        dialogs.DoseDialog(session.controller, pid, "AB"),
        dialogs.AddPatientDialog(session.controller, "AB"),
        dialogs.MedicationDialog(session.controller, pid, "AB"),
    ]
    for root in [window, *dialogs_to_check]:
        for b in root.findChildren(QAbstractButton):
            if b.objectName().startswith("qt_"):
                continue  # Qt's own internals (table corner button)
            assert b.text() or b.accessibleName(), b
        inputs = [
            w
            for t in (QLineEdit, QComboBox, QSpinBox, QPlainTextEdit)
            for w in root.findChildren(t)
        ]
        for w in inputs:
            if w.objectName().startswith("qt_"):
                continue
            if w.parent() is not None and isinstance(w.parent(), (QComboBox, QSpinBox)):
                continue  # the inner line edit of a combo/spin box
            assert w.accessibleName(), (type(w).__name__, w.objectName())


def test_frequent_actions_have_shortcuts(sessions: Sessions, data_dir: Path) -> None:
    from PySide6.QtGui import QAction

    window = sessions.open(data_dir).window
    wanted = {"vitals": "F2", "ice": "F3", "dose": "F4", "add_patient": "Ctrl+N", "urgent": "F8"}
    for name, keys in wanted.items():
        assert window.findChild(QAction, name).shortcut().toString() == keys


def test_models_pass_the_model_tester(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtmodeltester
) -> None:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log)
    session.controller.chart(pid, "vitals", recorded_by="AB", temperature_c=38.5)
    sessions.advance(session, timedelta(hours=3))
    ws = session.window.open_patient(pid, "timeline")
    qtmodeltester.check(session.window.board.model)
    qtmodeltester.check(session.window.timers.model)
    qtmodeltester.check(ws.timeline.model)


def test_icons_load() -> None:
    for name in ICON_NAMES:
        assert not icon(name).isNull(), name


def test_trend_chart_paints_bands(qtbot, clock) -> None:
    chart = TrendChart("Neutrophils", "×10⁹/L")
    qtbot.addWidget(chart)
    chart.resize(420, 220)
    now = clock.now()
    chart.set_data(
        [(now - timedelta(days=2), 1.2), (now, 0.4)],
        bands=ctcae_bands(2.0, [1.5, 1.0, 0.5]),
        y_floor=0.0,
        now=now,
    )
    assert not chart.grab().isNull()
    assert "0.4 ×10⁹/L" in chart.accessibleDescription()
    assert [b.label for b in chart.bands] == ["G1", "G2", "G3", "G4"]


def test_real_ticker_ticks(qtbot, clock) -> None:
    ticker = Ticker(clock, interval_ms=20)
    with qtbot.waitSignal(ticker.ticked, timeout=2000) as blocker:
        ticker.start()
    assert blocker.args == [clock.now()]
    ticker.stop()


def test_ticker_reports_a_resume(qtbot, clock) -> None:
    from ui_helpers import FakeTimer

    ticker = Ticker(clock, timer_factory=FakeTimer)
    ticker.tick()
    clock.advance(timedelta(minutes=30))  # laptop lid closed
    with qtbot.waitSignal(ticker.resume_detected, timeout=1000) as blocker:
        ticker.tick()
    assert blocker.args == [1800.0]


def test_single_shot_runs_later(qtbot) -> None:
    from PySide6.QtCore import QObject

    from ui.ticker import single_shot

    owner = QObject()
    done: list[int] = []
    single_shot(1, owner, lambda: done.append(1))
    qtbot.waitUntil(lambda: done == [1], timeout=2000)
    assert QTimer is not None


@pytest.mark.slow
def test_smoke_test_on_a_written_ward_sees_its_patients_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """As the frozen check runs it: a ward written by ``bedside demo``, then ``--smoke-test``."""
    data = tmp_path / "ward"
    demo = subprocess.run(
        [sys.executable, "-m", "bedside", "demo", "--data-dir", str(data)],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr

    def files() -> dict[str, bytes]:
        return {
            str(p.relative_to(data)): p.read_bytes()
            for p in sorted(data.rglob("*"))
            if p.is_file() and "locks" not in p.parts
        }

    before = files()
    smoke = subprocess.run(
        [sys.executable, "-m", "ui", "--data-dir", str(data), "--smoke-test"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert smoke.returncode == 0, smoke.stderr
    assert re.search(r"smoke test: ok \(\d+ screens rendered, 7 patients\)", smoke.stdout)
    assert files() == before

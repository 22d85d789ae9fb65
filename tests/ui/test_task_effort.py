"""Clicks and keys per core task, measured by driving the real window (issue 10, "Done when").

Four core tasks — give a tocilizumab dose, chart a set of vitals, score ICE, acknowledge
an alert — are driven three ways from the ward board with the patient selected:

* ``keyboard+enter``: shortcut, Tab to each field, type / Space, then Enter to save;
* ``keyboard+button``: the same, but Tab to the save button and press Space;
* ``mouse``: click each field or choice, type, click the save button.

Every key press and every click is counted, and each path must actually save the entry
(the count of records of that kind goes up by one). The figures are printed (run with
``-s``) and, when ``BEDSIDE_TASK_COUNTS`` names a file, written there as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QWidget
from ui_helpers import DialogLog, Sessions, add_patient

from bedside.clinical.record import AlertAck, IceAssessment, Medication, Vitals
from ui import dialogs

Step = tuple[str, Callable[[Any], QWidget], str]
"""(``"type"`` or ``"choose"``, widget getter on the container, text to type)."""


@dataclass
class Counter:
    """Keys and clicks sent to the application."""

    keys: int = 0
    clicks: int = 0
    log: list[str] = field(default_factory=list)

    def key(self, key: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        target = QApplication.focusWidget() or QApplication.activeWindow()
        assert target is not None, "no widget has the keyboard"
        QTest.keyClick(target, key, mod)
        QApplication.processEvents()
        self.keys += 1
        self.log.append(f"key {key.name}")

    def type(self, text: str) -> None:
        for ch in text:
            target = QApplication.focusWidget()
            assert target is not None
            QTest.keyClicks(target, ch)
            self.keys += 1
        self.log.append(f"type {text!r}")

    def click(self, widget: QWidget) -> None:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)
        QApplication.processEvents()
        self.clicks += 1
        self.log.append(f"click {widget.accessibleName() or type(widget).__name__}")

    def arrow_to(self, target: QWidget, limit: int = 12) -> None:
        """Arrow keys within a group of choice buttons until ``target`` has the keyboard."""
        for _ in range(limit):
            if QApplication.focusWidget() is target:
                return
            self.key(Qt.Key.Key_Right)
        raise AssertionError(f"arrows never reached {target.accessibleName()!r}")

    def tab_to(self, target: QWidget, limit: int = 60) -> None:
        """Press Tab until ``target`` (or a child of it) has the keyboard."""
        for _ in range(limit):
            focus = QApplication.focusWidget()
            if focus is not None and (focus is target or target.isAncestorOf(focus)):
                return
            self.key(Qt.Key.Key_Tab)
            self.log.append(f"  -> {_name(QApplication.focusWidget())}")
        raise AssertionError(f"Tab never reached {target.accessibleName()!r}")


def _name(w: QWidget | None) -> str:
    return "none" if w is None else (w.accessibleName() or type(w).__name__)


def _run_steps(counter: Counter, container: Any, steps: list[Step], how: str) -> None:
    for kind, get, text in steps:
        widget = get(container)
        if how == "mouse":
            counter.click(widget)
            if kind == "type":
                widget.selectAll() if hasattr(widget, "selectAll") else None
                counter.type(text)
        elif kind == "type":
            counter.tab_to(widget)
            counter.type(text)
        else:
            group = widget.parentWidget()
            if not group.isAncestorOf(QApplication.focusWidget()):
                counter.tab_to(group)  # Tab stops once per group of choices
            if widget.text().isdigit():
                counter.type(widget.text())  # a digit chooses that score and moves on
            else:
                counter.arrow_to(widget)
                counter.key(Qt.Key.Key_Space)


def _submit(counter: Counter, submit_button: QWidget, how: str) -> None:
    if how == "mouse":
        counter.click(submit_button)
    elif how == "keyboard+enter":
        counter.key(Qt.Key.Key_Return)
    else:
        counter.tab_to(submit_button)
        counter.key(Qt.Key.Key_Space)


def _dialog_driver(
    counter: Counter, steps: list[Step], how: str, qtbot: Any
) -> Callable[[QDialog], bool]:
    def drive(dlg: QDialog) -> bool:
        qtbot.addWidget(dlg)
        dlg.show()
        dlg.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg, timeout=2000)
        _run_steps(counter, dlg, steps, how)
        _submit(counter, dlg.ok_button, how)  # type: ignore[attr-defined]
        ok = dlg.result() == QDialog.DialogCode.Accepted and not dlg.isVisible()
        if dlg.isVisible():
            dlg.done(QDialog.DialogCode.Rejected)
        return ok

    return drive


def _press_shortcut(counter: Counter, window: QWidget, key: Qt.Key, mod: Any = None) -> None:
    window.activateWindow()
    QApplication.processEvents()
    if mod is None:
        counter.key(key)
    else:
        counter.key(key, mod)


def _count(session: Any, pid: str, kind: type, pred: Callable[[Any], bool] = lambda e: True) -> int:
    return sum(1 for e in session.controller.events(pid) if isinstance(e, kind) and pred(e))


def _setup(sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot: Any) -> tuple:
    session = sessions.open(data_dir)
    pid = add_patient(session, dialog_log, weight="70", bed="4A-02")
    c = session.controller
    c.update_patient(pid, {"infusion_at": c.now.isoformat()}, recorded_by="AB")
    sessions.advance(session, timedelta(hours=30))
    c.chart(
        pid,
        "vitals",
        recorded_by="AB",
        temperature_c=38.9,
        heart_rate=118,
        systolic_mmhg=84,
        diastolic_mmhg=48,
    )
    c.assess_crs(
        pid,
        {"temperature_c": 38.9, "hypotension": True},
        recorded_by="AB",
    )
    session.window.show_board()
    session.window.board.select(pid)
    session.window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is session.window, timeout=2000)
    session.window.board.focus_table()
    return session, pid


HOWS = ("keyboard+enter", "keyboard+button", "mouse")


def _give_dose(session: Any, pid: str, how: str, dialog_log: DialogLog, qtbot: Any) -> Counter:
    counter = Counter()
    steps: list[Step] = [("type", lambda d: d.checked_by, "CD")]
    dialog_log.on(dialogs.DoseDialog, _dialog_driver(counter, steps, how, qtbot))
    if how == "mouse":
        session.window.board.select(pid)
        session.window.give_dose()  # Patient menu ▸ Give tocilizumab: counted as 2 clicks
        counter.clicks += 2
    else:
        _press_shortcut(counter, session.window, Qt.Key.Key_F4)
    return counter


def _chart_vitals(session: Any, pid: str, how: str, dialog_log: DialogLog, qtbot: Any) -> Counter:
    counter = Counter()
    steps: list[Step] = [
        ("type", lambda d: d.temp, "37.2"),
        ("type", lambda d: d.hr, "88"),
        ("type", lambda d: d.sbp, "118"),
        ("type", lambda d: d.dbp, "72"),
        ("type", lambda d: d.spo2, "97"),
        ("type", lambda d: d.rr, "16"),
    ]
    dialog_log.on(dialogs.VitalsDialog, _dialog_driver(counter, steps, how, qtbot))
    if how == "mouse":
        session.window.chart_vitals()  # Patient menu ▸ Chart vital signs: 2 clicks
        counter.clicks += 2
    else:
        _press_shortcut(counter, session.window, Qt.Key.Key_F2)
    return counter


def _score_ice(session: Any, pid: str, how: str, qtbot: Any) -> Counter:
    counter = Counter()
    window = session.window
    if how == "mouse":
        ws = window.open_patient(pid, "neuro")  # double-click the patient, click the tab
        counter.clicks += 3
    else:
        _press_shortcut(counter, window, Qt.Key.Key_F3)
        ws = window.workspace
    neuro = ws.neuro
    steps: list[Step] = [
        ("choose", lambda n, k=name, v=value: n.items[k].buttons()[v], "")
        for name, value in (
            ("orientation", 4),
            ("naming", 3),
            ("commands", 1),
            ("writing", 1),
            ("attention", 1),
        )
    ]
    steps.append(("choose", lambda n: n.consciousness.buttons()[0], ""))
    _run_steps(counter, neuro, steps, how)
    _submit(counter, neuro.record_button, how)
    return counter


def _acknowledge(session: Any, pid: str, how: str, dialog_log: DialogLog, qtbot: Any) -> Counter:
    counter = Counter()
    window = session.window
    rows = session.controller.due_rows()
    assert rows, "nothing due to acknowledge"
    first = rows[0]
    needs = (
        first.item.severity
        in session.controller.protocol.monitoring.ack_reason_required_for.severities
    )
    steps: list[Step] = [("type", lambda d: d.reason, "seen")] if needs else []
    dialog_log.on(dialogs.AlertDialog, _dialog_driver(counter, steps, how, qtbot))
    if how == "mouse":
        panel = window.timers
        panel.select_key(first.item.key)  # click the row
        counter.clicks += 1
        counter.click(panel.ack_button)
    else:
        _press_shortcut(counter, window, Qt.Key.Key_F8)
        counter.key(Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    return counter


@pytest.mark.parametrize("how", HOWS)
def test_clicks_and_keys_per_core_task(
    how: str, sessions: Sessions, data_dir: Path, dialog_log: DialogLog, qtbot: Any
) -> None:
    """Each core task saves its entry on every path; the effort is printed and recorded."""
    session, pid = _setup(sessions, data_dir, dialog_log, qtbot)
    figures: dict[str, dict[str, Any]] = {}

    def toci(e: Any) -> bool:
        return isinstance(e, Medication) and e.drug == "tocilizumab"

    before = _count(session, pid, Medication, toci)
    c = _give_dose(session, pid, how, dialog_log, qtbot)
    figures["give a dose"] = {
        "keys": c.keys,
        "clicks": c.clicks,
        "saved": _count(session, pid, Medication, toci) == before + 1,
    }

    window = session.window
    window.show_board()
    window.board.select(pid)
    window.board.focus_table()
    before = _count(session, pid, Vitals)
    c = _chart_vitals(session, pid, how, dialog_log, qtbot)
    figures["chart vitals"] = {
        "keys": c.keys,
        "clicks": c.clicks,
        "saved": _count(session, pid, Vitals) == before + 1,
    }

    window.show_board()
    window.board.select(pid)
    window.board.focus_table()
    before = _count(session, pid, IceAssessment)
    c = _score_ice(session, pid, how, qtbot)
    figures["score ICE"] = {
        "keys": c.keys,
        "clicks": c.clicks,
        "saved": _count(session, pid, IceAssessment) == before + 1,
    }

    session.controller.refresh(session.controller.clock.now() + timedelta(hours=9))
    window.show_board()
    window.board.select(pid)
    window.board.focus_table()
    before = _count(session, pid, AlertAck)
    c = _acknowledge(session, pid, how, dialog_log, qtbot)
    figures["acknowledge an alert"] = {
        "keys": c.keys,
        "clicks": c.clicks,
        "saved": _count(session, pid, AlertAck) > before,
    }

    lines = [
        f"{how:16} {task:22} keys={f['keys']:3} clicks={f['clicks']:2} saved={f['saved']}"
        for task, f in figures.items()
    ]
    print("\n" + "\n".join(lines))
    out = os.environ.get("BEDSIDE_TASK_COUNTS")
    if out:
        path = Path(out)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing[how] = figures
        path.write_text(json.dumps(existing, indent=2))
    unsaved = [task for task, f in figures.items() if not f["saved"]]
    assert not unsaved, f"{how}: not saved: {unsaved}\n" + "\n".join(lines)

"""Helpers for the UI tests: fake clock start, fake timer, dialog log, ward sessions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog

from bedside.common.clock import FakeClock
from ui import dialogs
from ui.app import Session, build_session, create_application

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


class FakeTimer(QObject):
    """Stands in for QTimer: nothing fires unless the test says so."""

    timeout = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval = 0
        self.running = False

    def setInterval(self, msec: int) -> None:
        self.interval = msec

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def fire(self) -> None:
        """One timeout, as if a second had passed."""
        self.timeout.emit()


@dataclass
class DialogLog:
    """Messages shown and dialogs run during a test."""

    messages: list[tuple[str, str, str]] = field(default_factory=list)
    handlers: dict[type, Callable[[Any], bool]] = field(default_factory=dict)
    ran: list[QDialog] = field(default_factory=list)

    def on(self, dialog_type: type, handler: Callable[[Any], bool]) -> None:
        """Run ``handler`` when a dialog of ``dialog_type`` is executed."""
        self.handlers[dialog_type] = handler

    def exec_dialog(self, dialog: QDialog) -> bool:
        self.ran.append(dialog)
        for dtype, handler in self.handlers.items():
            if isinstance(dialog, dtype):
                return handler(dialog)
        raise AssertionError(f"unexpected dialog: {type(dialog).__name__}")

    def texts(self, kind: str | None = None) -> list[str]:
        return [t for k, _title, t in self.messages if kind is None or k == kind]


def dialog_log(monkeypatch: pytest.MonkeyPatch) -> DialogLog:
    """Replace every modal entry point of ui.dialogs for the test."""
    log = DialogLog()
    monkeypatch.setattr(dialogs, "exec_dialog", log.exec_dialog)
    for kind in ("inform", "warn", "show_error"):

        def record(parent: Any, title: str, text: str, *args: Any, _k: str = kind) -> None:
            log.messages.append((_k, title, text))

        monkeypatch.setattr(dialogs, kind, record)

    def crash(parent: Any, details: str) -> None:
        log.messages.append(("crash", "Unexpected error", details))

    monkeypatch.setattr(dialogs, "show_crash", crash)
    monkeypatch.setattr(dialogs, "show_locked", lambda p, t: log.messages.append(("locked", "", t)))
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: True)

    def discard(parent: Any) -> bool:
        log.messages.append(("discard", "Discard what you typed?", ""))
        return True

    monkeypatch.setattr(dialogs, "ask_discard", discard)
    return log


def clock() -> FakeClock:
    """A fake UTC clock at T0."""
    return FakeClock(T0)


def data_dir(tmp_path: Path) -> Path:
    """An empty ward directory."""
    return tmp_path / "ward"


@dataclass
class Sessions:
    """Builds sessions over a data dir with the fake clock; closes them all at the end."""

    qtbot: Any
    clock: FakeClock
    opened: list[Session] = field(default_factory=list)
    timers: list[FakeTimer] = field(default_factory=list)

    def open(self, root: Path, **kwargs: Any) -> Session:
        create_application()

        def factory(parent: QObject) -> FakeTimer:
            timer = FakeTimer(parent)
            self.timers.append(timer)
            return timer

        kwargs.setdefault("install_crash_hook", False)
        kwargs.setdefault("listen", False)
        kwargs.setdefault("demo_launcher", lambda: None)
        kwargs.setdefault("monotonic", lambda: self.clock.now().timestamp())
        session = build_session(root, self.clock, timer_factory=factory, **kwargs)
        self.qtbot.addWidget(session.window)
        session.window.resize(1500, 950)
        session.window.initials_edit.setText("AB")
        session.window.show()
        session.ticker.tick()
        self.opened.append(session)
        return session

    def advance(self, session: Session, delta: timedelta) -> None:
        """Move time and tick once (as the 1 s timer would)."""
        self.clock.advance(delta)
        session.ticker.tick()

    def close_all(self) -> None:
        for s in self.opened:
            with contextlib.suppress(Exception):
                s.close()
        self.opened.clear()


def sessions(qtbot: Any, clock: FakeClock) -> Iterator[Sessions]:
    """Open ward sessions (closed, lock released, at teardown)."""
    s = Sessions(qtbot=qtbot, clock=clock)
    yield s
    s.close_all()


def add_patient(
    session: Session,
    dialog_log: DialogLog,
    *,
    name: str = "Test Patient",
    mrn: str = "MRN-0001",
    weight: str = "70",
    product: str = "ide-cel",
    bed: str = "5",
) -> str:
    """Admit a patient through the Add patient dialog; returns the new id."""

    def fill(dlg: dialogs.AddPatientDialog) -> bool:
        dlg.name.setText(name)
        dlg.mrn.setText(mrn)
        dlg.bed.setText(bed)
        dlg.weight.setText(weight)
        dlg.product.setCurrentIndex(dlg.product.findData(product))
        dlg.sex.setCurrentIndex(dlg.sex.findData("female"))
        if not dlg.by.value():
            dlg.by.setText("AB")
        return dlg.submit()

    dialog_log.on(dialogs.AddPatientDialog, fill)
    before = set(session.controller.patient_ids())
    session.window.add_patient()
    (pid,) = set(session.controller.patient_ids()) - before
    return pid

"""Fixtures for the UI tests: a fake clock, a fake timer, a ward session, dialog drivers.

No test sleeps: the ticker is driven by calling :meth:`Ticker.tick` (or emitting the
fake timer), time moves with :class:`FakeClock`, and modal dialogs never run a nested
event loop — :func:`ui.dialogs.exec_dialog` and the message boxes are replaced for
every test, so an unexpected dialog fails the test instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import T0, DialogLog, Sessions

from bedside.common.clock import FakeClock
from ui import dialogs


@pytest.fixture(autouse=True)
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


@pytest.fixture
def clock() -> FakeClock:
    """A fake UTC clock at T0."""
    return FakeClock(T0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty ward directory."""
    return tmp_path / "ward"


@pytest.fixture
def sessions(qtbot: Any, clock: FakeClock) -> Iterator[Sessions]:
    """Open ward sessions (closed, lock released, at teardown)."""
    s = Sessions(qtbot=qtbot, clock=clock)
    yield s
    s.close_all()

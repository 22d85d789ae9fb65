"""Opening another patient never silently throws away what a nurse typed in a tab form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_helpers import DialogLog, Sessions, add_patient

from ui import dialogs


def _two_patients(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog
) -> tuple[Any, str, str]:
    session = sessions.open(data_dir)
    a = add_patient(session, dialog_log, name="Ann Able", mrn="MRN-0001", bed="1")
    b = add_patient(session, dialog_log, name="Ben Baker", mrn="MRN-0002", bed="2")
    return session, a, b


def _asked(monkeypatch: pytest.MonkeyPatch, answer: bool) -> list[Any]:
    asked: list[Any] = []
    monkeypatch.setattr(dialogs, "ask_discard", lambda parent: asked.append(parent) or answer)
    return asked


def test_typed_lab_value_is_kept_when_the_nurse_keeps_editing(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, a, b = _two_patients(sessions, data_dir, dialog_log)
    window = session.window
    ws = window.open_patient(a, "toxicity")
    tox = ws.pages["toxicity"]
    tox.value.setText("0.4")
    asked = _asked(monkeypatch, False)
    window.open_patient(b)  # e.g. F8 or a double-click on the board
    assert len(asked) == 1
    assert ws.pid == a and tox.value.text() == "0.4"
    assert window.stack.currentWidget() is ws


def test_discard_is_the_nurses_choice(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, a, b = _two_patients(sessions, data_dir, dialog_log)
    ws = session.window.open_patient(a, "toxicity")
    ws.pages["toxicity"].value.setText("0.4")
    asked = _asked(monkeypatch, True)
    session.window.open_patient(b)
    assert len(asked) == 1 and ws.pid == b
    assert ws.pages["toxicity"].value.text() == ""


def test_nothing_typed_or_everything_saved_opens_without_asking(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, a, b = _two_patients(sessions, data_dir, dialog_log)
    window = session.window
    asked = _asked(monkeypatch, False)
    ws = window.open_patient(a, "toxicity")
    window.open_patient(b)  # the prefilled forms are not typing
    assert asked == [] and ws.pid == b
    # A lab typed and recorded: saved, so nothing is lost by moving on.
    tox = ws.pages["toxicity"]
    tox.test.setCurrentIndex(tox.test.findData("platelets"))
    tox.value.setText("120")
    tox.lab_by.setText("AB")
    tox.record_lab()
    assert any(e.kind == "lab" for e in session.controller.events(b))
    window.open_patient(a)
    assert asked == [] and ws.pid == a


def test_typed_text_in_another_box_still_counts_after_a_save(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, a, b = _two_patients(sessions, data_dir, dialog_log)
    ws = session.window.open_patient(a, "toxicity")
    tox = ws.pages["toxicity"]
    tox.description.setText("cough since this morning")
    tox.test.setCurrentIndex(tox.test.findData("platelets"))
    tox.value.setText("120")
    tox.lab_by.setText("AB")
    tox.record_lab()
    assert any(e.kind == "lab" for e in session.controller.events(a))
    asked = _asked(monkeypatch, False)
    session.window.open_patient(b)
    assert len(asked) == 1 and ws.pid == a
    assert tox.description.text() == "cough since this morning"

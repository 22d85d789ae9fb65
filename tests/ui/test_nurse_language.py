"""Nurse language everywhere (issue 10, item 7).

Every bad-input test (``test_bad_input.py``) and the dialog walk
(``test_dialog_safety.py``) is run again with a recorder on every text a widget is
given (labels, buttons, check boxes, tooltips) and on every message box, and each
text must be free of validation-library phrases, record field names, ISO timestamps,
citation keys, UUIDs and software words (:data:`bedside.reports.wording.BAD_PATTERNS`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_bad_input
import test_dialog_safety
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from bedside.reports.wording import nurse_text, problems

ward = test_dialog_safety.ward  # the fixture the dialog walk needs

ALLOWED = ("bedside-bcma-cart",)
"""Texts that are names of things rather than sentences (the protocol id)."""


def _tests(module: Any) -> list[tuple[str, Callable[..., Any]]]:
    return [
        (name, fn)
        for name, fn in vars(module).items()
        if name.startswith("test_")
        and inspect.isfunction(fn)
        and name != "test_split_error_finds_the_field"
    ]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every text given to a label, button or tooltip while the test runs."""
    texts: list[str] = []
    for cls in (QLabel, QAbstractButton):
        original = cls.setText

        def set_text(self: Any, text: str, _orig: Any = original) -> None:
            texts.append(str(text))
            _orig(self, text)

        monkeypatch.setattr(cls, "setText", set_text)
    original_tip = QWidget.setToolTip

    def set_tip(self: Any, text: str) -> None:
        texts.append(str(text))
        original_tip(self, text)

    monkeypatch.setattr(QWidget, "setToolTip", set_tip)
    yield texts


def _check(texts: list[str], messages: list[tuple[str, str, str]]) -> list[str]:
    bad = []
    for text in [*texts, *(t for _k, _title, t in messages)]:
        if not text or any(a in text for a in ALLOWED):
            continue
        found = problems(text)
        if found:
            bad.append(f"{found}: {text!r}")
    return bad


@pytest.mark.parametrize(
    ("name", "fn"),
    _tests(test_bad_input),
    ids=[n for n, _ in _tests(test_bad_input)],
)
def test_bad_input_messages_read_as_nurse_language(
    name: str, fn: Callable[..., Any], shown: list[str], request: pytest.FixtureRequest
) -> None:
    kwargs = {p: request.getfixturevalue(p) for p in inspect.signature(fn).parameters}
    fn(**kwargs)
    log = request.getfixturevalue("dialog_log")
    assert shown, "nothing recorded"
    bad = _check(shown, log.messages)
    assert not bad, "\n".join(dict.fromkeys(bad))


@pytest.mark.parametrize("case", sorted(test_dialog_safety.FACTORIES))
def test_dialog_walk_messages_read_as_nurse_language(
    case: str, shown: list[str], request: pytest.FixtureRequest
) -> None:
    kwargs = {
        p: request.getfixturevalue(p)
        for p in inspect.signature(test_dialog_safety.test_walk_dialog_tab_type_enter).parameters
        if p != "case"
    }
    test_dialog_safety.test_walk_dialog_tab_type_enter(case=case, **kwargs)
    bad = _check(shown, request.getfixturevalue("dialog_log").messages)
    assert not bad, "\n".join(dict.fromkeys(bad))


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (
            "vitals: temperature_c: Input should be less than or equal to 45 (got 100.4)",
            "must be 45 or less",
        ),
        ("effective_at: 2026-11-30T02:45:56+00:00 lies in the future", "30 Nov"),
        ("560 mg = 70 kg × 8 mg/kg [S2, S3, S10, SEED]", "560 mg = 70 kg × 8 mg/kg"),
        ("oxygen_device: Input should be 'none', 'nasal_cannula'", "choose one of"),
        ("weight_kg: Field required", "required"),
    ],
)
def test_wording_rewrites_software_language(raw: str, want: str) -> None:
    text = nurse_text(raw)
    assert want in text
    assert not problems(text), text
    assert problems(raw)  # the raw form would have been caught

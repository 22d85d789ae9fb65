"""PySide6 must not leak references to None (6.12.0 did: Bedside aborted within minutes).

PySide6-Essentials 6.12.0 on Python 3.11 decrements None's reference count on every call of
a Qt method returning void (``QLabel.setText``, ``QWidget.repaint``, ``processEvents``...).
A running ward makes about a hundred such calls a second, so None's count reached zero and
the process aborted ("Fatal Python error: none_dealloc") about five minutes after start
(measured on the demo ward, issue 13). pyproject.toml excludes that version; this test fails
if a PySide6 with the same bug is installed. (From Python 3.12, None is immortal and its
count does not move.)
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtWidgets import QApplication, QLabel


def test_void_qt_calls_do_not_consume_references_to_none(qapp: Any) -> None:
    label = QLabel("x")
    before = sys.getrefcount(None)
    for _ in range(300):  # few enough not to abort the test run on a leaking PySide6
        label.setText("y")
        label.repaint()
        QApplication.processEvents()
    after = sys.getrefcount(None)
    assert after >= before - 100, f"None lost {before - after} references in 900 Qt calls"

"""The timeline model: every event in recorded order; voided ones stay visible."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from bedside.common.timeutil import format_local
from bedside.reports.presenters import TimelineRow
from ui.models import RowTableModel, brush

logger = logging.getLogger(__name__)

COL_WHEN, COL_RECORDED, COL_KIND, COL_WHAT = range(4)
_STRIKE = QFont()
_STRIKE.setStrikeOut(True)
_VOID_FG = QColor("#6b6b6b")
_AMEND_BG = QColor("#fff8e1")
_VOID_BG = QColor("#f1f1f1")


class TimelineModel(RowTableModel[TimelineRow]):
    """Who charted what and when, with corrections spelled out next to the original."""

    headers = ("When (effective)", "Recorded", "Entry", "Details and corrections")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(key=lambda r: r.event_id, parent=parent)

    def cell(self, row: TimelineRow, column: int, role: int) -> Any:
        """Text plus strike-through for voided entries (and the word VOIDED)."""
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_WHEN:
                return format_local(row.effective_at)
            if column == COL_RECORDED:
                return f"{format_local(row.recorded_at)} by {row.recorded_by}"
            if column == COL_KIND:
                prefix = "VOIDED — " if row.voided else ("AMENDED — " if row.amended else "")
                return prefix + row.kind
            if column == COL_WHAT:
                return row.what if not row.status else f"{row.what}\n⚠ {row.status}"
        if role == Qt.ItemDataRole.ToolTipRole and column == COL_WHAT:
            return row.what + (f"\n\n{row.status}" if row.status else "")
        if role == Qt.ItemDataRole.FontRole and row.voided and column == COL_KIND:
            return _STRIKE
        if role == Qt.ItemDataRole.ForegroundRole and row.voided:
            return brush(_VOID_FG)
        if role == Qt.ItemDataRole.BackgroundRole:
            if row.voided:
                return brush(_VOID_BG)
            if row.amended:
                return brush(_AMEND_BG)
        return None

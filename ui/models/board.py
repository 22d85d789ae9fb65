"""The ward board model: one row per patient, most urgent first, with live countdowns."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt

from bedside.common.timeutil import format_local
from bedside.reports import presenters
from ui.controller import BoardRow
from ui.models import (
    BOLD,
    DUE_BG,
    DUE_FG,
    GRADE_BG,
    OVERDUE_BG,
    OVERDUE_FG,
    SILENCED_BG,
    RowTableModel,
    brush,
)
from ui.resources import icon

logger = logging.getLogger(__name__)

COL_BED, COL_PATIENT, COL_NEXT, COL_CRS, COL_ICANS, COL_TOCI = range(6)


class BoardModel(RowTableModel[BoardRow]):
    """Patients of the ward with their grades, tocilizumab budget and next due item."""

    headers = (
        "Bed",
        "Patient",
        "Next due",
        "CRS",
        "ICANS",
        "Tocilizumab",
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(key=lambda r: r.pid, parent=parent)
        self.now: datetime | None = None

    def update(self, rows: list[BoardRow], now: datetime) -> bool:
        """New rows for ``now``; True when rows were reset (order or set changed)."""
        self.now = now
        return self.set_rows(rows)

    def cell(self, row: BoardRow, column: int, role: int) -> Any:
        """Cell values with colour and text together (never colour alone)."""
        now = self.now
        if now is None:
            return None
        if row.failure:
            return self._failure_cell(row, column, role)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column, now)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column, now)
        if column == COL_NEXT and row.next_due is not None:
            state = row.next_due.item.state
            silenced = row.next_due.alert.silenced
            if role == Qt.ItemDataRole.BackgroundRole:
                if silenced and state != "upcoming":
                    return brush(SILENCED_BG)
                if state == "overdue":
                    return brush(OVERDUE_BG)
                if state == "due":
                    return brush(DUE_BG)
            if role == Qt.ItemDataRole.ForegroundRole and state != "upcoming" and not silenced:
                return brush(OVERDUE_FG if state == "overdue" else DUE_FG)
            if role == Qt.ItemDataRole.FontRole and state != "upcoming":
                return BOLD
            if role == Qt.ItemDataRole.DecorationRole:
                if silenced and state != "upcoming":
                    return icon(row.next_due.alert.state)
                return icon(state)
        if column in (COL_CRS, COL_ICANS):
            ev = row.crs if column == COL_CRS else row.icans
            grade = getattr(ev, "grade", 0) or 0
            if role == Qt.ItemDataRole.BackgroundRole and grade >= 2:
                return brush(GRADE_BG[min(grade, 4)])
            if role == Qt.ItemDataRole.FontRole and grade >= 2:
                return BOLD
        if column == COL_TOCI and row.budget is not None:
            if role == Qt.ItemDataRole.DecorationRole and not row.budget.history_complete:
                return icon("warning")
            if role == Qt.ItemDataRole.DecorationRole and row.budget.course_complete:
                return icon("blocked")
        return None

    def _text(self, row: BoardRow, column: int, now: datetime) -> str:
        if column == COL_BED:
            return row.bed
        if column == COL_PATIENT:
            return (
                f"{row.name}\nMRN {row.mrn} · {presenters.day_label(row.day)}\n"
                f"{presenters.product_label(row.product)}"
            )
        if column == COL_CRS:
            if row.crs is None:
                return "not assessed"
            return f"Grade {row.crs.grade}\n{presenters.short_time(row.crs.effective_at, now)}"
        if column == COL_ICANS:
            if row.icans is None:
                return "not assessed"
            ice = "n/a" if row.icans.ice_score is None else f"{row.icans.ice_score}/10"
            return (
                f"Grade {row.icans.grade} · ICE {ice}\n"
                f"{presenters.short_time(row.icans.effective_at, now)}"
            )
        if column == COL_TOCI:
            if row.budget is None:
                return "—"
            counts, nxt = presenters.budget_lines(row.budget, now)
            if not row.budget.history_complete:
                # First on its line, so a narrow column never cuts it off (after a restore).
                nxt = "history incomplete · " + nxt.replace(" (dose history incomplete)", "")
            return f"{counts}\n{nxt}"
        if column == COL_NEXT:
            if row.next_due is None:
                return "nothing due"
            item = row.next_due.item
            phrase = presenters.due_phrase(item.state, item.due_at, now)
            alert = row.next_due.alert
            if alert.state == "acknowledged" and item.state != "upcoming":
                phrase += f" · acknowledged by {alert.by}"
            elif alert.state == "snoozed" and item.state != "upcoming":
                phrase += f" · snoozed until {format_local(alert.until)} by {alert.by}"
                if alert.reason:
                    phrase += f" ({alert.reason})"
            extra = row.due_count + row.overdue_count - (1 if item.state != "upcoming" else 0)
            more = f" · +{extra} more" if extra > 0 else ""
            return f"{phrase}{more}\n{item.message}"
        return ""

    def _tooltip(self, row: BoardRow, column: int, now: datetime) -> str | None:
        if column == COL_NEXT and row.next_due is not None:
            item = row.next_due.item
            ver = "" if item.verified else " — UNVERIFIED rule"
            return (
                f"{presenters.STATE_LABELS[item.state]}: {item.message}\n"
                f"Due {format_local(item.due_at)}\n"
                f"Rule: {item.rule} [{', '.join(item.source)}]{ver}"
            )
        if column == COL_CRS and row.crs is not None:
            return row.crs.explanation
        if column == COL_ICANS and row.icans is not None:
            return row.icans.explanation
        if column == COL_TOCI and row.budget is not None:
            return row.budget.check.explanation
        return None

    def _failure_cell(self, row: BoardRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_PATIENT:
                return "Cannot display, details…"
            if column == COL_NEXT:
                if row.failure and row.failure.startswith("cannot display"):
                    return "NOT SHOWN — record cannot be derived (double-click for details)"
                return "FILE QUARANTINED — double-click for details"
            return "?"
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.failure
        if role == Qt.ItemDataRole.BackgroundRole:
            return brush(OVERDUE_BG)
        if role == Qt.ItemDataRole.ForegroundRole:
            return brush(OVERDUE_FG)
        if role == Qt.ItemDataRole.DecorationRole and column == COL_NEXT:
            return icon("blocked")
        return None

"""The timers model: every due item of every patient, state as colour AND words."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt

from bedside.common.timeutil import local_zone
from bedside.reports import presenters
from ui.controller import DueRow
from ui.models import (
    BOLD,
    DUE_BG,
    DUE_FG,
    OVERDUE_BG,
    OVERDUE_FG,
    SILENCED_BG,
    RowTableModel,
    brush,
)
from ui.resources import icon

logger = logging.getLogger(__name__)

COL_STATE, COL_WHAT = range(2)


class TimersModel(RowTableModel[DueRow]):
    """Due items, most urgent first; the countdown is recomputed from ``now`` each tick."""

    headers = ("Status", "Patient · what is due")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(key=lambda r: r.item.key, parent=parent)
        self.now: datetime | None = None

    def update(self, rows: list[DueRow], now: datetime) -> bool:
        """New rows for ``now``."""
        self.now = now
        return self.set_rows(rows)

    def cell(self, row: DueRow, column: int, role: int) -> Any:
        """Cell values; state is always spelled out, colour only reinforces it."""
        now = self.now
        if now is None:
            return None
        item = row.item
        silenced = row.alert.silenced and item.state != "upcoming"
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_STATE:
                label = presenters.STATE_LABELS[item.state]
                when = presenters.when_phrase(item.state, item.due_at, now)
                return f"{label}\n{when}\n{_alert_text(row)}".rstrip()
            if column == COL_WHAT:
                ver = "" if item.verified else "  [UNVERIFIED rule]"
                return f"{row.bed} · {row.name}\n{item.message}{ver}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.message}\nRule: {item.rule} [{', '.join(item.source)}]" + (
                "" if item.verified else " — UNVERIFIED"
            )
        if role == Qt.ItemDataRole.DecorationRole and column == COL_STATE:
            if silenced:
                return icon(row.alert.state)
            return icon(item.state)
        if role == Qt.ItemDataRole.BackgroundRole and item.state != "upcoming":
            if silenced:
                return brush(SILENCED_BG)
            return brush(OVERDUE_BG if item.state == "overdue" else DUE_BG)
        if role == Qt.ItemDataRole.ForegroundRole and item.state != "upcoming" and not silenced:
            return brush(OVERDUE_FG if item.state == "overdue" else DUE_FG)
        if role == Qt.ItemDataRole.FontRole and (
            item.state != "upcoming" or item.severity == "critical"
        ):
            return BOLD
        return None


def _alert_text(row: DueRow) -> str:
    alert = row.alert
    if alert.state == "acknowledged" and alert.at is not None:
        return f"ack'd {alert.by} {alert.at.astimezone(local_zone()):%H:%M}"
    if alert.state == "snoozed" and alert.until is not None:
        why = f" ({alert.reason})" if alert.reason else ""
        return f"snoozed to {alert.until.astimezone(local_zone()):%H:%M} {alert.by}{why}"
    if row.item.severity == "critical":
        return "CRITICAL" if row.item.state == "upcoming" else "ALARM · critical"
    if row.item.state == "upcoming":
        return ""
    return "ALARM ON"

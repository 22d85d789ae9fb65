"""Qt table models: immutable rows from the controller, shown through QAbstractTableModel."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

logger = logging.getLogger(__name__)

R = TypeVar("R")
Index = QModelIndex | QPersistentModelIndex

ROW_KEY_ROLE = Qt.ItemDataRole.UserRole + 1
"""Role returning the row's stable key (patient id, alert key or event id)."""

OVERDUE_BG = QColor("#b00020")
OVERDUE_FG = QColor("#ffffff")
DUE_BG = QColor("#ffb300")
DUE_FG = QColor("#000000")
SILENCED_BG = QColor("#e0e0e0")
GRADE_BG = {2: QColor("#ffe0b2"), 3: QColor("#ffab91"), 4: QColor("#ef9a9a")}
BOLD = QFont()
BOLD.setBold(True)


class RowTableModel(QAbstractTableModel, Generic[R]):
    """A table of immutable rows; subclasses define the columns and the cell roles."""

    headers: Sequence[str] = ()

    def __init__(self, key: Callable[[R], str], parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[R] = []
        self._key = key

    # ------------------------------------------------------------------ Qt API

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Rows (none under a valid parent: this is a flat table)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Columns."""
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        """Column titles."""
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.headers)
        ):
            return self.headers[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell data by role (delegates to :meth:`cell`)."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == ROW_KEY_ROLE:
            return self._key(row)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            role = Qt.ItemDataRole.DisplayRole
        return self.cell(row, index.column(), role)

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Selectable, enabled, read-only."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ------------------------------------------------------------------ rows

    def cell(self, row: R, column: int, role: int) -> Any:
        """Subclasses: the value of ``row`` at ``column`` for ``role``."""
        raise NotImplementedError

    def rows(self) -> list[R]:
        """The current rows."""
        return list(self._rows)

    def row_at(self, index: int) -> R | None:
        """The row at ``index`` or None."""
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def key_at(self, index: int) -> str | None:
        """The stable key of row ``index``."""
        row = self.row_at(index)
        return None if row is None else self._key(row)

    def row_of(self, key: str) -> int:
        """The index of the row with ``key`` (-1 if absent)."""
        for i, row in enumerate(self._rows):
            if self._key(row) == key:
                return i
        return -1

    def set_rows(self, rows: Sequence[R]) -> bool:
        """Replace the rows; returns True when the row set or order changed (reset)."""
        new = list(rows)
        same = len(new) == len(self._rows) and all(
            self._key(a) == self._key(b) for a, b in zip(new, self._rows, strict=True)
        )
        if same:
            self._rows = new
            if new:
                self.dataChanged.emit(
                    self.index(0, 0), self.index(len(new) - 1, len(self.headers) - 1)
                )
            return False
        self.beginResetModel()
        self._rows = new
        self.endResetModel()
        return True


def brush(color: QColor) -> QBrush:
    """A solid brush in the current theme's twin of ``color`` (View ▸ Night)."""
    from ui import theme

    # The style given explicitly: QBrush(QColor) alone makes PySide6 try the QGradient.Preset
    # overload first, which builds that 169-member enum (several ms at start-up).
    return QBrush(theme.colour(color), Qt.BrushStyle.SolidPattern)


class ColumnModel(RowTableModel[Any]):
    """A simple read-only table from (header, text function) column specs."""

    def __init__(
        self,
        columns: Sequence[tuple[str, Callable[[Any], str]]],
        key: Callable[[Any], str],
        parent: Any = None,
        *,
        tooltip: Callable[[Any], str | None] | None = None,
        background: Callable[[Any], QColor | None] | None = None,
    ) -> None:
        super().__init__(key=key, parent=parent)
        self.headers = tuple(h for h, _ in columns)
        self._fns = [fn for _, fn in columns]
        self._tooltip = tooltip
        self._background = background

    def cell(self, row: Any, column: int, role: int) -> Any:
        """Display text from the column function; optional tooltip and background."""
        if role == Qt.ItemDataRole.DisplayRole:
            return self._fns[column](row)
        if role == Qt.ItemDataRole.ToolTipRole and self._tooltip is not None:
            return self._tooltip(row)
        if role == Qt.ItemDataRole.BackgroundRole and self._background is not None:
            color = self._background(row)
            return brush(color) if color is not None else None
        return None

"""A selected row keeps its state colour and icon: the selection is drawn as a frame.

Qt paints the selection colour over a cell's own background, so a selected OVERDUE cell
turns selection blue and its red is lost exactly when the nurse is looking at it. For cells
that carry a state background (:data:`Qt.ItemDataRole.BackgroundRole`), this delegate paints
the cell as unselected (its colour, text colour and icon) and draws a thick frame in the
selection colour around it instead. Other cells are selected as usual.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

logger = logging.getLogger(__name__)

FRAME_PX = 3


class StateKeepingDelegate(QStyledItemDelegate):
    """Paints selected state cells in their state colour, framed in the selection colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Draw the cell; a selected cell with a state background keeps it."""
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        background = index.data(Qt.ItemDataRole.BackgroundRole)
        if not selected or background is None:
            super().paint(painter, option, index)
            return
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        super().paint(painter, plain, index)
        painter.save()
        colour = option.palette.color(QPalette.ColorRole.Highlight)
        pen = QPen(colour, FRAME_PX)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        half = FRAME_PX // 2 + 1
        rect = option.rect.adjusted(half, half, -half, -half)
        painter.drawRect(rect)
        painter.restore()

"""The ward board: every patient, most urgent first, with live countdowns.

An empty ward explains what to do and offers "Add patient" and "Open demo ward".
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.controller import WardController
from ui.delegates import StateKeepingDelegate
from ui.forms import button, label
from ui.models import ROW_KEY_ROLE
from ui.models.board import BoardModel
from ui.tabs import configure_table

logger = logging.getLogger(__name__)


class _BoardTable(QTableView):
    """Enter/Return opens the selected patient."""

    activated_key = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.activated_key.emit()
            return
        super().keyPressEvent(event)


class BoardView(QWidget):
    """Board table plus the first-run page."""

    open_patient = Signal(str)
    add_patient_requested = Signal()
    demo_requested = Signal()
    restore_requested = Signal(str)
    """A set-aside patient's row was opened: show why, offer its backups (patient id)."""

    def __init__(self, controller: WardController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setAccessibleName("Ward board")
        self.stack = QStackedWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.stack)

        # Board page.
        page = QWidget()
        pl = QVBoxLayout(page)
        pl.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.title = label("Ward board", "section", wrap=False)
        head.addWidget(self.title)
        head.addWidget(
            label("Most urgent first. Double-click or press Enter to open a patient.", "hint"), 1
        )
        head.addWidget(
            button(
                "&Add patient… (Ctrl+N)", name="Add patient", slot=self.add_patient_requested.emit
            )
        )
        pl.addLayout(head)
        self.table = _BoardTable()
        configure_table(self.table, "Ward board patients")
        self.table.verticalHeader().setDefaultSectionSize(62)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setTabKeyNavigation(False)
        self.model = BoardModel(self)
        self.table.setModel(self.model)
        self.table.setItemDelegate(StateKeepingDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        widths = [56, 215, 240, 100, 140, 200]
        for i, w in enumerate(widths):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(i, w)
        header.setStretchLastSection(True)
        self.table.doubleClicked.connect(self._open_index)
        self.table.activated_key.connect(self._open_selected)
        pl.addWidget(self.table, 1)
        self.stack.addWidget(page)

        # Empty page.
        empty = QFrame()
        empty.setProperty("card", True)
        el = QVBoxLayout(empty)
        el.setContentsMargins(40, 40, 40, 40)
        el.addStretch(1)
        el.addWidget(label("No patients on this ward yet", "big"))
        el.addWidget(
            label(
                "Bedside keeps each patient's CAR T record on this workstation: eligibility, "
                "CRS and ICANS grades, tocilizumab and steroid doses with their limits, "
                "labs and toxicities, and the timers for what is due next.\n\n"
                "• Add a patient to start charting (you will need the name, MRN, date of birth "
                "and product).\n"
                "• Or open the demo ward to explore with fictional patients — it opens in its "
                "own window and never touches this ward's data."
            )
        )
        row = QHBoxLayout()
        self.add_button = button(
            "Add &patient…",
            role="primary",
            name="Add patient",
            slot=self.add_patient_requested.emit,
        )
        self.demo_button = button(
            "Open &demo ward", name="Open demo ward", slot=self.demo_requested.emit
        )
        row.addWidget(self.add_button)
        row.addWidget(self.demo_button)
        row.addStretch(1)
        el.addLayout(row)
        el.addStretch(2)
        self.stack.addWidget(empty)
        self.empty_page = empty
        self.board_page = page

    def update_rows(self) -> None:
        """Pull rows from the controller (each tick and after each save)."""
        rows = self.controller.board_rows()
        selected = self.selected_pid()
        reset = self.model.update(rows, self.controller.now)
        if reset and selected is not None:
            self.select(selected)
        n = len(rows)
        self.title.setText(f"Ward board — {n} patient{'s' if n != 1 else ''}")
        self.stack.setCurrentWidget(self.board_page if n else self.empty_page)

    def selected_pid(self) -> str | None:
        """The selected patient, if any."""
        sel = self.table.selectionModel()
        if sel is None:
            return None
        rows = sel.selectedRows()
        return rows[0].data(ROW_KEY_ROLE) if rows else None

    def select(self, pid: str) -> None:
        """Select the row of ``pid``."""
        row = self.model.row_of(pid)
        if row >= 0:
            self.table.selectRow(row)

    def _open_index(self, index: QModelIndex) -> None:
        self._open_pid(index.data(ROW_KEY_ROLE))

    def _open_selected(self) -> None:
        self._open_pid(self.selected_pid())

    def _open_pid(self, pid: str | None) -> None:
        if not pid:
            return
        if pid in self.controller.patient_ids():
            self.open_patient.emit(pid)
            return
        if pid in self.controller.failures():
            # The restore dialog shows why the patient is set aside and offers its backups.
            self.restore_requested.emit(pid)

    def focus_table(self) -> None:
        """Keyboard focus on the board (selecting the first row if none)."""
        self.table.setFocus()
        if self.selected_pid() is None and self.model.rowCount():
            self.table.selectRow(0)

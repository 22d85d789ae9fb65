"""The always-visible timers panel: every due item of every patient, most urgent first.

Each row says its state in words (OVERDUE / DUE NOW / upcoming) with an icon, and the
colour only reinforces it. Acknowledge and snooze go through :mod:`bedside.ward.alerts`
(via the controller) and are written to the patient's record.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelection, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHeaderView, QVBoxLayout, QWidget

from bedside.ward import alerts
from ui.controller import DueRow, WardController
from ui.delegates import StateKeepingDelegate
from ui.forms import banner, banner_text, button, label, set_banner
from ui.models import ROW_KEY_ROLE
from ui.models.timers import TimersModel
from ui.tabs import table_view

logger = logging.getLogger(__name__)


class TimersPanel(QWidget):
    """Countdown list with acknowledge / snooze / open."""

    open_patient = Signal(str, str)
    """Patient id and due-item kind (to pick the right tab)."""

    def __init__(
        self, controller: WardController, initials: object, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.initials = initials
        self.setAccessibleName("Timers panel")
        self.setMinimumWidth(350)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.title = label("Timers", "section")
        lay.addWidget(self.title)
        self.summary = banner("", "info", icon_name="upcoming")
        self.summary.setAccessibleName("Timers summary")
        lay.addWidget(self.summary)
        self.sound_warning = banner(
            "NO SOUND DEVICE: alarms are visual only (system beep at most). Keep this "
            "panel in view.",
            "warning",
            icon_name="sound-off",
        )
        self.sound_warning.setVisible(False)
        lay.addWidget(self.sound_warning)
        self.show_upcoming = QCheckBox("Show upcoming items")
        self.show_upcoming.setChecked(True)
        self.show_upcoming.setAccessibleName("Show upcoming items")
        lay.addWidget(self.show_upcoming)
        self.view = table_view("Due items")
        self.view.verticalHeader().setDefaultSectionSize(84)
        self.model = TimersModel(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(StateKeepingDelegate(self.view))
        header = self.view.horizontalHeader()
        for i, w in enumerate([165]):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(i, w)
        header.setStretchLastSection(True)
        lay.addWidget(self.view, 1)
        row = QGridLayout()  # two by two: the labels never clip in a narrow panel
        self.ack_button = button(
            "Ac&knowledge…",
            name="Acknowledge alert",
            tooltip="Acknowledge the selected alert (Ctrl+K)",
            slot=self.acknowledge,
        )
        self.snooze_button = button(
            "S&nooze…", name="Snooze alert", tooltip="Snooze (Ctrl+Shift+K)", slot=self.snooze
        )
        self.doctor_button = button(
            "&Doctor informed…",
            name="Doctor informed",
            tooltip="The doctor was told about this escalation review: name, plan, next review",
            slot=self.doctor_informed,
        )
        self.open_button = button(
            "&Open", name="Open patient", tooltip="Open this patient", slot=self._open
        )
        for i, b in enumerate(
            (self.ack_button, self.snooze_button, self.doctor_button, self.open_button)
        ):
            row.addWidget(b, i // 2, i % 2)
        lay.addLayout(row)
        self.view.selectionModel().selectionChanged.connect(self._selection)
        self.view.doubleClicked.connect(lambda _i: self._open())
        self.show_upcoming.toggled.connect(lambda _on: self.update_rows())
        self._selection(QItemSelection(), QItemSelection())

    def set_sound_available(self, available: bool, reason: str = "") -> None:
        """Show the no-sound warning when alarms cannot be heard."""
        self.sound_warning.setVisible(not available)
        if not available and reason:
            logger.info("no alarm sound: %s", reason)
            banner_text(self.sound_warning).setText(
                f"NO ALARM SOUND: {reason}. Alarms are on screen only: check the speakers "
                "and volume or call IT, then Help ▸ Test alarm sound."
            )

    def rows(self) -> list[DueRow]:
        """Rows shown (upcoming ones optional)."""
        rows = self.controller.due_rows()
        if not self.show_upcoming.isChecked():
            rows = [r for r in rows if r.item.state != "upcoming"]
        return rows

    def update_rows(self) -> None:
        """Recompute from the controller (each tick)."""
        selected = self.selected_key()
        all_rows = self.controller.due_rows()
        reset = self.model.update(self.rows(), self.controller.now)
        if reset and selected:
            row = self.model.row_of(selected)
            if row >= 0:
                self.view.selectRow(row)
        overdue = sum(1 for r in all_rows if r.item.state == "overdue")
        due = sum(1 for r in all_rows if r.item.state == "due")
        upcoming = sum(1 for r in all_rows if r.item.state == "upcoming")
        silenced = sum(1 for r in all_rows if r.item.state != "upcoming" and r.alert.silenced)
        parts = []
        if overdue:
            parts.append(f"{overdue} OVERDUE")
        if due:
            parts.append(f"{due} DUE NOW")
        parts.append(f"{upcoming} upcoming")
        text = " · ".join(parts)
        if silenced:
            text += f" ({silenced} acknowledged or snoozed)"
        kind = "danger" if overdue else ("warning" if due else "info")
        icon_kind = "overdue" if overdue else ("due" if due else "upcoming")
        set_banner(self.summary, text, kind, icon_kind)
        self._selection(QItemSelection(), QItemSelection())

    def selected_key(self) -> str | None:
        """Key of the selected item."""
        rows = self.view.selectionModel().selectedRows()
        return rows[0].data(ROW_KEY_ROLE) if rows else None

    def selected_row(self) -> DueRow | None:
        """The selected due row."""
        key = self.selected_key()
        return None if key is None else self.model.row_at(self.model.row_of(key))

    def select_key(self, key: str) -> bool:
        """Select the row with ``key``."""
        row = self.model.row_of(key)
        if row < 0:
            return False
        self.view.selectRow(row)
        return True

    def _selection(self, _a: QItemSelection, _b: QItemSelection) -> None:
        row = self.selected_row()
        active = row is not None and row.item.state != "upcoming"
        self.ack_button.setEnabled(row is not None)
        self.snooze_button.setEnabled(active and row is not None and row.item.snoozable)
        self.snooze_button.setToolTip(
            "Critical alerts cannot be snoozed"
            if row is not None and not row.item.snoozable
            else ""
        )
        self.doctor_button.setEnabled(
            row is not None and row.item.kind in alerts.DOCTOR_REVIEW_KINDS
        )
        self.open_button.setEnabled(row is not None)

    def _initials(self) -> str:
        return self.initials() if callable(self.initials) else ""

    def acknowledge(self) -> None:
        """Acknowledge the selected alert."""
        row = self.selected_row()
        if row is None:
            return
        from ui import dialogs

        dialogs.exec_dialog(
            dialogs.AlertDialog(self.controller, row, self._initials(), self, mode="acknowledge")
        )

    def snooze(self) -> None:
        """Snooze the selected alert."""
        row = self.selected_row()
        if row is None:
            return
        from ui import dialogs

        dialogs.exec_dialog(
            dialogs.AlertDialog(self.controller, row, self._initials(), self, mode="snooze")
        )

    def doctor_informed(self) -> None:
        """Record that the doctor was informed of the selected escalation review."""
        row = self.selected_row()
        if row is None or row.item.kind not in alerts.DOCTOR_REVIEW_KINDS:
            return
        from ui import dialogs

        dialogs.exec_dialog(
            dialogs.DoctorInformedDialog(self.controller, row, self._initials(), self)
        )

    def _open(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.open_patient.emit(row.pid, row.item.kind)

"""The main window: banners, ward board / patient workspace, and the timers panel.

Always visible: the protocol id and version (and whether it is signed off), the DEMO
banner when demo data is open, the local time with its zone, an OVERDUE banner when
anything is overdue, and the timers panel on the right. The one :class:`Ticker`
drives :meth:`WardController.refresh`; every view then redraws from the controller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from bedside import __version__
from bedside.timeutil import format_local
from ui import presenters
from ui.alarm import Alarm
from ui.board_view import BoardView
from ui.controller import DueRow, WardController
from ui.forms import InitialsEdit, banner, button, label, set_banner
from ui.resources import icon
from ui.ticker import Ticker
from ui.timers_panel import TimersPanel

if TYPE_CHECKING:
    from ui.workspace import PatientWorkspace

logger = logging.getLogger(__name__)


def _dialogs() -> Any:
    """The dialogs module, imported on first use (it is not needed to paint the board)."""
    from ui import dialogs

    return dialogs


SHORTCUTS: list[tuple[str, str]] = [
    ("F2", "Chart vital signs for the current patient"),
    ("F3", "ICE / ICANS assessment (Neuro tab)"),
    ("F4", "Give tocilizumab (dose dialog)"),
    ("F6", "Give dexamethasone / other medication"),
    ("F8", "Go to the most urgent due item"),
    ("Ctrl+K", "Acknowledge the selected alert"),
    ("Ctrl+Shift+K", "Snooze the selected alert"),
    ("Ctrl+N", "Add a patient"),
    ("Esc", "Back to the ward board"),
    ("Ctrl+1 … Ctrl+5", "Eligibility, CRS, Neuro, Toxicity, Timeline tabs"),
    ("Ctrl+I", "Type your initials (charting as)"),
    ("F1", "This list"),
]


class MainWindow(QMainWindow):
    """The Bedside window."""

    patient_opened = Signal(str)

    def __init__(
        self,
        controller: WardController,
        ticker: Ticker,
        *,
        alarm: Alarm | None = None,
        demo_launcher: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.ticker = ticker
        self.alarm = alarm or Alarm(self)
        self.demo_launcher = demo_launcher
        self.workspace: PatientWorkspace | None = None
        self.last_tick_ms = 0.0
        self.setWindowTitle(self._title())
        self.setWindowIcon(icon("app"))
        self.setAccessibleName("Bedside main window")
        self.resize(1500, 920)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        # ----------------------------------------------------------- banners
        self.demo_banner = banner(
            "DEMO DATA — fictional patients for training and testing. Not for clinical use.",
            "demo",
            icon_name="demo",
        )
        self.demo_banner.setAccessibleName("Demo data banner")
        outer.addWidget(self.demo_banner)

        self.protocol_bar = QFrame()
        p = controller.protocol
        self.protocol_bar.setProperty("banner", "protocol" if p.signed_off else "unsigned")
        pl = QHBoxLayout(self.protocol_bar)
        pl.setContentsMargins(10, 4, 10, 4)
        signed = (
            f"signed off by {p.sign_off.signed_off_by} ({p.sign_off.role})"
            if p.signed_off
            else "NOT SIGNED OFF — rules marked UNVERIFIED need local pharmacist sign-off"
        )
        self.protocol_label = label(f"Protocol {p.label} · {signed}")
        self.protocol_label.setAccessibleName("Protocol")
        pl.addWidget(self.protocol_label, 1)
        pl.addWidget(label("Charting as:", wrap=False))
        self.initials_edit = InitialsEdit("Charting as, your initials")
        self.initials_edit.setToolTip(
            "Your initials fill in 'your initials' in forms. Second-nurse and checker "
            "initials are never filled in for you."
        )
        pl.addWidget(self.initials_edit)
        self.clock_label = label("", wrap=False)
        self.clock_label.setAccessibleName("Current local time")
        self.clock_label.setMinimumWidth(190)
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        pl.addWidget(self.clock_label)
        outer.addWidget(self.protocol_bar)

        self.clock_banner = banner("", "danger", icon_name="warning")
        self.clock_banner.setAccessibleName("Clock warning")
        self.clock_button = button(
            "Confirm the &time…", name="Confirm the time", slot=self.confirm_clock
        )
        self.clock_banner.layout().addWidget(self.clock_button)
        self.clock_banner.setVisible(False)
        outer.addWidget(self.clock_banner)

        self.overdue_banner = banner("", "overdue", icon_name="overdue")
        self.overdue_banner.setAccessibleName("Overdue alert banner")
        self.overdue_button = button(
            "Show (F8)", name="Show the most urgent item", slot=self.go_most_urgent
        )
        self.overdue_banner.layout().addWidget(self.overdue_button)
        self.overdue_banner.setVisible(False)
        outer.addWidget(self.overdue_banner)

        self.failure_banner = banner("", "danger", icon_name="blocked")
        self.failure_banner.setVisible(False)
        outer.addWidget(self.failure_banner)

        self.storage_banner = banner("", "danger", icon_name="warning")
        self.storage_banner.setAccessibleName("Data storage warning")
        self.storage_banner.setVisible(False)
        outer.addWidget(self.storage_banner)

        # ----------------------------------------------------------- body
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.stack = QStackedWidget()
        self.board = BoardView(controller)
        self.stack.addWidget(self.board)
        self.splitter.addWidget(self.stack)
        self.timers = TimersPanel(controller, self.initials)
        self.timers.set_sound_available(self.alarm.available, self.alarm.reason)
        self.splitter.addWidget(self.timers)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([1100, 500])
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        self.statusBar().showMessage(f"Data directory: {controller.data_dir}")

        self._build_menus()

        # ----------------------------------------------------------- wiring
        self.board.open_patient.connect(self.open_patient)
        self.board.add_patient_requested.connect(self.add_patient)
        self.board.demo_requested.connect(self.open_demo)
        self.timers.open_patient.connect(self._open_from_timer)
        controller.refreshed.connect(self._on_refreshed)
        controller.record_saved.connect(self._on_saved)
        controller.patients_changed.connect(self._on_refreshed)
        controller.alarm_raised.connect(self._on_alarm)
        controller.clock_warning.connect(self._on_clock_warning)
        ticker.ticked.connect(self.on_tick)
        self._on_refreshed()
        for report in controller.start_reports:
            self._on_clock_warning(report.message)

    # ------------------------------------------------------------------ menus

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: Callable[[], object],
        shortcut: str | QKeySequence.StandardKey | None = None,
        *,
        name: str | None = None,
    ) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.triggered.connect(lambda _checked=False: slot())
        if name:
            act.setObjectName(name)
        menu.addAction(act)
        self.addAction(act)
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Add patient…", self.add_patient, "Ctrl+N", name="add_patient")
        self._action(file_menu, "Open &demo ward", self.open_demo, name="open_demo")
        self._action(file_menu, "&Reload ward from disk", self.reload, name="reload")
        file_menu.addSeparator()
        self._install_transfer_actions(file_menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit, name="quit")

        patient = bar.addMenu("&Patient")
        self._action(patient, "&Ward board", self.show_board, "Esc", name="board")
        self._action(patient, "Chart &vital signs…", self.chart_vitals, "F2", name="vitals")
        self._action(patient, "&ICE / ICANS assessment", self.ice_assessment, "F3", name="ice")
        self._action(patient, "Give &tocilizumab…", self.give_dose, "F4", name="dose")
        self._action(
            patient, "Give &medication (steroids)…", self.give_medication, "F6", name="medication"
        )
        patient.addSeparator()
        for i, key in enumerate(("eligibility", "crs", "neuro", "toxicity", "timeline"), start=1):
            title = {"crs": "CRS && tocilizumab", "neuro": "Neuro (ICE / ICANS)"}.get(
                key, key.title()
            )
            self._action(
                patient,
                f"{title} tab",
                lambda k=key: self.show_tab(k),
                f"Ctrl+{i}",
                name=f"tab_{key}",
            )

        alerts = bar.addMenu("&Alerts")
        self._action(
            alerts, "Go to the most &urgent item", self.go_most_urgent, "F8", name="urgent"
        )
        self._action(
            alerts, "&Acknowledge selected alert…", self.timers.acknowledge, "Ctrl+K", name="ack"
        )
        self._action(
            alerts, "&Snooze selected alert…", self.timers.snooze, "Ctrl+Shift+K", name="snooze"
        )
        self.mute_action = self._action(
            alerts, "Test the &alarm sound", self.test_alarm, name="test_alarm"
        )

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1", name="shortcuts")
        self._action(
            help_menu, "Type your &initials", self.initials_edit.setFocus, "Ctrl+I", name="initials"
        )
        self._action(help_menu, "&About Bedside", self.about, name="about")

    def _install_transfer_actions(self, menu: QMenu) -> None:
        """Export…, Import… and Print handover… (``ui/transfer_actions.py``, issue 6)."""
        self._action(menu, "&Export…", self.export, "Ctrl+E", name="export")
        self._action(menu, "&Import patient file…", self.import_files, name="import")
        self._action(menu, "&Print handover…", self.print_handover, "Ctrl+P", name="print")

    def export(self) -> None:
        """Export the current patient (or the whole ward from the board)."""
        from ui import transfer_actions

        pid = self.workspace.pid if self._in_workspace() else None
        transfer_actions.export_dialog_flow(self, self.controller.ward, pid)

    def import_files(self) -> None:
        """Import patient files from another workstation; reload when anything changed."""
        from ui import transfer_actions

        reports = transfer_actions.import_dialog_flow(self, self.controller.ward)
        if any(getattr(r, "changed", False) for r in reports):
            self.controller.reload()

    def print_handover(self) -> None:
        """Print the handover of the current patient (or the ward) to PDF."""
        from ui.handover_view import HandoverView

        pid = self.workspace.pid if self._in_workspace() else None
        view = HandoverView(self.controller.ward, self.controller.clock, pid, self)
        view.hide()
        try:
            view.print_to_pdf()
        finally:
            view.deleteLater()

    def _in_workspace(self) -> bool:
        return self.workspace is not None and self.stack.currentWidget() is self.workspace

    # ------------------------------------------------------------------ state

    def _title(self) -> str:
        demo = " — DEMO DATA" if self.controller.demo else ""
        return f"Bedside {__version__} — {self.controller.protocol.label}{demo}"

    def initials(self) -> str:
        """The nurse's initials typed in the top bar."""
        return self.initials_edit.value()

    def current_pid(self) -> str | None:
        """The patient the frequent actions apply to."""
        if self.workspace is not None and self._in_workspace():
            return self.workspace.pid
        return self.board.selected_pid()

    def _ensure_workspace(self) -> PatientWorkspace:
        if self.workspace is None:
            from ui.workspace import PatientWorkspace

            ws = PatientWorkspace(self.controller, self.initials)
            ws.back_requested.connect(self.show_board)
            ws.vitals_requested.connect(self.chart_vitals)
            ws.dose_requested.connect(self.give_dose)
            self.stack.addWidget(ws)
            self.workspace = ws
        return self.workspace

    @Slot(str)
    def open_patient(self, pid: str, tab: str | None = None) -> PatientWorkspace:
        """Show the workspace of ``pid`` (optionally on ``tab``)."""
        ws = self._ensure_workspace()
        try:
            if ws.pid != pid:
                ws.set_patient(pid)
            if tab:
                ws.show_tab(tab)
        except Exception as exc:  # noqa: BLE001 - one patient never takes down the ward
            ws.pid = None
            self.controller.set_aside(pid, "patient tabs", exc)
            self.show_board()
            from ui import dialogs

            dialogs.show_error(
                self, "Cannot display this patient", self.controller.failures().get(pid, "")
            )
            return ws
        self.stack.setCurrentWidget(ws)
        self.board.select(pid)
        self.patient_opened.emit(pid)
        return ws

    def _open_from_timer(self, pid: str, kind: str) -> None:
        self.open_patient(pid, presenters.TAB_FOR_KIND.get(kind))

    def show_board(self) -> None:
        """Back to the ward board."""
        self.stack.setCurrentWidget(self.board)
        self.board.focus_table()

    def show_tab(self, key: str) -> None:
        """Open tab ``key`` for the current patient."""
        pid = self.current_pid()
        if pid is None:
            return
        self.open_patient(pid, key)

    # ------------------------------------------------------------------ ticks

    @Slot(object)
    def on_tick(self, now: datetime) -> None:
        """The ticker's slot: recompute everything for ``now``."""
        import time

        started = time.perf_counter()
        self.controller.refresh(now)
        self.last_tick_ms = (time.perf_counter() - started) * 1000

    def _on_refreshed(self) -> None:
        c = self.controller
        self.clock_label.setText(format_local(c.now, seconds=True))
        self.board.update_rows()
        self.timers.update_rows()
        self.demo_banner.setVisible(c.demo)
        self.setWindowTitle(self._title())
        rows = c.due_rows()
        overdue = [r for r in rows if r.item.state == "overdue"]
        loud = [r for r in overdue if not r.alert.silenced]
        if overdue:
            first = (loud or overdue)[0]
            extra = f" (+{len(overdue) - 1} more)" if len(overdue) > 1 else ""
            silenced = "" if loud else " — all acknowledged or snoozed"
            set_banner(
                self.overdue_banner,
                f"{len(overdue)} OVERDUE{silenced}: {first.bed} {first.name} — "
                f"{first.item.message}{extra}",
            )
        self.overdue_banner.setVisible(bool(overdue))
        failures = c.failures()
        if failures:
            set_banner(
                self.failure_banner,
                f"{len(failures)} patient(s) cannot be displayed and were set aside (their files "
                "are never overwritten); the rest of the ward works normally. Their doses and "
                "timers are NOT shown: double-click the row for details and tell the ward "
                "manager; a verified backup can be restored.",
            )
        self.failure_banner.setVisible(bool(failures))
        storage = c.storage_warning()
        if storage:
            set_banner(self.storage_banner, storage)
        self.storage_banner.setVisible(bool(storage))
        if self.workspace is not None and self.stack.currentWidget() is self.workspace:
            self.workspace.on_tick()
        self.status_label.setText(
            f"{len(c.patient_ids())} patients · tick {c.last_refresh_ms:.1f} ms"
        )

    def _on_saved(self, pid: str) -> None:
        if self.workspace is not None:
            self.workspace.record_saved(pid)
        self.statusBar().showMessage(
            f"Saved at {format_local(self.controller.clock.now(), seconds=True)}", 8000
        )

    def _on_alarm(self, rows: list[DueRow]) -> None:
        worst = rows[0]
        logger.info("alarm: %d item(s) became due", len(rows))
        self.alarm.play()
        QApplication.alert(self, 0)
        self.statusBar().showMessage(
            f"ALARM: {presenters.STATE_LABELS[worst.item.state]} — {worst.bed} "
            f"{worst.item.message}",
            15000,
        )

    def _on_clock_warning(self, message: str) -> None:
        set_banner(self.clock_banner, f"CLOCK PROBLEM: {message}")
        self.clock_banner.setVisible(True)

    def confirm_clock(self) -> None:
        """A nurse checked the time against the ward clock."""
        if _dialogs().exec_dialog(_dialogs().ClockDialog(self.controller, self.initials(), self)):
            self.clock_banner.setVisible(False)

    # ------------------------------------------------------------------ actions

    def _need_patient(self) -> str | None:
        pid = self.current_pid()
        if pid is None:
            _dialogs().inform(self, "Choose a patient", "Select a patient on the ward board first.")
        return pid

    def add_patient(self) -> None:
        """Admit a patient."""
        dlg = _dialogs().AddPatientDialog(self.controller, self.initials(), self)
        if _dialogs().exec_dialog(dlg) and dlg.result_value:
            self.open_patient(dlg.result_value, "eligibility")

    def chart_vitals(self) -> None:
        """F2."""
        pid = self._need_patient()
        if pid is not None:
            _dialogs().exec_dialog(
                _dialogs().VitalsDialog(self.controller, pid, self.initials(), self)
            )

    def give_dose(self) -> None:
        """F4."""
        pid = self._need_patient()
        if pid is not None:
            self.open_patient(pid, "crs")
            _dialogs().exec_dialog(
                _dialogs().DoseDialog(self.controller, pid, self.initials(), self)
            )

    def give_medication(self) -> None:
        """F6."""
        pid = self._need_patient()
        if pid is not None:
            _dialogs().exec_dialog(
                _dialogs().MedicationDialog(self.controller, pid, self.initials(), self)
            )

    def ice_assessment(self) -> None:
        """F3: the Neuro tab with the keyboard on the first ICE item."""
        pid = self._need_patient()
        if pid is not None:
            ws = self.open_patient(pid, "neuro")
            ws.neuro.focus_first_item()

    def go_most_urgent(self) -> None:
        """F8: select the most urgent timer and open its patient."""
        rows = self.controller.due_rows()
        if not rows:
            return
        first = rows[0]
        self.timers.select_key(first.item.key)
        self.open_patient(first.pid, presenters.TAB_FOR_KIND.get(first.item.kind))
        self.timers.view.setFocus()

    def open_demo(self) -> None:
        """Open the demo ward (in its own window/process)."""
        if self.demo_launcher is not None:
            self.demo_launcher()

    def reload(self) -> None:
        """Reload every patient file from disk."""
        self.controller.reload()

    def test_alarm(self) -> None:
        """Play the alarm once."""
        how = self.alarm.play()
        if how == "beep":
            _dialogs().inform(
                self,
                "Alarm test",
                "No sound device is available, so Bedside used the system beep. Alarms are "
                "also shown in red in the timers panel and the banner.",
            )

    def show_shortcuts(self) -> None:
        """F1."""
        _dialogs().exec_dialog(_dialogs().ShortcutsDialog(SHORTCUTS, self))

    def about(self) -> None:
        """Version, protocol and data directory."""
        p = self.controller.protocol
        _dialogs().inform(
            self,
            "About Bedside",
            f"Bedside {__version__}\nProtocol {p.label} ({p.title}), effective "
            f"{p.effective_date:%d %b %Y}\nData directory: {self.controller.data_dir}",
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop ticking on close (the ward is released by the application)."""
        self.ticker.stop()
        super().closeEvent(event)

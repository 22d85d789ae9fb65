"""The main window: banners, ward board / patient workspace, and the timers panel.

Always visible: the protocol id and version (and whether it is signed off), the DEMO
banner when demo data is open, the local time with its zone, an OVERDUE banner when
anything is overdue, and the timers panel on the right. The one :class:`Ticker`
drives :meth:`WardController.refresh`; every view then redraws from the controller.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from bedside import __version__
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from bedside.ward.timesafety import SYSTEM_INITIALS
from ui import screens, theme
from ui.alarm import NO_DEVICE_ADVICE, Alarm
from ui.board_view import BoardView
from ui.controller import DueRow, WardController
from ui.forms import ElidedLabel, InitialsEdit, banner, banner_text, button, label, set_banner
from ui.resources import icon
from ui.ticker import Ticker, after_first_paint
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
    ("F4", "Give dose: tocilizumab or another drug with dose limits (dose dialog)"),
    ("F6", "Give dexamethasone / other medication"),
    ("F8", "Go to the most urgent due item"),
    ("F9", "Show or hide the timers panel (small screens)"),
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
        self.compact = False
        self.header_compact = False
        self._fit_retries = 0
        self._placed = False
        self._overdue_text = ""

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        # ----------------------------------------------------------- banners
        self.demo_banner = banner(DEMO_TEXT, "demo", icon_name="demo")
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
        self.protocol_text = f"Protocol {p.label} · {signed}"
        self.protocol_short = f"Protocol {p.label}" + ("" if p.signed_off else " · NOT SIGNED OFF")
        self.protocol_label = ElidedLabel(self.protocol_text)
        self.protocol_label.setAccessibleName("Protocol")
        self.protocol_label.setToolTip(self.protocol_text)
        pl.addWidget(self.protocol_label, 1)
        self.timers_toggle = QPushButton("Timers")
        self.timers_toggle.setCheckable(True)
        self.timers_toggle.setAccessibleName("Show the timers panel")
        self.timers_toggle.setToolTip("Show or hide the timers panel (F9)")
        self.timers_toggle.setVisible(False)
        self.timers_toggle.toggled.connect(self._toggle_timers)
        pl.addWidget(self.timers_toggle)
        pl.addWidget(label("Charting as:", wrap=False))
        self.initials_edit = InitialsEdit("Charting as, your initials")
        self.initials_edit.setToolTip(
            "Your initials fill in 'your initials' in forms. Second-nurse and checker "
            "initials are never filled in for you."
        )
        pl.addWidget(self.initials_edit)
        self.clock_label = label("", wrap=False)
        self.clock_label.setAccessibleName("Current local time")
        self.clock_label.setMinimumWidth(150)
        self.clock_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        pl.addWidget(self.clock_label)
        outer.addWidget(self.protocol_bar)

        self.clock_banner = banner("", "danger", icon_name="warning")
        self.clock_banner.setAccessibleName("Clock warning")
        self.clock_button = button(
            "Confirm the &time…", name="Confirm the time", slot=self.confirm_clock
        )
        self.clock_banner.row.addWidget(self.clock_button)
        self.clock_banner.setVisible(False)
        outer.addWidget(self.clock_banner)

        self.overdue_banner = banner("", "overdue", icon_name="overdue")
        self.overdue_banner.setAccessibleName("Overdue alert banner")
        self.overdue_button = button(
            "Show (F8)", name="Show the most urgent item", slot=self.go_most_urgent
        )
        self.overdue_banner.row.addWidget(self.overdue_button)
        self.overdue_banner.setVisible(False)
        outer.addWidget(self.overdue_banner)

        self.failure_banner = banner("", "danger", icon_name="blocked")
        self.failure_banner.setAccessibleName("Patients set aside")
        self.restore_button = button(
            "Restore from &backup…", name="Restore from backup", slot=self.restore_patient
        )
        self.failure_banner.row.addWidget(self.restore_button)
        self.failure_banner.setVisible(False)
        outer.addWidget(self.failure_banner)

        # Issue 15: other workstations out of touch, clocks, possible duplicate doses.
        self.sync_banner = banner("", "danger", icon_name="warning")
        self.sync_banner.setAccessibleName("Other workstations")
        self.sync_banner.setVisible(False)
        outer.addWidget(self.sync_banner)

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
        self.alarm.device_changed.connect(self.timers.set_sound_available)
        self.splitter.addWidget(self.timers)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([1000, 360])
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.saved_label = QLabel()
        self.saved_label.setAccessibleName("Last saved")
        self.saved_label.setProperty("role", "saved")
        self.statusBar().addWidget(self.saved_label, 1)
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)

        self._build_menus()

        # ----------------------------------------------------------- wiring
        self.board.open_patient.connect(self.open_patient)
        self.board.add_patient_requested.connect(self.add_patient)
        self.board.demo_requested.connect(self.open_demo)
        self.board.restore_requested.connect(self.restore_patient)
        self.timers.open_patient.connect(self._open_from_timer)
        controller.refreshed.connect(self._on_refreshed)
        controller.record_saved.connect(self._on_saved)
        controller.announced.connect(self.show_saved)
        controller.patients_changed.connect(self._on_refreshed)
        controller.alarm_raised.connect(self._on_alarm)
        controller.alarm_sound.connect(self._on_alarm_sound)
        controller.alarm_silenced.connect(self.alarm.stop)
        controller.clock_warning.connect(self._on_clock_warning)
        ticker.ticked.connect(self.on_tick)
        self.place_on_screen()
        self._on_refreshed()
        for report in controller.start_reports:
            self._on_clock_warning(report.message)
        # Asking the sound system runs the player's probe (child processes): after the
        # first paint, and at the latest after 2 s (a window that is never painted).
        after_first_paint(self, self._check_sound)

    def _check_sound(self) -> None:
        """Show whether alarms can be heard; sound what was already due when Bedside started."""
        self.timers.set_sound_available(self.alarm.check(), self.alarm.reason)
        tone = self.controller.sounding_tone()
        if tone:
            self.alarm.play(tone)

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
        self._action(
            patient,
            "Give &dose (tocilizumab, drugs with limits)…",
            self.give_dose,
            "F4",
            name="dose",
        )
        self._action(
            patient, "Give &medication (steroids)…", self.give_medication, "F6", name="medication"
        )
        self._action(patient, "Restore from &backup…", self.restore_patient, name="restore")
        patient.addSeparator()
        for i, key in enumerate(("eligibility", "crs", "neuro", "toxicity", "timeline"), start=1):
            title = {"crs": "CRS && tocilizumab", "neuro": "Neuro (ICE / ICANS)"}.get(
                key, key.title()
            )
            self._action(
                patient,
                f"{title} tab",
                functools.partial(self.show_tab, key),
                f"Ctrl+{i}",
                name=f"tab_{key}",
            )

        alerts = bar.addMenu("&Alerts")
        self._action(
            alerts, "Go to the most &urgent item", self.go_most_urgent, "F8", name="urgent"
        )
        self._action(alerts, "Show/hide the &timers panel", self.toggle_timers, "F9", name="timers")
        self._action(
            alerts, "&Acknowledge selected alert…", self.timers.acknowledge, "Ctrl+K", name="ack"
        )
        self._action(
            alerts, "&Snooze selected alert…", self.timers.snooze, "Ctrl+Shift+K", name="snooze"
        )
        self._action(
            alerts,
            "&Doctor informed (escalation review)…",
            self.timers.doctor_informed,
            name="doctor_informed",
        )

        view_menu = bar.addMenu("&View")
        self.night_action = self._action(
            view_menu, "&Night (dim colours)", self.toggle_night, name="night"
        )
        self.night_action.setCheckable(True)
        self.night_action.setChecked(theme.current() == "night")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Test alarm sound", self.test_alarm, name="test_alarm")
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
        self._action(menu, "Handover to P&DF…", self.handover_pdf, name="handover_pdf")

    def export(self) -> None:
        """Export the current patient (or the whole ward from the board)."""
        from ui import transfer_actions

        pid = self._workspace_pid()
        transfer_actions.export_dialog_flow(self, self.controller.ward, pid)

    def import_files(self) -> None:
        """Import patient files from another workstation; reload when anything changed."""
        from ui import transfer_actions

        reports = transfer_actions.import_dialog_flow(self, self.controller.ward)
        if any(getattr(r, "changed", False) for r in reports):
            self.controller.reload()

    def print_handover(self) -> None:
        """Print the handover of the current patient (or the ward) on a printer."""
        self._handover(lambda view: view.print_direct())

    def handover_pdf(self) -> None:
        """Write the handover of the current patient (or the ward) as a PDF file."""
        self._handover(lambda view: view.print_to_pdf())

    def _handover(self, action: Callable[[Any], object]) -> None:
        from ui.handover_view import HandoverView

        pid = self._workspace_pid()
        view = HandoverView(self.controller.ward, self.controller.clock, pid, self)
        view.hide()
        try:
            action(view)
            if view.status.text():
                self.statusBar().showMessage(view.status.text(), 10000)
        finally:
            view.deleteLater()

    def _in_workspace(self) -> bool:
        return self.workspace is not None and self.stack.currentWidget() is self.workspace

    def _workspace_pid(self) -> str | None:
        """The open patient's id while the workspace shows, else None (the board)."""
        ws = self.workspace
        return ws.pid if ws is not None and self.stack.currentWidget() is ws else None

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
            ws.set_compact(self.header_compact)
            self.stack.addWidget(ws)
            self.workspace = ws
        return self.workspace

    @Slot(str)
    def open_patient(self, pid: str, tab: str | None = None) -> PatientWorkspace:
        """Show the workspace of ``pid`` (optionally on ``tab``)."""
        ws = self._ensure_workspace()
        if ws.pid is not None and ws.pid != pid and ws.has_typed():
            from ui import dialogs

            if not dialogs.ask_discard(self):  # keep editing: stay on this patient
                self.stack.setCurrentWidget(ws)
                return ws
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
            self._overdue_text = (
                f"{len(overdue)} OVERDUE{silenced}: {first.bed} {first.name} — "
                f"{first.item.message}{extra}"
            )
            set_banner(self.overdue_banner, self._overdue_text)
            self._fold_banners()
        self.overdue_banner.setVisible(bool(overdue))
        self._timers_toggle_text(rows)
        failures = c.failures()
        if failures:
            set_banner(
                self.failure_banner,
                f"{len(failures)} patient(s) cannot be displayed and were set aside (their files "
                "are never overwritten); the rest of the ward works normally. Their doses and "
                "timers are NOT shown: double-click the row for details and to restore it "
                "from a verified backup, and tell the ward manager.",
            )
        self.failure_banner.setVisible(bool(failures))
        sync = c.sync_lines()
        if sync:
            set_banner(self.sync_banner, "\n".join(sync))
        self.sync_banner.setVisible(bool(sync))
        storage = c.storage_warning()
        if storage:
            set_banner(self.storage_banner, storage)
        self.storage_banner.setVisible(bool(storage))
        if self.workspace is not None and self.stack.currentWidget() is self.workspace:
            self.workspace.on_tick()
        n = len(c.patient_ids())
        self.status_label.setText(
            f"{n} patient{'' if n == 1 else 's'} on the ward · workstation {c.ward.workstation}"
        )

    def _on_saved(self, pid: str) -> None:
        if self.workspace is not None:
            self.workspace.record_saved(pid)
        if pid not in self.controller.patient_ids():
            return
        p = self.controller.patient(pid)
        events = [e for e in self.controller.record(pid).events if e.recorded_by != SYSTEM_INITIALS]
        what = presenters.summarize(events[-1]).split(" — ")[0].split(";")[0] if events else ""
        if len(what) > 70:
            what = what[:69] + "…"
        when = events[-1].effective_at if events else self.controller.now
        self.saved_label.setText(
            f"✓ Saved: {what + ', ' if what else ''}{presenters.bed_or_name(p)}, "
            f"{presenters.short_time(when, self.controller.now)}"
        )

    def show_saved(self, text: str) -> None:
        """Confirm what a form saved, for whom and when (stays until the next save)."""
        self.saved_label.setText("✓ " + text)

    def _on_alarm(self, rows: list[DueRow]) -> None:
        worst = rows[0]
        logger.info("alarm: %d item(s) became due", len(rows))
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
        ws = self.open_patient(first.pid, presenters.TAB_FOR_KIND.get(first.item.kind))
        target = ws.show_item(first.item.kind)
        if self.timers.isVisible():
            self.timers.view.setFocus()
        elif target is not None:
            target.setFocus()

    def open_demo(self) -> None:
        """Open the demo ward (in its own window/process)."""
        if self.demo_launcher is not None:
            self.demo_launcher()

    def restore_patient(self, pid: str | bool | None = None) -> bool:
        """Restore a set-aside patient from a verified backup (the row, banner or menu).

        Without ``pid`` (a button's ``checked`` flag counts as none): the selected board
        row if it is set aside, else the only patient set aside. True when restored.
        """
        failures = self.controller.failures()
        target = pid if isinstance(pid, str) and pid else None
        if target is None:
            selected = self.board.selected_pid()
            if selected in failures:
                target = selected
            elif len(failures) == 1:
                target = next(iter(failures))
        if target is None or target not in failures:
            _dialogs().inform(
                self,
                "Restore from backup",
                "Several patients are set aside: select the row of the one to restore on "
                "the board first."
                if failures
                else "Every patient on this ward loads normally: there is nothing to restore.",
            )
            return False
        dlg = _dialogs().RestoreDialog(self.controller, target, self.initials(), self)
        if not _dialogs().exec_dialog(dlg):
            return False
        self.show_board()
        self.board.select(target)
        return True

    def reload(self) -> None:
        """Reload every patient file from disk."""
        self.controller.reload()

    def toggle_night(self) -> None:
        """View ▸ Night: switch the dim night theme on or off (remembered for next time)."""
        name = "night" if self.night_action.isChecked() else "day"
        theme.apply(name)
        theme.remember(name)
        self.controller.refreshed.emit()  # repaint the painted colours (models, chart)
        if self.workspace is not None:
            self.workspace.update()
        self.statusBar().showMessage(
            "Night colours on: dim, same information." if name == "night" else "Day colours on.",
            5000,
        )

    def _on_alarm_sound(self, tone: str) -> None:
        """An alarm is owed (first sounding or a repetition): play its tone."""
        self.alarm.play(tone)

    def test_alarm(self) -> None:
        """Help ▸ Test alarm sound: play the critical alarm once and say what happened."""
        how = self.alarm.play("critical")
        if how == "sound":
            _dialogs().inform(
                self,
                "Test alarm sound",
                "Bedside played the critical alarm (the one for overdue and critical items). "
                "If you did not hear it, check the loudspeaker volume, then call IT.",
            )
        else:
            _dialogs().warn(
                self,
                "Test alarm sound",
                f"No alarm sound: {self.alarm.reason or 'sound is muted'}. {NO_DEVICE_ADVICE}",
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
        """Stop ticking on close and remember the window's place (the ward is released by
        the application)."""
        self.ticker.stop()
        try:
            screens.settings().setValue("main/geometry", self.saveGeometry())
        except Exception:
            logger.exception("could not remember the window geometry")
        super().closeEvent(event)

    # ------------------------------------------------------------------ screen size

    def place_on_screen(self) -> None:
        """Remembered geometry when it fits; otherwise as large as allowed, on screen."""
        avail = screens.available_geometry(self)
        saved = screens.settings().value("main/geometry")
        restored = isinstance(saved, QByteArray) and not saved.isEmpty()
        if restored:
            restored = self.restoreGeometry(saved)
        if not restored:
            w, h = screens.DEFAULT_SIZE
            size = (min(w, avail.width()), min(h, avail.height() - screens.TITLE_BAR))
            self.set_compact(screens.is_compact(*size), width=size[0])
            self.resize(*size)
            self.move(avail.topLeft())
            if (w > avail.width() or h + screens.TITLE_BAR > avail.height()) and (
                QApplication.platformName() not in ("offscreen", "minimal")
            ):
                # Let the window manager fit it, title bar and panels included.
                self.setWindowState(Qt.WindowState.WindowMaximized)
        self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """Never larger than the available screen (title bar included), never off it."""
        if self.isMaximized() or self.isFullScreen():
            self.set_compact(screens.is_compact(self.width(), self.height()))
            return
        avail = screens.available_geometry(self)
        extra_w = max(self.frameGeometry().width() - self.width(), 0)
        extra_h = max(self.frameGeometry().height() - self.height(), 0)
        w = min(self.width(), avail.width() - extra_w)
        h = min(self.height(), avail.height() - extra_h)
        self.set_compact(screens.is_compact(w, h), width=w)
        if (w, h) != (self.width(), self.height()):
            self.resize(w, h)
            if (w, h) != (self.width(), self.height()) and self._fit_retries < 3:
                # Held back by the minimum size of the arrangement just left: try again
                # once the layouts have taken the compact arrangement into account.
                self._fit_retries += 1
                QTimer.singleShot(0, self, self.fit_to_screen)  # cancelled with the window
                return
        self._fit_retries = 0
        frame = self.frameGeometry()
        x = min(max(frame.x(), avail.left()), avail.right() + 1 - frame.width())
        y = min(max(frame.y(), avail.top()), avail.bottom() + 1 - frame.height())
        if (x, y) != (frame.x(), frame.y()):
            self.move(max(x, avail.left()), max(y, avail.top()))
        self.set_compact(screens.is_compact(self.width(), self.height()), width=self.width())

    def showEvent(self, event: QShowEvent) -> None:
        """Once the window manager has added its frame, make sure it all fits."""
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            self.fit_to_screen()
            # The window manager adds its frame after the first show: check again then.
            QTimer.singleShot(300, self, self.fit_to_screen)  # cancelled with the window

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Switch to the compact arrangement on small logical screens."""
        super().resizeEvent(event)
        size = event.size()
        self.set_compact(screens.is_compact(size.width(), size.height()), width=size.width())
        self._fold_banners()

    def set_compact(self, on: bool, *, width: int | None = None) -> None:
        """Compact: timers panel as a drawer (F9), one-line banners, shorter protocol line.

        The patient header is shortened below :data:`screens.WIDE_HEADER` (``width``).
        """
        self.header_compact = (width if width is not None else self.width()) < (screens.WIDE_HEADER)
        if self.workspace is not None and self.workspace.compact != self.header_compact:
            self.workspace.set_compact(self.header_compact)
        if on == self.compact:
            return
        self._set_compact(on)

    def _set_compact(self, on: bool) -> None:
        self.compact = on
        self.setProperty("compact", on)
        app = QApplication.instance()
        if isinstance(app, QApplication) and app.styleSheet():
            for w in (self, *self.findChildren(QWidget)):
                w.style().unpolish(w)
                w.style().polish(w)
        self.timers_toggle.setVisible(on)
        if on:
            self.timers_toggle.setChecked(False)
        self.timers.setVisible(not on or self.timers_toggle.isChecked())
        self.protocol_label.setText(self.protocol_short if on else self.protocol_text)
        banner_text(self.demo_banner).setText(DEMO_SHORT if on else DEMO_TEXT)
        self._fold_banners()

    def _fold_banners(self) -> None:
        """In compact mode the overdue banner is one line (full text in its tooltip)."""
        lab = banner_text(self.overdue_banner)
        lab.setWordWrap(not self.compact)
        policy = QSizePolicy.Policy.Ignored if self.compact else QSizePolicy.Policy.Preferred
        lab.setSizePolicy(policy, QSizePolicy.Policy.Preferred)
        self.overdue_banner.setToolTip(self._overdue_text)
        if not self.compact:
            lab.setText(self._overdue_text)
            return
        room = max(self.width() - self.overdue_button.sizeHint().width() - 90, 120)
        lab.setText(
            lab.fontMetrics().elidedText(self._overdue_text, Qt.TextElideMode.ElideRight, room)
        )

    def _toggle_timers(self, on: bool) -> None:
        self.timers.setVisible(on or not self.compact)

    def toggle_timers(self) -> None:
        """F9: open or close the timers drawer (compact arrangement)."""
        if self.compact:
            self.timers_toggle.toggle()

    def _timers_toggle_text(self, rows: list[DueRow]) -> None:
        overdue = sum(1 for r in rows if r.item.state == "overdue")
        due = sum(1 for r in rows if r.item.state == "due")
        parts = [f"{overdue} overdue"] if overdue else []
        parts += [f"{due} due"] if due else []
        text = "Timers" + (f" · {', '.join(parts)}" if parts else "")
        self.timers_toggle.setText(text + (" ◂" if self.timers_toggle.isChecked() else " ▸"))


DEMO_TEXT = "DEMO DATA — fictional patients for training and testing. Not for clinical use."
DEMO_SHORT = "DEMO DATA — fictional patients, not for clinical use."

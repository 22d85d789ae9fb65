"""The patient workspace: a header with who and where the patient is, and one tab per task.

Tabs: Eligibility, CRS & tocilizumab, Neuro, Toxicity, Timeline — and Handover when
``ui.handover_view`` is installed (written separately; see :meth:`_add_handover_tab`
for the contract it is expected to meet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QMenu,
    QSizePolicy,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.record import IceAssessment
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from ui.controller import WardController
from ui.forms import ElidedLabel, button, label
from ui.tabs import PatientTab
from ui.tabs.crs import CrsTab
from ui.tabs.eligibility import EligibilityTab
from ui.tabs.neuro import NeuroTab
from ui.tabs.timeline import TimelineTab
from ui.tabs.toxicity import ToxicityTab

if TYPE_CHECKING:  # imported when the handover tab is first opened
    from ui.handover_view import HandoverView

logger = logging.getLogger(__name__)

TAB_FOR_KIND = presenters.TAB_FOR_KIND


class PatientWorkspace(QWidget):
    """Header plus tabs for one patient."""

    back_requested = Signal()
    vitals_requested = Signal()
    dose_requested = Signal()

    def __init__(
        self,
        controller: WardController,
        initials: Callable[[], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.initials = initials
        self.pid: str | None = None
        self.compact = False
        self.setAccessibleName("Patient workspace")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        head = QFrame()
        head.setProperty("card", True)
        hl = QGridLayout(head)
        hl.setContentsMargins(8, 4, 8, 4)
        hl.setVerticalSpacing(2)
        self.back = button(
            "← &Board (Esc)", name="Back to ward board", slot=self.back_requested.emit
        )
        hl.addWidget(self.back, 0, 0)
        who = QHBoxLayout()
        who.setSpacing(10)
        self.bed = label("", "big", wrap=False)
        self.bed.setAccessibleName("Bed")
        self.bed.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.name = ElidedLabel("", "big")
        self.name.setAccessibleName("Patient name")
        self.product = label("", "section", wrap=False)
        self.product.setAccessibleName("CAR T product")
        self.product.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        who.addWidget(self.bed)
        who.addWidget(self.name, 1)
        who.addWidget(self.product)
        hl.addLayout(who, 0, 1)
        actions = QHBoxLayout()
        actions.setSpacing(6)
        actions.addStretch(1)
        actions.addWidget(
            button(
                "&Vitals (F2)", role="primary", name="Chart vitals", slot=self.vitals_requested.emit
            )
        )
        actions.addWidget(
            button("&Tocilizumab (F4)", name="Give tocilizumab", slot=self.dose_requested.emit)
        )
        self.weight_button = button("&Weight…", name="Record weight", slot=self._weight)
        actions.addWidget(self.weight_button)
        more = QToolButton()
        more.setText("More")
        more.setAccessibleName("More patient actions")
        more.setToolTip("Record the weight or the infusion, add a note")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        menu.addAction("Record &weight…", self._weight)
        menu.addAction("Record &infusion…", self._infusion)
        menu.addAction("Add n&ote…", self._note)
        more.setMenu(menu)
        actions.addWidget(more)
        hl.addLayout(actions, 0, 2)
        self.facts = ElidedLabel("")
        self.facts.setAccessibleName("Patient details")
        self.status = ElidedLabel("", "hint")
        self.status.setAccessibleName("Patient status")
        hl.addWidget(self.facts, 1, 0, 1, 3)
        hl.addWidget(self.status, 2, 0, 1, 3)
        hl.setColumnStretch(1, 1)
        lay.addWidget(head)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Patient tabs")
        self.tabs.setDocumentMode(True)
        self.eligibility = EligibilityTab(controller, initials)
        self.crs = CrsTab(controller, initials)
        self.neuro = NeuroTab(controller, initials)
        self.toxicity = ToxicityTab(controller, initials)
        self.timeline = TimelineTab(controller, initials)
        self.handover: HandoverView | None = None
        self._handover_dirty = True
        self.pages: dict[str, PatientTab] = {
            "eligibility": self.eligibility,
            "crs": self.crs,
            "neuro": self.neuro,
            "toxicity": self.toxicity,
            "timeline": self.timeline,
        }
        for key, tab in self.pages.items():
            self.tabs.addTab(tab, _TAB_TITLES[key])
        self._add_handover_tab()
        self.crs.dose_requested.connect(self.dose_requested.emit)
        lay.addWidget(self.tabs, 1)

    def _add_handover_tab(self) -> None:
        """The Handover tab (``ui/handover_view.py``, issue 6), when installed.

        It is refreshed only while visible (computing a handover is not free), and once
        when it is shown after a change.
        """
        try:
            from ui.handover_view import HandoverView
        except ImportError:
            return
        try:
            self.handover = HandoverView(self.controller.ward, self.controller.clock, None)
        except Exception:
            logger.exception("the handover tab could not be built")
            self.handover = None
            return
        self.tabs.addTab(self.handover, "Handover")
        self.tabs.currentChanged.connect(self._tab_changed)

    def _tab_changed(self, _index: int) -> None:
        if self.handover is not None and self.tabs.currentWidget() is self.handover:
            self._refresh_handover()

    def _refresh_handover(self) -> None:
        if self.handover is None:
            return
        try:
            if self.handover.pid != self.pid:
                self.handover.set_patient(self.pid)
            else:
                self.handover.refresh()
        except Exception:
            logger.exception("the handover could not be refreshed")
        self._handover_dirty = False

    # ------------------------------------------------------------------ state

    def has_typed(self) -> bool:
        """Whether any tab holds typed data that is not saved (asked before it is lost)."""
        return any(tab.has_typed() for tab in self.pages.values())

    def set_patient(self, pid: str) -> None:
        """Show ``pid`` (forms reset)."""
        self.pid = pid
        for tab in self.pages.values():
            tab.set_patient(pid)
        self._handover_dirty = True
        if self.handover is not None and self.tabs.currentWidget() is self.handover:
            self._refresh_handover()
        self.refresh_header()

    def set_compact(self, on: bool) -> None:
        """Small screens: shorter Back button, Weight only in the More menu.

        The bed, the name (shortened with "…" when needed) and the product always stay.
        """
        self.compact = on
        self.back.setText("←" if on else "← &Board (Esc)")
        self.back.setToolTip("Back to the ward board (Esc)")
        self.weight_button.setVisible(not on)
        self.status.setVisible(not on)
        self.refresh_header()

    def show_item(self, kind: str) -> QWidget | None:
        """Scroll the tab that answers a due item of ``kind`` to the part it names (F8)."""
        key = TAB_FOR_KIND.get(kind)
        if key is None:
            return None
        self.show_tab(key)
        tab = self.pages.get(key)
        return tab.show_item(kind) if tab is not None else None

    def show_tab(self, key: str) -> None:
        """Bring tab ``key`` (eligibility/crs/neuro/toxicity/timeline/handover) forward."""
        tab = self.pages.get(key)
        if key == "handover" and self.handover is not None:
            self.tabs.setCurrentWidget(self.handover)
        elif tab is not None:
            self.tabs.setCurrentWidget(tab)

    def current_tab_key(self) -> str:
        """Key of the visible tab."""
        w = self.tabs.currentWidget()
        if w is not None and w is self.handover:
            return "handover"
        return next((k for k, t in self.pages.items() if t is w), "")

    def tab_keys(self) -> list[str]:
        """Every tab key, in order."""
        return [*self.pages, *(["handover"] if self.handover is not None else [])]

    def record_saved(self, pid: str) -> None:
        """A record changed: refresh if it is ours."""
        if pid != self.pid:
            return
        self.refresh_header()
        for tab in self.pages.values():
            tab.refresh()
        self._handover_dirty = True
        if self.handover is not None and self.tabs.currentWidget() is self.handover:
            self._refresh_handover()

    def on_tick(self) -> None:
        """Time-dependent text."""
        if self.pid is None or self.pid not in self.controller.patient_ids():
            return
        try:
            self.refresh_header()
            current = self.tabs.currentWidget()
            if isinstance(current, PatientTab):
                current.on_tick()
        except Exception as exc:  # noqa: BLE001 - one patient never takes down the ward
            pid, self.pid = self.pid, None
            self.controller.set_aside(pid, "patient tabs", exc)

    def refresh_header(self) -> None:
        """Name, bed, identifiers, day, weight, baseline."""
        if self.pid is None:
            return
        c = self.controller
        p = c.patient(self.pid)
        now = c.now
        age = presenters.age_years(p.date_of_birth, now.date())
        self.bed.setText(f"Bed {p.bed or '—'}")
        self.name.setText(p.name)
        self.product.setText(p.product if self.compact else presenters.product_label(p.product))
        self.product.setToolTip(presenters.product_label(p.product))
        lot = f", lot {p.lot_number}" if p.lot_number else ""
        if p.infusion_at is not None:
            day = (
                f"{presenters.day_label(c.day(self.pid))} "
                f"(infused {format_local(p.infusion_at)}{lot})"
            )
        else:
            day = "not infused yet"
        self.facts.setText(
            f"MRN {p.mrn} · born {p.date_of_birth:%d %b %Y} ({age} y) · {p.sex} · "
            f"{presenters.product_label(p.product)} · {day}"
        )
        last_ice = presenters.latest(c.events(self.pid), IceAssessment)
        ice = (
            f"last ICE {last_ice.ice_score}/10"
            if isinstance(last_ice, IceAssessment) and last_ice.ice_score is not None
            else "no ICE yet"
        )
        baseline = (
            f"baseline ICE {p.baseline_ice}/10" if p.baseline_ice is not None else "no baseline ICE"
        )
        budget = c.budget(self.pid)
        hist = "" if budget is None or budget.history_complete else " · ⚠ dose history INCOMPLETE"
        proto = c.protocol
        other = (
            ""
            if (p.protocol_id, p.protocol_version) == (proto.protocol_id, proto.version)
            else f" · charted under protocol {p.protocol_id} v{p.protocol_version}"
        )
        self.status.setText(
            f"Weight {presenters.weight_text(p, now)} · {baseline}, {ice}{hist}{other}"
        )
        if self.compact:  # one line: warnings, day and weight first, then the rest
            warn = f"{hist.lstrip(' ·')} · " if hist else ""
            self.facts.setText(
                f"{warn}{day} · Weight {presenters.weight_text(p, now)} · {baseline}, {ice} · "
                f"MRN {p.mrn} · born {p.date_of_birth:%d %b %Y} ({age} y) · {p.sex}{other}"
            )

    # ------------------------------------------------------------------ dialogs

    def _weight(self) -> None:
        from ui import dialogs

        if self.pid is not None:
            dialogs.exec_dialog(
                dialogs.WeightDialog(self.controller, self.pid, self.initials(), self)
            )

    def _infusion(self) -> None:
        from ui import dialogs

        if self.pid is not None:
            dialogs.exec_dialog(
                dialogs.InfusionDialog(self.controller, self.pid, self.initials(), self)
            )

    def _note(self) -> None:
        from ui import dialogs

        if self.pid is not None:
            dialogs.exec_dialog(
                dialogs.NoteDialog(self.controller, self.pid, self.initials(), self)
            )


_TAB_TITLES = {
    "eligibility": "Eligibility",
    "crs": "CRS && tocilizumab",
    "neuro": "Neuro (ICE / ICANS)",
    "toxicity": "Toxicity && labs",
    "timeline": "Timeline",
}

"""Timeline tab: every event in recorded order, corrections beside the original.

Voiding or amending goes through :class:`ui.dialogs.CorrectionDialog` and
:meth:`Ward.correct`; the original entry stays in the list (struck through when voided,
highlighted with the amendment when amended). Alert acknowledgements and snoozes are
events too and appear here with who and when.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QItemSelection, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QVBoxLayout, QWidget

from bedside.reports import presenters
from ui import dialogs
from ui.forms import button, label
from ui.models import ROW_KEY_ROLE
from ui.models.timeline import TimelineModel
from ui.tabs import (
    DiscrepancyNotes,
    PatientTab,
    resize_columns,
    scrolling,
    set_sourced,
    table_view,
)

logger = logging.getLogger(__name__)

FILTERS = (
    ("all", "All entries"),
    ("clinical", "Assessments and observations"),
    ("doses", "Medication"),
    ("alerts", "Alerts and acknowledgements"),
    ("corrections", "Corrections only"),
)
_FILTER_KINDS = {
    "clinical": {
        presenters.KIND_LABELS[k]
        for k in (
            "vitals",
            "crs_assessment",
            "ice_assessment",
            "lab",
            "toxicity",
            "neuro_check",
            "eligibility",
        )
    },
    "doses": {presenters.KIND_LABELS["medication"]},
    "alerts": {presenters.KIND_LABELS["alert"], presenters.KIND_LABELS["clock_anomaly"]},
    "corrections": {presenters.KIND_LABELS["correction"]},
}


class _KindFilter(QSortFilterProxyModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.mode = "all"

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        if self.mode == "all":
            return True
        model = self.sourceModel()
        assert isinstance(model, TimelineModel)
        row = model.row_at(source_row)
        if row is None:
            return False
        kind = row.kind
        if self.mode == "corrections":
            return kind in _FILTER_KINDS["corrections"] or row.voided or row.amended
        return kind in _FILTER_KINDS[self.mode]


class TimelineTab(PatientTab):
    """The audit trail of one patient."""

    title = "Timeline"

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(label("Show:"))
        self.filter = QComboBox()
        self.filter.setAccessibleName("Show entries")
        for key, text in FILTERS:
            self.filter.addItem(text, key)
        top.addWidget(self.filter)
        top.addStretch(1)
        self.void_button = button("&Void entry…", slot=lambda: self.correct("void"))
        self.amend_button = button("&Amend entry…", slot=lambda: self.correct("amend"))
        self.note_button = button("Add &note…", slot=self.add_note)
        for b in (self.void_button, self.amend_button, self.note_button):
            top.addWidget(b)
        lay.addLayout(top)
        self.count = label("", "hint")
        lay.addWidget(self.count)
        self.model = TimelineModel(self)
        self.proxy = _KindFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = table_view("Timeline of events")
        self.view.setModel(self.proxy)
        self.view.verticalHeader().setDefaultSectionSize(48)
        resize_columns(self.view, [150, 200, 210])
        lay.addWidget(self.view, 1)
        lay.addWidget(
            label(
                "Entries are never deleted: a voided entry stays here struck through, with who "
                "voided it, when and why; an amended entry shows its amendment next to it.",
                "hint",
            )
        )
        self.post_infusion = label("", "hint")
        self.post_infusion.setAccessibleName("Post-infusion monitoring, proximity and driving")
        self.discrepancy_notes = DiscrepancyNotes("monitoring", "discharge")
        notes = QWidget()
        nl = QVBoxLayout(notes)
        nl.setContentsMargins(0, 0, 0, 0)
        nl.addWidget(self.post_infusion)
        nl.addWidget(self.discrepancy_notes)
        box = scrolling(notes)
        box.setMaximumHeight(84)  # the entries table keeps the room; the notes scroll
        lay.addWidget(box)
        self.filter.currentIndexChanged.connect(self._filter)
        self.view.selectionModel().selectionChanged.connect(self._selection)
        self.view.doubleClicked.connect(lambda _i: self.correct("amend"))
        self._selection(QItemSelection(), QItemSelection())

    def _filter(self, _index: int) -> None:
        self.proxy.mode = self.filter.currentData()
        self.proxy.invalidateFilter()

    def selected_event_id(self) -> str | None:
        """The id of the selected row's event."""
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        return rows[0].data(ROW_KEY_ROLE)

    def _selection(self, _a: QItemSelection, _b: QItemSelection) -> None:
        eid = self.selected_event_id()
        row = self.model.row_at(self.model.row_of(eid)) if eid else None
        ok = row is not None and row.correctable
        self.void_button.setEnabled(ok)
        self.amend_button.setEnabled(ok)

    def refresh(self) -> None:
        """Reload the rows (all events, originals included)."""
        if self.pid is None:
            self.model.set_rows([])
            return
        record = self.controller.record(self.pid)
        protocol = self.controller.protocol_for(self.pid)
        mon = protocol.monitoring
        version = mon.post_infusion[mon.post_infusion_current]
        product = self.controller.patient(self.pid).product
        parts = []
        for what, table in (
            ("daily monitoring", version.daily_monitoring_days),
            ("monitoring", version.total_monitoring_days),
            ("stay near the centre", version.proximity_days),
            ("no driving", version.driving_days),
        ):
            n = table.get(product)
            if n is not None:
                flag = "" if n.verified else " (UNVERIFIED)"
                parts.append(f"{what} {n.value:g} days{flag} [{n.source}]")
        set_sourced(
            self.post_infusion, f"{version.title} — {product}: " + "; ".join(parts), protocol
        )
        self.discrepancy_notes.show_for(protocol)
        rows = presenters.timeline_rows(list(record.events))
        rows.sort(key=lambda r: (r.effective_at, r.recorded_at), reverse=True)
        changed = self.model.set_rows(rows)
        self.count.setText(
            f"{len(rows)} entries, newest first (by the time they happened; "
            "“Recorded” says when and by whom they were charted)."
        )
        if changed:
            self.view.scrollToTop()
        self._selection(QItemSelection(), QItemSelection())

    def select_event(self, event_id: str) -> bool:
        """Select the row of ``event_id`` (for tests and links)."""
        src = self.model.row_of(event_id)
        if src < 0:
            return False
        idx = self.proxy.mapFromSource(self.model.index(src, 0))
        if not idx.isValid():
            return False
        self.view.selectRow(idx.row())
        return True

    def correct(self, action: str) -> None:
        """Void or amend the selected entry."""
        if self.pid is None:
            return
        eid = self.selected_event_id()
        if eid is None:
            return
        row = self.model.row_at(self.model.row_of(eid))
        if row is None or not row.correctable:
            return
        event = next(e for e in self.controller.record(self.pid).events if e.id == eid)
        self.run_dialog(
            dialogs.CorrectionDialog(
                self.controller, self.pid, event, self.initials(), self, action=action
            )
        )

    def add_note(self) -> None:
        """A free-text note."""
        if self.pid is not None:
            self.run_dialog(dialogs.NoteDialog(self.controller, self.pid, self.initials(), self))


__all__ = ["Qt", "TimelineTab"]

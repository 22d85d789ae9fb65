"""Patient workspace tabs: shared base class and small shared widgets."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.protocol import DiscrepancyArea, Protocol, Text
from bedside.common.errors import BedsideError
from bedside.reports.wording import sources_tooltip, split_sources
from ui.controller import WardController
from ui.forms import input_state, label, repolish

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class PatientTab(QWidget):
    """A tab about one patient; refreshed after each save and on each tick."""

    title = ""

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
        self.setAccessibleName(self.title or type(self).__name__)

    def set_patient(self, pid: str | None) -> None:
        """Show ``pid`` (forms are reset)."""
        self.pid = pid
        self.reset()
        self.refresh()
        self.mark_clean()

    # ------------------------------------------------------------------ typed data

    def _inputs(self, within: QWidget | None = None) -> list[QWidget]:
        root = within or self
        return [w for w in root.findChildren(QWidget) if input_state(w) is not None]

    def mark_clean(self, within: QWidget | None = None) -> None:
        """Take what the inputs show now (all, or those in ``within``) as nothing typed."""
        baseline = dict(getattr(self, "_baseline", {}))
        for w in self._inputs(within):
            baseline[w] = input_state(w)
        self._baseline = baseline

    def has_typed(self) -> bool:
        """Whether a nurse typed or chose something here that is not saved."""
        baseline = getattr(self, "_baseline", None)
        if baseline is None:
            return False
        return any(baseline.get(w, input_state(w)) != input_state(w) for w in self._inputs())

    def reset(self) -> None:
        """Clear forms for a new patient (subclasses)."""

    def refresh(self) -> None:
        """Redraw from the controller's current state (subclasses)."""

    def on_tick(self) -> None:
        """Cheap per-second update of time-dependent text (subclasses)."""

    ITEM_WIDGETS: ClassVar[dict[str, str]] = {}
    """Due-item kind → attribute naming the part of the tab that answers it (for F8)."""

    def show_item(self, kind: str) -> QWidget | None:
        """Scroll so the part answering ``kind`` starts at the top; returns its first field."""
        name = self.ITEM_WIDGETS.get(kind)
        target = getattr(self, name, None) if name else None
        if not isinstance(target, QWidget):
            return None
        area = _scroll_area_of(target)
        content = area.widget() if area is not None else None
        if area is not None and content is not None:

            def scroll() -> None:
                for w in (self, content):
                    lay = w.layout()
                    if lay is not None:
                        lay.activate()
                top = target.mapTo(content, QPoint(0, 0)).y()
                area.verticalScrollBar().setValue(max(top - 6, 0))

            scroll()
            # Again once the new width has rearranged the columns (tied to the tab: cancelled
            # if it closes first).
            QTimer.singleShot(0, self, scroll)
        focusable = [
            w
            for w in target.findChildren(QWidget)
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isEnabled()
        ]
        return focusable[0] if focusable else target

    def run_dialog(self, dialog: QDialog) -> bool:
        """Run a dialog through the one choke point."""
        from ui import dialogs

        return dialogs.exec_dialog(dialog)

    def report(self, exc: BedsideError) -> None:
        """Show a core error that has no field to sit next to."""
        from ui import dialogs

        dialogs.show_core_error(self, exc)


def _scroll_area_of(widget: QWidget) -> QScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def footer(banner_widget: QWidget, *widgets: QWidget) -> QFrame:
    """An always-visible strip under a tab: the live result and the record button."""
    frame = QFrame()
    frame.setProperty("card", True)
    lay = QHBoxLayout(frame)
    lay.setContentsMargins(6, 4, 6, 4)
    lay.addWidget(banner_widget, 1)
    for w in widgets:
        lay.addWidget(w)
    return frame


def scrolling(content: QWidget) -> QScrollArea:
    """Wrap ``content`` so it scrolls at large scaling factors."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(content)
    return area


def table_view(accessible: str, *, stretch_last: bool = True) -> QTableView:
    """A read-only, row-selecting table view with large rows."""
    return configure_table(QTableView(), accessible, stretch_last=stretch_last)


def configure_table(view: QTableView, accessible: str, *, stretch_last: bool = True) -> QTableView:
    """Make ``view`` read-only, row-selecting, with large rows and an accessible name."""
    view.setAccessibleName(accessible)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(True)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(34)
    view.horizontalHeader().setStretchLastSection(stretch_last)
    view.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
    view.setTabKeyNavigation(False)
    view.setCornerButtonEnabled(False)
    return view


def resize_columns(view: QTableView, widths: list[int]) -> None:
    """Set initial column widths (interactive afterwards)."""
    header = view.horizontalHeader()
    for i, w in enumerate(widths):
        header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(i, w)


class GuidanceBox(QGroupBox):
    """Management guidance for a grade, from the protocol, with its source and status."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setAccessibleName(title)
        lay = QVBoxLayout(self)
        self.status = label("")
        self.status.setAccessibleName(f"{title} status")
        self.text = label("")
        self.text.setAccessibleName(f"{title} text")
        self.source = label("", "hint")
        self.discrepancies = label("", "hint")
        for w in (self.status, self.text, self.source, self.discrepancies):
            lay.addWidget(w)

    def show_guidance(self, protocol: Protocol, entry: Text | None, grade: int, what: str) -> None:
        """Show the protocol's guidance for ``grade`` (nothing to do at grade 0)."""
        self.setTitle(f"{what} management — grade {grade} ({protocol.label})")
        if entry is None:
            self.status.setText("")
            self.text.setText(
                f"No {what} treatment for grade 0. Keep monitoring as scheduled."
                if grade == 0
                else f"No guidance for grade {grade} in this protocol: ask the doctor."
            )
            self.source.setText("")
            self.discrepancies.setText("")
            return
        if entry.verified:
            self.status.setText("Rule status: verified against its source")
            self.status.setProperty("role", "hint")
        else:
            self.status.setText(
                "⚠ UNVERIFIED RULE — not yet checked against its source; confirm with the "
                "doctor or pharmacist before acting on it."
            )
            self.status.setProperty("role", "error")
        repolish(self.status)
        self.text.setText(entry.text)
        sources = [s.strip() for s in entry.source.split(",")]
        titles = [protocol.sources.get(s, "") or "local ward policy" for s in sources]
        self.source.setText("Source: " + "; ".join(dict.fromkeys(titles)))
        self.source.setToolTip("Protocol source keys: " + ", ".join(sources))
        if entry.discrepancies:
            lines = protocol.discrepancy_lines(ids=entry.discrepancies)
            set_sourced(self.discrepancies, "\n".join(lines), protocol)
        else:
            self.discrepancies.setText("")
            self.discrepancies.setToolTip("")


def clean_after_save(*within: str) -> Callable[[F], F]:
    """Decorate a tab's save method: when it saved, its inputs count as nothing typed.

    ``within`` names the attributes of the boxes the method saves (other boxes of the tab
    keep what was typed in them); none named takes the whole tab.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: PatientTab, *args: Any, **kwargs: Any) -> Any:
            before = self.controller.saves
            result = fn(self, *args, **kwargs)
            if self.controller.saves != before:
                if not within:
                    self.mark_clean()
                for name in within:
                    box = getattr(self, name, None)
                    if isinstance(box, QWidget):
                        self.mark_clean(box)
            return result

        return cast(F, wrapper)

    return deco


class DiscrepancyNotes(QLabel):
    """The seed-versus-current discrepancies of the rules a screen uses (protocol data)."""

    def __init__(self, *areas: DiscrepancyArea, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.areas = areas
        self.setWordWrap(True)
        self.setProperty("role", "hint")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setAccessibleName("Discrepancy notes")

    def show_for(self, protocol: Protocol) -> None:
        """Show the protocol's notes for this screen's areas (hidden when there are none)."""
        lines = protocol.discrepancy_lines(*self.areas)
        set_sourced(self, "\n".join(f"⚠ {line}" for line in lines), protocol)
        self.setVisible(bool(lines))


def set_sourced(widget: QLabel, text: str, protocol: Protocol) -> None:
    """Show ``text`` without its citation keys; the sources go to the tooltip (one hover away)."""
    shown, keys = split_sources(text)
    widget.setText(shown)
    widget.setToolTip(sources_tooltip(keys, protocol.sources))


class Columns(QWidget):
    """Two columns side by side when there is room, one column when narrow.

    Keeps the patient tabs usable at 125–200 % scaling and next to the timers panel:
    when the two columns' minimum widths do not fit, they are stacked (in ``single``
    order when given, so the most important boxes stay on top).
    """

    def __init__(
        self,
        left: list[QWidget],
        right: list[QWidget],
        bottom: list[QWidget] | None = None,
        *,
        single: list[QWidget] | None = None,
        breakpoint: int = 760,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._left = left
        self._right = right
        self._bottom = bottom or []
        self._single = single or [*left, *right]
        self._breakpoint = breakpoint
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(4, 4, 4, 4)
        self._two: bool | None = None
        self._arrange(two=True)

    @property
    def two_columns(self) -> bool:
        """Whether the columns are side by side."""
        return bool(self._two)

    def two_column_width(self) -> int:
        """The width needed to show both columns without clipping."""
        left = max((w.minimumSizeHint().width() for w in self._left), default=0)
        right = max((w.minimumSizeHint().width() for w in self._right), default=0)
        return max(self._breakpoint, left + right + 3 * self._grid.spacing() + 8)

    def _arrange(self, *, two: bool) -> None:
        if two == self._two:
            return
        self._two = two
        while self._grid.count():
            self._grid.takeAt(0)
        row = 0
        if two:
            for i, w in enumerate(self._left):
                self._grid.addWidget(w, i, 0)
            for i, w in enumerate(self._right):
                self._grid.addWidget(w, i, 1)
            row = max(len(self._left), len(self._right))
            self._grid.setColumnStretch(0, 1)
            self._grid.setColumnStretch(1, 1)
        else:
            for w in self._single:
                self._grid.addWidget(w, row, 0, 1, 2)
                row += 1
            self._grid.setColumnStretch(0, 1)
            self._grid.setColumnStretch(1, 0)
        for w in self._bottom:
            self._grid.addWidget(w, row, 0, 1, 2)
            row += 1
        for r in range(self._grid.rowCount()):
            self._grid.setRowStretch(r, 0)
        self._grid.setRowStretch(row, 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Switch between one and two columns."""
        self._arrange(two=event.size().width() >= self.two_column_width())
        super().resizeEvent(event)

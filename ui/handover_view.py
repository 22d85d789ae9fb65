"""The Handover tab: the SBAR handover and the episode summary, with "Print to PDF…".

Shows :func:`bedside.handover.render_html` for one patient (``pid``) or the whole ward
(``pid=None``) in a read-only text browser, recomputed for the clock's current time on
:meth:`HandoverView.refresh` (the main window calls it when the tab is shown or a record
is saved). "Print to PDF…" asks for a file (through
:func:`ui.transfer_actions.ask_save_path`, which tests monkeypatch) and writes the same
document with :func:`ui.printing.write_pdf`: A4, the patient on every page, page numbers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from bedside.clock import Clock
from bedside.errors import BedsideError
from bedside.handover import HandoverDoc, build_handover, render_html
from ui import printing, transfer_actions

logger = logging.getLogger(__name__)


class HandoverView(QWidget):
    """The handover of one patient or the ward, on screen and as a PDF."""

    def __init__(
        self, ward: Any, clock: Clock, pid: str | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ward = ward
        self.clock = clock
        self.pid = pid
        self.doc: HandoverDoc | None = None
        self.html = ""
        self.setObjectName("handoverView")
        self.setAccessibleName("Handover")

        self.title = QLabel(self)
        self.title.setObjectName("handoverTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.refresh_button = QPushButton("&Refresh", self)
        self.refresh_button.setAccessibleName("Refresh handover")
        self.refresh_button.setToolTip("Recompute the handover for the current time")
        self.print_button = QPushButton("&Print to PDF…", self)
        self.print_button.setAccessibleName("Print handover to PDF")
        self.print_button.setToolTip("Write this handover as an A4 PDF")
        self.status = QLabel(self)
        self.status.setObjectName("handoverStatus")
        self.status.setWordWrap(True)
        self.browser = QTextBrowser(self)
        self.browser.setAccessibleName("Handover document")
        self.browser.setOpenLinks(False)

        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.print_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.browser, 1)

        self.refresh_button.clicked.connect(self.refresh)
        self.print_button.clicked.connect(self.print_to_pdf)
        self.refresh()

    # ------------------------------------------------------------------ state

    def set_patient(self, pid: str | None) -> None:
        """Show one patient (or the whole ward with ``None``)."""
        self.pid = pid
        self.refresh()

    def refresh(self) -> None:
        """Recompute the handover for the clock's current time."""
        now = self.clock.now()
        try:
            self.doc = build_handover(self.ward, now, self.pid)
        except BedsideError as exc:
            self.doc = None
            self.html = ""
            self.browser.setPlainText(f"The handover could not be computed: {exc}")
            self.title.setText("Handover")
            self.print_button.setEnabled(False)
            return
        self.html = render_html(self.doc)
        scroll = self.browser.verticalScrollBar().value()
        self.browser.setHtml(self.html)
        self.browser.verticalScrollBar().setValue(scroll)
        if self.pid is None:
            self.title.setText(f"Ward handover — {len(self.doc.patients)} patient(s)")
        else:
            self.title.setText(f"Handover — {self.doc.patients[0].patient.name}")
        self.print_button.setEnabled(True)
        if self.doc.failures:
            self.status.setText(
                f"WARNING: {len(self.doc.failures)} patient(s) could not be included — see the "
                "top of the handover."
            )
        else:
            self.status.setText("")

    def default_file_name(self) -> str:
        """A suggested PDF name (no patient name in it)."""
        stamp = self.clock.now().strftime("%Y%m%d-%H%M")
        who = self.pid or "ward"
        return f"handover-{who}-{stamp}.pdf"

    def print_to_pdf(self) -> Path | None:
        """Ask for a file and write the handover as a PDF; return the path written."""
        self.refresh()
        if self.doc is None:
            return None
        out = transfer_actions.ask_save_path(
            self, "Print handover to PDF", self.default_file_name(), "PDF (*.pdf)"
        )
        if out is None:
            return None
        if out.suffix.lower() != ".pdf":
            out = out.with_suffix(".pdf")
        try:
            pages = printing.write_pdf(self.html, out)
            if os.name == "posix":
                os.chmod(out, 0o600)  # patient data: readable by this user only
        except OSError as exc:
            logger.warning("handover PDF could not be written: %s", type(exc).__name__)
            self.status.setText(f"The PDF was NOT written: {exc}")
            return None
        self.status.setText(f"PDF written: {out} ({pages} page(s)).")
        return out


__all__ = ["HandoverView"]

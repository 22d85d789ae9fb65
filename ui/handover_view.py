"""The Handover tab: the SBAR handover, with "Print…" (print dialog) and "Print to PDF…".

Shows :func:`bedside.reports.handover.render_html` for one patient (``pid``) or the whole ward
(``pid=None``) in a read-only text browser, recomputed for the clock's current time on
:meth:`HandoverView.refresh` (the main window calls it when the tab is shown or a record
is saved). "Print to PDF…" asks for a file (through
:func:`ui.transfer_actions.ask_save_path`, which tests monkeypatch) and writes the same
document with :func:`ui.printing.write_pdf`: A4, the patient on every page, page numbers.
"Print…" opens the system print dialog (:func:`choose_printer`, which tests monkeypatch)
and prints the same pages with :func:`ui.printing.print_document`. "Appendix" adds the
optional last page: protocol keys, rule paths and the registry summary.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from bedside.common.clock import Clock
from bedside.common.errors import BedsideError
from bedside.common.timeutil import local_zone
from bedside.reports.handover import HandoverDoc, build_handover, render_html
from ui import printing, theme, transfer_actions

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
        self.appendix = QCheckBox("&Appendix", self)
        self.appendix.setAccessibleName("Include the appendix")
        self.appendix.setToolTip(
            "Add a last page with protocol keys, rule paths and the registry summary "
            "(for pharmacists and audit; not needed at the bedside)"
        )
        self.direct_button = QPushButton("Pr&int…", self)
        self.direct_button.setAccessibleName("Print handover")
        self.direct_button.setToolTip("Print this handover on a printer (print dialog)")
        self.print_button = QPushButton("&Print to PDF…", self)
        self.print_button.setAccessibleName("Print handover to PDF")
        self.print_button.setToolTip("Write this handover as an A4 PDF file")
        self.status = QLabel(self)
        self.status.setObjectName("handoverStatus")
        self.status.setWordWrap(True)
        self.browser = QTextBrowser(self)
        self.browser.setAccessibleName("Handover document")
        self.browser.setOpenLinks(False)

        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.appendix)
        bar.addWidget(self.direct_button)
        bar.addWidget(self.print_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.browser, 1)

        self.refresh_button.clicked.connect(self.refresh)
        self.print_button.clicked.connect(self.print_to_pdf)
        self.direct_button.clicked.connect(self.print_direct)
        self.appendix.toggled.connect(lambda _on: self.refresh())
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
            self.direct_button.setEnabled(False)
            return
        self.html = render_html(self.doc, appendix=self.appendix.isChecked())
        scroll = self.browser.verticalScrollBar().value()
        self.browser.setHtml(screen_html(self.html))
        self.browser.verticalScrollBar().setValue(scroll)
        if self.pid is None:
            self.title.setText(f"Ward handover — {len(self.doc.patients)} patient(s)")
        else:
            self.title.setText(f"Handover — {self.doc.patients[0].patient.name}")
        self.print_button.setEnabled(True)
        self.direct_button.setEnabled(True)
        if self.doc.failures:
            self.status.setText(
                f"WARNING: {len(self.doc.failures)} patient(s) could not be included — see the "
                "top of the handover."
            )
        else:
            self.status.setText("")

    def default_file_name(self) -> str:
        """A suggested PDF name (no patient name in it), stamped in local time."""
        stamp = self.clock.now().astimezone(local_zone()).strftime("%Y%m%d-%H%M")
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

    def print_direct(self) -> int:
        """Choose a printer in the print dialog and print; return the pages sent (0: none)."""
        self.refresh()
        if self.doc is None:
            return 0
        printer = choose_printer(self)
        if printer is None:
            self.status.setText("Printing cancelled: nothing was printed.")
            return 0
        try:
            pages = printing.print_document(self.html, printer)
        except OSError as exc:
            logger.warning("handover could not be printed: %s", type(exc).__name__)
            self.status.setText(f"NOT printed: {exc}. Check the printer, or print to PDF.")
            return 0
        self.status.setText(f"Sent to the printer: {pages} page(s).")
        return pages


_NIGHT_HTML = (
    ("color: #000", "color: #c9d1d9"),
    ("border-color: #000", "border-color: #56616d"),
    ("border: 1px solid #000", "border: 1px solid #56616d"),
    ("background-color: #e6e6e6", "background-color: #262b31"),
)


def screen_html(text: str) -> str:
    """The handover as shown on screen: in night colours under View ▸ Night (paper: unchanged)."""
    if theme.current() != "night":
        return text
    for day, night in _NIGHT_HTML:
        text = text.replace(day, night)
    return text


def choose_printer(parent: QWidget) -> Any:
    """The system print dialog; the chosen ``QPrinter``, or None when cancelled."""
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setDocName("Bedside handover")
    dialog = QPrintDialog(printer, parent)
    dialog.setWindowTitle("Print handover")
    if dialog.exec() != QPrintDialog.DialogCode.Accepted:
        return None
    return printer


__all__ = ["HandoverView"]

"""Print Bedside HTML documents (the handover) to PDF or a printer: running header, page numbers.

The HTML comes from :func:`bedside.reports.handover.render_html`. It is split at the section
markers (``<!--BEDSIDE-SECTION:{json}-->``): each section starts on a new page and its
``header`` (the patient's bed, name, MRN and date of birth) is printed at the top of
every one of its pages; the ``footer`` (what, when, protocol) and ``Page n of N`` at the
bottom of every page. Each section is laid out by its own ``QTextDocument`` whose paint
device is the PDF writer (or the printer), so point sizes are true point sizes on paper. A
section marked ``fit`` (one patient) is printed slightly smaller when it would run onto a
second page. :func:`print_document` paints the same pages on a ``QPrinter`` (print dialog).

:func:`write_pdf_offscreen` is the PDF writer the application's entry point (``ui.app``)
gives the core's ``handover`` command: ``bedside handover --out FILE.pdf``, or
``python -m ui handover ...`` from source. The core itself never imports Qt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMarginsF, QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QPen,
    QTextDocument,
)

if TYPE_CHECKING:  # QtPrintSupport is loaded only when the print dialog is used
    from PySide6.QtPrintSupport import QPrinter

logger = logging.getLogger(__name__)

RESOLUTION_DPI = 300
MARGINS_MM = QMarginsF(15, 12, 15, 12)
HEADER_PT = 10
FOOTER_PT = 9
_MARK_RE = re.compile(r"<!--BEDSIDE-SECTION:(\{.*?\})-->", re.S)
_STYLE_RE = re.compile(r"<style>(.*?)</style>", re.S | re.I)
_BODY_END_RE = re.compile(r"</body>\s*</html>\s*$", re.S | re.I)
_BREAK = ' style="page-break-before: always"'


FIT_SCALES: tuple[float, ...] = (1.0, 0.94, 0.88, 0.82)
"""Scales tried, in order, to fit a ``fit`` section on one page (8.5 pt type stays >= 7 pt)."""


@dataclass(frozen=True)
class PrintSection:
    """One part of the printout: its running header/footer and its HTML.

    ``fit``: the section should fill one page (a patient's page): when it runs over, it
    is printed slightly smaller (down to ``FIT_SCALES[-1]``) rather than on two pages.
    """

    header: str
    footer: str
    html: str
    fit: bool = False


def split_sections(html_text: str, default_header: str = "Bedside") -> list[PrintSection]:
    """Split a document at its section markers (a document without markers is one section)."""
    style = _STYLE_RE.search(html_text)
    css = style.group(1) if style else ""
    head = f'<html><head><meta charset="utf-8"/><style>{css}</style></head><body>'
    marks = list(_MARK_RE.finditer(html_text))
    if not marks:
        return [PrintSection(default_header, "", html_text)]
    sections = []
    for i, m in enumerate(marks):
        meta = json.loads(m.group(1))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(html_text)
        body = _BODY_END_RE.sub("", html_text[m.end() : end]).replace(_BREAK, "", 1)
        sections.append(
            PrintSection(
                str(meta.get("header", default_header)),
                str(meta.get("footer", "")),
                head + body + "</body></html>",
                bool(meta.get("fit", False)),
            )
        )
    return sections


def _font(pt: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setStyleHint(QFont.StyleHint.SansSerif)
    font.setPointSizeF(pt)
    font.setBold(bold)
    return font


def _elide(metrics: QFontMetricsF, text: str, width: float) -> str:
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)


def _layout(
    sec: PrintSection, device: QPdfWriter | QPrinter, body: QSizeF
) -> tuple[QTextDocument, float]:
    """The section laid out for ``body``; a ``fit`` section at the largest scale that fits."""
    scales = FIT_SCALES if sec.fit else (1.0,)
    doc = QTextDocument()
    doc.documentLayout().setPaintDevice(device)
    doc.setDefaultFont(_font(12))
    doc.setDocumentMargin(0)
    doc.setHtml(sec.html)
    for scale in scales:
        doc.setPageSize(QSizeF(body.width() / scale, body.height() / scale))
        if doc.pageCount() <= 1:
            return doc, scale
    return doc, scales[-1]


def paint_document(html_text: str, device: QPdfWriter | QPrinter) -> int:
    """Paint the sections of ``html_text`` on ``device`` (a PDF writer or a printer).

    Returns the page count. Raises ``OSError`` when the device cannot be painted on.
    """
    sections = split_sections(html_text)
    area = device.pageLayout().paintRectPixels(device.resolution())
    width, height = float(area.width()), float(area.height())
    head_font, foot_font = _font(HEADER_PT, bold=True), _font(FOOTER_PT)
    head_m, foot_m = QFontMetricsF(head_font, device), QFontMetricsF(foot_font, device)
    gap = device.resolution() * 3 / 25.4  # 3 mm between the running lines and the body
    head_h = head_m.height() + gap
    foot_h = foot_m.height() + gap
    body = QSizeF(width, height - head_h - foot_h)
    docs = [(sec, *_layout(sec, device, body)) for sec in sections]
    total = sum(doc.pageCount() for _, doc, _ in docs)

    painter = QPainter()
    if not painter.begin(device):
        raise OSError("cannot paint the document (printer or file not available)")
    try:
        number = 0
        pen = QPen(Qt.GlobalColor.black)
        pen.setWidthF(device.resolution() / 150)
        for sec, doc, scale in docs:
            page_h = body.height() / scale
            for page in range(doc.pageCount()):
                if number:
                    device.newPage()
                number += 1
                painter.setPen(pen)
                painter.setFont(head_font)
                painter.drawText(
                    QRectF(0, 0, width, head_m.height()),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    _elide(head_m, sec.header, width),
                )
                line_y = head_m.height() + gap / 3
                painter.drawLine(QPointF(0, line_y), QPointF(width, line_y))
                painter.save()
                painter.translate(0, head_h)
                painter.scale(scale, scale)
                painter.translate(0, -page * page_h)
                doc.drawContents(painter, QRectF(0, page * page_h, width / scale, page_h))
                painter.restore()
                painter.setPen(pen)
                painter.setFont(foot_font)
                foot_y = height - foot_m.height()
                painter.drawLine(QPointF(0, foot_y - gap / 3), QPointF(width, foot_y - gap / 3))
                page_txt = f"Page {number} of {total}"
                page_w = foot_m.horizontalAdvance(page_txt)
                painter.drawText(
                    QRectF(0, foot_y, width - page_w - gap, foot_m.height()),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    _elide(foot_m, sec.footer, width - page_w - gap),
                )
                painter.drawText(
                    QRectF(0, foot_y, width, foot_m.height()),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    page_txt,
                )
    finally:
        painter.end()
    return total


def write_pdf(html_text: str, out: Path, *, title: str = "Bedside handover") -> int:
    """Render ``html_text`` to an A4 PDF at ``out`` (written atomically); return the page count.

    Needs a ``QGuiApplication``. Raises ``OSError`` when the file cannot be written.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer = QPdfWriter(str(tmp))
    try:
        writer.setResolution(RESOLUTION_DPI)
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Portrait,
                MARGINS_MM,
                QPageLayout.Unit.Millimeter,
            )
        )
        writer.setTitle(title)
        writer.setCreator("Bedside")
        try:
            total = paint_document(html_text, writer)
        except OSError:
            raise OSError(f"cannot write the PDF {out.name}") from None
    finally:
        del writer
    try:
        os.replace(tmp, out)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("PDF written: %d page(s)", total)
    return total


def print_document(html_text: str, printer: QPrinter) -> int:
    """Print ``html_text`` on a printer chosen in the print dialog; return the page count."""
    printer.setPageMargins(MARGINS_MM, QPageLayout.Unit.Millimeter)
    total = paint_document(html_text, printer)
    logger.info("handover printed: %d page(s)", total)
    return total


def write_pdf_offscreen(html_text: str, out: Path) -> int:
    """:func:`write_pdf` from a command line: a ``QGuiApplication`` is made when there is none
    (offscreen unless ``QT_QPA_PLATFORM`` says otherwise); return the page count.

    Raises ``OSError`` when the file cannot be written.
    """
    app = QGuiApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication([sys.argv[0] if sys.argv else "bedside"])
    try:
        return write_pdf(html_text, out)
    finally:
        del app

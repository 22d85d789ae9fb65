"""The handover as a PDF (Qt printing), the Handover view, and the File-menu export/import flows."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from bedside.common.clock import FakeClock
from bedside.reports.handover import budget_text, build_handover, render_html
from bedside.tools.demo import write_demo_ward
from bedside.ward.service import Ward, open_ward
from ui import printing, transfer_actions
from ui.handover_view import HandoverView

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)
POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdftoppm") is not None


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    write_demo_ward(root, FakeClock(NOW))
    return root


@pytest.fixture
def ward(demo_root: Path) -> Iterator[Ward]:
    w = open_ward(demo_root, FakeClock(NOW + timedelta(minutes=30)), read_only=True)
    yield w
    w.close()


def _pdftotext(pdf: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")
def test_ward_pdf_pages_name_patient_budget_and_page_numbers(
    qapp: Any, ward: Ward, tmp_path: Path
) -> None:
    doc = build_handover(ward, ward.clock.now())
    out = tmp_path / "ward.pdf"
    pages = printing.write_pdf(render_html(doc), out)
    assert out.read_bytes().startswith(b"%PDF")
    assert pages > len(doc.patients)
    texts = [t for t in _pdftotext(out) if t.strip()]
    assert len(texts) == pages
    for i, page in enumerate(texts, start=1):
        assert f"Page {i} of {pages}" in page
        assert "CONFIDENTIAL" in page
    whole = _squash(" ".join(texts))
    for ph in doc.patients:
        # the running header names the patient on every one of their pages
        own = [t for t in texts if f"{ph.patient.name} · MRN {ph.patient.mrn}" in t]
        assert own, ph.patient.name
        assert budget_text(ph.budget) in whole, ph.patient.patient_id
    assert "Ward handover" in texts[0] and "Tocilizumab" in texts[0]
    # the first page really has ink on it (rendered, not blank)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(out), str(tmp_path / "p")],
        check=True,
    )
    image = QImage(str(next(tmp_path.glob("p*.png"))))
    dark = sum(
        1
        for y in range(0, image.height(), 3)
        for x in range(0, image.width(), 3)
        if image.pixelColor(x, y).lightness() < 128
    )
    assert dark > 200


def test_split_sections_keeps_style_and_drops_leading_break() -> None:
    html = (
        "<html><head><style>p { font-size: 12pt; }</style></head><body>"
        '<!--BEDSIDE-SECTION:{"header": "A", "footer": "F"}--><div><p>one</p></div>'
        '<!--BEDSIDE-SECTION:{"header": "B \\u002d\\u002d x", "footer": "F"}-->'
        '<div style="page-break-before: always"><p>two</p></div></body></html>'
    )
    sections = printing.split_sections(html)
    assert [s.header for s in sections] == ["A", "B -- x"]
    assert all("font-size: 12pt" in s.html for s in sections)
    assert "page-break-before" not in sections[1].html
    assert "</body></html>" in sections[1].html and sections[1].html.count("</body>") == 1


def test_headless_command_writes_a_patient_pdf(demo_root: Path, tmp_path: Path) -> None:
    """``python -m ui handover``: the application's entry point gives the core its PDF writer
    (the frozen ``bedside handover`` runs the same ``ui.app.main``)."""
    out = tmp_path / "one.pdf"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [
            sys.executable, "-m", "ui", "handover", "--data-dir", str(demo_root),
            "--out", str(out), "--patient", "demo-07",
        ],
        cwd=ROOT, capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "handover of 1 patient(s)" in proc.stdout
    assert out.read_bytes().startswith(b"%PDF")
    assert out.stat().st_mode & 0o777 == 0o600 or os.name != "posix"
    if POPPLER:
        text = _squash(" ".join(_pdftotext(out)))
        assert "DEMO George Papadakis" in text
        assert "history incomplete" in text


def test_app_entry_point_prints_the_ward_in_process(
    qapp: Any, demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No subprocess: the PDF is painted in the process that owns Qt."""
    from ui.app import main

    out = tmp_path / "ward.pdf"
    assert main(["handover", "--data-dir", str(demo_root), "--out", str(out)]) == 0
    assert "handover of 7 patient(s)" in capsys.readouterr().out
    assert out.read_bytes().startswith(b"%PDF")
    assert not list(tmp_path.glob(".ward.pdf.tmp-*"))


def test_view_shows_ward_and_prints(
    qtbot: Any, ward: Ward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = HandoverView(ward, ward.clock, None)
    qtbot.addWidget(view)
    assert view.title.text().startswith("Ward handover — 7 patient(s)")
    shown = view.browser.toPlainText()
    assert "DEMO Carmen Ruiz" in shown and "Episode summary" not in shown
    view.appendix.setChecked(True)  # the optional appendix
    assert "Episode summary (registry fields)" in view.browser.toPlainText()
    target = tmp_path / "printed"
    monkeypatch.setattr(transfer_actions, "ask_save_path", lambda *a: target)
    qtbot.mouseClick(view.print_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "printed.pdf").read_bytes().startswith(b"%PDF")
    assert "PDF written" in view.status.text()
    view.set_patient("demo-04")
    assert view.title.text() == "Handover — DEMO David Chen"
    assert "DEMO Carmen Ruiz" not in view.browser.toPlainText()
    monkeypatch.setattr(transfer_actions, "ask_save_path", lambda *a: None)
    assert view.print_to_pdf() is None  # cancelled: nothing written


def test_file_menu_export_and_import_flows(
    qapp: Any, demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages: list[tuple[str, str]] = []
    monkeypatch.setattr(transfer_actions, "_inform", lambda p, t, x: messages.append((t, x)))
    monkeypatch.setattr(transfer_actions, "_warn", lambda p, t, x: messages.append((t, x)))
    monkeypatch.setattr(transfer_actions, "_error", lambda p, t, x: messages.append((t, x)))
    source = open_ward(demo_root, FakeClock(NOW), read_only=True)
    try:
        monkeypatch.setattr(transfer_actions, "ask_format", lambda p: "json")
        monkeypatch.setattr(transfer_actions, "ask_directory", lambda p, c: tmp_path / "out")
        written = transfer_actions.export_dialog_flow(None, source, None)
        assert len(written) == len(source.records)
        monkeypatch.setattr(transfer_actions, "ask_format", lambda p: "fhir")
        monkeypatch.setattr(transfer_actions, "ask_save_path", lambda *a: tmp_path / "p3.fhir.json")
        assert transfer_actions.export_dialog_flow(None, source, "demo-03") == [
            tmp_path / "p3.fhir.json"
        ]
        monkeypatch.setattr(transfer_actions, "ask_format", lambda p: None)
        assert transfer_actions.export_dialog_flow(None, source, None) == []
    finally:
        source.close()
    app_ward = open_ward(tmp_path / "app", FakeClock(NOW))  # the running app holds the lock
    try:
        files = sorted((tmp_path / "out").glob("*.json"))
        (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
        monkeypatch.setattr(
            transfer_actions, "ask_open_files", lambda *a: [*files, tmp_path / "bad.json"]
        )
        reports = transfer_actions.import_dialog_flow(None, app_ward)
        assert [r.created for r in reports] == [True] * len(files)
        assert sorted(app_ward.records) == sorted(p.stem for p in files)
        title, text = messages[-1]
        assert title.startswith("Import — check") and "bad.json" in text and "refused" in text
        again = transfer_actions.import_dialog_flow(None, app_ward)
        assert not any(r.changed for r in again)
    finally:
        app_ward.close()


@pytest.mark.skipif(not POPPLER, reason="poppler-utils not installed")
def test_demo_ward_fits_one_page_per_patient(qapp: Any, ward: Ward, tmp_path: Path) -> None:
    doc = build_handover(ward, ward.clock.now())
    n = len(doc.patients)
    # The ward table, one page per patient, one page of guidance and discharge advice
    # (issue 13: at most 1 + 7 + 1 for the demo ward), then the optional appendix.
    for appendix in (False, True):
        out = tmp_path / f"ward-{appendix}.pdf"
        pages = printing.write_pdf(render_html(doc, appendix=appendix), out)
        if appendix:  # the optional appendix may run to more than one page
            assert pages >= 1 + n + 2
        else:
            assert pages == 1 + n + 1
        texts = [t for t in _pdftotext(out) if t.strip()]
        assert len(texts) == pages
        for ph, page in zip(doc.patients, texts[1 : 1 + n], strict=True):
            assert ph.patient.name in page and budget_text(ph.budget) in _squash(page)
            assert "Due items and open alerts" in page
        assert "Guidance, discharge and follow-up" in texts[1 + n]
        if appendix:
            assert "Appendix — rules and registry summary" in texts[1 + n + 1]


def test_print_dialog_path_prints_the_same_pages(
    qtbot: Any, ward: Ward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtPrintSupport import QPrinter

    from ui import handover_view

    view = HandoverView(ward, ward.clock, None)
    qtbot.addWidget(view)
    target = tmp_path / "printer.pdf"

    def fake_dialog(parent: Any) -> QPrinter:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(str(target))
        return printer

    monkeypatch.setattr(handover_view, "choose_printer", fake_dialog)
    qtbot.mouseClick(view.direct_button, Qt.MouseButton.LeftButton)
    assert target.read_bytes().startswith(b"%PDF")
    pages = 1 + len(view.doc.patients) + 1  # ward table, patients, guidance and discharge
    assert view.status.text() == f"Sent to the printer: {pages} page(s)."
    monkeypatch.setattr(handover_view, "choose_printer", lambda parent: None)
    assert view.print_direct() == 0
    assert "cancelled" in view.status.text()


def test_file_name_is_stamped_in_local_time(
    qtbot: Any, ward: Ward, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta, timezone

    from ui import handover_view

    zone = timezone(timedelta(hours=10), "AEST")
    monkeypatch.setattr(handover_view, "local_zone", lambda: zone)
    view = HandoverView(ward, ward.clock, "demo-04")
    qtbot.addWidget(view)
    local = ward.clock.now().astimezone(zone)
    assert view.default_file_name() == f"handover-demo-04-{local:%Y%m%d-%H%M}.pdf"

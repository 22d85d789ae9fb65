"""File-menu actions: export patients (FHIR, CSV, patient file) and import a patient file.

The main window wires two actions to :func:`export_dialog_flow` and
:func:`import_dialog_flow`. Every question goes through the small ``ask_*`` functions
and every message through :mod:`ui.dialogs`, so tests monkeypatch them and never open
a real dialog. The work itself is done by :mod:`bedside.reports.export` and
:mod:`bedside.ward.transfer` on the running application's :class:`~bedside.ward.service.Ward`
(which holds the writer lock, so importing from the menu works while the app runs).

After an import the caller must reload its derived state (``WardController.reload()``)
when any returned report has ``changed``.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from bedside.common.errors import BedsideError
from bedside.reports.export import export_patient, export_ward
from bedside.ward.transfer import (
    ImportPlan,
    ImportReport,
    merge_into_ward,
    plan_import,
    read_patient_file,
)

logger = logging.getLogger(__name__)

FORMAT_CHOICES: dict[str, str] = {
    "FHIR R4 bundle for the hospital record (.fhir.json)": "fhir",
    "CSV table for a spreadsheet (.csv, with episode summary)": "csv",
    "Patient file for another Bedside workstation (.json)": "json",
}
SUFFIXES = {"fhir": ".fhir.json", "csv": ".csv", "json": ".json"}
FILTERS = {
    "fhir": "FHIR JSON (*.fhir.json *.json)",
    "csv": "CSV (*.csv)",
    "json": "Bedside patient file (*.json)",
}


# --------------------------------------------------------------------------- questions


def ask_format(parent: QWidget | None) -> str | None:
    """Ask which export format; None when cancelled."""
    labels = list(FORMAT_CHOICES)
    item, ok = QInputDialog.getItem(parent, "Export", "Export as:", labels, 0, False)
    return FORMAT_CHOICES.get(item) if ok else None


def ask_save_path(parent: QWidget | None, caption: str, default: str, filters: str) -> Path | None:
    """Ask for a file to write; None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, caption, default, filters)
    return Path(path) if path else None


def ask_directory(parent: QWidget | None, caption: str) -> Path | None:
    """Ask for a folder; None when cancelled."""
    path = QFileDialog.getExistingDirectory(parent, caption)
    return Path(path) if path else None


def ask_open_files(parent: QWidget | None, caption: str, filters: str) -> list[Path]:
    """Ask for files to read; empty when cancelled."""
    paths, _ = QFileDialog.getOpenFileNames(parent, caption, "", filters)
    return [Path(p) for p in paths]


def import_review_html(source: str, plan: ImportPlan) -> str:
    """What an import would change, for the nurse's review (local doses voided in red)."""
    pid = html.escape(plan.report.patient_id)
    parts = []
    if plan.unbound:
        parts.append(
            f"<p style='color:#b00020'><b>{html.escape(source)} is of the older format: its "
            f"entries are not bound to patient {pid}.</b> Check the name, MRN and date of "
            "birth in the file are this patient's. Nothing has been changed yet.</p>"
        )
    meaning = len(plan.held) - plan.unbound
    if meaning:
        parts.append(
            f"<p><b>{html.escape(source)}</b> would change what {meaning} of this ward's "
            f"entries for patient <b>{pid}</b> mean. Nothing has been changed yet.</p>"
        )
    if plan.voided_doses:
        parts.append(
            "<p style='color:#b00020'><b>LOCAL TOCILIZUMAB DOSES THAT WOULD STOP COUNTING "
            "OR CHANGE:</b></p><ul>"
            + "".join(
                f"<li style='color:#b00020'><b>{html.escape(d)}</b></li>" for d in plan.voided_doses
            )
            + "</ul>"
        )
    parts.append(
        "<p>Changes in the file:</p><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in plan.held)
        + "</ul>"
    )
    parts.append(
        f"<p>{plan.report.added} entr{'y' if plan.report.added == 1 else 'ies'} in all would be "
        "added. Check them with the sending ward before confirming.</p>"
    )
    return "".join(parts)


def ask_import_confirmation(parent: QWidget | None, source: str, plan: ImportPlan) -> str | None:
    """Show what an import would change and ask for the nurse's initials; None = do not import."""
    from PySide6.QtWidgets import (
        QDialog,
        QDialogButtonBox,
        QLabel,
        QTextBrowser,
        QVBoxLayout,
    )

    from ui.forms import InitialsEdit

    dialog = QDialog(parent)
    dialog.setWindowTitle("Import — review changes to this ward's entries")
    layout = QVBoxLayout(dialog)
    view = QTextBrowser()
    view.setHtml(import_review_html(source, plan))
    view.setAccessibleName("Changes the import would make")
    layout.addWidget(view, 1)
    layout.addWidget(QLabel("Your initials to confirm you reviewed these changes:"))
    initials = InitialsEdit("Initials confirming the import")
    layout.addWidget(initials)
    buttons = QDialogButtonBox()
    apply = buttons.addButton("Apply these changes", QDialogButtonBox.ButtonRole.AcceptRole)
    buttons.addButton("Do not import", QDialogButtonBox.ButtonRole.RejectRole)
    apply.setEnabled(False)
    initials.textChanged.connect(lambda text: apply.setEnabled(len(text.strip()) >= 2))
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(640, 480)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return initials.value() or None


def _inform(parent: QWidget | None, title: str, text: str) -> None:
    from ui import dialogs

    dialogs.inform(parent, title, text)


def _warn(parent: QWidget | None, title: str, text: str) -> None:
    from ui import dialogs

    dialogs.warn(parent, title, text)


def _error(parent: QWidget | None, title: str, text: str) -> None:
    from ui import dialogs

    dialogs.show_error(parent, title, text)


# --------------------------------------------------------------------------- flows


def export_dialog_flow(parent: QWidget | None, ward: Any, pid: str | None) -> list[Path]:
    """Export one patient (``pid``) or every patient; return the files written.

    Asks the format, then a file (one patient) or a folder (the ward), writes the
    export and says what was written. Nothing is changed in the ward.
    """
    fmt = ask_format(parent)
    if fmt is None:
        return []
    now = ward.clock.now()
    problems: dict[str, str] = {}
    try:
        if pid is not None:
            out = ask_save_path(parent, "Export patient", f"{pid}{SUFFIXES[fmt]}", FILTERS[fmt])
            if out is None:
                return []
            written = export_patient(ward, pid, fmt, out, now)
        else:
            folder = ask_directory(parent, "Export every patient to folder")
            if folder is None:
                return []
            written = export_ward(ward, fmt, folder, now, problems)
    except (BedsideError, OSError) as exc:
        logger.warning("export failed: %s", type(exc).__name__)
        _error(parent, "Export failed", f"Nothing usable was exported: {exc}")
        return []
    names = "\n".join(str(p) for p in written)
    skipped = ""
    not_exported = {**getattr(ward, "failures", {}), **problems} if pid is None else {}
    if not_exported:
        skipped = (
            f"\n\n{len(not_exported)} patient(s) could not be loaded or exported and were NOT "
            "exported: " + ", ".join(sorted(not_exported))
        )
    _inform(parent, "Export", f"Wrote {len(written)} file(s):\n{names}{skipped}")
    return written


def import_dialog_flow(parent: QWidget | None, ward: Any) -> list[ImportReport]:
    """Import patient files chosen by the user into ``ward``; return the reports.

    Each file is verified first; a refused file changes nothing and is reported. The
    caller reloads its views when any report has ``changed``.
    """
    paths = ask_open_files(parent, "Import patient file", FILTERS["json"])
    if not paths:
        return []
    reports: list[ImportReport] = []
    lines: list[str] = []
    problems = 0
    for path in paths:
        try:
            incoming = read_patient_file(path)
            plan = plan_import(ward, incoming, source=path.name)
            confirmed_by = None
            if plan.needs_confirmation:
                confirmed_by = ask_import_confirmation(parent, path.name, plan)
                if confirmed_by is None:
                    problems += 1
                    lines.append(
                        f"{path.name}: NOT imported — the changes it would make to this ward's "
                        "entries were not confirmed. Nothing was changed."
                    )
                    continue
            report = merge_into_ward(ward, incoming, source=path.name, confirmed_by=confirmed_by)
        except BedsideError as exc:
            problems += 1
            lines.append(f"{path.name}: {exc}")
            continue
        reports.append(report)
        lines.extend(report.lines())
        problems += len(report.conflicts)
    text = "\n".join(lines)
    if problems:
        _warn(parent, "Import — check the report", text)
    else:
        _inform(parent, "Import", text)
    return reports


__all__ = [
    "ask_directory",
    "ask_format",
    "ask_import_confirmation",
    "ask_open_files",
    "ask_save_path",
    "export_dialog_flow",
    "import_dialog_flow",
]

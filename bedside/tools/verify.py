"""``python -m bedside verify``: check every patient file of a data directory, read-only.

For each patient file: strict parse, integrity checksum, schema, every event's
fields, the hash chain (edits, removals, reordering) and that it is bound to the patient
(older-format chains are reported "not yet bound"), unique event ids, that the file
name matches the patient id inside, that each of its backups verifies too, and that
every event each backup holds is still in the file unchanged (a removal or edit whose
chain and checksum were recomputed is found this way). Prints
one line per file; exits 0 when all are sound, 1 when any is not. Never writes,
renames, locks or quarantines anything.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from bedside.clinical.record import (
    Record,
    event_to_json,
    events_lost_since,
    record_binding,
    validate_envelope,
)
from bedside.common.clock import SystemClock
from bedside.store.storage import DataDir, is_data_dir, not_a_data_dir

logger = logging.getLogger(__name__)


def _record_of(store: DataDir, path: Path) -> tuple[bool, str, Record | None]:
    captured: list[Record] = []

    def validate(doc: dict[str, Any]) -> Record:
        rec = validate_envelope(doc)
        captured.append(rec)
        return rec

    ok, message = store.verify_file(path, validate=validate)
    return ok, message, (captured[0] if captured else None)


def _lost_since(older: Record, current: Record, backup_name: str) -> list[str]:
    """Events an older backup holds that the current file lost or changed.

    A file whose chain and checksum were recomputed after an event was removed or edited
    verifies on its own; its backups give it away.
    """
    now = {e.id: event_to_json(e) for e in current.events}
    return events_lost_since([event_to_json(e) for e in older.events], now, backup_name, "the file")


def verify_dir(root: Path) -> tuple[bool, list[str]]:
    """Verify every patient file under ``root``; return (all sound, one line per file)."""
    lines: list[str] = []
    patients_dir = root / "patients"
    if not is_data_dir(root):
        return False, [not_a_data_dir(root)]
    store = DataDir(root, clock=SystemClock(), read_only=True)
    # A replicated ward folder this workstation never opened holds only the others'
    # journals and heartbeats (no patients/ folder): verified all the same.
    files = (
        sorted(
            p for p in patients_dir.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
        )
        if patients_dir.is_dir()
        else []
    )
    all_ok = True
    for path in files:
        ok, message, record = _record_of(store, path)
        problems: list[str] = []
        if not ok:
            problems.append(message)
        elif record is not None and record.patient.patient_id != path.stem:
            problems.append(f"file name does not match patient id {record.patient.patient_id!r}")
        backup_dir = store.backups_dir / path.stem
        backups = sorted(backup_dir.glob("*.json")) if backup_dir.is_dir() else []
        bad_backups: list[str] = []
        for backup in backups:
            ok_b, _msg, older = _record_of(store, backup)
            if not ok_b or older is None:
                bad_backups.append(backup.name)
            elif record is not None:
                problems.extend(_lost_since(older, record, backup.name))
        if bad_backups:
            problems.append(
                f"{len(bad_backups)} backup(s) fail verification: {', '.join(bad_backups[:3])}"
            )
        if problems:
            all_ok = False
            lines.append(f"FAIL {path.name}: " + "; ".join(problems))
        else:
            assert record is not None
            bound = (
                "bound to the patient"
                if record_binding(record) == "bound"
                else "not yet bound (older format; bound when the ward next opens it)"
            )
            lines.append(
                f"OK   {path.name}: {len(record.events)} events, hash chain intact, {bound}, "
                f"{len(backups)} verified backup(s)"
            )
    quarantined = (
        sorted(store.quarantine_dir.glob("*.json")) if store.quarantine_dir.is_dir() else []
    )
    if quarantined:
        lines.append(f"note: {len(quarantined)} quarantined file(s) kept in {store.quarantine_dir}")
    from bedside.store.journal import verify_ward_folder  # issue 15: one journal per workstation

    journals_ok, journal_lines = verify_ward_folder(root)
    all_ok = all_ok and journals_ok
    lines.extend(journal_lines)
    if not files and not journal_lines:
        lines.append(f"{root}: no patient files")
    return all_ok, lines


def main(argv: list[str]) -> int:
    """``python -m bedside verify --data-dir DIR``."""
    from bedside.store.paths import resolve_data_dir

    parser = argparse.ArgumentParser(prog="python -m bedside verify")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    ns = parser.parse_args(argv)
    root = resolve_data_dir(ns.data_dir)
    ok, lines = verify_dir(root)
    for line in lines:
        print(line)  # noqa: T201
    return 0 if ok else 1

"""Bring a patient file from another workstation into this ward (import / transfer).

The file is the patient file itself, as ``python -m bedside export --format json``
writes it (the exact bytes of ``patients/<id>.json``). Before anything is written it is
verified exactly like a stored file: strict JSON (no duplicate keys, NaN, BOM), the
integrity checksum, the schema version, every field of every event, and the hash
chain. A tampered, truncated or malformed file is refused with a message that says
what is wrong and that nothing was changed.

Then:

* **new patient** (id not in this ward): the patient is added; every event keeps its
  id, times, author and content and is sealed into a new local chain with ``origin``
  saying where it came from (an event that already has an origin keeps it);
* **existing patient** (same ``patient_id``): the MRN, name, date of birth and sex
  must match, else the import is refused (wrong patient). Events are merged by id:
  events not yet present are appended (sealed into the local chain, ``origin`` set);
  an event already present with the same content (ignoring ``origin`` and the chain
  hashes) is skipped; the same id with different content is a **conflict**: reported,
  the local event is kept, nothing is overwritten.

Importing the same file twice changes nothing (not even the file bytes: nothing is
saved when there is nothing new). Imported tocilizumab doses are ordinary
administrations in the record, so they count towards every limit; after a merge the
dose history is checked and limit breaches of the merged history are reported.
Needs the writer lock: ``python -m bedside import`` refuses while the application
holds it (import from the application's File menu instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from bedside.doses import dose_budget, tocilizumab_doses
from bedside.errors import (
    BedsideError,
    CorruptDataError,
    InputError,
    LockedError,
    MigrationError,
    SchemaTooNewError,
)
from bedside.record import (
    GENESIS_HASH,
    EventBase,
    Record,
    current_patient,
    effective_events,
    event_to_json,
    new_record,
    seal,
    validate_envelope,
)
from bedside.storage import decode_envelope, patient_hash
from bedside.timeutil import iso_utc

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
ORIGIN_MAX = 200
IDENTITY_FIELDS = ("mrn", "name", "date_of_birth", "sex")
_CHAIN_FIELDS = frozenset({"origin", "prev_hash", "hash"})


class TransferError(InputError):
    """The file was refused; nothing was changed."""


@dataclass(frozen=True)
class Conflict:
    """An event id present here and in the file with different content."""

    event_id: str
    kind: str
    fields: tuple[str, ...]


@dataclass
class ImportReport:
    """What an import did."""

    patient_id: str
    source: str
    origin: str
    created: bool = False
    added: int = 0
    already_present: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the ward's file of this patient was written."""
        return self.created or self.added > 0

    def lines(self) -> list[str]:
        """Human-readable lines for the command line and the UI."""
        what = "new patient added" if self.created else "merged into the existing patient"
        out = [
            f"{self.patient_id}: {what} — {self.added} event(s) added, "
            f"{self.already_present} already present, {len(self.conflicts)} conflict(s)"
        ]
        out.extend(
            f"  CONFLICT event {c.event_id} ({c.kind}): differs in {', '.join(c.fields)} — "
            "the local event was kept, nothing overwritten"
            for c in self.conflicts
        )
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out


# --------------------------------------------------------------------------- reading


def parse_patient_bytes(data: bytes, source: str) -> Record:
    """Verify and parse the bytes of a patient file; raise TransferError when refused.

    Checks, in order: size, strict JSON, ``schema_version``, the integrity checksum,
    migrations to the current schema, then the record schema and hash chain.
    """
    if len(data) > MAX_FILE_BYTES:
        raise TransferError(f"{source}: refused — larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        _, record = decode_envelope(data, source=source, validate=validate_envelope)
    except SchemaTooNewError as exc:
        raise TransferError(f"refused — written by a newer Bedside: {exc}") from None
    except (CorruptDataError, MigrationError) as exc:
        raise TransferError(f"refused — not a valid Bedside patient file: {exc}") from None
    return record


def read_patient_file(path: Path) -> Record:
    """Read and verify a patient file (see :func:`parse_patient_bytes`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TransferError(f"{path.name}: cannot be read ({exc.strerror})") from None
    return parse_patient_bytes(data, path.name)


# --------------------------------------------------------------------------- merging


def event_content(event: EventBase) -> dict[str, Any]:
    """An event's content for comparison: everything but ``origin`` and the chain hashes."""
    return {k: v for k, v in event_to_json(event).items() if k not in _CHAIN_FIELDS}


def _origin_label(incoming: Record, source: str, label: str | None) -> str:
    where = label or source
    text = f"import: {where} (file saved {iso_utc(incoming.saved_at)})"
    return text if len(text) <= ORIGIN_MAX else text[: ORIGIN_MAX - 1] + "…"


def _marked(event: EventBase, origin: str) -> EventBase:
    if event.origin:
        return event
    return event.model_copy(update={"origin": origin})


def _append_all(record: Record, events: list[EventBase], now: datetime) -> Record:
    """``record`` with ``events`` sealed onto the end of its chain (ids must be new)."""
    chain = list(record.events)
    prev = chain[-1].hash if chain else GENESIS_HASH
    for event in events:
        sealed = seal(event, prev)
        chain.append(sealed)  # type: ignore[arg-type]
        prev = sealed.hash
    return new_record(record.patient, chain, now)  # type: ignore[arg-type]


def _identity_mismatch(local: Record, incoming: Record) -> list[str]:
    a, b = current_patient(local), current_patient(incoming)
    return [f for f in IDENTITY_FIELDS if getattr(a, f) != getattr(b, f)]


def _header_differences(local: Record, incoming: Record) -> list[str]:
    a = local.patient.model_dump(mode="json")
    b = incoming.patient.model_dump(mode="json")
    return sorted(k for k in a if k not in IDENTITY_FIELDS and a[k] != b.get(k))


def _dose_warnings(ward: Any, record: Record, now: datetime) -> list[str]:
    protocol = ward.protocol_for(record)
    t = protocol.tocilizumab
    doses = tocilizumab_doses(effective_events(record))
    out: list[str] = []
    if len(doses) > t.max_total.value:
        out.append(
            f"the merged history holds {len(doses)} tocilizumab doses, above the course "
            f"maximum of {t.max_total.value}: review with the medical team"
        )
    gap = timedelta(hours=t.min_interval.value)
    close = [(a, b) for a, b in pairwise(doses) if b.effective_at - a.effective_at < gap]
    if close:
        out.append(
            f"{len(close)} pair(s) of tocilizumab doses less than {t.min_interval.value:g} h "
            "apart in the merged history: check none was charted twice"
        )
    budget = dose_budget(record, protocol, now)
    if not budget.history_complete:
        out.append("the tocilizumab dose history is marked incomplete: confirm prior doses")
    return out


def merge_into_ward(
    ward: Any, incoming: Record, *, source: str, label: str | None = None
) -> ImportReport:
    """Add or merge a verified record into a writable ward (see the module docstring).

    Args:
        ward: A :class:`bedside.service.Ward` holding the writer lock.
        incoming: The verified record from the file.
        source: The file name (for messages and the origin).
        label: Optional description of where the file came from (e.g. "Ward 7B").

    Returns:
        The report.

    Raises:
        TransferError: Refused (identity mismatch, MRN used by another patient, local
            file of this patient unreadable); nothing was changed.
        StorageError: The save failed; nothing was changed.
    """
    pid = incoming.patient.patient_id
    origin = _origin_label(incoming, source, label)
    report = ImportReport(patient_id=pid, source=source, origin=origin)
    now = ward.clock.now()
    if pid in ward.failures:
        raise TransferError(
            f"{pid}: refused — this ward's file of the patient failed to load (quarantined); "
            "restore it from a backup first"
        )
    incoming_mrn = current_patient(incoming).mrn
    for other_pid, rec in ward.records.items():
        if other_pid != pid and current_patient(rec).mrn == incoming_mrn:
            raise TransferError(
                f"{pid}: refused — MRN {incoming_mrn} belongs to patient {other_pid} in this "
                "ward; the same person cannot have two records"
            )
    tolerance = timedelta(minutes=5)
    future = sum(1 for e in incoming.events if e.effective_at > now + tolerance)
    if future:
        report.warnings.append(
            f"{future} event(s) lie in the future by this workstation's clock: check both clocks"
        )

    if pid not in ward.records:
        record = _append_all(
            new_record(incoming.patient, [], now),
            [_marked(e, origin) for e in incoming.events],
            now,
        )
        report.created = True
        report.added = len(incoming.events)
        report.warnings.extend(_dose_warnings(ward, record, now))
        ward.store_record(pid, record, creating=True)
        logger.info("import: new patient %s, %d event(s)", patient_hash(pid), report.added)
        return report

    local = ward.records[pid]
    mismatch = _identity_mismatch(local, incoming)
    if mismatch:
        raise TransferError(
            f"{pid}: refused — same patient id but different {', '.join(mismatch)}: "
            "this may be another person; nothing was changed"
        )
    differs = _header_differences(local, incoming)
    if differs:
        report.warnings.append(
            f"header field(s) {', '.join(differs)} differ from this ward's; this ward's kept "
            "(later changes travel as patient updates)"
        )
    by_id = {e.id: e for e in local.events}
    new_events: list[EventBase] = []
    for event in incoming.events:
        mine = by_id.get(event.id)
        if mine is None:
            new_events.append(_marked(event, origin))
            continue
        a, b = event_content(mine), event_content(event)
        if a == b:
            report.already_present += 1
        else:
            fields = tuple(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)))
            report.conflicts.append(Conflict(event.id, str(getattr(event, "kind", "?")), fields))
    if new_events:
        record = _append_all(local, new_events, now)
        report.added = len(new_events)
        report.warnings.extend(_dose_warnings(ward, record, now))
        ward.store_record(pid, record)
    logger.info(
        "import: merged %s, %d added, %d present, %d conflict(s)",
        patient_hash(pid),
        report.added,
        report.already_present,
        len(report.conflicts),
    )
    return report


def import_file(ward: Any, path: Path, *, label: str | None = None) -> ImportReport:
    """Verify ``path`` and merge it into ``ward`` (see :func:`merge_into_ward`)."""
    path = Path(path)
    incoming = read_patient_file(path)
    return merge_into_ward(ward, incoming, source=path.name, label=label)


# --------------------------------------------------------------------------- command


def main(argv: list[str]) -> int:
    """``python -m bedside import FILE [FILE ...] --data-dir DIR [--origin TEXT]``."""
    from bedside.clock import SystemClock
    from bedside.paths import resolve_data_dir
    from bedside.service import open_ward

    parser = argparse.ArgumentParser(
        prog="python -m bedside import",
        description="Bring patient files (from 'export --format json') into this ward.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="patient file(s) to import")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    parser.add_argument("--origin", help="where the files come from, e.g. 'Ward 7B workstation'")
    ns = parser.parse_args(argv)
    root = resolve_data_dir(ns.data_dir)
    try:
        ward = open_ward(root, SystemClock())
    except LockedError as exc:
        sys.stderr.write(
            f"refused: {exc}.\nClose Bedside on this workstation, or import from the running "
            "application (File > Import patient file…). Nothing was changed.\n"
        )
        return 2
    except BedsideError as exc:
        sys.stderr.write(f"error: cannot open the data directory: {exc}\n")
        return 2
    status = 0
    try:
        for path in ns.files:
            try:
                report = import_file(ward, path, label=ns.origin)
            except BedsideError as exc:
                text = str(exc)
                prefix = "" if text.startswith(path.name) else f"{path.name}: "
                sys.stderr.write(f"{prefix}{text}\n")
                status = 1
                continue
            sys.stdout.write("\n".join(report.lines()) + "\n")
            if report.conflicts:
                status = 1
    finally:
        ward.close()
    return status


__all__ = [
    "Conflict",
    "ImportReport",
    "TransferError",
    "event_content",
    "import_file",
    "merge_into_ward",
    "parse_patient_bytes",
    "read_patient_file",
]

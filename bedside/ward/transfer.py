"""Bring a patient file from another workstation into this ward (import / transfer).

The file is the patient file itself, as ``python -m bedside export --format json``
writes it (the exact bytes of ``patients/<id>.json``). Before anything is written it is
verified exactly like a stored file: strict JSON (no duplicate keys, NaN, BOM), the
integrity checksum, the schema version, every field of every event, and the hash
chain. A tampered, truncated or malformed file is refused with a message that says
what is wrong and that nothing was changed.

The chain must be bound to the patient the file names (issue 12,
:func:`bedside.clinical.record.chain_genesis`; the local patient is matched by that same id): a
chain sealed for another patient — events grafted under a new id — is refused ("these
events belong to a different patient record … nothing was imported"). A file of the
older format (chain from 64 zeros, not bound) is not refused, which would strand a
transfer in progress, but held (:class:`ImportHeld`, ``ImportPlan.unbound``) for a nurse
to check the identity and confirm with initials; the imported events are then sealed
into the local, bound chain.

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

The file is untrusted: only a regular file is read, opened non-blocking, at most
:data:`MAX_FILE_BYTES` (16 MB), nested at most :data:`MAX_DEPTH` (16) levels and holding at
most :data:`MAX_EVENTS` (20,000) events, all checked before the schema validator runs. An
event id that already belongs to another patient of the ward (events grafted from another
record), a possible duplicate patient (normalised MRN, or name + date of birth) and a
merged record that would not be valid (:func:`bedside.clinical.integrity.check_written`: instants
before 2000 or beyond the future tolerance, over-long text, snoozes beyond the cap, a
header invalid with its updates) are refused. Every imported event's ``origin`` names
this import. Events that would change the meaning of this ward's events (voids,
amendments, acknowledgements, snoozes, history confirmations, header changes, restores)
are never applied unattended: :class:`ImportHeld` (``import`` exits 3, nothing changed);
the application shows them (local doses that would be voided in red) and applies them
only with a nurse's initials.

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
import os
import stat
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bedside.clinical.integrity import check_written, duplicate_of
from bedside.clinical.record import (
    INITIALS_RE,
    AlertAck,
    Correction,
    EventBase,
    ForeignChainError,
    HistoryConfirmation,
    Medication,
    PatientUpdate,
    Record,
    chain_genesis,
    current_patient,
    event_to_json,
    new_record,
    normalise_initials,
    record_binding,
    seal,
    validate_envelope,
)
from bedside.clinical.views import project
from bedside.common.errors import (
    BedsideError,
    CorruptDataError,
    InputError,
    LockedError,
    MigrationError,
    SchemaTooNewError,
)
from bedside.common.jsonio import nesting_depth
from bedside.common.timeutil import format_local, iso_utc
from bedside.store.storage import decode_envelope, patient_hash

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest patient file imported (a 30-day record of a busy patient is well under 2 MB)."""
MAX_DEPTH = 16
"""Deepest JSON nesting imported (a patient file nests 6 levels at most)."""
MAX_EVENTS = 20_000
"""Most events in one imported file (30 days of 15-minute vitals are under 3,000)."""
ORIGIN_MAX = 200
IDENTITY_FIELDS = ("mrn", "name", "date_of_birth", "sex")
_CHAIN_FIELDS = frozenset({"origin", "prev_hash", "hash"})


HELD_STATUS = 3
"""Exit status of ``import`` when a file was held for review (nothing changed)."""


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


def _bounded_validator(doc: dict[str, Any]) -> Record:
    """Count the events before the schema validator walks them (bounded work)."""
    events = doc.get("events")
    if isinstance(events, list) and len(events) > MAX_EVENTS:
        raise TransferError(f"more than {MAX_EVENTS} events")
    return validate_envelope(doc)


def parse_patient_bytes(data: bytes, source: str) -> Record:
    """Verify and parse the bytes of a patient file; raise TransferError when refused.

    Checks, in order: size and nesting depth (before any parser runs), strict JSON,
    ``schema_version``, the integrity checksum, migrations to the current schema, the
    number of events, then the record schema and hash chain.
    """
    if len(data) > MAX_FILE_BYTES:
        raise TransferError(f"{source}: refused — larger than {MAX_FILE_BYTES // 2**20} MB")
    if nesting_depth(data, stop_above=MAX_DEPTH) > MAX_DEPTH:
        raise TransferError(
            f"{source}: refused — nested more than {MAX_DEPTH} levels deep; "
            "not a Bedside patient file"
        )
    try:
        _, record = decode_envelope(data, source=source, validate=_bounded_validator)
    except SchemaTooNewError as exc:
        raise TransferError(f"refused — written by a newer Bedside: {exc}") from None
    except (CorruptDataError, MigrationError) as exc:
        if isinstance(exc.__cause__, ForeignChainError):
            raise TransferError(
                f"{source}: refused — these events belong to a different patient record "
                "(their hash chain was sealed for another patient than the one the file "
                "names); nothing was imported."
            ) from None
        raise TransferError(f"refused — not a valid Bedside patient file: {exc}") from None
    return record


def read_untrusted_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read at most ``limit`` bytes of a regular file, never blocking.

    The file is opened non-blocking (a FIFO or device never hangs the caller, and the
    writer lock is never held waiting) and checked with ``fstat`` before a byte is read:
    only a regular file no larger than ``limit`` is read, and never more than ``limit``
    bytes even if it grows meanwhile.

    Raises:
        TransferError: Not a regular file, too large or unreadable (nothing was read).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise TransferError(f"{path.name}: refused — not a regular file")
        fd = os.open(path, flags)
    except OSError as exc:
        raise TransferError(f"{path.name}: cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TransferError(f"{path.name}: refused — not a regular file")
        if st.st_size > limit:
            raise TransferError(f"{path.name}: refused — larger than {limit // 2**20} MB")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise TransferError(f"{path.name}: refused — larger than {limit // 2**20} MB")
    except OSError as exc:
        raise TransferError(f"{path.name}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_patient_file(path: Path) -> Record:
    """Read and verify a patient file (:func:`read_untrusted_file`, :func:`parse_patient_bytes`)."""
    path = Path(path)
    return parse_patient_bytes(read_untrusted_file(path), path.name)


# --------------------------------------------------------------------------- merging


def event_content(event: EventBase) -> dict[str, Any]:
    """An event's content for comparison: everything but ``origin`` and the chain hashes."""
    return {k: v for k, v in event_to_json(event).items() if k not in _CHAIN_FIELDS}


def _origin_label(incoming: Record, source: str, label: str | None) -> str:
    where = label or source
    text = f"import: {where} (file saved {iso_utc(incoming.saved_at)})"
    return text if len(text) <= ORIGIN_MAX else text[: ORIGIN_MAX - 1] + "…"


def _marked(event: EventBase, origin: str) -> EventBase:
    """The event with this import as its origin (an earlier origin is kept after it)."""
    text = f"{origin}; earlier: {event.origin}" if event.origin else origin
    if len(text) > ORIGIN_MAX:
        text = text[: ORIGIN_MAX - 1] + "…"
    return event.model_copy(update={"origin": text})


def _append_all(record: Record, events: list[EventBase], now: datetime) -> Record:
    """``record`` with ``events`` sealed onto the end of its chain (ids must be new)."""
    chain = list(record.events)
    prev = chain[-1].hash if chain else chain_genesis(record.patient.patient_id)
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
    projection = project(record)
    doses = projection.doses
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
    if not projection.history_complete:
        out.append("the tocilizumab dose history is marked incomplete: confirm prior doses")
    return out


MEANING_CHANGING = ("correction", "alert", "history_confirmation", "patient_update", "restored")
"""Event kinds that change what other (local) events mean; never merged unattended."""


class ImportHeld(TransferError):
    """The file holds changes to the meaning of local events: held for a nurse's review."""

    def __init__(self, message: str, plan: ImportPlan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class ImportPlan:
    """What an import would do, computed without writing anything.

    ``held`` describes each event that would change the meaning of this ward's events
    (voids, amendments, acknowledgements, snoozes, history confirmations, header changes);
    ``voided_doses`` the local tocilizumab doses that would stop counting. Such an import
    is applied only with a nurse's initials (:func:`merge_into_ward` ``confirmed_by``).
    """

    report: ImportReport
    record: Record | None
    new_events: list[EventBase] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    voided_doses: list[str] = field(default_factory=list)
    unbound: bool = False
    """The file is of the older format: its chain is not bound to the patient (held)."""

    @property
    def needs_confirmation(self) -> bool:
        """Whether a nurse must review and confirm before anything is written."""
        return bool(self.held)


def _changes_meaning(event: EventBase) -> bool:
    kind = str(getattr(event, "kind", ""))
    if kind == "alert":
        return getattr(event, "action", None) != "raised"
    return kind in MEANING_CHANGING


def _describe_held(event: EventBase, by_id: dict[str, EventBase]) -> tuple[str, str | None]:
    """(a line for the reviewer, a line when a tocilizumab dose stops counting or changes)."""
    kind = str(getattr(event, "kind", "event"))
    when = format_local(event.effective_at)
    dose_line = None
    if isinstance(event, Correction):
        target = by_id.get(event.target_id)
        what = str(getattr(target, "kind", "an unknown event")) if target else "an unknown event"
        text = f"{event.action} of {what} ({event.reason!r}) by {event.recorded_by}"
        if event.amended:
            text += ": " + ", ".join(f"{k} → {v}" for k, v in sorted(event.amended.items()))
        if isinstance(target, Medication) and target.drug == "tocilizumab":
            verb = "VOIDED" if event.action == "void" else "AMENDED"
            dose_line = (
                f"tocilizumab {target.dose:g} {target.unit} given "
                f"{format_local(target.effective_at)} by {target.given_by} would be {verb}"
            )
    elif isinstance(event, AlertAck):
        until = f" until {format_local(event.snooze_until)}" if event.snooze_until else ""
        text = f"alert {event.action}{until} by {event.recorded_by}"
    elif isinstance(event, PatientUpdate):
        changes = ", ".join(f"{k} → {v}" for k, v in sorted(event.changes.items()))
        text = f"header change: {changes} by {event.recorded_by}"
    elif isinstance(event, HistoryConfirmation):
        state = "complete" if event.complete else "incomplete"
        text = f"dose history confirmed {state} by {event.recorded_by}"
    else:
        text = f"{kind} by {event.recorded_by}"
    return f"{when}: {text}", dose_line


def _grafted(ward: Any, pid: str, incoming: Record) -> int:
    """How many of the file's events already belong to another patient of this ward."""
    ids = {e.id for e in incoming.events}
    return sum(
        1 for other, rec in ward.records.items() if other != pid for e in rec.events if e.id in ids
    )


def plan_import(
    ward: Any, incoming: Record, *, source: str, label: str | None = None
) -> ImportPlan:
    """Check a verified record against the ward and work out the merge; writes nothing.

    Raises:
        TransferError: Refused (identity mismatch, a possible duplicate of another
            patient, events belonging to another patient, the ward's file of this patient
            unreadable, or the merged record would not be valid).
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
    try:
        header = current_patient(incoming)
    except ValidationError as exc:
        bad = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        raise TransferError(
            f"{pid}: refused — the patient header in the file is not valid with its own updates "
            f"applied ({', '.join(bad)}); nothing was changed"
        ) from None
    dup = duplicate_of(
        ward.records,
        patient_id=pid,
        mrn=header.mrn,
        name=header.name,
        date_of_birth=header.date_of_birth,
    )
    if dup is not None:
        raise TransferError(
            f"{pid}: refused — patient {dup[0]} in this ward has {dup[1]}; the same person "
            "cannot have two records. Nothing was changed"
        )
    grafted = _grafted(ward, pid, incoming)
    if grafted:
        raise TransferError(
            f"{pid}: refused — {grafted} event(s) in the file belong to another patient of this "
            "ward; nothing was changed"
        )

    if pid not in ward.records:
        new_events: list[EventBase] = [_marked(e, origin) for e in incoming.events]
        created = _append_all(new_record(incoming.patient, [], now), new_events, now)
        report.created = True
        report.added = len(new_events)
        plan = ImportPlan(report, created, new_events)
    else:
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
                f"header field(s) {', '.join(differs)} differ from this ward's; this ward's "
                "kept (later changes travel as patient updates)"
            )
        by_id: dict[str, EventBase] = {e.id: e for e in local.events}
        new_events = []
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
                report.conflicts.append(
                    Conflict(event.id, str(getattr(event, "kind", "?")), fields)
                )
        merged = _append_all(local, new_events, now) if new_events else None
        plan = ImportPlan(report, merged, new_events)
        known = {**by_id, **{e.id: e for e in incoming.events}}
        for added in new_events:
            if _changes_meaning(added):
                line, dose = _describe_held(added, known)
                plan.held.append(line)
                if dose:
                    plan.voided_doses.append(dose)
        report.added = len(new_events)
    if plan.new_events and record_binding(incoming) == "legacy":
        plan.unbound = True
        # Issue 12: an export written before chains were bound to the patient cannot prove
        # its events are this patient's. Refusing would strand a transfer in progress, so
        # it is held: a nurse checks the identity and confirms with initials.
        plan.held.insert(
            0,
            f"OLDER FORMAT, NOT BOUND: this file was written before records were bound to "
            f"their patient; its {len(plan.new_events)} new event(s) cannot prove they belong "
            f"to patient {pid}. Check the name, MRN and date of birth on the file are this "
            "patient's before confirming.",
        )
    if plan.record is not None:
        try:
            check_written(
                plan.record,
                plan.new_events,
                ward.protocol_for(plan.record),
                now,
                new_header=report.created,
                full=True,
            )
        except InputError as exc:
            raise TransferError(f"{pid}: refused — {exc}; nothing was changed") from None
        report.warnings.extend(_dose_warnings(ward, plan.record, now))
    return plan


def merge_into_ward(
    ward: Any,
    incoming: Record,
    *,
    source: str,
    label: str | None = None,
    confirmed_by: str | None = None,
) -> ImportReport:
    """Add or merge a verified record into a writable ward (see the module docstring).

    Args:
        ward: A :class:`bedside.ward.service.Ward` holding the writer lock.
        incoming: The verified record from the file.
        source: The file name (for messages and the origin).
        label: Optional description of where the file came from (e.g. "Ward 7B").
        confirmed_by: Initials of the nurse who reviewed the changes the file makes to
            the meaning of this ward's events (:class:`ImportPlan`); without them such a
            file is held (:class:`ImportHeld`) and nothing is written.

    Returns:
        The report.

    Raises:
        ImportHeld: Changes to local events' meaning need a nurse's confirmation.
        TransferError: Refused (see :func:`plan_import`); nothing was changed.
        StorageError: The save failed; nothing was changed.
    """
    plan = plan_import(ward, incoming, source=source, label=label)
    report = plan.report
    pid = report.patient_id
    if plan.needs_confirmation:
        if confirmed_by is None:
            meaning = len(plan.held) - plan.unbound
            why = []
            if plan.unbound:
                why.append(
                    "the file is of the older format, not bound to its patient (its events "
                    "cannot prove they belong to this patient)"
                )
            if meaning:
                why.append(
                    f"the file would change what {meaning} of this ward's entries mean (voids, "
                    "amendments, acknowledgements, snoozes, history confirmations or header "
                    "changes)"
                )
            raise ImportHeld(
                f"{pid}: HELD for review — {'; and '.join(why)}. Nothing was changed; import "
                "it from the application (File > Import) so a nurse can review and confirm.",
                plan,
            )
        nurse = normalise_initials(confirmed_by)
        if not isinstance(nurse, str) or INITIALS_RE.fullmatch(nurse) is None:
            raise InputError("confirmed_by: type your initials (2-6 capital letters)")
        origin = _origin_label(incoming, source, f"{label or source}, confirmed by {nurse}")
        now = ward.clock.now()
        base = new_record(incoming.patient, [], now) if report.created else ward.records[pid]
        events = [e.model_copy(update={"origin": origin}) for e in plan.new_events]
        plan.record = _append_all(base, events, now)
        report.origin = origin
    if plan.record is None:
        logger.info(
            "import: %s unchanged, %d present, %d conflict(s)",
            patient_hash(pid),
            report.already_present,
            len(report.conflicts),
        )
        return report
    ward.store_record(pid, plan.record, creating=report.created)
    logger.info(
        "import: %s %s, %d added, %d present, %d conflict(s)",
        "new patient" if report.created else "merged",
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
    from bedside.common.clock import SystemClock
    from bedside.store.paths import resolve_data_dir
    from bedside.ward.service import open_ward

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
            except ImportHeld as exc:
                sys.stderr.write(f"{exc}\n")
                sys.stderr.writelines(f"  would change: {line}\n" for line in exc.plan.held)
                sys.stderr.writelines(f"  LOCAL DOSE: {line}\n" for line in exc.plan.voided_doses)
                status = max(status, HELD_STATUS)
                continue
            except BedsideError as exc:
                text = str(exc)
                prefix = "" if text.startswith(path.name) else f"{path.name}: "
                sys.stderr.write(f"{prefix}{text}\n")
                status = max(status, 1)
                continue
            sys.stdout.write("\n".join(report.lines()) + "\n")
            if report.conflicts:
                status = max(status, 1)
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

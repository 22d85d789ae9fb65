"""The ward folder: one append-only JSON Lines journal per patient per workstation.

Layout of a ward folder ``WARD`` (a lone workstation's user data directory is a ward of one)::

    WARD/journals/<patient id>/<workstation>.jsonl   one writer per file: that workstation
    WARD/workstations/<workstation>.json             its heartbeat (see bedside.ward.wardsync)
    WARD/locks/<workstation>.lock                    single-instance lock of one workstation
    WARD/backups/<workstation>/<patient id>/bk-<seq>-<UTC stamp>.jsonl   verified copies
    WARD/backups/<workstation>/<patient id>/<id>.pre-journal.json        migrated old file
    WARD/quarantine/<workstation>/...                damaged or torn bytes, kept
    WARD/patients/<patient id>.json                  the old single-file format (migrated)

**Line format.** Each line is ``{"h":"<64 hex>","p":"<64 hex>","b":BODY}`` + ``\\n`` where
``BODY`` is the compact canonical JSON of ``{"t": "header"|"event", "seq": n, "ws": id,
"user": OS user, "at": UTC time written, "patient"|"event": {...}}``, ``p`` is the ``h`` of
the previous line and ``h = sha256(p + BODY)``. The first line's ``p`` is
:func:`journal_genesis` of the patient id and the workstation (a domain tag and the format
version hashed with them), so **each journal's chain is bound to its patient**: a journal
copied into another patient's folder (or under another workstation's name) is refused as
"belongs to a different patient record". Journals written before the binding start at 64
zeros: they are read as *not yet bound (older format)* as long as every header line names
the patient of the folder; the owner binds one on its next append by writing a ``bind``
line (``{"t": "bind", "patient_id": id, "chain": 2, ...}``), whose hash covers every line
before it (append-only: nothing is rewritten). A workstation that never writes again leaves
its older journal readable, reported as not yet bound. The checksum is
over the exact bytes, so checking a line costs one hash, and the chain makes a removed,
reordered or edited line visible. Each append writes whole lines with one ``write`` and one
``fsync``. A last segment without its newline is a torn write (the writer died before the
append was acknowledged): it is ignored on read, copied to quarantine and cut off by the
owner before its next append. A damaged *complete* line is corruption: the patient is not
loaded (the journal is copied to quarantine and, for the own journal, saves are blocked
until a verified backup is restored).

**Merge.** A patient's record is the union of its journals: a deterministic k-way merge
(each journal keeps its own order; ties by ``(recorded_at, workstation, seq)``), the same
event id seen twice kept once (differing content is a conflict and refuses the load), then
the record's hash chain is re-sealed in merged order where it differs from the order the
writer saw. Corrections that refer to an event not yet received wait (:func:`pending`).

Files Syncthing leaves in a folder (``.stfolder``, ``.stignore``, ``.syncthing.*.tmp``,
``*.sync-conflict-*``) are never read as journals: only ``<valid id>.jsonl`` names are.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from bedside import APP_NAME, __version__
from bedside.clinical import record as _record_module
from bedside.clinical.record import (
    GENESIS_HASH,
    ChainHead,
    Correction,
    Event,
    Patient,
    Record,
    chain_genesis,
    event_hash,
    events_lost_since,
)
from bedside.common.clock import Clock
from bedside.common.errors import (
    ConcurrentModificationError,
    CorruptDataError,
    LockedError,
    StorageError,
)
from bedside.common.jsonio import dumps_canonical, dumps_compact
from bedside.store.journalcache import TAIL_MAX, Checked, RecordCache
from bedside.store.storage import (
    LOW_SPACE_BYTES,
    DataDir,
    DataDirRefusedError,
    FileOps,
    Loaded,
    PatientNotFoundError,
    QuarantinedError,
    WriterLock,
    _ensure_private_dir,
    atomic_write,
    patient_hash,
    validate_patient_id,
)
from bedside.store.workstation import host_name, os_user, validate_workstation_id

logger = logging.getLogger(__name__)

T = TypeVar("T")

JOURNALS_DIR = "journals"
WORKSTATIONS_DIR = "workstations"
LOCKS_DIR = "locks"
JOURNAL_SUFFIX = ".jsonl"
LINE_VERSION = 1
STIGNORE = "// Written by Bedside: lock files and unfinished temp files stay on this machine.\n"
STIGNORE += "/locks\n(?d).*.tmp-*\n"

_PREFIX = b'{"h":"'
_MID = b'","p":"'
_BODY = b'","b":'
_H0 = len(_PREFIX)
_P0 = _H0 + 64 + len(_MID)
_B0 = _P0 + 64 + len(_BODY)
_HEX = re.compile(rb"[0-9a-f]{64}")
_JOURNAL_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,31})\.jsonl")
_PATIENT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BACKUP_RE = re.compile(r"bk-(\d{6,})-(\d{8}T\d{6}Z)\.jsonl")
_STAMP = "%Y%m%dT%H%M%SZ"
_IS_POSIX = os.name == "posix"
_EVENTS_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(
    list[Event], config=ConfigDict(defer_build=True)
)

_CACHE_CODE = (__file__, _record_module.__file__)
"""The code a cached record depends on (the record models and this loader)."""

DEFAULT_BACKUP_INTERVAL = timedelta(minutes=10)
DEFAULT_BACKUP_KEEP = 20


# --------------------------------------------------------------------------- lines


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_line(prev: str, body: dict[str, Any]) -> tuple[bytes, str]:
    """Return (the line bytes with newline, its hash ``h``) for ``body`` after ``prev``."""
    raw = dumps_compact(body)
    digest = _sha(prev.encode("ascii") + raw)
    return _PREFIX + digest.encode() + _MID + prev.encode() + _BODY + raw + b"}\n", digest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class Journal:
    """One journal file as read: its checked lines and what was left over.

    Attributes:
        workstation: The writer (from the file name; every line must agree).
        lines: The bodies of the sound lines, in file order.
        head: ``h`` of the last sound line (64 zeros when empty).
        valid_length: Byte length of the sound prefix.
        torn: Bytes after the last newline (a write that never completed), or ``b""``.
        problem: Why a complete line failed (the journal is then unusable), or ``""``.
        binding: ``"bound"`` (bound genesis or a ``bind`` line), ``"legacy"`` (older
            format, not yet bound), ``""`` (empty, or read without a patient id).
    """

    workstation: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    head: str = GENESIS_HASH
    valid_length: int = 0
    torn: bytes = b""
    problem: str = ""
    binding: str = ""


JOURNAL_CHAIN_FORMAT = 2
"""Version of the journal line chain's binding (1: the first line followed 64 zeros)."""
_JOURNAL_TAG = b"bedside/journal-line-chain"
_LINE_KINDS = frozenset({"header", "event", "bind"})


def journal_genesis(patient_id: str, workstation: str) -> str:
    """The ``p`` of the first line of ``workstation``'s journal of ``patient_id``."""
    data = b"\0".join(
        (
            _JOURNAL_TAG,
            b"v%d" % JOURNAL_CHAIN_FORMAT,
            patient_id.encode("utf-8"),
            workstation.encode("utf-8"),
        )
    )
    return _sha(data)


def _foreign_journal(where: str, patient_id: str) -> str:
    return (
        f"{where}: this journal belongs to a different patient record (it was not written "
        f"for patient {patient_id} by this workstation); it was not read"
    )


def _first_link(data: bytes) -> str | None:
    """The ``p`` of the first line, or ``None`` when there is no well-formed first line."""
    if len(data) < _B0 or not data.startswith(_PREFIX) or data[_H0 + 64 : _P0] != _MID:
        return None
    link = data[_P0 : _P0 + 64]
    return link.decode() if _HEX.fullmatch(link) else None


def _binding_problem(
    lines: list[dict[str, Any]], genesis_kind: str, patient_id: str, source: str, first: int = 1
) -> tuple[str, str]:
    """(binding, problem) of sound lines (``first``: the number of the first of them):
    header and bind lines must name ``patient_id``."""
    binding = genesis_kind
    for n, body in enumerate(lines, start=first):
        kind = body.get("t")
        if kind == "header" and body["patient"].get("patient_id") != patient_id:
            return binding, _foreign_journal(f"{source} line {n}", patient_id)
        if kind == "bind":
            if body.get("patient_id") != patient_id:
                return binding, _foreign_journal(f"{source} line {n}", patient_id)
            binding = "bound"
    return binding, ""


def parse_journal(
    data: bytes,
    workstation: str,
    source: str,
    patient_id: str | None = None,
    *,
    start: int = 0,
    prev: str = GENESIS_HASH,
    seq: int = 0,
    binding: str = "",
) -> Journal:
    """Check every line of a journal's bytes (never raises for bad content).

    A last segment without newline is ``torn`` (ignored). Any complete line with a bad
    prefix, checksum, chain link, JSON, sequence number or writer sets ``problem`` and stops.
    With ``patient_id`` (every caller in the application passes it) the chain must start at
    :func:`journal_genesis` of the patient and ``workstation`` (bound) or at 64 zeros (older
    format), and every header or ``bind`` line must name the patient; a journal sealed for
    another patient or workstation is refused. Without it only an older-format journal
    (from 64 zeros) reads: a bound one cannot be checked without knowing its patient.
    ``start``, ``prev``, ``seq`` and ``binding`` continue after an already checked prefix
    (its byte length, the ``h`` of its last line, its line count and its binding): only
    the lines after it are checked and returned, chained to ``prev``.
    """
    out = Journal(workstation=workstation)
    end = max(data.rfind(b"\n") + 1, start)
    out.torn = data[end:]
    genesis_kind = binding
    first_no = seq + 1  # the number of the first line checked here
    if start == 0:
        first = _first_link(data) if end else None
        prev = GENESIS_HASH
        if first is not None and patient_id is not None:
            if first == journal_genesis(patient_id, workstation):
                prev, genesis_kind = first, "bound"
            elif first == GENESIS_HASH:
                genesis_kind = "legacy"
            else:
                out.problem = _foreign_journal(f"{source} line 1", patient_id)
                return out
    pos = start
    fast = _parse_fast(data, end, workstation, start=start, prev=prev, seq=seq)
    if fast is not None:
        out.lines, out.head, out.valid_length = fast
        if patient_id is not None:
            out.binding, out.problem = _binding_problem(
                out.lines, genesis_kind, patient_id, source, first_no
            )
        return out
    while pos < end:
        nl = data.index(b"\n", pos)
        line = data[pos:nl]
        where = f"{source} line {seq + 1}"
        if (
            len(line) < _B0 + 2
            or not line.startswith(_PREFIX)
            or line[_H0 + 64 : _P0] != _MID
            or line[_P0 + 64 : _B0] != _BODY
            or not line.endswith(b"}")
            or _HEX.fullmatch(line[_H0 : _H0 + 64]) is None
        ):
            out.problem = f"{where}: not a journal line"
            return out
        digest = line[_H0 : _H0 + 64].decode()
        link = line[_P0 : _P0 + 64].decode()
        body_bytes = line[_B0:-1]
        if link != prev:
            out.problem = f"{where}: does not follow the previous line (removed or reordered)"
            return out
        if _sha(link.encode() + body_bytes) != digest:
            out.problem = f"{where}: content does not match its checksum (damaged or edited)"
            return out
        try:
            body = _DECODER.decode(body_bytes.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            out.problem = f"{where}: not valid JSON"
            return out
        if (
            not isinstance(body, dict)
            or body.get("seq") != seq
            or body.get("ws") != workstation
            or not _sound_body(body)
        ):
            out.problem = f"{where}: wrong sequence, writer or content"
            return out
        out.lines.append(body)
        prev = digest
        pos = nl + 1
        seq += 1
    out.head = prev if out.lines or start else GENESIS_HASH
    out.valid_length = end
    if patient_id is not None:
        out.binding, out.problem = _binding_problem(
            out.lines, genesis_kind, patient_id, source, first_no
        )
    return out


def _sound_body(body: dict[str, Any]) -> bool:
    """A header holds a patient, an event an event, a bind line a patient id."""
    kind = body.get("t")
    if kind == "bind":
        return isinstance(body.get("patient_id"), str)
    return kind in _LINE_KINDS and isinstance(
        body.get("patient" if kind == "header" else "event"), dict
    )


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _parse_fast(
    data: bytes, end: int, workstation: str, *, start: int, prev: str, seq: int
) -> tuple[list[dict[str, Any]], str, int] | None:
    """The whole sound journal in one pass and one JSON decode, or ``None`` on any doubt.

    ``None`` sends the caller to the line-by-line path, which names the first bad line.
    """
    first = seq
    bodies: list[bytes] = []
    for line in data[start:end].split(b"\n")[:-1]:
        if (
            len(line) < _B0 + 2
            or not line.startswith(_PREFIX)
            or line[_H0 + 64 : _P0] != _MID
            or line[_P0 + 64 : _B0] != _BODY
            or not line.endswith(b"}")
        ):
            return None
        link = line[_P0 : _P0 + 64]
        body = line[_B0:-1]
        digest = line[_H0 : _H0 + 64]
        if link.decode() != prev or _sha(link + body) != digest.decode("ascii", "replace"):
            return None
        bodies.append(body)
        prev = digest.decode()
    try:
        parsed = _DECODER.decode("[" + b",".join(bodies).decode("utf-8") + "]")
    except (ValueError, UnicodeDecodeError):
        return None
    for seq, body in enumerate(parsed, start=first):
        if (
            not isinstance(body, dict)
            or body.get("seq") != seq
            or body.get("ws") != workstation
            or not _sound_body(body)
        ):
            return None
    return parsed, (prev if parsed or start else GENESIS_HASH), end


def is_journal_name(name: str) -> bool:
    """Whether a file name is a journal (``<workstation>.jsonl``); Syncthing files are not."""
    return _JOURNAL_RE.fullmatch(name) is not None


# --------------------------------------------------------------------------- merge


def _event_key(body: dict[str, Any]) -> tuple[str, str, int]:
    return (str(body["event"].get("recorded_at", "")), str(body["ws"]), int(body["seq"]))


_NOT_CONTENT = frozenset({"prev_hash", "hash", "origin"})
"""Not an event's content: chain hashes and ``origin`` (an event imported by file on one
workstation is the same event its author's journal holds)."""


def _content(ev: dict[str, Any]) -> dict[str, Any]:
    """An event's content for deduplication (without :data:`_NOT_CONTENT`)."""
    return {k: v for k, v in ev.items() if k not in _NOT_CONTENT}


@dataclass
class Merged:
    """The union of a patient's journals."""

    header: dict[str, Any] | None
    header_at: str
    events: list[dict[str, Any]]
    provenance: dict[str, tuple[str, str]]
    newest_at: str


def merge_journals(journals: list[Journal], source: str, patient_id: str | None = None) -> Merged:
    """Merge sound journals into one event list (deterministic; see the module docstring).

    The record's chain is re-sealed from :func:`~bedside.clinical.record.chain_genesis` of
    ``patient_id`` (default: the header's) where it differs, so a merged record is always
    bound to its patient (an older-format chain is re-sealed; event content unchanged).

    Raises:
        CorruptDataError: Two journals hold the same event id with different content.
    """
    journals = sorted(journals, key=lambda j: j.workstation)
    headers = [
        (str(b.get("at", "")), j.workstation, b["patient"])
        for j in journals
        for b in j.lines
        if b["t"] == "header"
    ]
    header_at, header = "", None
    if headers:
        headers.sort(key=lambda h: (h[0], h[1]))
        header_at, _, header = headers[0]
        if any(h[2] != header for h in headers[1:]):
            logger.warning("%s: workstations disagree on the patient header; earliest kept", source)
    pid = patient_id if patient_id is not None else (header or {}).get("patient_id")
    genesis = chain_genesis(pid) if isinstance(pid, str) else GENESIS_HASH
    streams = [[b for b in j.lines if b["t"] == "event"] for j in journals]
    if len(streams) == 1:
        fast = _merge_one(streams[0], header, header_at, genesis)
        if fast is not None:
            return fast
    merged: Iterable[dict[str, Any]] = (
        streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_event_key)
    )
    events: list[dict[str, Any]] = []
    provenance: dict[str, tuple[str, str]] = {}
    seen: dict[str, dict[str, Any]] = {}
    newest = header_at
    for body in merged:
        ev = body["event"]
        eid = ev.get("id")
        if not isinstance(eid, str):
            raise CorruptDataError(f"{source}: an event without id")
        if eid in seen:
            if _content(seen[eid]) != _content(ev):
                raise CorruptDataError(
                    f"{source}: event {eid} differs between workstations "
                    f"{provenance[eid][0]} and {body['ws']}"
                )
            continue
        seen[eid] = ev
        provenance[eid] = (str(body["ws"]), str(body.get("user", "")))
        events.append(ev)
    if events:
        newest = max(newest, *(str(e.get("recorded_at", "")) for e in events))
    # Re-seal the record's chain where the merged order differs from what the writer saw
    # (or where it was sealed in the older format, from 64 zeros).
    prev = genesis
    resealing = False
    for i, ev in enumerate(events):
        if not resealing and ev.get("prev_hash") == prev:
            prev = str(ev.get("hash"))
            continue
        resealing = True
        fixed = {**ev, "prev_hash": prev, "hash": ""}
        fixed["hash"] = event_hash(fixed, prev)
        events[i] = fixed
        prev = fixed["hash"]
    return Merged(header, header_at, events, provenance, newest)


def _merge_one(
    stream: list[dict[str, Any]], header: dict[str, Any] | None, header_at: str, genesis: str
) -> Merged | None:
    """One journal whose chain is already the record's chain: no merge, no re-seal.

    Returns ``None`` (take the general path) on a duplicate id or a chain that differs.
    """
    events = [b["event"] for b in stream]
    try:
        provenance = {
            e["id"]: (str(b["ws"]), str(b.get("user", "")))
            for e, b in zip(events, stream, strict=True)
        }
    except (KeyError, TypeError):
        return None
    if len(provenance) != len(events) or not all(isinstance(i, str) for i in provenance):
        return None
    prev = genesis
    for ev in events:
        if ev.get("prev_hash") != prev:
            return None
        prev = ev.get("hash")
    newest = max([header_at, *(str(e.get("recorded_at", "")) for e in events)])
    return Merged(header, header_at, events, provenance, newest)


def build_record(pid: str, merged: Merged, source: str) -> Record:
    """Validate the merged header and every event into a :class:`~bedside.clinical.record.Record`.

    Raises:
        CorruptDataError: The header or an event fails the record model, or the header
            names another patient. Messages name fields, never values.
    """
    try:
        patient = Patient.model_validate(merged.header)
        events = _EVENTS_ADAPTER.validate_python(merged.events)
    except ValidationError as exc:
        from bedside.clinical.protocol import format_validation_error

        raise CorruptDataError(
            f"{source}: fails validation ({format_validation_error(exc, what='journal')})"
        ) from None
    if patient.patient_id != pid:
        raise CorruptDataError(f"{source}: the header names another patient")
    head = ChainHead(count=len(events), hash=events[-1].hash if events else chain_genesis(pid))
    saved_at = merged.newest_at or merged.header_at or patient.admitted_at.isoformat()
    return Record.model_construct(
        schema_version=1,
        app_version=__version__,
        saved_at=datetime.fromisoformat(saved_at),
        patient=patient,
        events=events,
        head=head,
    )


def pending(record: Record) -> list[Correction]:
    """Corrections whose target event has not been received yet (they wait, shown as pending)."""
    ids = {e.id for e in record.events}
    return [e for e in record.events if isinstance(e, Correction) and e.target_id not in ids]


# --------------------------------------------------------------------------- store


def _complete_end(data: bytes, start: int) -> int:
    """End of the last complete line of ``data`` (at least ``start``)."""
    return max(data.rfind(b"\n") + 1, start)


def _with_events(record: Record, events: list[Event], saved_at: str) -> Record:
    """``record`` with already checked and validated ``events`` appended."""
    all_events = [*record.events, *events]
    if not events:
        return record
    return Record.model_construct(
        schema_version=record.schema_version,
        app_version=__version__,
        saved_at=datetime.fromisoformat(saved_at or record.patient.admitted_at.isoformat()),
        patient=record.patient,
        events=all_events,
        head=ChainHead(count=len(all_events), hash=all_events[-1].hash),
    )


@dataclass
class _Own:
    """What this workstation knows of its own journal of one patient."""

    head: str = GENESIS_HASH
    seq: int = 0
    length: int = 0
    exists: bool = False
    torn: bytes = b""
    legacy: bool = False
    """The journal is of the older format and not yet bound: the next append binds it."""


def _own_state(j: Journal | None) -> _Own:
    """What a parsed own journal tells this workstation (empty when there is none)."""
    if j is None:
        return _Own()
    return _Own(
        head=j.head,
        seq=len(j.lines),
        length=j.valid_length,
        exists=True,
        torn=j.torn,
        legacy=j.binding == "legacy",
    )


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_STAMP)


def _errno_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return type(exc).__name__


class JournalStore:
    """A ward folder seen from one workstation (the interface :class:`Ward` uses).

    Same contract as :class:`bedside.store.storage.DataDir` for the service (``load``, ``save``,
    ``patient_ids``, writer lock, backups, quarantine), on journals. Not thread-safe.
    """

    def __init__(
        self,
        root: Path,
        *,
        clock: Clock,
        workstation: str,
        read_only: bool = False,
        ops: FileOps | None = None,
        backup_interval: timedelta = DEFAULT_BACKUP_INTERVAL,
        backup_keep: int = DEFAULT_BACKUP_KEEP,
    ) -> None:
        """Open the ward folder ``root`` as ``workstation`` (creates folders unless read-only)."""
        self.root = Path(root)
        self.workstation = validate_workstation_id(workstation)
        self.read_only = read_only
        self.user = os_user()
        self._clock = clock
        self._ops = ops or FileOps()
        self._backup_interval = backup_interval
        self._backup_keep = backup_keep
        self.journals_dir = self.root / JOURNALS_DIR
        self.workstations_dir = self.root / WORKSTATIONS_DIR
        self.locks_dir = self.root / LOCKS_DIR
        self.backups_dir = self.root / "backups" / self.workstation
        self.quarantine_dir = self.root / "quarantine" / self.workstation
        self.lock_path = self.locks_dir / f"{self.workstation}.lock"
        self.lock_info_path = self.locks_dir / f"{self.workstation}.lock.info"
        self.legacy = DataDir(self.root, clock=clock, read_only=read_only, ops=ops)
        self.patients_dir = self.legacy.patients_dir
        self._own: dict[str, _Own] = {}
        self._known: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._blocked: set[str] = set()
        self._signatures: dict[str, tuple[tuple[str, int, int], ...]] = {}
        self.provenance: dict[str, dict[str, tuple[str, str]]] = {}
        self.torn_seen: dict[str, list[str]] = {}
        self._writer = WriterLock(self.lock_path, self.lock_info_path, self._ops)
        self.observed: dict[str, dict[str, str]] = {}
        self._cache = RecordCache(self.root, self.workstation, code=_CACHE_CODE)
        self._last_backup: dict[str, datetime] = {}
        self.last_heartbeat: datetime | None = None
        if read_only:
            return
        # The old store above has refused "", "/", the home folder, a non-Bedside folder
        # and symlinked patients/, backups/, quarantine/ (issue 12); the same for ours.
        own = (
            self.journals_dir,
            self.workstations_dir,
            self.locks_dir,
            self.backups_dir,
            self.quarantine_dir,
        )
        for d in own:
            if d.is_symlink():
                where = d.relative_to(self.root).as_posix()
                raise DataDirRefusedError(
                    f"refused: {where}/ in the ward folder is a symbolic link; Bedside never "
                    "writes through one (ask IT to replace it with a real folder)"
                )
        try:
            for d in own:
                # Created here: exactly 0700. Existing: Bedside's own sub-folder, made
                # private again (never through a link: refused above).
                if not _ensure_private_dir(d) and _IS_POSIX:
                    os.chmod(d, 0o700)
            stignore = self.root / ".stignore"
            if stignore.is_symlink():
                raise OSError(errno.ELOOP, ".stignore is a symbolic link; refused")
            if not stignore.exists():
                atomic_write(stignore, STIGNORE.encode("utf-8"))
        except OSError as exc:
            raise StorageError(f"cannot prepare the ward folder: {_errno_text(exc)}") from exc

    # ------------------------------------------------------------------ paths

    def journal_dir(self, pid: str) -> Path:
        """``journals/<pid>/``."""
        return self.journals_dir / validate_patient_id(pid)

    def own_journal(self, pid: str) -> Path:
        """This workstation's journal of ``pid``."""
        return self.journal_dir(pid) / f"{self.workstation}{JOURNAL_SUFFIX}"

    def journal_files(self, pid: str) -> list[Path]:
        """Every journal of ``pid`` (by workstation); Syncthing's own files are skipped."""
        try:
            names = os.listdir(self.journal_dir(pid))
        except FileNotFoundError:
            return []
        return sorted(self.journal_dir(pid) / n for n in names if is_journal_name(n))

    def _source(self, pid: str, ws: str | None = None) -> str:
        return f"journal {patient_hash(pid)}/{ws}" if ws else f"patient {patient_hash(pid)}"

    # ------------------------------------------------------------------ lock

    def acquire_writer_lock(self) -> None:
        """Become the one running Bedside of this workstation on this ward folder.

        The lock is per workstation: other workstations (other ids) write their own journals
        and run at the same time. Raises :class:`LockedError` naming the holder.
        """
        if self._writer.held:
            return
        if self.read_only:
            raise StorageError("the ward folder was opened read-only")

        def refused(info: dict[str, Any] | None) -> LockedError:
            who = (
                f"pid {info.get('pid')} on host {info.get('hostname')!s} (user "
                f"{info.get('os_user')!s}) since {info.get('started_at')!s}"
                if info
                else "an unknown process (it may be starting up)"
            )
            return LockedError(
                f"the ward folder is in use by another Bedside as workstation "
                f"{self.workstation} (one Bedside per workstation): {who}"
            )

        info = {
            "app": APP_NAME,
            "version": __version__,
            "pid": os.getpid(),
            "hostname": host_name(),
            "os_user": self.user,
            "workstation": self.workstation,
            "started_at": self._clock.now().astimezone(UTC).isoformat(),
        }
        self._writer.acquire(
            info,
            refused=refused,
            failed=lambda why: StorageError(f"cannot take the workstation lock: {why}"),
        )
        logger.info("workstation lock acquired")
        from bedside.store.heartbeat import write_heartbeat

        write_heartbeat(self)

    def release_writer_lock(self) -> None:
        """Release the workstation lock (idempotent)."""
        self._writer.release()

    def holds_writer_lock(self) -> bool:
        """Whether this store holds its workstation lock."""
        return self._writer.held

    def holder(self) -> dict[str, Any] | None:
        """Who holds this workstation's lock, or ``None``."""
        return self._writer.holder()

    def _require_lock(self) -> None:
        if not self._writer.held:
            raise StorageError("this process does not hold the workstation lock")

    def sweep_temp_files(self) -> int:
        """Remove this workstation's own temp files left by a kill (never another's)."""
        self._require_lock()
        count = 0
        mark = f".{self.workstation}."  # .<ws>.json.tmp-…, .<ws>.jsonl.tmp-…, .<ws>.lock.info…
        mine = (self.backups_dir, self.quarantine_dir)
        dirs = [self.root, self.workstations_dir, self.locks_dir]
        for base in (*mine, self.journals_dir):
            with contextlib.suppress(OSError):
                dirs.extend([base, *(d for d in base.iterdir() if d.is_dir())])
        for d in dirs:
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for entry in entries:
                own = any(d.is_relative_to(m) for m in mine) or entry.name.startswith(mark)
                if own and ".tmp-" in entry.name and entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        count += 1
        return count

    # ------------------------------------------------------------------ listing

    def patient_ids(self) -> list[str]:
        """Patients with a journal (any workstation) or an old single file not yet migrated."""
        ids: set[str] = set(self.legacy.patient_ids()) if self.patients_dir.is_dir() else set()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.journals_dir):
                if (
                    _PATIENT_RE.fullmatch(entry.name)
                    and entry.is_dir()
                    and any(is_journal_name(n) for n in os.listdir(entry.path))
                ):
                    ids.add(entry.name)
        return sorted(ids)

    def writers(self) -> set[str]:
        """Every workstation with a journal in the ward folder (any patient), own included."""
        out: set[str] = set()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.journals_dir):
                if not (_PATIENT_RE.fullmatch(entry.name) and entry.is_dir()):
                    continue
                with contextlib.suppress(OSError):
                    out.update(
                        n[: -len(JOURNAL_SUFFIX)]
                        for n in os.listdir(entry.path)
                        if is_journal_name(n)
                    )
        return out

    def signature(self, pid: str) -> tuple[tuple[str, int, int], ...]:
        """(name, size, mtime_ns) of every journal of ``pid``: changes when any grows."""
        out = []
        for path in self.journal_files(pid):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                out.append((path.name, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _note_own_write(self, pid: str) -> None:
        """Update only the own journal's entry: a peer's change must still be noticed."""
        name = f"{self.workstation}{JOURNAL_SUFFIX}"
        st = self.own_journal(pid).stat()
        others = [e for e in self._signatures.get(pid, ()) if e[0] != name]
        self._signatures[pid] = tuple(sorted([*others, (name, st.st_size, st.st_mtime_ns)]))

    def changed_since_load(self, pid: str) -> bool:
        """Whether any journal of ``pid`` changed on disk since the last load/save here."""
        return self._signatures.get(pid) != self.signature(pid)

    # ------------------------------------------------------------------ quarantine

    def is_quarantined(self, pid: str) -> bool:
        """Whether saves of ``pid`` are blocked (its own journal is damaged)."""
        return pid in self._blocked or (self.quarantine_dir / f"{pid}.blocked").exists()

    def _quarantine_copy(self, pid: str, data: bytes, what: str) -> Path | None:
        for existing in self.quarantine_dir.glob(f"{pid}.*"):
            with contextlib.suppress(OSError):
                if existing.stat().st_size == len(data) and existing.read_bytes() == data:
                    return existing
        path = self.quarantine_dir / f"{pid}.{what}-{_stamp(self._clock.now())}.jsonl"
        n = 2
        while path.exists():
            path = path.with_name(f"{pid}.{what}-{_stamp(self._clock.now())}-{n}.jsonl")
            n += 1
        try:
            self.quarantine_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, data, ops=self._ops)
        except (OSError, StorageError) as exc:
            logger.error("could not quarantine a journal of %s: %s", patient_hash(pid), exc)
            return None
        return path

    # ------------------------------------------------------------------ load

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise StorageError(f"{path.name}: cannot be read ({_errno_text(exc)})") from exc

    def read_journals(self, pid: str) -> list[Journal]:
        """Read and check every journal of ``pid`` (no merging, nothing written)."""
        out = []
        for path in self.journal_files(pid):
            ws = path.stem
            out.append(parse_journal(self._read(path), ws, self._source(pid, ws), pid))
        return out

    def load(self, pid: str, *, validate: Callable[[dict[str, Any]], T]) -> Loaded[Any]:
        """Merge every journal of ``pid`` into a :class:`~bedside.clinical.record.Record`.

        An old single-file record is migrated first (needs the lock; read-only merges it
        in memory). ``validate`` is kept for interface compatibility: the record is built
        and validated here (header, every event, chain re-sealed), which is what
        :func:`bedside.clinical.record.validate_envelope` checks.

        Raises:
            PatientNotFoundError: No journal and no old file.
            CorruptDataError: A journal has a damaged complete line, two journals disagree
                on an event, no workstation has sent the header yet, or validation failed.
        """
        _ = validate
        validate_patient_id(pid)
        legacy_events: list[dict[str, Any]] = []
        legacy_header: dict[str, Any] | None = None
        legacy_path = self.patients_dir / f"{pid}.json"
        if legacy_path.exists():
            from bedside.clinical.record import validate_envelope

            old = self.legacy.load(pid, validate=validate_envelope)
            if self.holds_writer_lock():
                self._migrate(pid, old.raw, legacy_path)
            else:
                legacy_header = old.raw["patient"]
                legacy_events = list(old.raw["events"])
        signature = self.signature(pid)
        self._signatures[pid] = signature  # a failed load is retried only after a change
        datas = [(p.name, self._read(p)) for p in self.journal_files(pid)]
        if legacy_header is None and datas:
            cached = self._load_cached(pid, datas)
            if cached is not None:
                return cached
        journals = [
            parse_journal(data, name[: -len(JOURNAL_SUFFIX)], self._source(pid, name), pid)
            for name, data in datas
        ]
        if not journals and legacy_header is None:
            raise PatientNotFoundError(f"{self._source(pid)}: no journal")
        torn_from = [j.workstation for j in journals if j.torn]
        self.torn_seen[pid] = torn_from
        for j in journals:
            if j.problem:
                # Read-only access writes nothing, not even a quarantine copy (as DataDir).
                copy = (
                    None
                    if self.read_only
                    else self._quarantine_copy(
                        pid, self._read(self.journal_dir(pid) / f"{j.workstation}.jsonl"), "corrupt"
                    )
                )
                if j.workstation == self.workstation and not self.read_only:
                    self._block(pid, j.problem)
                where = f"a copy is in quarantine ({copy.name})" if copy else "not quarantined"
                if self.read_only:
                    where = "it was not quarantined (read-only access)"
                err = CorruptDataError(f"{j.problem}. The file was left unchanged; {where}.")
                err.quarantine_path = copy
                raise err
        if legacy_header is not None:
            lines = [{"t": "header", "seq": 0, "ws": "~old", "at": "", "patient": legacy_header}]
            lines += [
                {"t": "event", "seq": i + 1, "ws": "~old", "event": e}
                for i, e in enumerate(legacy_events)
            ]
            journals.append(Journal(workstation="~old", lines=lines))
        merged = merge_journals(journals, self._source(pid), pid)
        if merged.header is None:
            raise CorruptDataError(
                f"{self._source(pid)}: events have arrived but not yet the patient's admission "
                "from the workstation that created it (waiting for replication)"
            )
        record = self._build(pid, merged)
        own = next((j for j in journals if j.workstation == self.workstation), None)
        self._own[pid] = _own_state(own)
        self._known[pid] = {e["id"] for e in merged.events}
        self.provenance[pid] = merged.provenance
        self._signatures[pid] = signature
        self._dirty.discard(pid)
        raw = {"patient": merged.header, "events": merged.events}
        # An older-format (unbound) journal is never cached: its owner binds it on the next
        # append, which the full load's state knows (see _Own.legacy).
        if (
            legacy_header is None
            and not self.read_only
            and all(j.binding != "legacy" for j in journals)
        ):
            checked = [
                Checked(
                    name=f"{j.workstation}{JOURNAL_SUFFIX}",
                    length=j.valid_length,
                    digest=hashlib.sha256(memoryview(data)[: j.valid_length]).digest(),
                    head=j.head,
                    lines=len(j.lines),
                )
                for j, (_name, data) in zip(journals, datas, strict=True)
            ]
            self._cache.put(
                pid,
                checked,
                merged.header,
                merged.header_at,
                merged.newest_at,
                record,
                merged.provenance,
            )
        return Loaded(value=record, raw=raw, token=self._own[pid].head, migrated_from=None)

    def _load_cached(self, pid: str, datas: list[tuple[str, bytes]]) -> Loaded[Any] | None:
        """The record from the cache when every journal's checked prefix is unchanged.

        Lines appended since to a patient's only journal are checked and validated here and
        appended to the cached record; anything else returns ``None`` (the full load).
        See :mod:`bedside.store.journalcache`.
        """
        entry = self._cache.get(pid)
        if entry is None or [c.name for c in entry.journals] != [n for n, _ in datas]:
            return None
        digests = []
        for checked, (_name, data) in zip(entry.journals, datas, strict=True):
            if len(data) < checked.length:
                return None
            digest = hashlib.sha256(memoryview(data)[: checked.length])
            if digest.digest() != checked.digest:
                return None
            digests.append(digest)
        record, provenance = entry.value()
        journals = list(entry.journals)
        newest_at = entry.newest_at
        added: list[Event] = []  # events beyond the entry: its tail, then new lines
        if len(journals) == 1:
            tail = self._cache.get_tail(pid, entry)
            data = datas[0][1]
            if tail is not None and journals[0].length <= tail.journal.length <= len(data):
                digest = digests[0].copy()
                digest.update(memoryview(data)[journals[0].length : tail.journal.length])
                if digest.digest() == tail.journal.digest:
                    events, more = tail.value()
                    newest_at = tail.newest_at
                    record = _with_events(record, events, newest_at or entry.header_at)
                    provenance = {**provenance, **more}
                    journals[0], digests[0], added = tail.journal, digest, list(events)
        pairs = list(zip(journals, (d for _, d in datas), strict=True))
        if any(_complete_end(data, c.length) > c.length for c, data in pairs):
            if len(journals) != 1:
                return None  # several journals: the merge decides the order (full load)
            appended = self._check_appended(pid, record, journals[0], datas[0][1])
            if appended is None:
                return None
            new, models = appended
            digests[0].update(memoryview(datas[0][1])[journals[0].length : new.valid_length])
            newest_at = max(
                [newest_at, *(str(b["event"].get("recorded_at", "")) for b in new.lines)]
            )
            record = _with_events(record, models, newest_at or entry.header_at)
            provenance = dict(provenance)
            for b in new.lines:
                provenance[b["event"]["id"]] = (str(b["ws"]), str(b.get("user", "")))
            lines = journals[0].lines + len(new.lines)
            journals[0] = Checked(
                journals[0].name, new.valid_length, digests[0].digest(), new.head, lines
            )
            added += models
            if not self.read_only:
                if len(added) > TAIL_MAX:
                    self._cache.put(
                        pid, journals, entry.header, entry.header_at, newest_at, record, provenance
                    )
                else:
                    more = {e.id: provenance[e.id] for e in added}
                    self._cache.put_tail(pid, entry, journals[0], newest_at, added, more)
        torn_from: list[str] = []
        own_state = _Own()
        for checked, (_name, data) in zip(journals, datas, strict=True):
            ws = checked.name[: -len(JOURNAL_SUFFIX)]
            torn = data[_complete_end(data, checked.length) :]
            if torn:
                torn_from.append(ws)
            if ws == self.workstation:
                own_state = _Own(checked.head, checked.lines, checked.length, True, torn)
        self.torn_seen[pid] = torn_from
        self._own[pid] = own_state
        self._known[pid] = {e.id for e in record.events}
        self.provenance[pid] = provenance
        self._dirty.discard(pid)
        raw = {"patient": entry.header, "events": None}  # event JSON rebuilt when needed
        return Loaded(value=record, raw=raw, token=own_state.head, migrated_from=None)

    def _check_appended(
        self, pid: str, record: Record, checked: Checked, data: bytes
    ) -> tuple[Journal, list[Event]] | None:
        """Check and validate the lines appended after ``checked``: (them, their events).

        ``None`` on any doubt (a header line, a bad line, an event id seen before, a chain
        that does not continue the record's, an event that fails validation): the full
        load then runs and reports what is wrong exactly as it always does.
        """
        ws = checked.name[: -len(JOURNAL_SUFFIX)]
        new = parse_journal(
            data,
            ws,
            self._source(pid, ws),
            start=checked.length,
            prev=checked.head,
            seq=checked.lines,
        )
        if new.problem or any(b["t"] != "event" for b in new.lines):
            return None
        events = [b["event"] for b in new.lines]
        ids = {e.id for e in record.events}
        prev = record.events[-1].hash if record.events else chain_genesis(pid)
        for ev in events:
            eid = ev.get("id")
            if not isinstance(eid, str) or eid in ids or ev.get("prev_hash") != prev:
                return None
            ids.add(eid)
            prev = ev.get("hash")
        try:
            models = _EVENTS_ADAPTER.validate_python(events)
        except ValidationError:
            return None
        return new, models

    def _build(self, pid: str, merged: Merged) -> Record:
        return build_record(pid, merged, self._source(pid))

    def _block(self, pid: str, problem: str) -> None:
        self._blocked.add(pid)
        marker = self.quarantine_dir / f"{pid}.blocked"
        if not marker.exists():
            with contextlib.suppress(OSError, StorageError):
                atomic_write(marker, dumps_canonical({"problem": problem}), ops=self._ops)

    # ------------------------------------------------------------------ migration

    def _migrate(self, pid: str, raw: dict[str, Any], legacy_path: Path) -> None:
        """Copy an old single-file record into the own journal, verify, keep the old file.

        The old file is moved to ``backups/<ws>/<pid>/<pid>.pre-journal.json`` only after the
        merged journals were read back and hold every old event with identical content.
        """
        source = self._source(pid)
        data = legacy_path.read_bytes()
        existing = self.read_journals(pid)
        for j in existing:
            if j.problem:
                raise CorruptDataError(f"{j.problem} (found while migrating the old file)")
        have_header = any(b["t"] == "header" for j in existing for b in j.lines)
        have_ids = {b["event"]["id"] for j in existing for b in j.lines if b["t"] == "event"}
        own = next((j for j in existing if j.workstation == self.workstation), None)
        self._own[pid] = _own_state(own)
        bodies: list[dict[str, Any]] = []
        if not have_header:
            bodies.append({"t": "header", "patient": raw["patient"], "migrated": True})
        bodies += [
            {"t": "event", "event": e, "migrated": True}
            for e in raw["events"]
            if e["id"] not in have_ids
        ]
        if bodies:
            self._append_lines(pid, bodies)
        merged = merge_journals(self.read_journals(pid), source, pid)
        by_id = {e["id"]: e for e in merged.events}
        for ev in raw["events"]:
            got = by_id.get(ev["id"])
            if got is None or _content(got) != _content(ev):
                raise CorruptDataError(
                    f"{source}: migration could not be verified; the old file was kept as it is"
                )
        if merged.header is None:
            raise CorruptDataError(f"{source}: migration lost the header; old file kept")
        backup_dir = self.backups_dir / pid
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = backup_dir / f"{pid}.pre-journal.json"
        n = 2
        while target.exists() and target.read_bytes() != data:
            target = backup_dir / f"{pid}.pre-journal-{n}.json"
            n += 1
        if not target.exists():
            atomic_write(target, data, ops=self._ops)
        if target.read_bytes() != data:
            raise StorageError(f"{source}: the copy of the old file did not verify; old file kept")
        self._ops.unlink(str(legacy_path))
        self._ops.fsync_dir(str(self.patients_dir))
        logger.info("patient %s migrated to journals; old file kept in backups", patient_hash(pid))

    # ------------------------------------------------------------------ save

    def _append_lines(self, pid: str, bodies: list[dict[str, Any]]) -> None:
        """Append whole lines to the own journal: one write, one fsync (cuts a torn tail first)."""
        own = self._own.setdefault(pid, _Own())
        path = self.own_journal(pid)
        now = self._clock.now().astimezone(UTC).isoformat()
        chunks: list[bytes] = []
        head, seq = own.head, own.seq
        if own.length == 0:
            head = journal_genesis(pid, self.workstation)  # a new journal is born bound
        elif own.legacy:
            # An older-format journal: bind it from here (the line covers every line before).
            bodies = [{"t": "bind", "patient_id": pid, "chain": JOURNAL_CHAIN_FORMAT}, *bodies]
        for body in bodies:
            full = {**body, "seq": seq, "ws": self.workstation, "user": self.user, "at": now}
            line, head = encode_line(head, full)
            chunks.append(line)
            seq += 1
        data = b"".join(chunks)
        created = not path.exists()
        if created:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            fd = self._ops.open(str(path), flags, 0o600)
        except OSError as exc:
            raise StorageError(f"could not open the journal: {_errno_text(exc)}") from exc
        try:
            size = os.fstat(fd).st_size
            if size != own.length:
                if size < own.length:
                    raise ConcurrentModificationError(
                        f"{self._source(pid, self.workstation)}: shorter than when it was read"
                    )
                tail = os.pread(fd, size - own.length, own.length)
                if b"\n" in tail:
                    raise ConcurrentModificationError(
                        f"{self._source(pid, self.workstation)}: grew since it was read"
                    )
                self._quarantine_copy(pid, tail, "torn")
                os.ftruncate(fd, own.length)
                logger.warning("cut a torn last line off the own journal of %s", patient_hash(pid))
            os.lseek(fd, own.length, os.SEEK_SET)
            view = memoryview(data)
            while view:
                written = self._ops.write(fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, "write returned no progress")
                view = view[written:]
            self._ops.fsync(fd)
        except ConcurrentModificationError:
            raise
        except OSError as exc:
            self._dirty.add(pid)
            err = StorageError(f"could not append to the journal: {_errno_text(exc)}")
            err.ambiguous = True
            raise err from exc
        finally:
            with contextlib.suppress(OSError):
                self._ops.close(fd)
        if created:
            try:
                self._ops.fsync_dir(str(path.parent))
            except OSError as exc:
                self._dirty.add(pid)
                err = StorageError(f"journal created but not made durable: {_errno_text(exc)}")
                err.ambiguous = True
                raise err from exc
        own.head, own.seq, own.length, own.exists, own.torn, own.legacy = (
            head,
            seq,
            own.length + len(data),
            True,
            b"",
            False,
        )

    def current_token(self, pid: str) -> str | None:
        """Hash of the own journal's last complete line as on disk now (None: no such line)."""
        data = self._read(self.own_journal(pid))
        j = parse_journal(data, self.workstation, self._source(pid, self.workstation), pid)
        return j.head if j.lines else None

    def low_space(self, threshold: int = LOW_SPACE_BYTES) -> str | None:
        """A warning while the ward folder's disk has less than ``threshold`` bytes free."""
        return self.legacy.low_space(threshold)

    def read_back(self, pid: str) -> tuple[str, set[str], bool]:
        """After an ambiguous append: re-read the own journal and go by what is on disk.

        Resyncs this store's view of the own journal (so the next append starts from what
        really landed, never refused because of its own write) and returns the head token,
        the ids of the events the own journal holds and whether it holds the header line.

        Raises:
            StorageError: The journal cannot be read (the save stays unconfirmed).
            CorruptDataError: A complete line of the own journal is damaged.
        """
        j = self._resync_own(pid)
        ids = {b["event"]["id"] for b in j.lines if b["t"] == "event"}
        header = any(b["t"] == "header" for b in j.lines)
        if j.lines:
            with contextlib.suppress(OSError):
                self._note_own_write(pid)
            prov = self.provenance.setdefault(pid, {})
            for b in j.lines:
                if b["t"] == "event":
                    prov.setdefault(b["event"]["id"], (self.workstation, b.get("user", "")))
        return self._own[pid].head, ids, header

    def _resync_own(self, pid: str) -> Journal:
        """After a failed or ambiguous append: learn what really is in the own journal."""
        j = parse_journal(self._read(self.own_journal(pid)), self.workstation, "own journal", pid)
        if j.problem:
            raise CorruptDataError(j.problem)
        self._own[pid] = _own_state(j)
        self._own[pid].exists = bool(j.lines)
        known = self._known.setdefault(pid, set())
        known.update(b["event"]["id"] for b in j.lines if b["t"] == "event")
        self._dirty.discard(pid)
        return j

    def save(
        self,
        pid: str,
        envelope: dict[str, Any],
        *,
        expected_token: str | None,
        validate: Callable[[dict[str, Any]], object],
    ) -> str:
        """Append the events of ``envelope`` this ward folder has not seen to the own journal.

        Validates the envelope first (nothing written on failure). A new patient writes its
        header line. Idempotent: events already in the own journal (e.g. after an ambiguous
        failure) are not written twice.

        Returns:
            The new token (hash of the own journal's last line).
        """
        self._require_lock()
        source = self._source(pid)
        if self.is_quarantined(pid):
            raise QuarantinedError(
                f"{source}: saving is blocked because this workstation's journal failed to load; "
                "restore a verified backup first"
            )
        try:
            validate(envelope)
        except Exception as exc:
            raise StorageError(f"refused to save: the record would not load back ({exc})") from exc
        creating = expected_token is None
        if pid in self._dirty:
            before = self._own.get(pid, _Own()).head
            landed = self._resync_own(pid)
            if expected_token == before:
                expected_token = landed.head  # what landed of our own failed append
            if creating and any(
                b["t"] == "header" and b["patient"] == envelope["patient"] for b in landed.lines
            ):
                # Retry of a creation whose first attempt landed: idempotent, no second header.
                creating, expected_token = False, landed.head
        known = self._known.setdefault(pid, set())
        own = self._own.setdefault(pid, _Own())
        if creating:
            own_path = self.own_journal(pid)
            found = [
                p
                for p in self.journal_files(pid)
                # An own journal without one complete line is what a failed creation left.
                if p != own_path
                or parse_journal(self._read(p), self.workstation, source, pid).lines
            ]
            if found or (self.patients_dir / f"{pid}.json").exists():
                raise ConcurrentModificationError(f"{source}: already exists in the ward folder")
        elif expected_token != own.head:
            raise ConcurrentModificationError(f"{source}: the journal changed since it was read")
        bodies: list[dict[str, Any]] = []
        if creating:
            bodies.append({"t": "header", "patient": envelope["patient"]})
        new = [e for e in envelope["events"] if e["id"] not in known]
        bodies += [{"t": "event", "event": e} for e in new]
        if not bodies:
            return own.head
        try:
            dumps_compact(bodies)
        except (TypeError, ValueError) as exc:
            raise StorageError("refused to save: the record cannot be encoded as JSON") from exc
        self._append_lines(pid, bodies)
        known.update(e["id"] for e in new)
        prov = self.provenance.setdefault(pid, {})
        for e in new:
            prov[e["id"]] = (self.workstation, self.user)
        self._note_own_write(pid)
        logger.info("patient %s: %d line(s) appended", patient_hash(pid), len(bodies))
        self._maybe_backup(pid)
        return own.head

    # ------------------------------------------------------------------ backups

    def backups(self, pid: str) -> list[Path]:
        """Rotating verified copies of the own journal of ``pid``, newest first."""
        d = self.backups_dir / validate_patient_id(pid)
        try:
            names = [n for n in os.listdir(d) if _BACKUP_RE.fullmatch(n)]
        except FileNotFoundError:
            return []
        return [d / n for n in sorted(names, reverse=True)]

    def _maybe_backup(self, pid: str) -> None:
        """Keep a verified copy of the own journal, at most every ``backup_interval``.

        One file per UTC day: the first backup of a day copies the journal (prefix up to
        the last sound line); later ones that day append only the new lines (one write,
        one fsync, read back and compared), so a backup costs a line, not the record.
        Failures are logged, never raised: the save itself succeeded.
        """
        try:
            now = self._clock.now()
            existing = self.backups(pid)
            last = self._last_backup.get(pid)
            newest_stamp = None
            if existing:
                m = _BACKUP_RE.fullmatch(existing[0].name)
                assert m is not None
                newest_stamp = datetime.strptime(m[2], _STAMP).replace(tzinfo=UTC)
                last = last or newest_stamp
            if last is not None and timedelta(0) <= now - last < self._backup_interval:
                return
            own = self._own[pid]
            journal = self.own_journal(pid)
            same_day = newest_stamp is not None and newest_stamp.date() == now.date()
            if existing and same_day and self._extend_backup(existing[0], journal, own.length):
                self._last_backup[pid] = now
                return
            with journal.open("rb") as fh:
                data = fh.read(own.length)
            seq = int(_BACKUP_RE.fullmatch(existing[0].name)[1]) + 1 if existing else 1  # type: ignore[index]
            d = self.backups_dir / pid
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = d / f"bk-{seq:06d}-{_stamp(now)}.jsonl"
            atomic_write(path, data, ops=self._ops)
            if path.read_bytes() != data:
                with contextlib.suppress(OSError):
                    path.unlink()
                logger.error("backup of %s failed verification", patient_hash(pid))
                return
            self._last_backup[pid] = now
            for old in self.backups(pid)[self._backup_keep :]:
                with contextlib.suppress(OSError):
                    old.unlink()
        except Exception:
            logger.exception("backup of patient %s failed", patient_hash(pid))

    def _extend_backup(self, backup: Path, journal: Path, length: int) -> bool:
        """Append the journal's new lines to today's backup; False if it is not a prefix."""
        size = backup.stat().st_size
        if size > length:
            return False
        check = min(size, 256)
        with journal.open("rb") as fh:
            fh.seek(size - check)
            overlap = fh.read(check)
            extra = fh.read(length - size)
        with backup.open("rb") as fh:
            fh.seek(size - check)
            if fh.read(check) != overlap:
                return False
        if not extra:
            return True
        fd = self._ops.open(str(backup), os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            view = memoryview(extra)
            while view:
                view = view[self._ops.write(fd, view) :]
            self._ops.fsync(fd)
        finally:
            self._ops.close(fd)
        with backup.open("rb") as fh:
            fh.seek(size)
            if fh.read() != extra:
                logger.error("backup extension did not read back identical")
                return False
        return True

    def verify_file(
        self, path: Path, *, validate: Callable[[dict[str, Any]], object]
    ) -> tuple[bool, str]:
        """Check a journal or journal backup read-only."""
        _ = validate
        path = Path(path)
        in_journals = path.parent.parent == self.journals_dir
        ws = path.stem if in_journals and is_journal_name(path.name) else self.workstation
        try:
            data = path.read_bytes()
        except OSError as exc:
            return False, f"{path.name}: cannot be read ({_errno_text(exc)})"
        pid = path.parent.name
        j = parse_journal(data, ws, path.name, pid if _PATIENT_RE.fullmatch(pid) else None)
        if j.problem:
            return False, j.problem
        note = ", torn last line ignored" if j.torn else ""
        if j.binding == "legacy":
            note += ", not yet bound (older format)"
        return True, f"{path.name}: OK ({len(j.lines)} lines{note})"

    def _legacy_only(self, pid: str) -> bool:
        return (self.patients_dir / f"{pid}.json").exists() and not self.journal_files(pid)

    def newest_verified_backup(
        self, pid: str, *, validate: Callable[[dict[str, Any]], object]
    ) -> Path | None:
        """The newest backup of the own journal that verifies, or ``None``.

        A patient still in the old single-file format (it failed to load, so it was never
        migrated) is offered its old-format backup.
        """
        if self._legacy_only(pid):
            from bedside.clinical.record import validate_envelope

            return self.legacy.newest_verified_backup(pid, validate=validate_envelope)
        for path in self.backups(pid):
            if self.verify_file(path, validate=validate)[0]:
                return path
        return None

    def restore_backup(
        self, pid: str, backup: Path, *, validate: Callable[[dict[str, Any]], object]
    ) -> str:
        """Replace the own journal with a verified backup (the current one goes to quarantine).

        An old-format backup restores the old single file (under the old per-folder lock,
        held just for the restore); the next load migrates it.
        """
        self._require_lock()
        if Path(backup).suffix == ".json" and self._legacy_only(pid):
            from bedside.clinical.record import validate_envelope

            self.legacy.acquire_writer_lock()
            try:
                return self.legacy.restore_backup(pid, backup, validate=validate_envelope)
            finally:
                self.legacy.release_writer_lock()
        ok, problem = self.verify_file(backup, validate=validate)
        if not ok:
            raise CorruptDataError(problem)
        data = Path(backup).read_bytes()
        path = self.own_journal(pid)
        current = self._read(path)
        if current and current != data and self._quarantine_copy(pid, current, "replaced") is None:
            # The journal being replaced is kept, never lost: no copy, no restore.
            raise StorageError(
                "the current journal could not be copied to quarantine; nothing was restored"
            )
        atomic_write(path, data, ops=self._ops)
        self._set_aside_later_backups(pid, data)
        with contextlib.suppress(FileNotFoundError):
            (self.quarantine_dir / f"{pid}.blocked").unlink()
        self._blocked.discard(pid)
        self._dirty.add(pid)
        logger.warning("own journal of %s restored from a backup", patient_hash(pid))
        return _sha(data)

    def _set_aside_later_backups(self, pid: str, restored: bytes) -> None:
        """Move to quarantine the own backups that hold more than the restored journal.

        Those are the lines the restore took back: they are kept (never deleted), but no
        longer stand as this journal's history, which ``verify`` would otherwise report as
        events VANISHED after every restore from an older backup. A backup that cannot be
        copied stays where it is (``verify`` then names it): nothing is lost either way.
        """
        for b in sorted((self.backups_dir / pid).glob("bk-*.jsonl")):
            data = self._read(b)
            if restored.startswith(data):
                continue  # already part of the restored journal: still its history
            if self._quarantine_copy(pid, data, "after-restore-backup") is None:
                continue
            with contextlib.suppress(OSError):
                b.unlink()
            logger.warning("a later backup of %s set aside after a restore", patient_hash(pid))

    def quarantined_copies(self, pid: str) -> list[Path]:
        """Quarantined journal copies of ``pid``."""
        return sorted(self.quarantine_dir.glob(f"{validate_patient_id(pid)}.*.jsonl"), reverse=True)

    # ------------------------------------------------------------------ export

    def envelope_bytes(self, pid: str) -> bytes:
        """The merged record as an old-format patient file (checksummed; for export/transfer)."""
        from bedside.clinical.record import envelope_json, event_to_json
        from bedside.store.storage import encode_envelope

        loaded = self.load(pid, validate=lambda d: d)
        record: Record = loaded.value
        events = [event_to_json(e) for e in record.events]
        return encode_envelope(envelope_json(record, events))

    def iter_journal_lines(self, pid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(workstation, body) of every sound line of every journal of ``pid``."""
        for j in self.read_journals(pid):
            for body in j.lines:
                yield j.workstation, body


def _lost_since(older: Journal, now_by_id: dict[str, dict[str, Any]], name: str) -> list[str]:
    """Events a backup journal holds that the journals lost or changed (as ``verify`` words
    them; ``origin`` aside, as in the merge)."""
    events = [b["event"] for b in older.lines if b["t"] == "event"]
    return events_lost_since(events, now_by_id, name, "the journals", ignore=_NOT_CONTENT)


def verify_ward_folder(root: Path) -> tuple[bool, list[str]]:
    """Check every journal and journal backup of a ward folder, read-only.

    Returns (all sound, one line per patient plus one per problem). Patients are named by
    id (as the old ``verify`` does for file names); no field values are printed.
    """
    root = Path(root)
    lines: list[str] = []
    ok = True
    journals_dir = root / JOURNALS_DIR
    if not journals_dir.is_dir():
        return True, lines
    for pdir in sorted(p for p in journals_dir.iterdir() if p.is_dir()):
        pid = pdir.name
        if _PATIENT_RE.fullmatch(pid) is None:
            continue
        parsed: list[Journal] = []
        problems: list[str] = []
        notes: list[str] = []
        for path in sorted(pdir.iterdir()):
            if not is_journal_name(path.name):
                continue
            j = parse_journal(path.read_bytes(), path.stem, f"{pid}/{path.name}", pid)
            if j.problem:
                problems.append(j.problem)
            if j.torn:
                notes.append(f"{path.stem}: unfinished last line ignored ({len(j.torn)} bytes)")
            parsed.append(j)
        events = 0
        if not problems:
            try:
                merged = merge_journals(parsed, pid, pid)
                record = build_record(pid, merged, pid) if merged.header else None
                if record is None:
                    problems.append("no workstation has sent the patient's admission yet")
                else:
                    events = len(record.events)
                    waiting = pending(record)
                    if waiting:
                        notes.append(f"{len(waiting)} correction(s) waiting for their event")
            except CorruptDataError as exc:
                problems.append(str(exc))
        bad_backups = []
        n_backups = 0
        now_by_id = {
            e["id"]: e for j in parsed for b in j.lines if b["t"] == "event" for e in [b["event"]]
        }
        for bdir in sorted((root / "backups").glob(f"*/{pid}")):
            for b in sorted(bdir.glob("bk-*.jsonl")):
                n_backups += 1
                older = parse_journal(b.read_bytes(), bdir.parent.name, b.name, pid)
                if older.problem:
                    bad_backups.append(f"{bdir.parent.name}/{b.name}")
                else:
                    # Issue 12: every event a backup holds is still in the journals, unchanged
                    # (a removal or edit whose line hashes were recomputed is found this way).
                    problems.extend(_lost_since(older, now_by_id, f"{bdir.parent.name}/{b.name}"))
            # Append-only: a journal must still begin with every verified copy of itself.
            journal = pdir / f"{bdir.parent.name}{JOURNAL_SUFFIX}"
            current = journal.read_bytes() if journal.exists() else b""
            newest = sorted(bdir.glob("bk-*.jsonl"))[-1:]
            for b in newest:
                if not current.startswith(b.read_bytes()):
                    problems.append(
                        f"{bdir.parent.name}: journal no longer holds everything its backup "
                        f"{b.name} holds (lines lost or changed)"
                    )
        if bad_backups:
            problems.append(f"{len(bad_backups)} backup(s) fail verification: {bad_backups[:3]}")
        who = ", ".join(j.workstation for j in parsed)
        legacy = [j.workstation for j in parsed if j.binding == "legacy"]
        if problems:
            ok = False
            lines.append(f"FAIL journals/{pid}: " + "; ".join(problems))
        else:
            bound = (
                f"not yet bound (older format): {', '.join(legacy)} — bound on its next save"
                if legacy
                else "bound to the patient"
            )
            lines.append(
                f"OK   journals/{pid}: {events} events from {who}, hash chains intact, {bound}, "
                f"{n_backups} verified backup(s)" + (f" ({'; '.join(notes)})" if notes else "")
            )
    return ok, lines


__all__ = [
    "JOURNALS_DIR",
    "Journal",
    "JournalStore",
    "encode_line",
    "is_journal_name",
    "journal_genesis",
    "merge_journals",
    "parse_journal",
    "pending",
    "verify_ward_folder",
]

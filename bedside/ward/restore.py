"""Restore a patient whose file cannot be loaded from one of its verified backups.

What the nurse (``Restore from backup…``) and ``python -m bedside restore`` use:

* :func:`list_backups` lists every backup of a patient, newest first, with the time it
  holds the record up to (aware UTC), how many events it holds and whether it verifies.
  "Verifies" means more than an intact file: the record a restore would give (this
  backup as this workstation's journal, merged with the other workstations' journals;
  or the old single file) is built and checked exactly as loading would, and must be
  displayable. Nothing is written.
* :func:`restore` puts a chosen, verified backup back, then appends a ``restored`` event
  (who, from which backup, when) so the dose history reads "history incomplete" until
  someone confirms it: entries charted after the backup was taken may be missing. The
  damaged file is kept in quarantine, never deleted. Nothing is written when the ward is
  read-only, the patient loads normally, the initials are not valid or the chosen backup
  does not verify.

Backups live per workstation journal (``backups/<workstation>/<id>/bk-*.jsonl``) and, for
a patient still in the old single-file format, per data directory
(``backups/<id>/bk-*.json``); see :mod:`bedside.store.journal` and :mod:`bedside.store.storage`.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bedside.clinical.record import INITIALS_PATTERN, EventBase, Record, validate_envelope
from bedside.common.errors import BedsideError, CorruptDataError, InputError, StorageError
from bedside.store.journal import (
    JOURNAL_SUFFIX,
    Journal,
    build_record,
    merge_journals,
    parse_journal,
)
from bedside.store.storage import decode_envelope, patient_hash, validate_patient_id

if TYPE_CHECKING:
    from bedside.ward.service import Ward

logger = logging.getLogger(__name__)

_JOURNAL_BACKUP_RE = re.compile(r"bk-(\d{6,})-(\d{8}T\d{6}Z)\.jsonl")
_FILE_BACKUP_RE = re.compile(r"bk-(\d{6,})-(\d{8}T\d{6}Z)\.json")
_STAMP = "%Y%m%dT%H%M%SZ"

EXIT_OK = 0
"""Listed, or restored."""
EXIT_REFUSED = 1
"""Refused, nothing written: the patient loads normally, no backup (verifies), read-only."""
EXIT_USAGE = 2
"""Bad command line, id, backup name or initials; ward locked or not a data directory."""


class RestoreRefused(BedsideError):
    """The restore is not possible as asked (nothing was written): the patient loads
    normally, or no backup exists or verifies."""


@dataclass(frozen=True)
class BackupChoice:
    """One backup of a patient, as the nurse chooses it.

    Attributes:
        name: The file name (what ``--backup`` takes).
        path: Where it is.
        kind: ``journal`` (this workstation's journal) or ``single file`` (old format).
        taken_at: The time the backup holds the record up to (aware UTC; the last line
            written for a journal backup, the name's stamp for an old-format one), or
            ``None`` when it cannot be told.
        events: Events the backup holds (``None`` when it cannot be read).
        verified: The record a restore would give loads and can be displayed.
        problem: Why it does not verify (empty when it does).
        patient_name: The name in the backup's header (shown to the nurse, never logged).
    """

    name: str
    path: Path
    kind: Literal["journal", "single file"]
    taken_at: datetime | None
    events: int | None
    verified: bool
    problem: str = ""
    patient_name: str = ""


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore` did: the backup used and the ``restored`` event written."""

    backup: BackupChoice
    event: EventBase


# --------------------------------------------------------------------------- listing


def _stamp_of(name: str, pattern: re.Pattern[str]) -> datetime | None:
    m = pattern.fullmatch(name)
    return datetime.strptime(m[2], _STAMP).replace(tzinfo=UTC) if m else None


def _last_written(j: Journal) -> datetime | None:
    """The UTC time the journal's last sound line was written (``None`` if unknown)."""
    for body in reversed(j.lines):
        at = body.get("at")
        if isinstance(at, str) and at:
            try:
                when = datetime.fromisoformat(at)
            except ValueError:
                return None
            return when.astimezone(UTC) if when.tzinfo else None
    return None


def _displayable(ward: Ward, record: Record) -> str:
    """Why ``record`` could not be shown ('' when it can)."""
    problem = ward._underivable(record)
    return f"the record it gives cannot be displayed either ({problem})" if problem else ""


def _choice(
    path: Path,
    kind: Literal["journal", "single file"],
    taken: datetime | None,
    events: int | None,
    problem: str,
    name: str,
) -> BackupChoice:
    """One listed backup: verified exactly when no problem was found."""
    return BackupChoice(
        name=path.name,
        path=path,
        kind=kind,
        taken_at=taken,
        events=events,
        verified=not problem,
        problem=problem,
        patient_name=name,
    )


def _journal_choice(ward: Ward, pid: str, path: Path) -> BackupChoice:
    """Check a journal backup as the own journal merged with the other workstations'."""
    store = ward.store
    own_ws = store.workstation
    taken = _stamp_of(path.name, _JOURNAL_BACKUP_RE)

    def choice(events: int | None, problem: str = "", name: str = "") -> BackupChoice:
        return _choice(path, "journal", taken, events, problem, name)

    try:
        data = path.read_bytes()
    except OSError as exc:
        return choice(None, f"cannot be read ({type(exc).__name__})")
    backup = parse_journal(data, own_ws, path.name, pid)
    if backup.problem:
        return choice(None, backup.problem)
    taken = _last_written(backup) or taken
    events = sum(1 for b in backup.lines if b["t"] == "event")
    journals = [backup]
    for other in store.journal_files(pid):
        ws = other.name[: -len(JOURNAL_SUFFIX)]
        if ws == own_ws:
            continue
        try:
            peer = parse_journal(other.read_bytes(), ws, f"workstation {ws}'s journal", pid)
        except OSError as exc:
            return choice(events, f"workstation {ws}'s journal cannot be read ({exc.strerror})")
        if peer.problem:
            return choice(
                events,
                f"workstation {ws}'s journal of this patient is damaged: it must be restored "
                f"on {ws} (this backup cannot repair it)",
            )
        journals.append(peer)
    try:
        merged = merge_journals(journals, path.name, pid)
        if merged.header is None:
            return choice(events, "it does not hold the patient's admission")
        record = build_record(pid, merged, path.name)
    except CorruptDataError as exc:
        return choice(events, str(exc))
    return choice(events, _displayable(ward, record), record.patient.name)


def _file_choice(ward: Ward, path: Path) -> BackupChoice:
    """Check an old-format backup exactly as loading the patient file would."""
    taken = _stamp_of(path.name, _FILE_BACKUP_RE)

    def choice(events: int | None, problem: str = "", name: str = "") -> BackupChoice:
        return _choice(path, "single file", taken, events, problem, name)

    try:
        data = path.read_bytes()
    except OSError as exc:
        return choice(None, f"cannot be read ({type(exc).__name__})")
    try:
        _raw, record = decode_envelope(data, source=path.name, validate=validate_envelope)
    except BedsideError as exc:
        return choice(None, str(exc))
    return choice(len(record.events), _displayable(ward, record), record.patient.name)


def _legacy_only(ward: Ward, pid: str) -> bool:
    store = ward.store
    return (store.patients_dir / f"{pid}.json").exists() and not store.journal_files(pid)


def list_backups(ward: Ward, pid: str) -> list[BackupChoice]:
    """Every backup of ``pid`` on this workstation, newest first, each checked (read-only).

    Raises:
        InputError: ``pid`` is not a valid patient id.
    """
    validate_patient_id(pid)
    if _legacy_only(ward, pid):
        return [_file_choice(ward, p) for p in ward.store.legacy.backups(pid)]
    return [_journal_choice(ward, pid, p) for p in ward.store.backups(pid)]


def needs_restore(ward: Ward, pid: str) -> bool:
    """Whether ``pid`` is set aside: its file failed to load, cannot be displayed or is
    blocked in quarantine (a restore is offered only then)."""
    return pid in ward.failures or pid not in ward.records or ward.store.is_quarantined(pid)


# --------------------------------------------------------------------------- restoring


def _initials(value: str) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if not re.fullmatch(INITIALS_PATTERN, text):
        raise InputError("recorded_by: enter your initials (2 to 6 letters); nothing was restored")
    return text


def choose(
    ward: Ward,
    pid: str,
    *,
    recorded_by: str,
    backup: str | None = None,
    set_aside: bool = False,
) -> tuple[str, BackupChoice]:
    """Every check :func:`restore` makes before writing, on a ward open read-only or not.

    Returns the normalised initials and the verified backup to restore. Writes nothing.

    Raises:
        InputError: Bad initials, unknown patient or backup name.
        RestoreRefused: The patient loads normally, or no backup exists or verifies.
        CorruptDataError: The chosen backup does not verify.
    """
    initials = _initials(recorded_by)
    choices = list_backups(ward, pid)
    known = pid in ward.records or pid in ward.failures or bool(choices)
    if not known:
        raise InputError(f"patient: no patient with id {pid!r} in this ward; nothing was restored")
    if not set_aside and not needs_restore(ward, pid):
        raise RestoreRefused(
            f"patient {pid} loads normally; restoring a backup would drop everything charted "
            "since it was taken. Nothing was restored"
        )
    if not choices:
        raise RestoreRefused(
            "no backup of this patient exists on this workstation; nothing was restored (tell "
            "the ward manager: the damaged file is kept in quarantine)"
        )
    if backup is None:
        chosen = next((c for c in choices if c.verified), None)
        if chosen is None:
            raise RestoreRefused(
                "no backup of this patient verifies; nothing was restored (tell the ward "
                "manager: the damaged file is kept in quarantine)"
            )
    else:
        found = [c for c in choices if c.name == backup]
        if not found:
            raise InputError(
                f"backup: no backup named {backup!r} for this patient (list them with --list); "
                "nothing was restored"
            )
        chosen = found[0]
    if not chosen.verified:
        raise CorruptDataError(
            f"backup {chosen.name} does not verify ({chosen.problem}); nothing was restored"
        )
    return initials, chosen


def restore(
    ward: Ward,
    pid: str,
    *,
    recorded_by: str,
    backup: str | None = None,
    set_aside: bool = False,
) -> RestoreResult:
    """Restore ``pid`` from the backup named ``backup`` (default: the newest verified one).

    ``set_aside``: the screen could not display the patient although its file loaded (the
    restore is then allowed for a patient the core itself holds as loaded).

    Raises:
        StorageError: The ward is read-only, or a write failed (then the message says
            what is on disk).
        InputError: Bad initials, unknown patient or backup name.
        RestoreRefused: The patient loads normally, or no backup exists or verifies.
        CorruptDataError: The chosen backup does not verify (nothing written).
    """
    if ward.read_only:
        why = f" ({ward.read_only_reason})" if ward.read_only_reason else ""
        raise StorageError(
            f"this ward is open read-only{why}: nothing was restored. Restore from a "
            "workstation that can save to the ward folder"
        )
    initials, chosen = choose(
        ward, pid, recorded_by=recorded_by, backup=backup, set_aside=set_aside
    )
    store = ward.store
    store.restore_backup(pid, chosen.path, validate=validate_envelope)
    try:
        loaded = store.load(pid, validate=validate_envelope)
    except BedsideError as exc:
        ward.failures[pid] = f"restored from {chosen.name} but it does not load: {exc}"
        raise
    ward.records[pid] = loaded.value
    ward.tokens[pid] = loaded.token
    ward._keep_events_json(pid, loaded.raw["events"])
    ward.failures.pop(pid, None)
    try:
        event = ward._append(pid, "restored", recorded_by=initials, backup_name=chosen.name)
    except BedsideError as exc:
        # Without its "restored" event the record would read as a complete dose history:
        # never shown that way. The restored file stays; the nurse can try again.
        ward.records.pop(pid, None)
        ward.tokens.pop(pid, None)
        ward._json_cache.pop(pid, None)
        ward.failures[pid] = (
            f"restored from backup {chosen.name}, but marking its history incomplete failed "
            f"({exc}); try the restore again"
        )
        raise StorageError(
            f"the backup was put back but its 'history incomplete' mark could not be saved "
            f"({exc}); the patient stays set aside: try again"
        ) from exc
    logger.warning("patient %s restored from a backup", patient_hash(pid))
    return RestoreResult(backup=chosen, event=event)


# --------------------------------------------------------------------------- command line


def _when(dt: datetime | None) -> str:
    from bedside.common.timeutil import format_local

    return format_local(dt) if dt is not None else "time unknown"


def describe(choice: BackupChoice) -> str:
    """One line for a backup: name, local time with zone, events, verified yes/no."""
    verified = "verified: yes" if choice.verified else f"verified: NO — {choice.problem}"
    return f"{choice.name}  {_when(choice.taken_at)}  {events_text(choice)}  {verified}"


def events_text(choice: BackupChoice) -> str:
    """``12 events``, ``1 event`` or ``events unknown``."""
    if choice.events is None:
        return "events unknown"
    return f"{choice.events} event{'' if choice.events == 1 else 's'}"


def main(argv: list[str]) -> int:
    """``python -m bedside restore --data-dir D PATIENT_ID [--list | --backup NAME --by AB]``."""
    from bedside.common.clock import SystemClock
    from bedside.common.errors import LockedError
    from bedside.store.paths import resolve_data_dir
    from bedside.ward.service import open_ward

    parser = argparse.ArgumentParser(
        prog="python -m bedside restore",
        description=(
            "Restore a patient whose file cannot be loaded from one of its verified backups. "
            "The damaged file is kept in quarantine; the record is marked 'history incomplete'."
        ),
    )
    parser.add_argument("patient_id", help="the patient's id (as 'verify' names it)")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the backups (changes nothing)")
    what.add_argument("--backup", metavar="NAME", help="the backup to restore (from --list)")
    parser.add_argument("--by", metavar="INITIALS", help="your initials (needed to restore)")
    ns = parser.parse_args(argv)
    if ns.backup is not None and not ns.by:
        sys.stderr.write("error: --by: give your initials to restore; nothing was restored\n")
        return EXIT_USAGE
    root = resolve_data_dir(ns.data_dir)
    if not (root / "journals").is_dir() and not (root / "patients").is_dir():
        sys.stderr.write(f"error: {root} is not a Bedside data directory; nothing was changed\n")
        return EXIT_USAGE
    clock = SystemClock()
    # Every check runs on a read-only ward first: a refusal writes nothing at all (a
    # writable open would already write the heartbeat and quarantine the damaged file).
    try:
        viewer = open_ward(root, clock, read_only=True)
    except BedsideError as exc:
        sys.stderr.write(f"error: cannot open the data directory: {exc}. Nothing was changed.\n")
        return EXIT_USAGE
    try:
        if ns.list:
            return _list(viewer, ns.patient_id)
        choose(viewer, ns.patient_id, recorded_by=ns.by, backup=ns.backup)
    except InputError as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return EXIT_USAGE
    except BedsideError as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return EXIT_REFUSED
    finally:
        viewer.close()
    try:
        ward = open_ward(root, clock)
    except LockedError as exc:
        sys.stderr.write(
            f"refused: {exc}.\nClose Bedside on this workstation, or restore from the running "
            "application (double-click the patient's row on the board). Nothing was changed.\n"
        )
        return EXIT_USAGE
    except BedsideError as exc:
        sys.stderr.write(f"error: cannot open the data directory: {exc}. Nothing was changed.\n")
        return EXIT_USAGE
    try:
        result = restore(ward, ns.patient_id, recorded_by=ns.by, backup=ns.backup)
    except InputError as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return EXIT_USAGE
    except BedsideError as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return EXIT_REFUSED
    finally:
        ward.close()
    sys.stdout.write(
        f"restored {ns.patient_id} from {result.backup.name} "
        f"({_when(result.backup.taken_at)}, {result.backup.events} events) by "
        f"{result.event.recorded_by}. The dose history is marked incomplete: entries "
        "charted after the backup may be missing — check the MAR and confirm the history. "
        "The damaged file is kept in quarantine.\n"
    )
    return EXIT_OK


def _list(ward: Ward, pid: str) -> int:
    """``--list``: the patient's state and one line per backup (exit 1 when there is none)."""
    choices = list_backups(ward, pid)
    state = ward.failures.get(pid)
    if state is not None:
        sys.stdout.write(f"{pid}: set aside — {state}\n")
    elif pid in ward.records:
        sys.stdout.write(f"{pid}: loads normally (no restore needed)\n")
    if not choices:
        sys.stdout.write("no backups of this patient on this workstation\n")
        return EXIT_REFUSED
    sys.stdout.writelines(describe(c) + "\n" for c in choices)
    return EXIT_OK


__all__ = [
    "BackupChoice",
    "RestoreRefused",
    "RestoreResult",
    "choose",
    "describe",
    "events_text",
    "list_backups",
    "needs_restore",
    "restore",
]

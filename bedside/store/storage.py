"""Crash-safe JSON file store for patient records (generic; knows nothing of the record model).

Layout of a data directory ``DIR``::

    DIR/bedside.lock              OS-level writer lock (filelock: flock on POSIX, msvcrt on Windows)
    DIR/bedside.lock.info         who holds the lock: pid, hostname, started_at (UTC), app
    DIR/patients/<id>.json        one file per patient (the "envelope")
    DIR/backups/<id>/bk-<seq>-<UTC stamp>.json   rotating, verified backups
    DIR/backups/<id>/<id>.v<k>.json              original bytes before migrating from v<k>
    DIR/quarantine/<id>.corrupt-<UTC stamp>.json copies of files that failed to load
    DIR/quarantine/<id>.blocked                  marker: saves of <id> refused until a restore

Guarantees and how they are met (see shared/reference/reliability.md §1):

* **Atomic, durable writes** (:func:`atomic_write`): temp file in the same directory
  created with ``O_EXCL`` and mode 0600, all bytes written, ``fsync`` (``F_FULLFSYNC`` on
  macOS), ``os.replace`` (bounded retry on Windows sharing/lock/access-denied errors),
  then ``fsync`` of the directory (POSIX). After any failure the file is byte-identical to
  the old *or* the new version, never a mix, and no temp file is left behind (a process
  kill can leave one; :meth:`DataDir.sweep_temp_files` removes them at the next start).
* **Ambiguous commits**: if the directory fsync fails after the rename, the new bytes may
  be on disk; :class:`AmbiguousWriteError` (``ambiguous=True``) says so. Saves are
  idempotent: retrying :meth:`DataDir.save` with the same envelope succeeds when the file
  already holds exactly those bytes, even though the file's token no longer matches the
  caller's ``expected_token``; the envelope is written once, so no event is duplicated.
* **Integrity**: every file carries a SHA-256 of its canonical content under the reserved
  top-level key :data:`CHECKSUM_KEY`. A bit flip anywhere is detected instead of being
  accepted as a different but plausible value. The key is added by :func:`encode_envelope`
  and removed before the caller's ``validate`` sees the dict.
* **Strict loading**: :func:`bedside.common.jsonio.strict_loads` (no BOM, no duplicate keys, no
  NaN/Infinity), integrity check, ``schema_version`` check and step-wise
  :data:`MIGRATIONS`, then the caller's ``validate``. Any failure copies the bytes to
  ``quarantine/`` (the original stays exactly where it was) and blocks saves of that
  patient until :meth:`DataDir.restore_backup` is used.
* **Single writer**: :meth:`DataDir.acquire_writer_lock` takes a non-blocking OS lock via
  the ``filelock`` package. The OS drops the lock when the holding process dies for any
  reason (crash, SIGKILL, power loss), so there is never a stale lock to clean up: after a
  crash the next start simply acquires it. Writes (save, restore, sweep) require the lock.
* **Optimistic concurrency**: a save names the token (SHA-256 of the file bytes) it loaded;
  if the file changed since, :class:`~bedside.common.errors.ConcurrentModificationError`.
* **Privacy**: logs and exception messages name patients only by ``id#`` + the first 8 hex
  digits of the SHA-256 of the id (:func:`patient_hash`), never the id itself. On POSIX
  directories are 0700 and files 0600 regardless of umask.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import filelock

from bedside import APP_NAME, __version__
from bedside.common.clock import Clock
from bedside.common.errors import (
    ConcurrentModificationError,
    CorruptDataError,
    InputError,
    LockedError,
    MigrationError,
    SchemaTooNewError,
    StorageError,
)
from bedside.common.jsonio import dumps_canonical, dumps_compact, strict_loads
from bedside.common.logsafe import patient_hash

logger = logging.getLogger(__name__)

T = TypeVar("T")

CURRENT_SCHEMA: int = 1
"""The ``schema_version`` this build writes."""

MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""``MIGRATIONS[k]`` turns a version-``k`` envelope into a version-``k + 1`` one.

Each step is a pure ``dict -> dict`` function (it gets a deep copy) and must set
``schema_version`` to ``k + 1``. Empty while :data:`CURRENT_SCHEMA` is 1.
"""

CHECKSUM_KEY = "_sha256"
"""Reserved top-level key holding the SHA-256 of the file's canonical content."""

PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_PATIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
WINDOWS_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(10)]
    + [f"LPT{i}" for i in range(10)]
    + ["COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³", "CONIN$", "CONOUT$"]
)
"""Windows device names: a file ``NUL.json`` cannot be created there, so never an id."""


LOCK_FILE_NAME = "bedside.lock"
LOCK_INFO_NAME = "bedside.lock.info"
PATIENTS_DIR = "patients"
BACKUPS_DIR = "backups"
QUARANTINE_DIR = "quarantine"

LOW_SPACE_BYTES = 200 * 2**20
"""Below this much free space on the data directory's disk, a warning is shown."""

DEFAULT_BACKUP_INTERVAL = timedelta(minutes=10)
DEFAULT_BACKUP_KEEP = 20

REPLACE_ATTEMPTS = 10
"""How many times :func:`atomic_write` tries ``os.replace`` on transient Windows errors."""
REPLACE_BACKOFF_S = 0.025
"""Linear backoff step between replace attempts (25 ms, 50 ms, ...; ≈1.1 s in total)."""

# ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION: an antivirus scanner,
# the search indexer or a reader without FILE_SHARE_DELETE holds the target open.
_TRANSIENT_WINERRORS = frozenset({5, 32, 33})
_TEMP_MARK = ".tmp-"
_IS_POSIX = os.name == "posix"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_BACKUP_RE = re.compile(r"bk-(\d{6,})-(\d{8}T\d{6}Z)\.json")

_F_FULLFSYNC: int | None = None
if sys.platform != "win32":
    import fcntl

    if sys.platform == "darwin":  # pragma: no cover - macOS only
        _F_FULLFSYNC = getattr(fcntl, "F_FULLFSYNC", None)


__all__ = [
    "CHECKSUM_KEY",
    "CURRENT_SCHEMA",
    "MIGRATIONS",
    "AmbiguousWriteError",
    "DataDir",
    "DataDirRefusedError",
    "FileOps",
    "Loaded",
    "PatientNotFoundError",
    "QuarantinedError",
    "atomic_write",
    "check_data_dir",
    "encode_envelope",
    "is_data_dir",
    "not_a_data_dir",
    "patient_hash",
    "validate_patient_id",
]


# --------------------------------------------------------------------------- errors


class AmbiguousWriteError(StorageError):
    """The rename landed but making it durable failed: the NEW bytes may be on disk.

    The caller must not assume the save failed; it should retry the same save (which is
    idempotent) or reload and reconcile.
    """

    ambiguous: bool = True


class DataDirRefusedError(StorageError):
    """The data directory must not be used at all (never opened read-only instead)."""


class PatientNotFoundError(StorageError):
    """There is no stored file for the requested patient."""


class QuarantinedError(CorruptDataError):
    """Saves of this patient are blocked because its file failed to load.

    Cleared only by :meth:`DataDir.restore_backup`.
    """


def _storage_error(message: str, *, ambiguous: bool = False) -> StorageError:
    err: StorageError = AmbiguousWriteError(message) if ambiguous else StorageError(message)
    err.ambiguous = ambiguous
    return err


# --------------------------------------------------------------------------- ids and hashes


def validate_patient_id(patient_id: str) -> str:
    """Check that ``patient_id`` is filename-safe (``^[A-Za-z0-9_-]{1,64}$``).

    Args:
        patient_id: The candidate id.

    Returns:
        The id unchanged.

    Raises:
        InputError: The id is not a string or does not match the pattern. The message
            does not repeat the id.
    """
    if not isinstance(patient_id, str) or _PATIENT_ID_RE.fullmatch(patient_id) is None:
        length = len(patient_id) if isinstance(patient_id, str) else None
        raise InputError(
            f"patient_id must match {PATIENT_ID_PATTERN} (got a {type(patient_id).__name__}"
            + (f" of length {length})" if length is not None else ")")
        )
    if patient_id.upper() in WINDOWS_RESERVED_NAMES:
        raise InputError("patient_id: a Windows device name (CON, NUL, COM1…) cannot be an id")
    return patient_id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("clock returned a naive datetime")
    return when.astimezone(UTC).strftime(_STAMP_FORMAT)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- low-level I/O


class FileOps:
    """The system calls a write is made of; tests subclass it to inject failures.

    Every method is a thin wrapper so a test can fail exactly one step (``open``,
    ``write``, ``fsync``, ``replace``, ``fsync_dir`` ...) with a chosen errno.
    """

    def open(self, path: str, flags: int, mode: int) -> int:
        """Wrap :func:`os.open`."""
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        """Wrap :func:`os.write`; may write fewer bytes than given."""
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        """Flush a file to stable storage (``F_FULLFSYNC`` on macOS when supported)."""
        if _F_FULLFSYNC is not None:  # pragma: no cover - macOS only
            try:
                fcntl.fcntl(fd, _F_FULLFSYNC)
            except OSError as exc:
                # Some filesystems (e.g. network ones) do not support it; plain fsync then.
                if exc.errno not in (errno.ENOTSUP, errno.EINVAL, errno.ENOTTY):
                    raise
            else:
                return
        os.fsync(fd)

    def close(self, fd: int) -> None:
        """Wrap :func:`os.close`."""
        os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        """Wrap :func:`os.replace` (never a copy-and-delete fallback)."""
        os.replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        """Make renames/creations in directory ``path`` durable (no-op on Windows)."""
        if not _IS_POSIX:  # pragma: no cover - Windows cannot open a directory to fsync it
            return
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def unlink(self, path: str) -> None:
        """Wrap :func:`os.unlink`."""
        os.unlink(path)

    def sleep(self, seconds: float) -> None:
        """Wrap :func:`time.sleep` (used only for the Windows replace backoff)."""
        time.sleep(seconds)


_DEFAULT_OPS = FileOps()
_CREATE_FLAGS = (
    os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
)


def _write_all(ops: FileOps, fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = ops.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write returned no progress")
        view = view[written:]


def _is_transient_replace_error(exc: OSError) -> bool:
    return getattr(exc, "winerror", None) in _TRANSIENT_WINERRORS


def _replace_with_retry(ops: FileOps, src: str, dst: str) -> None:
    for attempt in range(1, REPLACE_ATTEMPTS + 1):
        try:
            ops.replace(src, dst)
        except OSError as exc:
            if attempt >= REPLACE_ATTEMPTS or not _is_transient_replace_error(exc):
                raise
            logger.warning(
                "replace attempt %d/%d failed (winerror %s); retrying",
                attempt,
                REPLACE_ATTEMPTS,
                getattr(exc, "winerror", None),
            )
            ops.sleep(REPLACE_BACKOFF_S * attempt)
        else:
            return


def _errno_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return f"{name}: {exc.strerror}" if exc.strerror else name
    return type(exc).__name__


def atomic_write(path: Path, data: bytes, *, ops: FileOps | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Writes a temp file ``.<name>.tmp-<random>`` in the same directory (``O_EXCL``, mode
    0600), writes every byte, fsyncs it (``F_FULLFSYNC`` on macOS), closes it, renames it
    over ``path`` (retrying transient Windows sharing/lock/access-denied errors up to
    :data:`REPLACE_ATTEMPTS` times with linear backoff) and finally fsyncs the directory
    on POSIX so the rename itself survives power loss.

    Args:
        path: The destination file.
        data: The complete new content.
        ops: System-call wrapper (tests inject failures); defaults to the real calls.

    Raises:
        StorageError: Any step before or during the rename failed. ``path`` is unchanged
            and the temp file has been removed. ``err.ambiguous`` is ``False``.
        AmbiguousWriteError: The rename succeeded but the directory fsync failed, so the
            new content may or may not survive a power cut (``err.ambiguous`` is ``True``).
    """
    ops = ops or _DEFAULT_OPS
    path = Path(path)
    directory = path.parent
    tmp = directory / f".{path.name}{_TEMP_MARK}{os.urandom(6).hex()}"
    fd: int | None = None
    created = False
    try:
        fd = ops.open(str(tmp), _CREATE_FLAGS, _FILE_MODE)
        created = True
        if _IS_POSIX:
            os.fchmod(fd, _FILE_MODE)  # exact mode whatever the umask
        _write_all(ops, fd, data)
        ops.fsync(fd)
        closing, fd = fd, None
        ops.close(closing)
        _replace_with_retry(ops, str(tmp), str(path))
    except BaseException as exc:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, Exception):
            raise _storage_error(f"could not write {path.name}: {_errno_text(exc)}") from exc
        raise
    try:
        ops.fsync_dir(str(directory))
    except OSError as exc:
        raise _storage_error(
            f"wrote {path.name} but could not make the rename durable "
            f"({_errno_text(exc)}); the new content may be on disk",
            ambiguous=True,
        ) from exc


def _write_new_file(ops: FileOps, directory: Path, names: Iterable[str], data: bytes) -> Path:
    """Create a NEW file (``O_EXCL``) under the first free name; never overwrites.

    Used for quarantine copies and pre-migration backups, which must never replace an
    existing file. A crash can leave a partial file here; that is harmless because the
    source it was copied from is left untouched.
    """
    for name in names:
        path = directory / name
        try:
            fd = ops.open(str(path), _CREATE_FLAGS, _FILE_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _storage_error(f"could not create {name}: {_errno_text(exc)}") from exc
        try:
            if _IS_POSIX:
                os.fchmod(fd, _FILE_MODE)
            _write_all(ops, fd, data)
            ops.fsync(fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            if isinstance(exc, Exception):
                raise _storage_error(f"could not write {name}: {_errno_text(exc)}") from exc
            raise
        try:
            ops.close(fd)
            ops.fsync_dir(str(directory))
        except OSError as exc:
            raise _storage_error(f"could not finish {name}: {_errno_text(exc)}") from exc
        return path
    raise _storage_error(f"no free file name in {directory.name}/")


def _unique_names(stem: str, suffix: str) -> Iterator[str]:
    yield f"{stem}{suffix}"
    for n in range(2, 1000):
        yield f"{stem}-{n}{suffix}"


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _ensure_private_dir(path: Path) -> bool:
    """Create ``path`` (mode 0700) if missing; return whether it was created here.

    Only a directory created here is chmod-ed (exactly 0700 whatever the umask). An
    existing one is never chmod-ed through a symbolic link: a symlink is refused
    (``OSError``), so nothing is ever written through one into another folder.
    """
    if path.is_symlink():
        raise OSError(errno.ELOOP, f"{path.name}/ is a symbolic link; refused")
    try:
        path.mkdir(mode=_DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise OSError(errno.ENOTDIR, f"{path.name} is not a directory") from None
        return False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)  # parents keep their default modes
        path.mkdir(mode=_DIR_MODE)
    if _IS_POSIX:
        os.chmod(path, _DIR_MODE)
    return True


_BEDSIDE_ENTRIES = frozenset(
    {
        "patients",
        "backups",
        "quarantine",
        "bedside.lock",
        "bedside.lock.info",
        "clock.json",
        # A ward folder of journals (issue 15); a workstation joining a replicated ward
        # may see only these before its first start.
        "journals",
        "workstations",
        "locks",
    }
)


def is_data_dir(root: Path) -> bool:
    """Whether ``root`` holds Bedside patients to read: old single files (``patients/``) or
    a ward folder's journals and heartbeats (``journals/``, ``workstations/``) — including a
    replicated ward folder this workstation has never opened (nothing of its own in it)."""
    return any((Path(root) / d).is_dir() for d in ("patients", "journals", "workstations"))


def not_a_data_dir(root: Path) -> str:
    """The message of the read-only commands for a folder that is not a data directory."""
    return (
        f"{root} is not a Bedside data directory (no patients/, journals/ or workstations/ folder)"
    )


def check_data_dir(root: Path) -> None:
    """Refuse a data directory that must never be used (nothing is created or changed).

    Refused: an empty path or the current directory given as ``""``, the filesystem
    root, the user's home directory, something that is not a directory, and a non-empty
    directory that holds none of a Bedside data directory's entries.

    Raises:
        StorageError: Saying why, in words a nurse or IT can act on.
    """
    text = str(root)
    if text.strip() in {"", "."}:
        raise DataDirRefusedError(
            "refused: the data directory path is empty (it would be the current folder); "
            "give a folder name"
        )
    try:
        resolved = Path(root).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise DataDirRefusedError(
            f"refused: the data directory cannot be resolved ({exc})"
        ) from exc
    if resolved.parent == resolved:
        raise DataDirRefusedError("refused: the data directory cannot be the filesystem root")
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        if resolved == Path.home().resolve():
            raise DataDirRefusedError(
                "refused: the data directory cannot be your home folder; use a folder of its own"
            )
    if not resolved.exists():
        return
    if not resolved.is_dir():
        raise DataDirRefusedError("refused: the data directory path is not a folder")
    try:
        entries = {e for e in os.listdir(resolved) if not e.startswith(".")}
    except OSError as exc:
        raise DataDirRefusedError(
            f"refused: the data directory cannot be read ({_errno_text(exc)})"
        ) from exc
    if entries and not entries & _BEDSIDE_ENTRIES:
        raise DataDirRefusedError(
            "refused: the folder is not empty and is not a Bedside data directory "
            "(no patients/ or journals/ folder); choose an empty folder or an existing ward"
        )


# --------------------------------------------------------------------------- envelope codec


def encode_envelope(envelope: dict[str, Any]) -> bytes:
    """Return the exact file bytes for ``envelope``: canonical JSON plus its checksum.

    The checksum (:data:`CHECKSUM_KEY`) is SHA-256 of the compact canonical JSON of the
    envelope without the checksum key, so it depends on the value only, not on formatting.

    Args:
        envelope: A JSON-native dict (must not contain :data:`CHECKSUM_KEY`).

    Returns:
        The UTF-8 file content.

    Raises:
        StorageError: The envelope is not a dict, uses the reserved key, or holds values
            JSON cannot represent (NaN, infinity, sets, datetimes, lone surrogates...).
    """
    if not isinstance(envelope, dict):
        raise _storage_error("envelope must be a dict")
    if CHECKSUM_KEY in envelope:
        raise _storage_error(f"envelope must not contain the reserved key {CHECKSUM_KEY!r}")
    try:
        body = dumps_compact(envelope)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _storage_error(f"envelope cannot be encoded as JSON ({type(exc).__name__})") from exc
    digest = _sha256(body)
    if body != b"{}" and all(key > CHECKSUM_KEY for key in envelope):
        # Fast path (one C-encoder pass): with sorted keys the checksum key comes first, so
        # the file is the compact body with the checksum spliced in front. Byte-identical to
        # dumps_compact({**envelope, CHECKSUM_KEY: digest}) + newline.
        return _CHECKSUM_PREFIX + digest.encode("ascii") + b'",' + body[1:] + b"\n"
    return dumps_compact({**envelope, CHECKSUM_KEY: digest}) + b"\n"


_CHECKSUM_PREFIX = b'{"' + CHECKSUM_KEY.encode("ascii") + b'":"'


def _checksum_ok(data: bytes, doc: dict[str, Any], digest: str) -> bool:
    """Whether ``digest`` is the SHA-256 of the compact canonical content (checksum key removed).

    Files written by :func:`encode_envelope` are exactly that content with the checksum
    spliced in front, so the fast path hashes the bytes themselves (no re-encoding). Any
    other layout (e.g. a file re-indented by hand) falls back to re-encoding the value, so
    the checksum depends on the value only.
    """
    head = len(_CHECKSUM_PREFIX) + 64
    if (
        data.startswith(_CHECKSUM_PREFIX)
        and data[head : head + 2] == b'",'
        and data.endswith(b"}\n")
        and _sha256(b"{" + data[head + 2 : -1]) == digest
    ):
        return True
    return _sha256(dumps_compact(doc)) == digest


def _open_envelope(data: bytes, source: str) -> tuple[dict[str, Any], int]:
    """Parse, check the version field and the checksum. Returns (doc without checksum, version)."""
    doc = strict_loads(data, source=source)
    if "schema_version" not in doc:
        raise CorruptDataError(f"{source}: has no schema_version")
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise CorruptDataError(f"{source}: schema_version is not an integer")
    if version > CURRENT_SCHEMA:
        raise SchemaTooNewError(
            f"{source}: written by a newer Bedside (schema_version {version}, this version "
            f"reads up to {CURRENT_SCHEMA})"
        )
    if version < 1:
        raise CorruptDataError(f"{source}: schema_version {version} is not valid")
    digest = doc.pop(CHECKSUM_KEY, None)
    if digest is None:
        raise CorruptDataError(f"{source}: has no integrity checksum ({CHECKSUM_KEY})")
    if not isinstance(digest, str) or not _checksum_ok(data, doc, digest):
        raise CorruptDataError(
            f"{source}: integrity checksum does not match the content "
            "(the file was damaged or edited outside Bedside)"
        )
    return doc, version


def _migrate(doc: dict[str, Any], version: int, source: str) -> dict[str, Any]:
    current = doc
    for step in range(version, CURRENT_SCHEMA):
        func = MIGRATIONS.get(step)
        if func is None:
            raise MigrationError(f"{source}: no migration from schema_version {step}")
        try:
            result = func(copy.deepcopy(current))
        except Exception as exc:
            raise MigrationError(
                f"{source}: migration {step}->{step + 1} failed ({type(exc).__name__})"
            ) from exc
        if not isinstance(result, dict) or result.get("schema_version") != step + 1:
            raise MigrationError(
                f"{source}: migration {step}->{step + 1} did not produce schema_version {step + 1}"
            )
        current = result
    return current


def _describe_exception(exc: Exception) -> str:
    """A short, input-free description of a validator failure."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        # pydantic.ValidationError: report locations and error types, never the input.
        try:
            items = errors(include_url=False, include_context=False, include_input=False)
        except TypeError:
            items = None
        if isinstance(items, list):
            parts = [
                ".".join(str(p) for p in item.get("loc", ())) + f" ({item.get('type', '?')})"
                for item in items[:5]
                if isinstance(item, dict)
            ]
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            return f"{len(items)} validation error(s): " + "; ".join(parts) + more
    text = str(exc)
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_validator(validate: Callable[[dict[str, Any]], T], doc: dict[str, Any], source: str) -> T:
    try:
        return validate(doc)
    except Exception as exc:
        raise CorruptDataError(f"{source}: fails validation ({_describe_exception(exc)})") from exc


def _decode(
    data: bytes, source: str, validate: Callable[[dict[str, Any]], T]
) -> tuple[dict[str, Any], T, int]:
    doc, version = _open_envelope(data, source)
    raw = _migrate(doc, version, source)
    return raw, _run_validator(validate, raw, source), version


def decode_envelope(
    data: bytes, *, source: str, validate: Callable[[dict[str, Any]], T]
) -> tuple[dict[str, Any], T]:
    """Decode patient-file bytes exactly as :meth:`DataDir.load` does, without any file I/O.

    Strict JSON, ``schema_version``, integrity checksum, migrations, then ``validate``. Used
    for files that come from elsewhere (import) and must pass the same checks.

    Raises:
        CorruptDataError: Any check failed (``SchemaTooNewError`` for a newer schema).
        MigrationError: A migration step is missing or failed.
    """
    raw, value, _ = _decode(data, source, validate)
    return raw, value


# --------------------------------------------------------------------------- data directory


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    """The result of :meth:`DataDir.load`.

    Attributes:
        value: What the caller's ``validate`` returned.
        raw: The (migrated) envelope dict, without the checksum key.
        token: SHA-256 hex of the bytes on disk; pass it to :meth:`DataDir.save`.
        migrated_from: The on-disk ``schema_version`` if a migration ran, else ``None``.
    """

    value: T
    raw: dict[str, Any]
    token: str
    migrated_from: int | None


@dataclass(frozen=True, slots=True)
class _BackupEntry:
    seq: int
    stamp: datetime
    path: Path


class WriterLock:
    """One OS lock file and its holder's details: the one-writer rule of both stores.

    The lock is ``filelock`` on ``lock_path`` (``flock``/``msvcrt.locking``), taken without
    waiting; the OS drops it when the process dies, however it dies, so a crash never leaves
    a stale lock. The holder writes who it is to ``info_path`` so a refused process can say
    who holds the lock (:meth:`holder`).
    """

    def __init__(self, lock_path: Path, info_path: Path, ops: FileOps) -> None:
        self.lock_path = lock_path
        self.info_path = info_path
        self._ops = ops
        self._lock: filelock.BaseFileLock | None = None
        self.info: dict[str, Any] | None = None

    def _new(self) -> filelock.BaseFileLock:
        return filelock.FileLock(
            str(self.lock_path),
            timeout=0,
            mode=_FILE_MODE,
            thread_local=False,
            fallback_to_soft=False,  # a soft (existence) lock would go stale after a crash
        )

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock is not None and self._lock.is_locked

    def read_info(self) -> dict[str, Any] | None:
        """The holder's details as written in ``info_path`` (None: missing or unreadable)."""
        try:
            return strict_loads(self.info_path.read_bytes(), source="lock info")
        except (OSError, CorruptDataError):
            return None

    def acquire(
        self,
        info: dict[str, Any],
        *,
        refused: Callable[[dict[str, Any] | None], LockedError],
        failed: Callable[[str], StorageError],
    ) -> None:
        """Take the lock and write ``info`` (no-op when already held).

        Raises:
            LockedError: from ``refused`` (given the holder's details) when another holds it.
            StorageError: from ``failed`` when the lock file cannot be created.
        """
        if self.held:
            return
        lock = self._new()
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = self.read_info()
            err = refused(holder)
            err.holder = holder  # type: ignore[attr-defined]
            raise err from None
        except OSError as exc:
            raise failed(_errno_text(exc)) from exc
        try:
            if _IS_POSIX:
                os.chmod(self.lock_path, _FILE_MODE)
            atomic_write(self.info_path, dumps_canonical(info), ops=self._ops)
        except BaseException:
            lock.release()
            raise
        self._lock, self.info = lock, info

    def release(self) -> None:
        """Release the lock if held (idempotent); its details file goes first."""
        lock, self._lock = self._lock, None
        if lock is None or not lock.is_locked:
            return
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        lock.release(force=True)
        self.info = None

    def holder(self, *, missing_means_free: bool = True) -> dict[str, Any] | None:
        """Who holds the lock: this object's details, another's (``{}`` when unknown), or None.

        ``missing_means_free``: a lock file that does not exist means nobody holds it (not
        probed, so nothing is created).
        """
        if self.held:
            return dict(self.info or {})
        if missing_means_free and not self.lock_path.exists():
            return None
        probe = self._new()
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:
            return self.read_info() or {}
        except OSError:
            return None
        probe.release(force=True)
        return None


class DataDir:
    """One Bedside data directory (see the module docstring for the layout).

    Not thread-safe: use one instance from one thread at a time (the app saves on a
    single worker thread). Two processes are kept apart by the writer lock.
    """

    def __init__(
        self,
        root: Path,
        *,
        clock: Clock,
        ops: FileOps | None = None,
        backup_interval: timedelta = DEFAULT_BACKUP_INTERVAL,
        backup_keep: int = DEFAULT_BACKUP_KEEP,
        read_only: bool = False,
    ) -> None:
        """Open (and create if needed) the data directory ``root``.

        Args:
            root: The directory; created with its subdirectories, all mode 0700 on POSIX
                (existing ones are chmod-ed to 0700).
            clock: Source of aware UTC time (:class:`bedside.common.clock.Clock`), used for backup
                and quarantine names and the backup interval.
            ops: System-call wrapper for fault-injection tests.
            backup_interval: Minimum time between two rotating backups of one patient.
            backup_keep: How many of the newest backups to keep (plus the newest of each
                UTC day, kept indefinitely).
            read_only: Touch nothing on disk: no directories are created or chmod-ed,
                the writer lock cannot be taken (so save/restore/sweep refuse), and a
                failed :meth:`load` neither quarantines nor blocks, and a migrating load
                writes no pre-migration copy. For ``python -m bedside verify`` and viewers.

        Raises:
            StorageError: A directory could not be created.
        """
        if backup_keep < 1:
            raise ValueError("backup_keep must be at least 1")
        self.root = Path(root)
        self.patients_dir = self.root / PATIENTS_DIR
        self.backups_dir = self.root / BACKUPS_DIR
        self.quarantine_dir = self.root / QUARANTINE_DIR
        self.lock_path = self.root / LOCK_FILE_NAME
        self.lock_info_path = self.root / LOCK_INFO_NAME
        self._clock = clock
        self._ops = ops or _DEFAULT_OPS
        self._backup_interval = backup_interval
        self._backup_keep = backup_keep
        self._writer = WriterLock(self.lock_path, self.lock_info_path, self._ops)
        self._blocked: set[str] = set()
        self.read_only = read_only
        if read_only:
            return
        check_data_dir(self.root)
        for sub in (self.patients_dir, self.backups_dir, self.quarantine_dir):
            if sub.is_symlink():
                raise DataDirRefusedError(
                    f"refused: {sub.name}/ in the data directory is a symbolic link; Bedside "
                    "never writes through one (ask IT to replace it with a real folder)"
                )
        try:
            bedside_root = self.patients_dir.is_dir()
            linked_root = self.root.is_symlink() and self.root.is_dir()  # allowed: a real dir
            created_root = False if linked_root else _ensure_private_dir(self.root)
            if _IS_POSIX and bedside_root and not created_root and not self.root.is_symlink():
                os.chmod(self.root, _DIR_MODE)  # an existing Bedside data directory
            for directory in (self.patients_dir, self.backups_dir, self.quarantine_dir):
                if not _ensure_private_dir(directory) and _IS_POSIX:
                    os.chmod(directory, _DIR_MODE)  # Bedside's own sub-folder
            if _IS_POSIX:
                for sub in self.backups_dir.iterdir():
                    if sub.is_dir() and not sub.is_symlink():
                        os.chmod(sub, _DIR_MODE)
        except OSError as exc:
            raise _storage_error(f"cannot prepare the data directory: {_errno_text(exc)}") from exc

    # ------------------------------------------------------------------ paths

    def _patient_path(self, patient_id: str) -> Path:
        return self.patients_dir / f"{validate_patient_id(patient_id)}.json"

    def _backup_dir(self, patient_id: str) -> Path:
        return self.backups_dir / validate_patient_id(patient_id)

    def _marker_path(self, patient_id: str) -> Path:
        return self.quarantine_dir / f"{patient_id}.blocked"

    def _describe(self, path: Path) -> str:
        """An identifier-free description of ``path`` for messages and logs."""
        path = Path(path)
        parent = path.parent
        try:
            if parent == self.patients_dir and path.suffix == ".json":
                return f"patient file {patient_hash(path.stem)}"
            if parent.parent == self.backups_dir:
                pid = parent.name
                return f"backup {patient_hash(pid)}/{path.name.replace(pid, patient_hash(pid))}"
            if parent == self.quarantine_dir:
                pid = path.name.split(".", 1)[0]
                return f"quarantine/{path.name.replace(pid, patient_hash(pid))}"
        except (OSError, ValueError):  # pragma: no cover - defensive
            pass
        return f"external file #{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"

    # ------------------------------------------------------------------ lock

    def _require_lock(self) -> None:
        if not self._writer.held:
            raise _storage_error("this process does not hold the data directory's writer lock")

    def acquire_writer_lock(self) -> None:
        """Become the single writer of this data directory (non-blocking).

        Uses an OS lock (``flock``/``msvcrt.locking`` via ``filelock``) on
        ``DIR/bedside.lock``. The OS releases it when the process dies, however it dies,
        so a crash never leaves a stale lock: the next start acquires it normally. The
        holder's pid, hostname, start time (UTC) and app are written to
        ``DIR/bedside.lock.info`` so a refused process can say who holds it.
        Calling it again while holding the lock is a no-op.

        Raises:
            LockedError: Another process (or another DataDir in this process) holds the
                lock. The message names its pid, host and since when, when known.
            StorageError: The lock file could not be created or the info not written.
        """
        if self.read_only and not self._writer.held:
            raise _storage_error("the data directory was opened read-only")

        def refused(info: dict[str, Any] | None) -> LockedError:
            who = (
                f"pid {info.get('pid')} on host {info.get('hostname')!s} "
                f"since {info.get('started_at')!s}"
                if info
                else "an unknown process (it may be starting up)"
            )
            return LockedError(f"the data directory is in use by another Bedside: {who}")

        if self._writer.held:
            return
        info = {
            "app": APP_NAME,
            "version": __version__,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "started_at": self._clock.now().astimezone(UTC).isoformat(),
        }
        self._writer.acquire(
            info,
            refused=refused,
            failed=lambda why: _storage_error(f"cannot take the writer lock: {why}"),
        )
        logger.info("writer lock acquired (pid %d)", info["pid"])

    def release_writer_lock(self) -> None:
        """Release the writer lock if this DataDir holds it (idempotent)."""
        self._writer.release()

    def holds_writer_lock(self) -> bool:
        """Whether this DataDir holds the writer lock."""
        return self._writer.held

    def holder(self) -> dict[str, Any] | None:
        """Describe the current lock holder, or ``None`` if nobody holds the lock.

        Returns this process's info when it holds the lock. Otherwise it probes the lock
        with a momentary non-blocking acquire; if that succeeds nobody held it (a stale
        info file from a crashed process is ignored). The probe is diagnostic: a process
        starting at that exact instant could be refused once.

        Returns:
            A dict with ``pid``, ``hostname``, ``started_at``, ``app`` (values may be
            missing if the holder has not written them yet), or ``None``.
        """
        return self._writer.holder(missing_means_free=self.read_only)

    # ------------------------------------------------------------------ housekeeping

    def sweep_temp_files(self) -> int:
        """Remove temp files (``.*.tmp-*``) left by a killed writer. Needs the lock.

        Only the lock holder writes temp files, so while we hold the lock every temp file
        is an orphan. Looks in the data dir root, ``patients/`` and ``backups/<id>/``.

        Returns:
            The number of files removed.

        Raises:
            StorageError: The lock is not held.
        """
        self._require_lock()
        dirs = [self.root, self.patients_dir]
        with contextlib.suppress(OSError):
            dirs.extend(d for d in self.backups_dir.iterdir() if d.is_dir() and not d.is_symlink())
        count = 0
        for directory in dirs:
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") and _TEMP_MARK in entry.name and entry.is_file():
                    try:
                        self._ops.unlink(entry.path)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        logger.warning("could not remove a stale temp file: %s", _errno_text(exc))
                        continue
                    count += 1
        logger.info("temp sweep removed %d stale file(s)", count)
        return count

    def current_token(self, patient_id: str) -> str | None:
        """SHA-256 of the patient file's bytes as they are on disk now (None: no file)."""
        data = _read_optional(self._patient_path(patient_id))
        return None if data is None else _sha256(data)

    def low_space(self, threshold: int = LOW_SPACE_BYTES) -> str | None:
        """A warning while the data directory's disk has less than ``threshold`` bytes free."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return None
        if free >= threshold:
            return None
        return (
            f"LOW DISK SPACE: {free / 2**20:.0f} MB free where the ward's records are kept "
            f"(warning below {threshold / 2**20:.0f} MB). Saving may soon fail: tell IT now."
        )

    def patient_ids(self) -> list[str]:
        """Return the ids of all stored patients, sorted."""
        ids = []
        for path in self.patients_dir.glob("*.json"):
            if _PATIENT_ID_RE.fullmatch(path.stem) and path.is_file():
                ids.append(path.stem)
        return sorted(ids)

    # ------------------------------------------------------------------ quarantine

    def is_quarantined(self, patient_id: str) -> bool:
        """Return whether saves of ``patient_id`` are blocked pending a restore."""
        validate_patient_id(patient_id)
        return patient_id in self._blocked or self._marker_path(patient_id).exists()

    def quarantined_copies(self, patient_id: str) -> list[Path]:
        """Return the quarantined copies of ``patient_id``'s file, newest name first."""
        validate_patient_id(patient_id)
        prefix = f"{patient_id}."
        return sorted(
            (
                p
                for p in self.quarantine_dir.iterdir()
                if p.name.startswith(prefix) and p.suffix == ".json"
            ),
            reverse=True,
        )

    def _quarantine(self, patient_id: str, data: bytes, problem: str) -> tuple[Path | None, str]:
        """Copy ``data`` into quarantine (once per distinct content) and block saves.

        Returns (the quarantine copy or None if it could not be written, a note for the
        error message).
        """
        self._blocked.add(patient_id)
        hashed = patient_hash(patient_id)
        copy_path: Path | None = None
        note = ""
        for existing in self.quarantined_copies(patient_id):
            with contextlib.suppress(OSError):
                if existing.stat().st_size == len(data) and existing.read_bytes() == data:
                    copy_path = existing
                    break
        if copy_path is None:
            stamp = _stamp(self._clock.now())
            try:
                copy_path = _write_new_file(
                    self._ops,
                    self.quarantine_dir,
                    _unique_names(f"{patient_id}.corrupt-{stamp}", ".json"),
                    data,
                )
                logger.error("quarantined the file of patient %s: %s", hashed, problem)
            except StorageError as exc:
                note = f"WARNING: the quarantine copy could not be written ({exc})"
                logger.error("could not quarantine the file of patient %s: %s", hashed, exc)
        marker = dumps_canonical(
            {
                "blocked_at": self._clock.now().astimezone(UTC).isoformat(),
                "sha256": _sha256(data),
                "copy": copy_path.name if copy_path else None,
                "problem": problem,
            }
        )
        if not self._marker_path(patient_id).exists():
            try:
                _write_new_file(self._ops, self.quarantine_dir, [f"{patient_id}.blocked"], marker)
            except StorageError as exc:
                logger.error("could not write the quarantine marker of %s: %s", hashed, exc)
        return copy_path, note

    # ------------------------------------------------------------------ load / save

    def load(self, patient_id: str, *, validate: Callable[[dict[str, Any]], T]) -> Loaded[T]:
        """Read, check, migrate and validate one patient's file.

        Steps: read bytes -> :func:`~bedside.common.jsonio.strict_loads` -> ``schema_version``
        check -> integrity checksum -> (if older: copy the original bytes to
        ``backups/<id>/<id>.v<old>.json``, then apply :data:`MIGRATIONS` step by step) ->
        ``validate(dict)``. Loading never modifies the patient file and does not need the
        writer lock (it only ever creates new files, never replaces one).

        On any parse/schema/checksum/migration/validation failure the bytes are copied
        to ``quarantine/<id>.corrupt-<UTC stamp>.json`` (once per distinct content), the
        original is left exactly as it was, and :meth:`save` of this patient is refused
        until :meth:`restore_backup`.

        Args:
            patient_id: A filename-safe id.
            validate: Turns the envelope dict into the caller's value; any exception it
                raises counts as corruption. It must not put record content in messages.

        Returns:
            A :class:`Loaded` with the value, the migrated dict, the token and
            ``migrated_from``.

        Raises:
            PatientNotFoundError: There is no file for this patient.
            CorruptDataError: The file is unreadable or invalid (``SchemaTooNewError`` if
                written by a newer version). Attributes: ``path``, ``quarantine_path``,
                ``backup_path`` (newest verified backup or ``None``).
            MigrationError: A migration step is missing or failed (also quarantined).
            StorageError: An I/O error (the file was not judged; nothing quarantined).
        """
        path = self._patient_path(patient_id)
        source = self._describe(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise PatientNotFoundError(f"{source}: no such patient file") from exc
        except OSError as exc:
            raise _storage_error(f"{source}: cannot be read ({_errno_text(exc)})") from exc
        token = _sha256(data)
        try:
            doc, version = _open_envelope(data, source)
            if version < CURRENT_SCHEMA and not self.read_only:
                self._backup_before_migration(patient_id, data, version)
            raw = _migrate(doc, version, source)
            value = _run_validator(validate, raw, source)
        except (CorruptDataError, MigrationError) as exc:
            if self.read_only:
                copy_path, where = None, "it was not quarantined (read-only access)"
            else:
                copy_path, note = self._quarantine(patient_id, data, str(exc))
                where = (
                    f"a copy is in quarantine as {self._describe(copy_path)}" if copy_path else note
                )
            backup = self.newest_verified_backup(patient_id, validate=validate)
            backup_note = (
                f"a verified backup exists ({self._describe(backup)})"
                if backup
                else "NO verified backup exists"
            )
            blocked = "" if self.read_only else " Saving it is blocked until a backup is restored."
            err = type(exc)(f"{exc}. The file was left unchanged; {where}; {backup_note}.{blocked}")
            err.path = path
            err.quarantine_path = copy_path
            err.backup_path = backup
            raise err from exc
        migrated_from = version if version < CURRENT_SCHEMA else None
        if migrated_from is not None:
            logger.info(
                "patient %s migrated in memory from schema %d to %d",
                patient_hash(patient_id),
                migrated_from,
                CURRENT_SCHEMA,
            )
        return Loaded(value=value, raw=raw, token=token, migrated_from=migrated_from)

    def _backup_before_migration(self, patient_id: str, data: bytes, version: int) -> None:
        directory = self._backup_dir(patient_id)
        try:
            _ensure_private_dir(directory)
        except OSError as exc:
            raise _storage_error(f"cannot create a backup directory: {_errno_text(exc)}") from exc
        base = directory / f"{patient_id}.v{version}.json"
        if _read_optional(base) == data:
            return
        for existing in directory.glob(f"{patient_id}.v{version}.*.json"):
            with contextlib.suppress(OSError):
                if existing.read_bytes() == data:
                    return
        stamp = _stamp(self._clock.now())
        names = [base.name, *_unique_names(f"{patient_id}.v{version}.{stamp}", ".json")]
        written = _write_new_file(self._ops, directory, names, data)
        logger.info(
            "patient %s: original v%d file backed up before migration as %s",
            patient_hash(patient_id),
            version,
            self._describe(written),
        )

    def save(
        self,
        patient_id: str,
        envelope: dict[str, Any],
        *,
        expected_token: str | None,
        validate: Callable[[dict[str, Any]], object],
    ) -> str:
        """Validate and atomically write one patient's envelope. Needs the writer lock.

        The envelope must have ``schema_version == CURRENT_SCHEMA``. It is encoded, parsed
        back and validated exactly as :meth:`load` would, so nothing is written that would
        not load. Then, optimistic concurrency: if the file exists its SHA-256 must equal
        ``expected_token`` (``None`` means the file must not exist yet).

        Idempotency: if the file already holds exactly the bytes this envelope encodes
        to, the save succeeds without writing (after re-syncing the directory), whatever
        ``expected_token`` says. So after an ambiguous failure the caller simply retries
        the same envelope; the event is on disk once, never twice.

        After a successful write a verified backup is taken if the newest one is older
        than ``backup_interval`` (backup failures are logged, never raised: the save
        itself succeeded).

        Args:
            patient_id: A filename-safe id.
            envelope: The JSON-native dict to store (no :data:`CHECKSUM_KEY`).
            expected_token: The token from :meth:`load` / the last save, or ``None`` for a
                new patient.
            validate: The same validator :meth:`load` uses.

        Returns:
            The new token (SHA-256 hex of the bytes now on disk).

        Raises:
            QuarantinedError: The patient's file failed to load and was not restored.
            ConcurrentModificationError: The file changed on disk since it was loaded
                (or exists although ``expected_token`` is ``None``, or vanished).
            AmbiguousWriteError: The new bytes may be on disk; retry the same save.
            StorageError: The envelope is invalid, the lock is not held, or the write
                failed (the file is unchanged).
        """
        path = self._patient_path(patient_id)
        hashed = patient_hash(patient_id)
        source = self._describe(path)
        self._require_lock()
        if self.is_quarantined(patient_id):
            raise QuarantinedError(
                f"{source}: saving is blocked because the stored file failed to load and was "
                "quarantined; restore a verified backup first"
            )
        if not isinstance(envelope, dict):
            raise _storage_error("envelope must be a dict")
        version = envelope.get("schema_version")
        if isinstance(version, bool) or version != CURRENT_SCHEMA:
            raise _storage_error(
                f"refused to save {source}: schema_version must be {CURRENT_SCHEMA}"
            )
        data = encode_envelope(envelope)
        try:
            _decode(data, source, validate)
        except (CorruptDataError, MigrationError) as exc:
            raise _storage_error(
                f"refused to save: the record would not load back ({exc})"
            ) from exc
        new_token = _sha256(data)
        try:
            current = _read_optional(path)
        except OSError as exc:
            raise _storage_error(f"{source}: cannot be read ({_errno_text(exc)})") from exc
        if current is not None and current == data:
            try:
                self._ops.fsync_dir(str(self.patients_dir))
            except OSError as exc:
                raise _storage_error(
                    f"{source} already holds this content but the directory could not be "
                    f"synced ({_errno_text(exc)})",
                    ambiguous=True,
                ) from exc
            logger.info("patient %s: content already on disk, nothing written", hashed)
            self._maybe_backup(patient_id, data, validate)
            return new_token
        if expected_token is None:
            if current is not None:
                raise ConcurrentModificationError(
                    f"{source}: already exists on disk; it must be loaded before saving"
                )
        elif current is None:
            raise ConcurrentModificationError(f"{source}: has vanished since it was loaded")
        elif _sha256(current) != expected_token:
            raise ConcurrentModificationError(f"{source}: changed on disk since it was loaded")
        atomic_write(path, data, ops=self._ops)
        logger.info("patient %s saved (%d bytes)", hashed, len(data))
        self._maybe_backup(patient_id, data, validate)
        return new_token

    # ------------------------------------------------------------------ backups

    def _backup_entries(self, patient_id: str) -> list[_BackupEntry]:
        directory = self._backup_dir(patient_id)
        entries: list[_BackupEntry] = []
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return entries
        for name in names:
            match = _BACKUP_RE.fullmatch(name)
            if match:
                entries.append(
                    _BackupEntry(int(match[1]), _parse_stamp(match[2]), directory / name)
                )
        entries.sort(key=lambda e: e.seq, reverse=True)
        return entries

    def backups(self, patient_id: str) -> list[Path]:
        """Return the rotating backups of ``patient_id``, newest first.

        Pre-migration copies (``<id>.v<k>.json``) are not included; they are kept forever.
        """
        return [e.path for e in self._backup_entries(patient_id)]

    def _maybe_backup(
        self, patient_id: str, data: bytes, validate: Callable[[dict[str, Any]], object]
    ) -> None:
        hashed = patient_hash(patient_id)
        try:
            now = self._clock.now()
            entries = self._backup_entries(patient_id)
            if entries:
                newest = entries[0]
                elapsed = now - newest.stamp
                # A clock that went backwards (negative elapsed) also makes a backup due.
                if timedelta(0) <= elapsed < self._backup_interval:
                    return
                if _read_optional(newest.path) == data:
                    return
            seq = entries[0].seq + 1 if entries else 1
            directory = self._backup_dir(patient_id)
            _ensure_private_dir(directory)
            path = directory / f"bk-{seq:06d}-{_stamp(now)}.json"
            atomic_write(path, data, ops=self._ops)
            # ``data`` was decoded and validated by save() just before it was written, so a
            # backup whose bytes read back identical is verified without decoding it again.
            ok, problem = True, ""
            if _read_optional(path) != data:
                ok, problem = False, "bytes read back differ from what was written"
            if not ok:
                with contextlib.suppress(OSError):
                    self._ops.unlink(str(path))
                logger.error("backup of patient %s failed verification: %s", hashed, problem)
                return
            logger.info("patient %s: verified backup %s written", hashed, path.name)
            self._prune_backups(patient_id)
        except Exception:
            # The save itself succeeded; a backup problem must not turn it into a failure.
            logger.exception("backup of patient %s failed", hashed)

    def _prune_backups(self, patient_id: str) -> None:
        entries = self._backup_entries(patient_id)
        keep = {e.path for e in entries[: self._backup_keep]}
        seen_days: set[Any] = set()
        for entry in entries:  # newest first: the first seen per day is that day's newest
            day = entry.stamp.date()
            if day not in seen_days:
                seen_days.add(day)
                keep.add(entry.path)
        for entry in entries:
            if entry.path not in keep:
                with contextlib.suppress(FileNotFoundError):
                    self._ops.unlink(str(entry.path))

    def newest_verified_backup(
        self, patient_id: str, *, validate: Callable[[dict[str, Any]], object]
    ) -> Path | None:
        """Return the newest rotating backup that passes :meth:`verify_file`, or ``None``."""
        for path in self.backups(patient_id):
            ok, _ = self.verify_file(path, validate=validate)
            if ok:
                return path
        return None

    def restore_backup(
        self, patient_id: str, backup: Path, *, validate: Callable[[dict[str, Any]], object]
    ) -> str:
        """Replace the patient file with a verified backup and lift the quarantine block.

        ``backup`` may be any file (normally one from :meth:`backups`); it is verified
        exactly as :meth:`load` would check it. If the current patient file exists with
        different content and is not already in quarantine, it is copied there first, so
        a restore never destroys data. The quarantined copies stay in ``quarantine/``.
        Needs the writer lock.

        Args:
            patient_id: A filename-safe id.
            backup: The file to restore.
            validate: The validator :meth:`load` uses.

        Returns:
            The new token of the patient file.

        Raises:
            CorruptDataError: The backup does not verify (nothing was changed).
            StorageError: The lock is not held, or an I/O step failed.
        """
        path = self._patient_path(patient_id)
        self._require_lock()
        backup = Path(backup)
        source = self._describe(backup)
        try:
            data = backup.read_bytes()
        except OSError as exc:
            raise _storage_error(f"{source}: cannot be read ({_errno_text(exc)})") from exc
        _decode(data, source, validate)
        current = _read_optional(path)
        if current is not None and current != data:
            already = any(
                q.read_bytes() == current
                for q in self.quarantined_copies(patient_id)
                if q.stat().st_size == len(current)
            )
            if not already:
                stamp = _stamp(self._clock.now())
                _write_new_file(
                    self._ops,
                    self.quarantine_dir,
                    _unique_names(f"{patient_id}.replaced-{stamp}", ".json"),
                    current,
                )
        atomic_write(path, data, ops=self._ops)
        marker = self._marker_path(patient_id)
        try:
            self._ops.unlink(str(marker))
            self._ops.fsync_dir(str(self.quarantine_dir))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _storage_error(
                f"restored, but the quarantine block could not be cleared ({_errno_text(exc)})"
            ) from exc
        self._blocked.discard(patient_id)
        logger.warning(
            "patient %s restored from %s", patient_hash(patient_id), self._describe(backup)
        )
        return _sha256(data)

    def verify_file(
        self, path: Path, *, validate: Callable[[dict[str, Any]], object]
    ) -> tuple[bool, str]:
        """Check a file read-only, exactly as :meth:`load` would (never modifies anything).

        Args:
            path: Any stored file (patient file, backup, quarantined copy).
            validate: The validator :meth:`load` uses.

        Returns:
            ``(True, summary)`` if it would load, else ``(False, problem)``. Messages
            name patients only by hash.
        """
        path = Path(path)
        source = self._describe(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return False, f"{source}: cannot be read ({_errno_text(exc)})"
        try:
            _, _, version = _decode(data, source, validate)
        except (CorruptDataError, MigrationError) as exc:
            return False, str(exc)
        migrated = f", would migrate from v{version}" if version < CURRENT_SCHEMA else ""
        return True, f"{source}: OK (schema v{version}{migrated}, {len(data)} bytes)"

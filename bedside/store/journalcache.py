"""A local, signed cache of merged and validated records, so a restart need not re-validate.

Journals only grow and every line is checksummed and chained, so the bytes of a patient's
journals that were checked at the last full load still mean the same record. For each
patient the cache keeps, per journal, the length of the checked prefix, the SHA-256 of those
exact bytes, the chain head and the line count, beside the record built from them. A load
uses it only when every journal's prefix hashes to what was checked:

* nothing appended since: the cached record is the record;
* lines appended to the only journal (this workstation's own saves, typically): only the new
  lines are checked (checksum, chain from the cached head, sequence, writer) and validated,
  then appended to the cached record; they are kept in a small :class:`Tail` beside the
  entry (re-pickling the whole record at each start would cost more than it saves);
* anything else (a journal removed, added, shortened or changed inside its checked prefix,
  lines appended while several journals exist, a new line in doubt): the full load runs
  (every line of every journal checked, every event validated, journals merged).

Events are stored as ``(class, field values, field-name set)`` rows rather than pickled
models: restoring a row sets those three slots directly (what pydantic's own unpickling
does, without a Python ``__setstate__`` call per event); one field-name set is shared by
the events of a class with the same fields (they are frozen models: the set is never
changed), and equal strings are stored once. A model with extra or private values is
pickled whole, as before.

The cache lives in the user cache directory (never in the replicated ward folder), is
signed with this user's key (:mod:`bedside.common.signedcache`) and keyed by the code that built
it. Anything unexpected is a miss: the cache can only save time. ``verify`` never uses it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bedside.common.signedcache import SignedPickles, code_fingerprint, user_cache_path

logger = logging.getLogger(__name__)

CACHE_FORMAT = b"bedside-journal-cache-4"  # 4: events as rows (3: bound chains, signed cache)


_setattr = object.__setattr__
_new = object.__new__


def _rows(models: list[Any]) -> list[Any]:
    """``models`` as rows for :func:`_models` (see the module); any other object as itself."""
    pool: dict[tuple[type, frozenset[str]], set[str]] = {}
    strings: dict[str, str] = {}  # equal strings pickled once (a chain's hashes, initials...)
    out: list[Any] = []
    for m in models:
        if (
            isinstance(m, BaseModel)
            and m.__pydantic_extra__ is None
            and m.__pydantic_private__ is None
        ):
            names = m.__pydantic_fields_set__
            shared = pool.setdefault((type(m), frozenset(names)), set(names))
            values = {
                k: strings.setdefault(v, v) if type(v) is str else v for k, v in m.__dict__.items()
            }
            out.append((type(m), values, shared))
        else:
            out.append(m)
    return out


def _models(rows: list[Any]) -> list[Any]:
    """The models of :func:`_rows` (rows read from a signed entry: validated when written)."""
    out: list[Any] = []
    append = out.append
    for row in rows:
        if type(row) is not tuple:
            append(row)
            continue
        cls, values, names = row
        m = _new(cls)
        _setattr(m, "__dict__", values)
        _setattr(m, "__pydantic_fields_set__", names)
        _setattr(m, "__pydantic_extra__", None)
        _setattr(m, "__pydantic_private__", None)
        append(m)
    return out


def _shared_provenance(provenance: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``provenance`` with equal ``(workstation, user)`` pairs as one object (pickled once)."""
    pool: dict[tuple[str, str], tuple[str, str]] = {}
    return {eid: pool.setdefault(pair, pair) for eid, pair in provenance.items()}


def _dump_record(record: Any, provenance: dict[str, tuple[str, str]]) -> bytes:
    """Pickle of a record (its events as rows) and its provenance."""
    if (
        isinstance(record, BaseModel)
        and record.__pydantic_extra__ is None
        and record.__pydantic_private__ is None
        and isinstance(record.__dict__.get("events"), list)
    ):
        state = dict(record.__dict__)
        events = _rows(state.pop("events"))
        body: Any = (type(record), state, set(record.__pydantic_fields_set__), events)
    else:
        body = record
    return pickle.dumps((body, _shared_provenance(provenance)), protocol=pickle.HIGHEST_PROTOCOL)


def _load_record(payload: bytes) -> tuple[Any, dict[str, tuple[str, str]]]:
    """The ``(record, provenance)`` of :func:`_dump_record`."""
    body, provenance = pickle.loads(payload)  # inside the signed entry
    if type(body) is tuple:
        cls, state, names, rows = body
        state["events"] = _models(rows)
        record = _new(cls)
        _setattr(record, "__dict__", state)
        _setattr(record, "__pydantic_fields_set__", names)
        _setattr(record, "__pydantic_extra__", None)
        _setattr(record, "__pydantic_private__", None)
        body = record
    return body, provenance


@dataclass(frozen=True)
class Checked:
    """What was checked of one journal when the cached record was built."""

    name: str
    length: int
    """Bytes of the checked prefix (complete lines only)."""
    digest: bytes
    """SHA-256 of exactly those bytes."""
    head: str
    """Hash ``h`` of the last checked line."""
    lines: int
    """Number of checked lines (the next line's ``seq``)."""


@dataclass(frozen=True)
class Entry:
    """One patient's cache entry (the record itself is unpickled only when it is used)."""

    journals: tuple[Checked, ...]
    header: dict[str, Any] | None
    header_at: str
    newest_at: str
    payload: bytes
    """Pickle of ``(record, provenance)``."""

    def value(self) -> tuple[Any, dict[str, tuple[str, str]]]:
        """The cached ``(record, provenance)``."""
        enabled = gc.isenabled()
        gc.disable()  # unpickling builds many acyclic objects: no collection passes meanwhile
        try:
            return _load_record(self.payload)
        finally:
            if enabled:
                gc.enable()


@dataclass(frozen=True)
class Tail:
    """Events appended to a patient's only journal since its :class:`Entry` was written.

    Rewriting the whole entry after each start with a few new lines would cost more than the
    load it saves, so the new events go into this small companion, bound to the entry it
    extends (its key includes the entry's digest). It is folded into a new entry when it
    grows past :data:`TAIL_MAX` events.
    """

    journal: Checked
    """The only journal as checked up to the end of these events."""
    newest_at: str
    payload: bytes
    """Pickle of ``(events, provenance of those events)``."""

    def value(self) -> tuple[list[Any], dict[str, tuple[str, str]]]:
        """The cached ``(events, provenance)``."""
        rows, provenance = pickle.loads(self.payload)  # inside the signed entry
        return _models(rows), provenance


TAIL_MAX = 500
"""Events a :class:`Tail` may hold before the record is written as a new :class:`Entry`."""


class RecordCache:
    """Signed cache entries of loaded records for one ward folder as one workstation."""

    def __init__(self, root: Path, workstation: str, code: tuple[str, ...] = ()) -> None:
        """Cache for ward folder ``root`` seen as ``workstation``, built by the ``code`` files."""
        ident = hashlib.sha256(f"{Path(root).resolve()}\0{workstation}".encode()).hexdigest()
        self._store = SignedPickles(user_cache_path("journals", ident[:20]))
        self.dir = self._store.dir
        self._code = CACHE_FORMAT + b"\0" + code_fingerprint(__file__, *code)

    def _key(self, pid: str) -> bytes:
        return hashlib.sha256(self._code + b"\0" + pid.encode()).digest()

    def get(self, pid: str, key: bytes | None = None) -> Entry | None:
        """The entry of ``pid`` made by this code (``key`` overrides), or ``None`` (a miss)."""
        entry = self._store.get(pid, key if key is not None else self._key(pid))
        return entry if isinstance(entry, Entry) else None

    def put(
        self,
        pid: str,
        journals: list[Checked],
        header: dict[str, Any] | None,
        header_at: str,
        newest_at: str,
        record: Any,
        provenance: dict[str, tuple[str, str]],
    ) -> None:
        """Store the entry of ``pid`` (best effort: failures are logged, never raised)."""
        try:
            payload = _dump_record(record, provenance)
        except Exception:  # noqa: BLE001 - the cache can only save time
            logger.debug("record cache not written (cannot pickle)")
            return
        entry = Entry(tuple(journals), header, header_at, newest_at, payload)
        self._store.put(pid, self._key(pid), entry)
        with contextlib.suppress(OSError):
            self._store.path(f"{pid}.tail").unlink()

    def _tail_key(self, pid: str, entry: Entry) -> bytes:
        bound = b"".join(c.digest for c in entry.journals)
        return hashlib.sha256(self._key(pid) + b"\0tail\0" + bound).digest()

    def get_tail(self, pid: str, entry: Entry) -> Tail | None:
        """The tail extending ``entry`` of ``pid``, or ``None``."""
        tail = self._store.get(f"{pid}.tail", self._tail_key(pid, entry))
        return tail if isinstance(tail, Tail) else None

    def put_tail(
        self,
        pid: str,
        entry: Entry,
        journal: Checked,
        newest_at: str,
        events: list[Any],
        provenance: dict[str, tuple[str, str]],
    ) -> None:
        """Store the events appended since ``entry`` (best effort, like :meth:`put`)."""
        try:
            payload = pickle.dumps(
                (_rows(events), _shared_provenance(provenance)), protocol=pickle.HIGHEST_PROTOCOL
            )
        except Exception:  # noqa: BLE001 - the cache can only save time
            logger.debug("record cache tail not written (cannot pickle)")
            return
        self._store.put(
            f"{pid}.tail", self._tail_key(pid, entry), Tail(journal, newest_at, payload)
        )


__all__ = ["CACHE_FORMAT", "TAIL_MAX", "Checked", "Entry", "RecordCache", "Tail"]

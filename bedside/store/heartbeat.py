"""Heartbeats: each workstation's ``WARD/workstations/<id>.json`` (one writer: itself).

A heartbeat says when the workstation last ran on its own clock (``last_seen``), its host
and OS user, and what it observed of its peers' heartbeats (their clock reading and its own
clock when it first saw it). Written by the store when it takes its workstation lock and
then at most every :data:`HEARTBEAT_EVERY`; read by :mod:`bedside.ward.wardsync`, which words
staleness and clock disagreement. Part of the store: no clinical rule here.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bedside import __version__
from bedside.common.errors import CorruptDataError, StorageError
from bedside.common.jsonio import dumps_canonical, strict_loads
from bedside.store.storage import atomic_write
from bedside.store.workstation import host_name

if TYPE_CHECKING:
    from bedside.store.journal import JournalStore

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=60)
"""How often a running workstation rewrites its heartbeat (I/O cadence, not a clinical number)."""
_HB_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,31})\.json")


@dataclass(frozen=True)
class Peer:
    """What one workstation's heartbeat says."""

    workstation: str
    last_seen: datetime
    host: str
    os_user: str
    observed: dict[str, dict[str, str]]


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def read_peers(store: JournalStore) -> dict[str, Peer]:
    """Every readable heartbeat in the ward folder, by workstation (own one included).

    Syncthing temp and conflict files never match ``<id>.json`` and are skipped; an
    unreadable heartbeat is logged and skipped (see :func:`read_heartbeats`).
    """
    return read_heartbeats(store)[0]


def read_heartbeats(store: JournalStore) -> tuple[dict[str, Peer], set[str]]:
    """Readable heartbeats by workstation, and the workstations whose heartbeat file exists
    but cannot be read (damaged, half-copied, not ours): their last sync is unknown."""
    out: dict[str, Peer] = {}
    unreadable: set[str] = set()
    try:
        names = os.listdir(store.workstations_dir)
    except FileNotFoundError:
        return out, unreadable
    for name in sorted(names):
        m = _HB_RE.fullmatch(name)
        if m is None:
            continue
        try:
            doc = strict_loads((store.workstations_dir / name).read_bytes(), source="heartbeat")
            last = datetime.fromisoformat(str(doc["last_seen"]))
            if last.tzinfo is None:
                raise ValueError("naive time")
            observed = doc.get("observed") or {}
            if not isinstance(observed, dict):
                raise ValueError("observed")
            out[m[1]] = Peer(
                m[1], last, str(doc.get("host", "")), str(doc.get("os_user", "")), observed
            )
        except (OSError, CorruptDataError, KeyError, ValueError, TypeError) as exc:
            logger.warning("heartbeat %s unreadable (%s)", name, type(exc).__name__)
            unreadable.add(m[1])
    return out, unreadable


def write_heartbeat(store: JournalStore) -> None:
    """Write this workstation's heartbeat (needs its lock). Failures are logged, not raised."""
    if store.read_only or not store.holds_writer_lock():
        return
    now = store._clock.now()
    observed = store.observed
    for ws, peer in read_peers(store).items():
        if ws == store.workstation:
            continue
        theirs = _iso(peer.last_seen)
        if observed.get(ws, {}).get("their") != theirs:
            observed[ws] = {"their": theirs, "mine": _iso(now)}
    doc: dict[str, Any] = {
        "workstation": store.workstation,
        "host": host_name(),
        "os_user": store.user,
        "app_version": __version__,
        "last_seen": _iso(now),
        "observed": observed,
    }
    try:
        atomic_write(store.workstations_dir / f"{store.workstation}.json", dumps_canonical(doc))
    except (StorageError, OSError) as exc:
        logger.warning("heartbeat not written (%s)", type(exc).__name__)
        return
    store.last_heartbeat = now


def maybe_heartbeat(store: JournalStore) -> None:
    """Write the heartbeat if the last one is older than :data:`HEARTBEAT_EVERY`."""
    last = store.last_heartbeat
    now = store._clock.now()
    if last is None or not timedelta(0) <= now - last < HEARTBEAT_EVERY:
        write_heartbeat(store)


__all__ = [
    "HEARTBEAT_EVERY",
    "Peer",
    "maybe_heartbeat",
    "read_heartbeats",
    "read_peers",
    "write_heartbeat",
]

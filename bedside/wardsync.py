"""Honest when out of touch: heartbeats, peer staleness, clock disagreement, duplicate doses.

Each workstation writes ``WARD/workstations/<id>.json`` (one writer: itself) with the time
on its own clock when it last ran (``last_seen``), its host and OS user, and what it observed
of its peers' heartbeats (their clock reading and its own clock when it first saw it). From
these any workstation can say:

* when another workstation was last heard from ("4A-PC2 last synced 35 min ago — doses
  given there since may be missing"), once that is longer than the LOCAL
  ``monitoring.peer_stale_after_min``;
* that two clocks disagree by more than the LOCAL ``monitoring.peer_clock_tolerance_min``
  (a heartbeat read before it was written, on our clock, is a lower bound of the other
  clock's lead), naming the workstation;
* that two tocilizumab doses for one patient, recorded on two workstations, lie within the
  protocol's minimum interval: a critical "possible duplicate dose".
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bedside import __version__
from bedside.doses import tocilizumab_doses
from bedside.errors import CorruptDataError, StorageError
from bedside.journal import JournalStore
from bedside.jsonio import dumps_canonical, strict_loads
from bedside.protocol import Protocol, load_default_protocol
from bedside.record import Medication, effective_events
from bedside.storage import atomic_write, patient_hash
from bedside.workstation import host_name, this_workstation

if TYPE_CHECKING:
    from bedside.service import Ward

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=60)
"""How often a running workstation rewrites its heartbeat (I/O cadence, not a clinical number)."""
_HB_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,31})\.json")


def open_store(ward: Ward) -> JournalStore:
    """The journal store of ``ward`` as its workstation (resolved once, recorded on the ward)."""
    ws = this_workstation(ward.workstation)
    ward.workstation = ws
    return JournalStore(ward.root, clock=ward.clock, workstation=ws, read_only=ward.read_only)


def refresh_patient(ward: Ward, pid: str) -> None:
    """Re-merge ``pid`` because another workstation's journal changed on disk.

    If the merged record no longer loads, the last good one stays on screen and the problem
    is listed in ``ward.failures`` (never silently dropped).
    """
    from bedside.record import validate_envelope

    try:
        loaded = ward.store.load(pid, validate=validate_envelope)
    except (CorruptDataError, StorageError) as exc:
        ward.failures[pid] = str(exc)
        logger.warning("patient %s: journals changed but do not merge", patient_hash(pid))
        return
    ward.records[pid] = loaded.value
    ward.tokens[pid] = loaded.token
    ward._keep_events_json(pid, loaded.raw["events"])
    ward.failures.pop(pid, None)
    logger.info("patient %s re-merged after a replication", patient_hash(pid))


def refresh_ward(ward: Ward) -> list[str]:
    """Pick up what replication brought: new patients and grown journals. Returns new ids.

    Cheap when nothing changed (one directory listing and a few ``stat`` calls per patient);
    the application calls it on its tick, the tests after a sync.
    """
    from bedside.record import validate_envelope

    added: list[str] = []
    for pid in ward.store.patient_ids():
        if pid in ward.records:
            if ward.store.changed_since_load(pid):
                refresh_patient(ward, pid)
            continue
        if pid in ward.failures and not ward.store.changed_since_load(pid):
            continue
        try:
            loaded = ward.store.load(pid, validate=validate_envelope)
        except (CorruptDataError, StorageError) as exc:
            ward.failures[pid] = str(exc)
            continue
        ward.records[pid] = loaded.value
        ward.tokens[pid] = loaded.token
        ward._keep_events_json(pid, loaded.raw["events"])
        ward.failures.pop(pid, None)
        added.append(pid)
    return added


# --------------------------------------------------------------------------- heartbeats


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
    unreadable heartbeat is logged and skipped (its workstation then looks silent).
    """
    out: dict[str, Peer] = {}
    try:
        names = os.listdir(store.workstations_dir)
    except FileNotFoundError:
        return out
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
    return out


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


# --------------------------------------------------------------------------- messages


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} days"


@dataclass(frozen=True)
class WardStatus:
    """What the board, the dose dialog and the handover say about the other workstations."""

    stale: list[str]
    clocks: list[str]
    peers: dict[str, Peer]

    @property
    def lines(self) -> list[str]:
        """Every message, staleness first."""
        return [*self.stale, *self.clocks]


def ward_status(ward: Ward, protocol: Protocol | None = None) -> WardStatus:
    """Staleness of every other workstation and clock disagreements, from the heartbeats."""
    protocol = protocol or load_default_protocol()
    store = ward.store
    now = ward.clock.now()
    stale_after = timedelta(minutes=protocol.monitoring.peer_stale_after_min.value)
    tol = timedelta(minutes=protocol.monitoring.peer_clock_tolerance_min.value)
    peers = read_peers(store)
    me = store.workstation
    stale: list[str] = []
    clocks: list[str] = []
    for ws, peer in sorted(peers.items()):
        if ws == me:
            continue
        age = now - peer.last_seen
        if age > stale_after:
            stale.append(
                f"{ws} last synced {_ago(age)} ago — doses given there since may be missing"
            )
        ahead = peer.last_seen - now  # read after it was written: a lower bound of its lead
        seen = peer.observed.get(me)
        behind = timedelta(0)
        if seen:
            with contextlib.suppress(KeyError, ValueError):
                behind = datetime.fromisoformat(seen["their"]) - datetime.fromisoformat(
                    seen["mine"]
                )
        if ahead > tol:
            clocks.append(
                f"{ws}'s clock is at least {_ago(ahead)} ahead of this workstation's "
                "— check the clocks before trusting times from it"
            )
        elif behind > tol:
            clocks.append(
                f"{ws}'s clock is at least {_ago(behind)} behind this workstation's "
                "— check the clocks before trusting times from it"
            )
    return WardStatus(stale, clocks, peers)


@dataclass(frozen=True)
class DuplicateDose:
    """Two tocilizumab doses of one patient from two workstations, closer than allowed."""

    first: Medication
    second: Medication
    first_ws: str
    second_ws: str

    @property
    def message(self) -> str:
        """The critical alert text."""
        gap = self.second.effective_at - self.first.effective_at
        return (
            "Possible duplicate dose: tocilizumab given on "
            f"{self.first_ws} and on {self.second_ws} {_ago(gap)} apart — check both "
            "administrations before anything else is given"
        )


def duplicate_doses(ward: Ward, pid: str) -> list[DuplicateDose]:
    """Pairs of tocilizumab doses within the minimum interval recorded on two workstations."""
    record = ward.record(pid)
    protocol = ward.protocol_for(record)
    gap = timedelta(hours=protocol.tocilizumab.min_interval.value)
    prov = ward.store.provenance.get(pid, {})
    doses = sorted(tocilizumab_doses(effective_events(record)), key=lambda d: d.effective_at)
    out: list[DuplicateDose] = []
    for i, a in enumerate(doses):
        for b in doses[i + 1 :]:
            if b.effective_at - a.effective_at >= gap:
                break
            wa = prov.get(a.id, ("?", ""))[0]
            wb = prov.get(b.id, ("?", ""))[0]
            if wa != wb:
                out.append(DuplicateDose(a, b, wa, wb))
    return out


__all__ = [
    "DuplicateDose",
    "Peer",
    "WardStatus",
    "duplicate_doses",
    "maybe_heartbeat",
    "open_store",
    "read_peers",
    "refresh_patient",
    "refresh_ward",
    "ward_status",
    "write_heartbeat",
]

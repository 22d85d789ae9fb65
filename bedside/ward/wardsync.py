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
* that a workstation has journals here but no readable heartbeat: when it last synced is
  unknown ("4A-PC3: no heartbeat — …"), never taken as fresh;
* that two tocilizumab doses for one patient, recorded on two workstations, lie within the
  protocol's minimum interval: a critical "possible duplicate dose" alert
  (:func:`duplicate_dose_items`, a due item with a stable identity, so the alert system's
  states, alarm and acknowledgements apply to it as to every critical alert).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Final

from bedside.clinical.doses import limited_doses
from bedside.clinical.escalations import DueItem, due_state, sort_due
from bedside.clinical.protocol import Protocol, load_default_protocol
from bedside.clinical.record import AlertAck, EventBase, Medication, Record
from bedside.clinical.views import project
from bedside.common.errors import CorruptDataError, StorageError
from bedside.common.timeutil import format_local
from bedside.store.heartbeat import (
    Peer,
    maybe_heartbeat,
    read_heartbeats,
    read_peers,
    write_heartbeat,
)
from bedside.store.journal import JournalStore
from bedside.store.storage import patient_hash
from bedside.store.workstation import this_workstation

if TYPE_CHECKING:
    from bedside.ward.service import Ward

logger = logging.getLogger(__name__)


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
    from bedside.clinical.record import validate_envelope

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
    from bedside.clinical.record import validate_envelope

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
    unknown: list[str] = field(default_factory=list)
    """Workstations with journals here but no readable heartbeat: when they last synced is
    unknown (never taken as "just now")."""

    @property
    def lines(self) -> list[str]:
        """Every message, out of touch (stale or unknown) first."""
        return [*self.stale, *self.unknown, *self.clocks]


def ward_status(ward: Ward, protocol: Protocol | None = None) -> WardStatus:
    """Staleness of every other workstation and clock disagreements, from the heartbeats."""
    protocol = protocol or load_default_protocol()
    store = ward.store
    now = ward.clock.now()
    stale_after = timedelta(minutes=protocol.monitoring.peer_stale_after_min.value)
    tol = timedelta(minutes=protocol.monitoring.peer_clock_tolerance_min.value)
    peers, unreadable = read_heartbeats(store)
    me = store.workstation
    stale: list[str] = []
    clocks: list[str] = []
    unknown: list[str] = []
    for ws in sorted((store.writers() | unreadable) - set(peers) - {me}):
        why = "heartbeat unreadable" if ws in unreadable else "no heartbeat"
        unknown.append(
            f"{ws}: {why} — when it last synced is unknown; doses given there may be missing"
        )
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
    return WardStatus(stale, clocks, peers, unknown)


@dataclass(frozen=True)
class DuplicateDose:
    """Two doses of one dose-limited drug for one patient, from two workstations, closer
    than the drug's minimum interval."""

    first: Medication
    second: Medication
    first_ws: str
    second_ws: str
    drug: str
    """The drug's key in the protocol's ``dose_limits``."""
    label: str
    """The drug's name as the nurse reads it."""
    interval_h: float
    """The drug's minimum interval, hours."""

    @property
    def message(self) -> str:
        """The critical alert text."""
        gap = self.second.effective_at - self.first.effective_at
        return (
            f"Possible duplicate dose: {self.label} given on "
            f"{self.first_ws} and on {self.second_ws} {_ago(gap)} apart — check both "
            "administrations before anything else is given"
        )


def duplicate_doses(
    ward: Ward,
    pid: str,
    *,
    events: list[EventBase] | None = None,
    record: Record | None = None,
) -> list[DuplicateDose]:
    """Pairs of doses of a dose-limited drug within its minimum interval, recorded on two
    workstations (every drug of the protocol's ``dose_limits`` that has a minimum interval).

    Args:
        ward: The open ward (its store knows which workstation wrote each event).
        pid: The patient.
        events: ``effective_events(record)`` if the caller already has it.
        record: ``ward.record(pid)`` if the caller already has it.
    """
    record = record if record is not None else ward.record(pid)
    protocol = ward.protocol_for(record)
    prov = ward.store.provenance.get(pid, {})
    evs = events if events is not None else project(record).events
    # Called for every patient at every tick: scan the record once for administrations,
    # then each limited drug looks only at those.
    meds: list[EventBase] = [e for e in evs if isinstance(e, Medication)]
    out: list[DuplicateDose] = []
    if len(meds) < 2:
        return out
    for drug, limits in protocol.dose_limits.items():
        if limits.min_interval is None:
            continue
        gap = timedelta(hours=limits.min_interval.value)
        doses = sorted(limited_doses(meds, drug, protocol), key=lambda d: (d.effective_at, d.id))
        for i, a in enumerate(doses):
            for b in doses[i + 1 :]:
                if b.effective_at - a.effective_at >= gap:
                    break
                wa = prov.get(a.id, ("?", ""))[0]
                wb = prov.get(b.id, ("?", ""))[0]
                if wa != wb:
                    out.append(
                        DuplicateDose(
                            a, b, wa, wb, drug, limits.label, float(limits.min_interval.value)
                        )
                    )
    return out


DUPLICATE_DOSE_KIND: Final = "duplicate_dose"
"""The due-item kind of a possible duplicate dose (a critical alert)."""


def _identity(pid: str, d: DuplicateDose) -> tuple[str, datetime]:
    """The alert's (key, due_at): the two doses' event ids, due at the later dose."""
    return (
        f"{pid}/{DUPLICATE_DOSE_KIND}/{d.first.id}+{d.second.id}",
        d.second.effective_at.astimezone(UTC),
    )


def duplicate_dose_items(
    ward: Ward,
    pid: str,
    now: datetime,
    *,
    zone: tzinfo | None = None,
    events: list[EventBase] | None = None,
    record: Record | None = None,
) -> list[DueItem]:
    """Each possible duplicate dose of ``pid`` as a critical alert item (pure; nothing written).

    Derived from the record and its journals' provenance at ``now`` (no ticks). The item's
    identity is stable — key ``<patient>/duplicate_dose/<first id>+<second id>`` and
    ``due_at`` the later dose's time — so an acknowledgement recorded on any workstation
    (an ``alert`` event in its journal, replicated like every event) silences it on all of
    them. It is due from the later dose on (never ``upcoming``: both doses are recorded),
    critical, so it cannot be snoozed and its acknowledgement needs a reason. Once
    acknowledged it stays listed (acknowledged) until the later dose has left the protocol's
    dose window (the drug's ``window_h``); never acknowledged, it never leaves.
    """
    record = record if record is not None else ward.record(pid)
    evs = events if events is not None else project(record).events
    dups = duplicate_doses(ward, pid, events=evs, record=record)
    if not dups:
        return []
    protocol = ward.protocol_for(record)
    grace = timedelta(minutes=protocol.monitoring.due_grace_min.value)
    acked = _acknowledged(evs)
    out: list[DueItem] = []
    for d in dups:
        key, due_at = _identity(pid, d)
        state = due_state(due_at, now, grace)
        anchor = f"{d.first.id}+{d.second.id}"
        limits = protocol.dose_limits[d.drug]
        rule = limits.min_interval
        assert rule is not None  # duplicate_doses only pairs drugs with a minimum interval
        # Acknowledged, and the later dose has left the drug's rolling window: history now.
        # A drug with no window in the protocol keeps the acknowledged alert listed.
        if (
            (key, due_at) in acked
            and limits.window_h is not None
            and now - due_at >= timedelta(hours=limits.window_h.value)
        ):
            continue
        out.append(
            DueItem(
                key=key,
                kind=DUPLICATE_DOSE_KIND,
                patient_id=pid,
                due_at=due_at,
                state="due" if state == "upcoming" else state,
                severity="critical",
                message=(
                    f"{d.message} (given {format_local(d.first.effective_at, zone)} on "
                    f"{d.first_ws} and {format_local(d.second.effective_at, zone)} on "
                    f"{d.second_ws}; minimum interval {rule.value:g} h)"
                ),
                rule=f"dose_limits.{d.drug}.min_interval",
                source=tuple(k.strip() for k in rule.source.split(",") if k.strip()),
                verified=bool(rule.verified),
                anchor_id=anchor,
            )
        )
    return out


def _acknowledged(events: list[EventBase]) -> set[tuple[str, datetime]]:
    """(key, due_at) of every duplicate-dose alert acknowledged in ``events``."""
    return {
        (ev.alert_key, ev.due_at)
        for ev in events
        if isinstance(ev, AlertAck)
        and ev.alert_kind == DUPLICATE_DOSE_KIND
        and ev.action == "acknowledged"
    }


def unacknowledged_duplicates(ward: Ward, pid: str) -> list[DuplicateDose]:
    """The possible duplicate doses of ``pid`` nobody has acknowledged yet (for the banners:
    an acknowledged one is shown, with who acknowledged it, among the alerts instead)."""
    evs = project(ward.record(pid)).events
    acked = _acknowledged(evs)
    return [d for d in duplicate_doses(ward, pid, events=evs) if _identity(pid, d) not in acked]


def with_duplicate_doses(
    ward: Ward,
    pid: str,
    items: list[DueItem],
    now: datetime,
    *,
    zone: tzinfo | None = None,
    events: list[EventBase] | None = None,
    record: Record | None = None,
) -> list[DueItem]:
    """``items`` (from ``derive_due``) with the patient's possible duplicate doses, most
    urgent first. A ward without journals (no provenance) adds nothing."""
    if not hasattr(ward, "store") or not hasattr(ward.store, "provenance"):
        return items
    extra = duplicate_dose_items(ward, pid, now, zone=zone, events=events, record=record)
    return sort_due([*extra, *items]) if extra else items


__all__ = [
    "DUPLICATE_DOSE_KIND",
    "DuplicateDose",
    "Peer",
    "WardStatus",
    "duplicate_dose_items",
    "duplicate_doses",
    "maybe_heartbeat",
    "open_store",
    "read_heartbeats",
    "read_peers",
    "refresh_patient",
    "refresh_ward",
    "unacknowledged_duplicates",
    "ward_status",
    "with_duplicate_doses",
    "write_heartbeat",
]

"""Issue 15, item 7: the ward folder replicated by the real Syncthing engine (loopback only).

Two workstation directories (A and B) on one machine, each its own copy of the ward folder,
each replicated by its own Syncthing instance bound to 127.0.0.1. Slow (real processes,
real rescans) but run in CI; skipped only when the ``syncthing`` binary is missing
(``.ci/run`` installs it).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from syncthing_harness import SYNCTHING, Instance

from bedside.common.clock import FakeClock
from bedside.store.journal import parse_journal
from bedside.ward import alerts
from bedside.ward.service import Ward, open_ward
from bedside.ward.wardsync import duplicate_doses, refresh_ward, ward_status, write_heartbeat

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        SYNCTHING is None, reason="syncthing is not installed (.ci/run installs it)"
    ),
]

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll ``check`` until it is true; return the seconds it took (fail after ``timeout``)."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


class Pair:
    """Workstations A and B, their ward-folder copies, wards and Syncthing instances."""

    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock(T0)
        self.dir_a, self.dir_b = tmp / "pcA" / "ward", tmp / "pcB" / "ward"
        for d in (self.dir_a, self.dir_b):
            (d / ".stfolder").mkdir(parents=True)
        self.a = open_ward(self.dir_a, self.clock, workstation="4A-PC1")
        self.b = open_ward(self.dir_b, self.clock, workstation="4A-PC2")
        self.st_a = Instance("4A-PC1", tmp / "st-a", self.dir_a)
        self.st_b = Instance("4A-PC2", tmp / "st-b", self.dir_b)
        self.st_a.configure(self.st_b)
        self.st_b.configure(self.st_a)

    def start(self) -> None:
        self.st_a.start()
        self.st_b.start()
        wait_for("the two instances connect", lambda: self.st_a.connected_to(self.st_b), 60)
        for inst in (self.st_a, self.st_b):
            assert inst.listen_addresses() == [f"tcp://127.0.0.1:{inst.port}"]

    def close(self) -> None:
        for inst in (self.st_a, self.st_b):
            inst.stop()
        self.a.close()
        self.b.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    try:
        p.start()
        yield p
    finally:
        p.close()


def _admit(ward: Ward, clock: FakeClock) -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="MRN-1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
        infusion_at=clock.now() - 48 * H,
        dose_history_complete=True,
    )


def _ids(ward: Ward, pid: str) -> list[str]:
    refresh_ward(ward)
    return [e.id for e in ward.record(pid).events] if pid in ward.records else []


def _journal_bytes(root: Path, pid: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "journals" / pid).glob("*.jsonl"))}


def _duplicate_alerts(ward: Ward, pid: str) -> list[alerts.AlertStatus]:
    return [s for s in alerts.patient_alerts(ward, pid) if s.item.kind == "duplicate_dose"]


def test_dose_on_a_counts_on_b_and_partition_converges(pair: Pair) -> None:
    a, b, clock = pair.a, pair.b, pair.clock
    pid = _admit(a, clock)
    dose1 = a.give_tocilizumab(pid, given_by="AB", checked_by="CD")

    def b_counts_it() -> bool:
        refresh_ward(b)
        return pid in b.records and b.budget(pid).doses_last_24h == 1

    took = wait_for("B's dose budget counts the dose given on A", b_counts_it, 30)
    print(f"\nA's dose counted on B after {took:.1f} s")
    assert not b.budget(pid).allowed_now

    # ---- the network is down for B: doses and notes on both sides
    pair.st_b.stop()
    clock.advance(9 * H)
    a.chart(pid, "note", recorded_by="AB", text="A during the outage")
    dose2 = a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(H)
    b.chart(pid, "note", recorded_by="EF", text="B during the outage")
    dose3 = b.give_tocilizumab(pid, given_by="EF", checked_by="GH")  # B cannot know dose2
    # ---- a workstation cut off shows its staleness
    clock.advance(35 * timedelta(minutes=1))
    write_heartbeat(a.store)
    write_heartbeat(b.store)
    stale = ward_status(b).stale
    assert stale and stale[0].startswith("4A-PC1 last synced ") and "may be missing" in stale[0]
    # ---- back on the network
    pair.st_b.start()
    wait_for("B reconnects", lambda: pair.st_b.connected_to(pair.st_a), 60)
    wait_for(
        "both workstations hold the same events",
        lambda: _ids(a, pid) == _ids(b, pid) and len(_ids(a, pid)) == 5,
        30,
    )
    ids = _ids(a, pid)
    assert len(ids) == len(set(ids)), "an event is duplicated"
    for dose in (dose1, dose2, dose3):
        assert dose.id in ids, "an event was lost"
    wait_for(
        "journal files converge byte for byte",
        lambda: _journal_bytes(pair.dir_a, pid) == _journal_bytes(pair.dir_b, pid),
        30,
    )
    assert [e.hash for e in a.record(pid).events] == [e.hash for e in b.record(pid).events]
    for ward in (a, b):  # the doses given on both sides during the outage are flagged on both
        dups = duplicate_doses(ward, pid)
        assert [(d.first.id, d.second.id) for d in dups] == [(dose2.id, dose3.id)]
    # ... as one critical alert with one identity; A's acknowledgement reaches B by Syncthing.
    on_a, on_b = _duplicate_alerts(a, pid), _duplicate_alerts(b, pid)
    assert len(on_a) == len(on_b) == 1 and on_a[0].item.key == on_b[0].item.key
    assert on_b[0].item.severity == "critical" and on_b[0].sounding
    alerts.acknowledge(a, pid, on_a[0].item.key, "AB", reason="checked both charts with B")

    def acked_on_b() -> bool:
        refresh_ward(b)
        st = _duplicate_alerts(b, pid)
        return len(st) == 1 and st[0].state == "acknowledged" and st[0].by == "AB"

    wait_for("A's acknowledgement of the duplicate reaches B", acked_on_b, 30)
    wait_for("A's fresh heartbeat reaches B", lambda: not ward_status(b).stale, 30)
    assert not list(pair.dir_b.rglob("*.sync-conflict-*")), "one writer per file: no conflicts"


def test_kill_syncthing_mid_transfer_never_reads_a_partial_line(pair: Pair) -> None:
    a, b, clock = pair.a, pair.b, pair.clock
    pid = _admit(a, clock)
    wait_for("B has the patient", lambda: bool(_ids(b, pid)) or pid in b.records, 30)
    written: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    reads = [0]
    stop = threading.Event()
    b_journal = pair.dir_b / "journals" / pid / "4A-PC1.jsonl"

    def reader() -> None:
        """Read B's copy of A's journal as fast as possible while Syncthing writes it."""
        while not stop.is_set():
            try:
                data = b_journal.read_bytes()
            except FileNotFoundError:
                continue
            j = parse_journal(data, "4A-PC1", "B's copy", pid)
            reads[0] += 1
            if j.problem:
                problems.append(j.problem)
            for body in j.lines:
                ev = body.get("event")
                if ev is not None and ev["id"] in written and ev != written[ev["id"]]:
                    problems.append("an event read on B differs from what A wrote")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    rng = random.Random(15)
    kills, mid_transfer, leftovers = [0], [0], [0]
    try:
        for burst in range(5):
            for i in range(60):
                clock.advance(timedelta(seconds=30))
                ev = a.chart(
                    pid, "note", recorded_by="AB", text=f"burst {burst} note {i} " + "x" * 3000
                )
                written[ev.id] = ev.model_dump(mode="json")
            # Kill B's engine while it writes its temp file for A's journal, when we catch it.
            deadline = time.monotonic() + rng.uniform(2.0, 4.0)
            while time.monotonic() < deadline:
                if list(b_journal.parent.glob(".syncthing.*.tmp")):
                    mid_transfer[0] += 1
                    break
                time.sleep(0.001)
            pair.st_b.kill()
            kills[0] += 1
            leftovers[0] += len(list(b_journal.parent.glob(".syncthing.*.tmp")))
            time.sleep(0.5)
            pair.st_b.start()
        wait_for("B reconnects", lambda: pair.st_b.connected_to(pair.st_a), 60)
        wait_for(
            "B holds every event A wrote",
            lambda: set(written) <= set(_ids(b, pid)),
            60,
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    print(
        f"\n{kills[0]} SIGKILLs of B's Syncthing, {mid_transfer[0]} caught with a temp file "
        f"being written, {leftovers[0]} temp file(s) left behind, {reads[0]} reads on B, "
        f"{len(problems)} problems"
    )
    assert reads[0] > 10
    assert problems == [], problems[:3]
    ids = _ids(b, pid)
    assert len(ids) == len(set(ids)) == len(written)
    assert _journal_bytes(pair.dir_a, pid) == _journal_bytes(pair.dir_b, pid)
    assert not b.failures

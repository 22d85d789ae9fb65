"""Issue 15: per-workstation journals in one ward folder, merge, migration, identity, heartbeats."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.record import (
    GENESIS_HASH,
    Medication,
    chain_genesis,
    effective_events,
    raw_chain_problems,
    record_binding,
)
from bedside.common.clock import FakeClock
from bedside.common.errors import LimitError, LockedError
from bedside.store.journal import (
    encode_line,
    is_journal_name,
    merge_journals,
    parse_journal,
    pending,
)
from bedside.ward.service import Ward, open_ward
from bedside.ward.wardsync import duplicate_doses, ward_status, write_heartbeat

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "legacy-v1"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def two(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Ward, Ward]]:
    """Two workstations open on one ward folder at the same time (one machine)."""
    a = open_ward(tmp_path / "ward", clock, workstation="4A-PC1")
    b = open_ward(tmp_path / "ward", clock, workstation="4A-PC2")
    yield a, b
    a.close()
    b.close()


def _admit(ward: Ward, clock: FakeClock, pid: str = "p1") -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
        infusion_at=clock.now() - 48 * H,
        dose_history_complete=True,
    )


def _journal(ward: Ward, pid: str) -> Path:
    return ward.root / "journals" / pid / f"{ward.workstation}.jsonl"


# --------------------------------------------------------------------------- line format


def test_lines_are_chained_and_a_damaged_line_is_named() -> None:
    l1, h1 = encode_line(GENESIS_HASH, {"t": "header", "seq": 0, "ws": "W", "patient": {}})
    l2, h2 = encode_line(h1, {"t": "event", "seq": 1, "ws": "W", "event": {"id": "x"}})
    j = parse_journal(l1 + l2, "W", "j")
    assert not j.problem and len(j.lines) == 2 and j.head == h2
    assert parse_journal(l2 + l1, "W", "j").problem.endswith("(removed or reordered)")
    assert "checksum" in parse_journal(l1 + l2.replace(b'"x"', b'"y"'), "W", "j").problem
    assert "wrong sequence, writer" in parse_journal(l1 + l2, "OTHER", "j").problem


def test_torn_last_line_is_ignored_and_cut_by_its_owner(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "w", clock, workstation="pc1")
    pid = _admit(w, clock)
    w.chart(pid, "note", recorded_by="AB", text="first")
    path = _journal(w, pid)
    good = path.read_bytes()
    torn_line = good.splitlines(keepends=True)[1][:-25]  # a write that died mid-line
    w.close()
    path.write_bytes(good + torn_line)
    w = open_ward(tmp_path / "w", clock, workstation="pc1")
    assert [e.kind for e in w.record(pid).events] == ["note"]  # the partial line is no event
    assert w.store.torn_seen[pid] == ["pc1"]
    w.chart(pid, "note", recorded_by="AB", text="second")
    data = path.read_bytes()
    assert data.startswith(good) and torn_line not in data[len(good) :]
    j = parse_journal(data, "pc1", "j", pid)
    assert not j.problem and not j.torn and len(j.lines) == 3
    assert list((tmp_path / "w" / "quarantine" / "pc1").glob("p1.torn-*.jsonl"))
    w.close()


def test_identity_on_every_line(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "w", clock, workstation="4A-PC2")
    pid = _admit(w, clock)
    w.chart(pid, "note", recorded_by="xy", text="hello")
    bodies = [json.loads(x)["b"] for x in _journal(w, pid).read_bytes().splitlines()]
    assert {b["ws"] for b in bodies} == {"4A-PC2"}
    assert all(isinstance(b["user"], str) and b["user"] for b in bodies)
    assert bodies[1]["event"]["recorded_by"] == "XY"  # the nurse's initials beside them
    ev = w.record(pid).events[0]
    assert w.store.provenance[pid][ev.id][0] == "4A-PC2"
    w.close()


def test_syncthing_files_are_never_read_as_journals(
    two: tuple[Ward, Ward], clock: FakeClock
) -> None:
    a, b = two
    pid = _admit(a, clock)
    d = a.root / "journals" / pid
    real = _journal(a, pid).read_bytes()
    (d / ".syncthing.4A-PC3.jsonl.tmp").write_bytes(real[:50])
    (d / "4A-PC1.sync-conflict-20260301-080000-ABCDEFG.jsonl").write_bytes(b"garbage\n")
    (d / ".stfolder").mkdir()
    (a.root / ".stignore").write_text("/locks\n")
    for name in (
        ".syncthing.4A-PC3.jsonl.tmp",
        "4A-PC1.sync-conflict-20260301-080000-ABCDEFG.jsonl",
    ):
        assert not is_journal_name(name)
    b.reload()
    assert pid in b.records and not b.failures
    assert [p.name for p in b.store.journal_files(pid)] == ["4A-PC1.jsonl"]


# --------------------------------------------------------------------------- two workstations


def test_a_dose_on_one_workstation_counts_on_the_other(
    two: tuple[Ward, Ward], clock: FakeClock
) -> None:
    a, b = two
    pid = _admit(a, clock)
    b.reload()
    a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(H)
    budget = b.budget(pid)  # B re-merges because A's journal changed on disk
    assert budget.doses_last_24h == 1
    assert not budget.allowed_now
    with pytest.raises(LimitError):
        b.give_tocilizumab(pid, given_by="EF", checked_by="GH")
    b.chart(pid, "note", recorded_by="EF", text="seen on PC2")
    a_events = [e.id for e in a.record(pid).events]
    b_events = [e.id for e in b.record(pid).events]
    assert a_events == b_events and len(a_events) == 2  # same deterministic order on both
    assert [e.hash for e in a.record(pid).events] == [e.hash for e in b.record(pid).events]
    # each workstation wrote only its own file
    assert sorted(p.name for p in (a.root / "journals" / pid).iterdir()) == [
        "4A-PC1.jsonl",
        "4A-PC2.jsonl",
    ]


def test_lock_is_per_workstation(tmp_path: Path, clock: FakeClock) -> None:
    a = open_ward(tmp_path / "w", clock, workstation="pc1")
    try:
        with pytest.raises(LockedError, match="workstation pc1"):
            open_ward(tmp_path / "w", clock, workstation="pc1")
        other = open_ward(tmp_path / "w", clock, workstation="pc2")  # another id: allowed
        other.close()
    finally:
        a.close()


def _hide(ward: Ward, pid: str, ws: str, where: Path) -> None:
    shutil.move(str(ward.root / "journals" / pid / f"{ws}.jsonl"), str(where))


def test_correction_of_an_event_not_yet_received_waits_as_pending(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _admit(a, clock)
    note = a.chart(pid, "note", recorded_by="AB", text="wrong bed")
    b.reload()
    clock.advance(H)
    b.correct(pid, note.id, action="void", reason="charted on the wrong patient", recorded_by="EF")
    # On a third workstation B's journal arrives first (A's header came earlier, its note not).
    c_root = tmp_path / "c"
    shutil.copytree(a.root / "journals", c_root / "journals")
    a_path = c_root / "journals" / pid / "4A-PC1.jsonl"
    a_lines = a_path.read_bytes().splitlines(keepends=True)
    a_path.write_bytes(a_lines[0])  # only the header so far
    c = open_ward(c_root, clock, workstation="4A-PC3")
    try:
        waiting = pending(c.record(pid))
        assert [w.target_id for w in waiting] == [note.id]
        a_path.write_bytes(b"".join(a_lines))  # A's note arrives
        rec = c.record(pid)
        assert pending(rec) == []
        assert note.id not in {e.id for e in effective_events(rec)}  # the void now applies
    finally:
        c.close()


def test_doses_from_two_workstations_within_the_interval_raise_possible_duplicate(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = two
    pid = _admit(a, clock)
    b.reload()
    a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    # The network was down: B did not have A's dose when it gave its own.
    _hide(a, pid, "4A-PC1", tmp_path / "away.jsonl")
    lines = (tmp_path / "away.jsonl").read_bytes().splitlines(keepends=True)
    (a.root / "journals" / pid / "4A-PC1.jsonl").write_bytes(lines[0])
    clock.advance(2 * H)
    b.give_tocilizumab(pid, given_by="EF", checked_by="GH")
    shutil.move(str(tmp_path / "away.jsonl"), str(a.root / "journals" / pid / "4A-PC1.jsonl"))
    for ward in (a, b):  # on both
        dups = duplicate_doses(ward, pid)
        assert len(dups) == 1
        assert {dups[0].first_ws, dups[0].second_ws} == {"4A-PC1", "4A-PC2"}
        assert "Possible duplicate dose" in dups[0].message
        doses = [e for e in effective_events(ward.record(pid)) if isinstance(e, Medication)]
        assert len(doses) == 2  # the dose check counts every dose it knows of
        assert not ward.budget(pid).allowed_now


# --------------------------------------------------------------------------- heartbeats


def test_staleness_and_clock_disagreement_are_named(tmp_path: Path) -> None:
    clock_a = FakeClock(T0)
    clock_b = FakeClock(T0)
    a = open_ward(tmp_path / "w", clock_a, workstation="4A-PC1")
    b = open_ward(tmp_path / "w", clock_b, workstation="4A-PC2")
    try:
        assert ward_status(b).lines == []
        clock_b.advance(timedelta(minutes=35))
        status = ward_status(b)
        assert status.stale == [
            "4A-PC1 last synced 35 min ago — doses given there since may be missing"
        ]
        clock_a.set(clock_b.now() + timedelta(minutes=25))  # A's clock runs 25 min ahead
        write_heartbeat(a.store)
        status = ward_status(b)
        assert status.stale == []
        assert status.clocks and status.clocks[0].startswith(
            "4A-PC1's clock is at least 25 min ahead"
        )
        write_heartbeat(b.store)  # B records what it saw of A; A then names B as behind
        assert ward_status(a).clocks[0].startswith("4A-PC2's clock is at least 25 min behind")
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- migration


def _golden_ward(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    (root / "patients").mkdir(parents=True)
    for src in GOLDEN.glob("*.json"):
        shutil.copy(src, root / "patients" / src.name)
    return root


def test_old_single_files_migrate_on_first_open_and_are_kept(tmp_path: Path) -> None:
    root = _golden_ward(tmp_path)
    originals = {p.stem: p.read_bytes() for p in (root / "patients").glob("*.json")}
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    viewer = open_ward(root, clock, read_only=True, workstation="pc1")  # read-only: no write
    assert sorted(viewer.records) == sorted(originals)
    assert {p.stem: p.read_bytes() for p in (root / "patients").glob("*.json")} == originals
    assert not list(root.glob("journals/*/*.jsonl"))
    w = open_ward(root, clock, workstation="pc1")
    try:
        for pid, data in originals.items():
            old = json.loads(data)
            rec = w.record(pid)
            assert [e.id for e in rec.events] == [e["id"] for e in old["events"]]
            # Issue 12: content byte-identical; the chain is re-sealed bound to the patient
            # (only prev_hash/hash differ) and the journal keeps the old events verbatim.
            chainless = ("prev_hash", "hash")
            merged = merge_journals(w.store.read_journals(pid), pid, pid).events
            assert [{k: v for k, v in e.items() if k not in chainless} for e in merged] == [
                {k: v for k, v in e.items() if k not in chainless} for e in old["events"]
            ]
            assert old["events"][0]["prev_hash"] == GENESIS_HASH
            assert rec.events[0].prev_hash == chain_genesis(pid)
            assert raw_chain_problems(merged, rec.head, pid) == []
            assert record_binding(rec) == "bound"
            lines = parse_journal(
                (root / "journals" / pid / "pc1.jsonl").read_bytes(), "pc1", "j", pid
            ).lines
            assert [b["event"] for b in lines if b["t"] == "event"] == old["events"]
            assert rec.patient.model_dump(mode="json") == old["patient"]
            assert not (root / "patients" / f"{pid}.json").exists()
            kept = root / "backups" / "pc1" / pid / f"{pid}.pre-journal.json"
            assert kept.read_bytes() == data  # the old file, byte for byte
            assert viewer.records[pid].events == rec.events
    finally:
        w.close()
    again = open_ward(root, clock, workstation="pc2")  # another workstation: nothing re-migrated
    try:
        assert sorted(p.name for p in (root / "journals" / "demo-02").iterdir()) == ["pc1.jsonl"]
        assert len(again.record("demo-02").events) == len(
            json.loads(originals["demo-02"])["events"]
        )
    finally:
        again.close()


def test_migration_that_does_not_verify_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bedside.store.journal as journal

    root = _golden_ward(tmp_path)
    data = (root / "patients" / "demo-02.json").read_bytes()

    def lossy(
        journals: list[journal.Journal], source: str, pid: str | None = None
    ) -> journal.Merged:
        merged = real(journals, source, pid)
        merged.events = merged.events[:-1]
        return merged

    real = journal.merge_journals
    monkeypatch.setattr(journal, "merge_journals", lossy)
    w = open_ward(root, FakeClock(datetime(2026, 12, 1, tzinfo=UTC)), workstation="pc1")
    try:
        assert "demo-02" in w.failures and "could not be verified" in w.failures["demo-02"]
        assert (root / "patients" / "demo-02.json").read_bytes() == data
    finally:
        w.close()


# --------------------------------------------------------------------------- command line


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_every_command_takes_workstation(tmp_path: Path) -> None:
    ward = tmp_path / "WARD"
    assert _run("demo", "--data-dir", str(ward), "--workstation", "pc1").returncode == 0
    out = tmp_path / "csv"
    proc = _run(
        "export",
        "--data-dir",
        str(ward),
        "--workstation",
        "pc2",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    ids = {p.name for p in (ward / "journals").iterdir()}
    assert {p.stem for p in out.glob("demo-*.csv")} == ids
    clock = FakeClock(T0)
    w = open_ward(ward, clock, read_only=True, workstation="pc2")
    for pid in ids:
        text = (out / f"{pid}.csv").read_text("utf-8")
        for ev in w.record(pid).events:
            assert ev.id in text  # pc2 sees pc1's events
    proof = _run("verify", "--data-dir", str(ward), "--workstation", "pc2")
    assert proof.returncode == 0 and "from pc1" in proof.stdout
    bad = _run("verify", "--data-dir", str(ward), "--workstation", "no/slash")
    assert bad.returncode == 2 and "workstation" in bad.stderr


def test_handover_says_when_another_workstation_was_last_heard_from(tmp_path: Path) -> None:
    from bedside.reports.handover import build_handover, render_html

    clock = FakeClock(T0)
    a = open_ward(tmp_path / "w", clock, workstation="4A-PC1")
    b = open_ward(tmp_path / "w", clock, workstation="4A-PC2")
    try:
        pid = _admit(a, clock)
        b.reload()
        clock.advance(timedelta(minutes=35))
        expected = "4A-PC1 last synced 35 min ago — doses given there since may be missing"
        for doc in (build_handover(b, clock.now()), build_handover(b, clock.now(), pid)):
            assert expected in doc.sync
            assert expected in render_html(doc)
        write_heartbeat(a.store)
        assert build_handover(b, clock.now()).sync == ()
    finally:
        a.close()
        b.close()


def test_a_damaged_old_file_is_restored_from_its_old_backup_then_migrated(tmp_path: Path) -> None:
    root = _golden_ward(tmp_path)
    backup_dir = root / "backups" / "demo-02"
    backup_dir.mkdir(parents=True)
    good = (root / "patients" / "demo-02.json").read_bytes()
    (backup_dir / "bk-000001-20261129T000000Z.json").write_bytes(good)
    (root / "patients" / "demo-02.json").write_bytes(good[:-30])  # damaged before migration
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    w = open_ward(root, clock, workstation="pc1")
    try:
        assert "demo-02" in w.failures
        assert w.newest_backup("demo-02") is not None
        w.restore_from_backup("demo-02", recorded_by="AB")
        events = w.record("demo-02").events
        assert [e.id for e in events[:-1]] == [e["id"] for e in json.loads(good)["events"]]
        assert events[-1].kind == "restored"
        assert (root / "journals" / "demo-02" / "pc1.jsonl").exists()
        assert list((root / "quarantine").glob("demo-02.*"))  # the damaged bytes are kept
    finally:
        w.close()


def test_an_event_imported_by_file_and_replicated_from_its_author_is_kept_once(
    two: tuple[Ward, Ward], clock: FakeClock, tmp_path: Path
) -> None:
    from bedside.reports.export import export_json_bytes
    from bedside.ward.transfer import import_file

    a, b = two
    pid = _admit(a, clock)
    dose = a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    other = open_ward(tmp_path / "elsewhere", clock, workstation="4B-PC1")  # another ward
    try:
        f = tmp_path / "p1.json"
        f.write_bytes(export_json_bytes(a, pid))
        import_file(other, f)
        assert other.record(pid).events[0].origin  # marked as imported
        # That ward's journal later joins this ward folder next to the author's journal.
        shutil.copy(
            tmp_path / "elsewhere" / "journals" / pid / "4B-PC1.jsonl",
            a.root / "journals" / pid,
        )
        b.reload()
        rec = b.record(pid)
        assert [e.id for e in rec.events] == [dose.id] and not b.failures
    finally:
        other.close()


def test_restart_uses_the_signed_cache_and_any_change_misses_it(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bedside.store.journal as journal

    w = open_ward(tmp_path / "w", clock, workstation="pc1")
    pid = _admit(w, clock)
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    w.close()
    first = open_ward(tmp_path / "w", clock, workstation="pc1")  # full load, writes the cache
    expected = first.record(pid)
    first.close()
    parsed: list[str] = []
    real = journal.parse_journal

    def spy(data: bytes, workstation: str, source: str, pid: str | None = None) -> journal.Journal:
        parsed.append(workstation)
        return real(data, workstation, source, pid)

    monkeypatch.setattr(journal, "parse_journal", spy)
    again = open_ward(tmp_path / "w", clock, workstation="pc1")
    assert parsed == [] and again.record(pid) == expected  # served from the cache
    assert again.budget(pid).total == 1
    again.close()
    # A flipped value in the journal: the cache misses and the full check catches it.
    path = tmp_path / "w" / "journals" / pid / "pc1.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"sex":"female"', b'"sex":"male"', 1))
    damaged = open_ward(tmp_path / "w", clock, workstation="pc1")
    assert parsed == ["pc1"] and pid in damaged.failures
    damaged.close()
    # A tampered cache file is ignored (signature), never believed.
    (cache,) = Path(journal.RecordCache(tmp_path / "w", "pc1").dir).glob("*.bin")
    blob = bytearray(cache.read_bytes())
    blob[-5] ^= 1
    cache.write_bytes(bytes(blob))
    assert journal.RecordCache(tmp_path / "w", "pc1").get(pid, bytes(blob[32:64])) is None

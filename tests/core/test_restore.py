"""Restore from backup (issue 14, item 5): list, verify, restore, refuse — journal and old file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.record import Restored
from bedside.common.clock import FakeClock
from bedside.common.errors import CorruptDataError, InputError, StorageError
from bedside.store.journal import parse_journal, verify_ward_folder
from bedside.ward.restore import RestoreRefused, describe, list_backups, restore
from bedside.ward.service import Ward, open_ward

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "legacy-v1"
T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
WS = "pc1"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove nothing was written)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith((".lock", ".lock.info")) and "cache" not in p.parts
    }


def _admit(ward: Ward, clock: FakeClock, pid: str = "p1") -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name="Restore Person" if pid == "p1" else "Other Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="ide-cel",
    )


def _journal(root: Path, pid: str = "p1") -> Path:
    return root / "journals" / pid / f"{WS}.jsonl"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def damaged(tmp_path: Path, clock: FakeClock) -> Path:
    """A ward whose patient p1 has three daily backups and a damaged journal; p2 is sound."""
    root = tmp_path / "ward"
    w = open_ward(root, clock, workstation=WS)
    try:
        _admit(w, clock)  # backup 1: the admission
        w.chart("p1", "note", recorded_by="AB", text="day one")
        clock.advance(timedelta(days=1))
        w.chart("p1", "note", recorded_by="AB", text="day two")  # backup 2: 2 events
        clock.advance(timedelta(days=1))
        w.give_tocilizumab("p1", given_by="AB", checked_by="CD")  # backup 3: 3 events
        clock.advance(timedelta(minutes=5))
        w.chart("p1", "note", recorded_by="AB", text="after the last backup")
        _admit(w, clock, "p2")
    finally:
        w.close()
    path = _journal(root)
    data = path.read_bytes()
    bad = data.replace(b'"sex":"female"', b'"sex":"male"', 1)
    assert bad != data
    path.write_bytes(bad)
    return root


def test_lists_each_backup_with_its_time_events_and_verification(
    damaged: Path, clock: FakeClock
) -> None:
    w = open_ward(damaged, clock, read_only=True, workstation=WS)
    assert "p1" in w.failures and "p1" not in w.records
    before = _tree(damaged)
    choices = list_backups(w, "p1")
    assert [c.name[:9] for c in choices] == ["bk-000003", "bk-000002", "bk-000001"]
    assert [c.events for c in choices] == [3, 2, 0]
    assert all(c.verified and c.problem == "" for c in choices), [c.problem for c in choices]
    assert all(c.kind == "journal" and c.patient_name == "Restore Person" for c in choices)
    # The time the backup holds the record up to: aware UTC, the last line written.
    assert choices[0].taken_at == T0 + timedelta(days=2)
    assert choices[2].taken_at == T0
    assert all(c.taken_at is not None and c.taken_at.tzinfo is not None for c in choices)
    line = describe(choices[1])
    assert "2 events" in line and "verified: yes" in line and choices[1].name in line
    assert _tree(damaged) == before  # listing writes nothing


def test_restore_a_chosen_backup_marks_history_incomplete_and_keeps_the_damaged_file(
    damaged: Path, clock: FakeClock
) -> None:
    damaged_bytes = _journal(damaged).read_bytes()
    w = open_ward(damaged, clock, workstation=WS)
    try:
        name = list_backups(w, "p1")[1].name
        clock.advance(timedelta(hours=1))
        result = restore(w, "p1", recorded_by=" ab ", backup=name)
        assert "p1" not in w.failures
        record = w.record("p1")
        kinds = [e.kind for e in record.events]
        assert kinds == ["note", "note", "restored"]  # the dose after the backup is missing
        event = record.events[-1]
        assert isinstance(event, Restored) and event is not None
        assert (event.recorded_by, event.backup_name) == ("AB", name)
        assert event.recorded_at == clock.now() and result.event.id == event.id
        budget = w.budget("p1")
        assert not budget.history_complete and "history incomplete" in budget.summary()
        kept = [p.read_bytes() for p in (damaged / "quarantine" / WS).glob("p1.*.jsonl")]
        assert damaged_bytes in kept  # the damaged journal is kept, never deleted
    finally:
        w.close()
    again = open_ward(damaged, clock, workstation=WS)  # the restore and its mark are on disk
    try:
        assert "p1" not in again.failures
        assert [e.kind for e in again.record("p1").events][-1] == "restored"
        assert not again.budget("p1").history_complete
    finally:
        again.close()
    # The backup newer than the chosen one (it holds the dose the restore took back) is
    # kept in quarantine, not read as the journal's history: verify passes after a restore.
    kept_backups = [
        p.read_bytes() for p in (damaged / "quarantine" / WS).glob("p1.after-restore-backup-*")
    ]
    assert len(kept_backups) == 1 and b'"tocilizumab"' in kept_backups[0]
    assert [p.name[:9] for p in sorted((damaged / "backups" / WS / "p1").glob("bk-*"))][:2] == [
        "bk-000001",
        "bk-000002",
    ]
    ok, lines = verify_ward_folder(damaged)
    assert ok, lines


def test_nothing_written_when_the_chosen_backup_fails_verification(
    damaged: Path, clock: FakeClock
) -> None:
    w = open_ward(damaged, clock, workstation=WS)
    try:
        newest = list_backups(w, "p1")[0]
        newest.path.write_bytes(newest.path.read_bytes()[:-40] + b"x" * 39 + b"\n")
        choices = list_backups(w, "p1")
        assert not choices[0].verified and choices[0].problem
        assert "verified: NO" in describe(choices[0])
        before = _tree(damaged)
        with pytest.raises(CorruptDataError, match="does not verify"):
            restore(w, "p1", recorded_by="AB", backup=choices[0].name)
        with pytest.raises(InputError, match="recorded_by"):
            restore(w, "p1", recorded_by="7", backup=choices[1].name)
        with pytest.raises(InputError, match="no backup named"):
            restore(w, "p1", recorded_by="AB", backup="bk-999999-20260101T000000Z.jsonl")
        assert _tree(damaged) == before
        assert "p1" in w.failures
        # Without a name: the newest backup that verifies.
        used = w.restore_from_backup("p1", recorded_by="AB")
        assert used == choices[1].path
    finally:
        w.close()


def test_refused_for_a_patient_that_loads_and_in_a_read_only_ward(
    damaged: Path, clock: FakeClock
) -> None:
    w = open_ward(damaged, clock, workstation=WS)
    try:
        assert list_backups(w, "p2")  # listing a sound patient is allowed
        before = _tree(damaged)
        with pytest.raises(RestoreRefused, match="loads normally"):
            restore(w, "p2", recorded_by="AB")
        assert _tree(damaged) == before
    finally:
        w.close()
    ro = open_ward(damaged, clock, read_only=True, workstation=WS)
    before = _tree(damaged)
    with pytest.raises(StorageError, match="read-only"):
        restore(ro, "p1", recorded_by="AB")
    assert _tree(damaged) == before and "p1" in ro.failures


def test_no_restore_when_the_damaged_journal_cannot_be_kept(
    damaged: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = open_ward(damaged, clock, workstation=WS)
    try:
        journal = _journal(damaged).read_bytes()
        monkeypatch.setattr(w.store, "_quarantine_copy", lambda *a, **k: None)
        with pytest.raises(StorageError, match="quarantine"):
            restore(w, "p1", recorded_by="AB")
        assert _journal(damaged).read_bytes() == journal
        assert "p1" in w.failures
    finally:
        w.close()


def test_another_workstations_damaged_journal_is_not_hidden_by_a_local_backup(
    tmp_path: Path, clock: FakeClock
) -> None:
    root = tmp_path / "ward"
    a = open_ward(root, clock, workstation=WS)
    b = open_ward(root, clock, workstation="pc2")
    try:
        _admit(a, clock)
        b.reload()
        b.chart("p1", "note", recorded_by="CD", text="from pc2")
    finally:
        a.close()
        b.close()
    peer = root / "journals" / "p1" / "pc2.jsonl"
    peer.write_bytes(peer.read_bytes().replace(b"from pc2", b"from pcX"))
    w = open_ward(root, clock, workstation=WS)
    try:
        assert "p1" in w.failures
        choices = list_backups(w, "p1")
        assert choices and not any(c.verified for c in choices)
        assert all("must be restored on pc2" in c.problem for c in choices)
        before = _tree(root)
        with pytest.raises(RestoreRefused, match="no backup of this patient verifies"):
            restore(w, "p1", recorded_by="AB")
        assert _tree(root) == before
    finally:
        w.close()


def _legacy_ward(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    root = tmp_path / "old"
    (root / "patients").mkdir(parents=True)
    for src in GOLDEN.glob("*.json"):
        shutil.copy(src, root / "patients" / src.name)
    good = (root / "patients" / "demo-02.json").read_bytes()
    backups = root / "backups" / "demo-02"
    backups.mkdir(parents=True)
    (backups / "bk-000001-20261129T000000Z.json").write_bytes(good)
    (backups / "bk-000002-20261130T000000Z.json").write_bytes(good[:-50])  # does not verify
    bad = good[:-30]
    (root / "patients" / "demo-02.json").write_bytes(bad)
    return root, good, bad


def test_old_single_file_backups_are_listed_and_restored(tmp_path: Path) -> None:
    root, good, bad = _legacy_ward(tmp_path)
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    w = open_ward(root, clock, workstation=WS)
    try:
        assert "demo-02" in w.failures
        choices = list_backups(w, "demo-02")
        assert [c.name for c in choices] == [
            "bk-000002-20261130T000000Z.json",
            "bk-000001-20261129T000000Z.json",
        ]
        assert [c.verified for c in choices] == [False, True]
        assert all(c.kind == "single file" for c in choices)
        n_events = len(json.loads(good)["events"])
        assert choices[1].events == n_events
        assert choices[1].taken_at == datetime(2026, 11, 29, tzinfo=UTC)
        before = _tree(root)
        with pytest.raises(CorruptDataError, match="does not verify"):
            restore(w, "demo-02", recorded_by="AB", backup=choices[0].name)
        assert _tree(root) == before
        restore(w, "demo-02", recorded_by="AB", backup=choices[1].name)
        events = w.record("demo-02").events
        assert len(events) == n_events + 1 and events[-1].kind == "restored"
        assert not w.budget("demo-02").history_complete
        kept = [p.read_bytes() for p in (root / "quarantine").glob("demo-02.*")]
        assert bad in kept  # the damaged old file is kept in quarantine
        journal = parse_journal(
            (root / "journals" / "demo-02" / f"{WS}.jsonl").read_bytes(), WS, "", "demo-02"
        )
        assert not journal.problem
    finally:
        w.close()


# ----------------------------------------------------------------------- command line


def _run(cli: Callable[[list[str]], int], args: list[str]) -> int:
    """The exit status, also when argparse exits on a usage error."""
    try:
        return cli(args)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def cli() -> Iterator[Callable[[list[str]], int]]:
    """``python -m bedside`` in-process; the process-wide workstation id is reset after."""
    from bedside.store.workstation import set_workstation
    from bedside.tools import cli as cli_module

    yield cli_module.main
    set_workstation(None)


def test_cli_lists_backups_without_writing(
    damaged: Path, cli: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(damaged)
    args = ["restore", "--data-dir", str(damaged), "--workstation", WS, "p1", "--list"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "p1: set aside" in out
    lines = [line for line in out.splitlines() if line.startswith("bk-")]
    assert len(lines) == 3 and all("verified: yes" in line for line in lines)
    assert "3 events" in lines[0] and "2 events" in lines[1]
    assert _tree(damaged) == before


def test_cli_refusals_write_nothing_and_say_why(
    damaged: Path, cli: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["restore", "--data-dir", str(damaged), "--workstation", WS]
    name = sorted((damaged / "backups" / WS / "p1").glob("bk-*.jsonl"))[1].name
    before = _tree(damaged)
    cases = [
        (["p1", "--backup", name], 2, "--by: give your initials"),
        (["p1", "--backup", name, "--by", "7"], 2, "enter your initials"),
        (["p1", "--backup", "bk-nope.jsonl", "--by", "AB"], 2, "no backup named"),
        (["p2", "--backup", name, "--by", "AB"], 1, "loads normally"),
        (["../p1", "--list"], 2, "patient_id must match"),
        (["p1"], 2, "one of the arguments --list --backup is required"),
    ]
    for extra, code, words in cases:
        got = _run(cli, base + extra)
        err = capsys.readouterr().err
        assert got == code, (extra, got, err)
        assert words in err, (extra, err)
    assert _tree(damaged) == before
    # A backup that does not verify: refused (1), nothing written.
    newest = sorted((damaged / "backups" / WS / "p1").glob("bk-*.jsonl"))[-1]
    newest.write_bytes(newest.read_bytes().replace(b'"seq":1', b'"seq":9', 1))
    before = _tree(damaged)
    assert cli([*base, "p1", "--backup", newest.name, "--by", "AB"]) == 1
    assert "does not verify" in capsys.readouterr().err
    assert _tree(damaged) == before


def test_cli_restores_and_says_what_may_be_missing(
    damaged: Path,
    clock: FakeClock,
    cli: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = sorted((damaged / "backups" / WS / "p1").glob("bk-*.jsonl"))[1].name
    args = ["restore", "--data-dir", str(damaged), "--workstation", WS, "p1"]
    assert cli([*args, "--backup", name, "--by", "ab"]) == 0
    out = capsys.readouterr().out
    assert f"restored p1 from {name}" in out and "history is marked incomplete" in out
    w = open_ward(damaged, clock, read_only=True, workstation=WS)
    assert "p1" not in w.failures
    last = w.record("p1").events[-1]
    assert isinstance(last, Restored) and last.backup_name == name and last.recorded_by == "AB"

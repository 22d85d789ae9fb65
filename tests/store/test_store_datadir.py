"""DataDir behaviour: concurrency tokens, idempotency, permissions, migrations, backups,
restore, temp sweep, id validation and identifier-free logging."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from store_helpers import CANARY, T0, make_envelope, make_event, temp_files, validate_events

from bedside.common.clock import FakeClock
from bedside.common.errors import (
    ConcurrentModificationError,
    CorruptDataError,
    InputError,
    MigrationError,
    StorageError,
)
from bedside.store import storage
from bedside.store.storage import (
    DataDir,
    FileOps,
    PatientNotFoundError,
    QuarantinedError,
    encode_envelope,
    patient_hash,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def _bytes(dd: DataDir, pid: str) -> bytes:
    return (dd.patients_dir / f"{pid}.json").read_bytes()


def _add(envelope: dict, event_id: str) -> dict:
    n = len(envelope["events"])
    return {**envelope, "events": [*envelope["events"], make_event(event_id, n)]}


# ----------------------------------------------------------------- save / load / tokens


def test_save_then_load_round_trip(datadir: DataDir) -> None:
    envelope = make_envelope(5)
    token = datadir.save("p1", envelope, expected_token=None, validate=validate_events)
    assert token == hashlib.sha256(_bytes(datadir, "p1")).hexdigest()
    loaded = datadir.load("p1", validate=validate_events)
    assert loaded.raw == envelope and loaded.value == envelope
    assert loaded.token == token and loaded.migrated_from is None
    assert datadir.patient_ids() == ["p1"]


def test_missing_patient(datadir: DataDir) -> None:
    with pytest.raises(PatientNotFoundError):
        datadir.load("nobody", validate=validate_events)
    assert not datadir.is_quarantined("nobody")


def test_concurrent_modification_is_refused(datadir: DataDir) -> None:
    token = datadir.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    a = datadir.load("p1", validate=validate_events)
    b = datadir.load("p1", validate=validate_events)
    a_env = _add(a.raw, "from-a")
    datadir.save("p1", a_env, expected_token=a.token, validate=validate_events)
    with pytest.raises(ConcurrentModificationError, match="changed on disk since it was loaded"):
        datadir.save("p1", _add(b.raw, "from-b"), expected_token=b.token, validate=validate_events)
    assert datadir.load("p1", validate=validate_events).raw == a_env
    with pytest.raises(ConcurrentModificationError, match="already exists"):
        datadir.save("p1", make_envelope(2), expected_token=None, validate=validate_events)
    (datadir.patients_dir / "p1.json").unlink()
    with pytest.raises(ConcurrentModificationError, match="vanished"):
        datadir.save("p1", make_envelope(2), expected_token=token, validate=validate_events)


def test_retry_of_same_envelope_is_idempotent_and_writes_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    opened: list[str] = []

    class Counting(FileOps):
        def open(self, path: str, flags: int, mode: int) -> int:
            opened.append(path)
            return super().open(path, flags, mode)

    dd = DataDir(tmp_path / "d", clock=clock, ops=Counting())
    dd.acquire_writer_lock()
    t0 = dd.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    env = _add(make_envelope(1), "once")
    t1 = dd.save("p1", env, expected_token=t0, validate=validate_events)
    opened.clear()
    # The caller did not get t1 (say, an ambiguous error) and retries with the old token.
    assert dd.save("p1", env, expected_token=t0, validate=validate_events) == t1
    assert opened == []
    ids = [e["id"] for e in dd.load("p1", validate=validate_events).raw["events"]]
    assert ids.count("once") == 1


def test_save_refuses_invalid_envelopes(datadir: DataDir) -> None:
    def save(envelope: object) -> None:
        datadir.save("p1", envelope, expected_token=None, validate=validate_events)  # type: ignore[arg-type]

    bad = [
        {**make_envelope(1), "schema_version": 2},
        {**make_envelope(1), "schema_version": True},
        {k: v for k, v in make_envelope(1).items() if k != "schema_version"},
        {**make_envelope(1), "events": [{"id": "a"}]},  # validator says no
        {**make_envelope(1), "patient": {"w": float("nan")}},
        {**make_envelope(1), "patient": {"when": T0}},  # not JSON
        {**make_envelope(1), "patient": {"s": "\ud800"}},
        [1, 2],
    ]
    for envelope in bad:
        with pytest.raises(StorageError):
            save(envelope)
    assert datadir.patient_ids() == []
    assert temp_files(datadir.root) == []


def test_save_never_writes_what_would_not_load(datadir: DataDir) -> None:
    # Validates the re-parsed bytes, not the Python object: a tuple passes a naive check
    # on the object but is stored as a list.
    def only_tuples(doc: dict) -> dict:
        if not isinstance(doc["events"], tuple):
            raise TypeError("events must be a tuple")
        return doc

    envelope = {**make_envelope(0), "events": ()}
    with pytest.raises(StorageError, match="would not load back"):
        datadir.save("p1", envelope, expected_token=None, validate=only_tuples)
    assert datadir.patient_ids() == []


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a\\b", "a" * 65, "é", "a\n", "a.b", " a"])
def test_patient_id_validation(datadir: DataDir, bad: str) -> None:
    with pytest.raises(InputError) as excinfo:
        datadir.save(bad, make_envelope(0), expected_token=None, validate=validate_events)
    if len(bad) > 3:
        assert bad not in str(excinfo.value)
    with pytest.raises(InputError):
        datadir.load(bad, validate=validate_events)


def test_good_ids_accepted(datadir: DataDir) -> None:
    for pid in ["a", "A-9_z", "x" * 64]:
        datadir.save(pid, make_envelope(0), expected_token=None, validate=validate_events)
    assert datadir.patient_ids() == sorted(["a", "A-9_z", "x" * 64])


# ----------------------------------------------------------------- permissions


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o277])
def test_private_permissions_regardless_of_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        root = tmp_path / "d"
        (root / "patients").mkdir(parents=True, mode=0o755)
        os.chmod(root / "patients", 0o755)
        clock = FakeClock(T0)
        dd = DataDir(root, clock=clock, backup_interval=timedelta(0))
        dd.acquire_writer_lock()
        t = dd.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
        dd.save("p1", make_envelope(2), expected_token=t, validate=validate_events)
        (dd.patients_dir / "p2.json").write_bytes(b"junk")
        os.chmod(dd.patients_dir / "p2.json", 0o600)
        with pytest.raises(CorruptDataError):
            dd.load("p2", validate=validate_events)
        for dirpath, _dirs, files in os.walk(root):
            assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
            for name in files:
                mode = stat.S_IMODE(os.stat(Path(dirpath) / name).st_mode)
                assert mode == 0o600, (name, oct(mode))
        dd.release_writer_lock()
    finally:
        os.umask(old)


# ----------------------------------------------------------------- migrations


@pytest.fixture
def schema_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pretend this build writes schema 2, with a real v1 -> v2 step."""

    def v1_to_v2(doc: dict) -> dict:
        doc["schema_version"] = 2
        doc["patient"]["weight_g"] = round(doc["patient"].pop("weight_kg") * 1000)
        return doc

    monkeypatch.setattr(storage, "CURRENT_SCHEMA", 2)
    monkeypatch.setitem(storage.MIGRATIONS, 1, v1_to_v2)
    yield


@pytest.mark.usefixtures("schema_v2")
def test_migration_applied_and_original_backed_up(datadir: DataDir) -> None:
    original = encode_envelope(make_envelope(3))  # a file as schema-1 Bedside wrote it
    (datadir.patients_dir / "p1.json").write_bytes(original)
    loaded = datadir.load("p1", validate=lambda d: d)
    assert loaded.migrated_from == 1
    assert loaded.raw["schema_version"] == 2
    assert loaded.raw["patient"]["weight_g"] == 71500
    assert "weight_kg" not in loaded.raw["patient"]
    assert loaded.token == hashlib.sha256(original).hexdigest()
    backup = datadir.backups_dir / "p1" / "p1.v1.json"
    assert backup.read_bytes() == original
    assert _bytes(datadir, "p1") == original  # load never rewrites the file
    datadir.load("p1", validate=lambda d: d)  # again: no second copy
    assert sorted(p.name for p in backup.parent.iterdir()) == ["p1.v1.json"]
    assert backup not in datadir.backups("p1")
    assert datadir.verify_file(backup, validate=lambda d: d)[0]  # verifies via migration
    # Saving writes v2; the next load needs no migration.
    token = datadir.save("p1", loaded.raw, expected_token=loaded.token, validate=lambda d: d)
    again = datadir.load("p1", validate=lambda d: d)
    assert again.migrated_from is None and again.token == token
    assert again.raw == loaded.raw
    assert backup.read_bytes() == original


@pytest.mark.usefixtures("schema_v2")
def test_save_refuses_old_schema_version(datadir: DataDir) -> None:
    with pytest.raises(StorageError, match="schema_version must be 2"):
        datadir.save("p1", make_envelope(0), expected_token=None, validate=lambda d: d)


def test_failing_migration_step(datadir: DataDir, monkeypatch: pytest.MonkeyPatch) -> None:
    original = encode_envelope(make_envelope(1))
    for pid in ("m1", "m2", "m3"):
        (datadir.patients_dir / f"{pid}.json").write_bytes(original)
    monkeypatch.setattr(storage, "CURRENT_SCHEMA", 3)

    def boom(doc: dict) -> dict:
        raise KeyError("weight_kg")

    monkeypatch.setitem(storage.MIGRATIONS, 1, boom)
    with pytest.raises(MigrationError, match="migration 1->2 failed"):
        datadir.load("m1", validate=lambda d: d)
    monkeypatch.setitem(storage.MIGRATIONS, 1, lambda d: {**d, "schema_version": 2})
    with pytest.raises(MigrationError, match="no migration from schema_version 2"):
        datadir.load("m2", validate=lambda d: d)
    monkeypatch.setitem(storage.MIGRATIONS, 2, lambda d: d)  # forgets to bump the version
    with pytest.raises(MigrationError, match="did not produce schema_version 3"):
        datadir.load("m3", validate=lambda d: d)
    for pid in ("m1", "m2", "m3"):
        assert datadir.is_quarantined(pid)
        assert _bytes(datadir, pid) == original
        assert (datadir.backups_dir / pid / f"{pid}.v1.json").read_bytes() == original


# ----------------------------------------------------------------- backups


def test_backup_rotation_interval_keep_and_daily(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    dd = DataDir(tmp_path / "d", clock=clock, backup_interval=timedelta(minutes=10), backup_keep=3)
    dd.acquire_writer_lock()
    envelope = make_envelope(1)
    token = dd.save("p1", envelope, expected_token=None, validate=validate_events)
    assert len(dd.backups("p1")) == 1
    clock.advance(timedelta(minutes=5))
    envelope = _add(envelope, "a")
    token = dd.save("p1", envelope, expected_token=token, validate=validate_events)
    assert len(dd.backups("p1")) == 1, "a backup within the interval"
    clock.advance(timedelta(minutes=5))
    envelope = _add(envelope, "b")
    token = dd.save("p1", envelope, expected_token=token, validate=validate_events)
    assert len(dd.backups("p1")) == 2
    newest = dd.backups("p1")[0]
    assert newest.read_bytes() == _bytes(dd, "p1")
    assert dd.verify_file(newest, validate=validate_events)[0]
    # Three days of saves every 4 hours.
    for i in range(18):
        clock.advance(timedelta(hours=4))
        envelope = _add(envelope, f"d{i}")
        token = dd.save("p1", envelope, expected_token=token, validate=validate_events)
    backups = dd.backups("p1")
    days = {p.name.split("-")[2][:8] for p in backups}
    assert len(days) == 4  # T0's day + 3 more, one kept per day at least
    seqs = [int(p.name.split("-")[1]) for p in backups]
    assert seqs == sorted(seqs, reverse=True)
    # The last K=3 (20, 19, 18: Apr 1 and Mar 31) plus the newest of each older day
    # (13 on Mar 30, 7 on Mar 29).
    assert seqs == [20, 19, 18, 13, 7]
    for path in backups:
        assert dd.verify_file(path, validate=validate_events)[0]
    dd.release_writer_lock()


def test_identical_content_is_not_backed_up_twice(datadir: DataDir, clock: FakeClock) -> None:
    envelope = make_envelope(1)
    token = datadir.save("p1", envelope, expected_token=None, validate=validate_events)
    clock.advance(timedelta(hours=1))
    datadir.save("p1", envelope, expected_token=token, validate=validate_events)
    assert len(datadir.backups("p1")) == 1


def test_clock_going_backwards_still_backs_up(datadir: DataDir, clock: FakeClock) -> None:
    envelope = make_envelope(1)
    token = datadir.save("p1", envelope, expected_token=None, validate=validate_events)
    clock.advance(timedelta(hours=-2))
    envelope = _add(envelope, "x")
    datadir.save("p1", envelope, expected_token=token, validate=validate_events)
    backups = datadir.backups("p1")
    assert len(backups) == 2 and backups[0].read_bytes() == _bytes(datadir, "p1")


# ----------------------------------------------------------------- restore


def test_corrupt_file_restore_from_newest_verified_backup(
    datadir: DataDir, clock: FakeClock
) -> None:
    envelope = make_envelope(2)
    token = datadir.save("p1", envelope, expected_token=None, validate=validate_events)
    good_backup_bytes = _bytes(datadir, "p1")
    clock.advance(timedelta(minutes=11))
    envelope = _add(envelope, "later")
    datadir.save("p1", envelope, expected_token=token, validate=validate_events)
    older, newest = datadir.backups("p1")[1], datadir.backups("p1")[0]
    assert older.read_bytes() == good_backup_bytes
    newest.write_bytes(newest.read_bytes()[:-30])  # the newest backup is damaged too
    damaged = b'{"schema_version": 1, "events": [' + b"\x00" * 20
    (datadir.patients_dir / "p1.json").write_bytes(damaged)
    with pytest.raises(CorruptDataError) as excinfo:
        datadir.load("p1", validate=validate_events)
    assert "a verified backup exists" in str(excinfo.value)
    assert excinfo.value.backup_path == older
    assert datadir.newest_verified_backup("p1", validate=validate_events) == older
    with pytest.raises(QuarantinedError):
        datadir.save("p1", envelope, expected_token=None, validate=validate_events)
    with pytest.raises(CorruptDataError):  # an unverifiable backup is never restored
        datadir.restore_backup("p1", newest, validate=validate_events)
    assert _bytes(datadir, "p1") == damaged
    token = datadir.restore_backup("p1", older, validate=validate_events)
    assert not datadir.is_quarantined("p1")
    assert _bytes(datadir, "p1") == good_backup_bytes
    assert [p.read_bytes() for p in datadir.quarantined_copies("p1")] == [damaged]
    loaded = datadir.load("p1", validate=validate_events)
    assert loaded.token == token and len(loaded.raw["events"]) == 2
    datadir.save("p1", _add(loaded.raw, "after"), expected_token=token, validate=validate_events)


def test_restore_over_a_valid_file_keeps_a_copy(datadir: DataDir, clock: FakeClock) -> None:
    token = datadir.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    backup = datadir.backups("p1")[0]
    clock.advance(timedelta(minutes=1))
    datadir.save("p1", make_envelope(3), expected_token=token, validate=validate_events)
    current = _bytes(datadir, "p1")
    datadir.restore_backup("p1", backup, validate=validate_events)
    copies = datadir.quarantined_copies("p1")
    assert [c.read_bytes() for c in copies] == [current]
    assert ".replaced-" in copies[0].name


def test_no_backup_is_reported(datadir: DataDir) -> None:
    (datadir.patients_dir / "p1.json").write_bytes(b"[]")
    with pytest.raises(CorruptDataError, match="NO verified backup exists") as excinfo:
        datadir.load("p1", validate=validate_events)
    assert excinfo.value.backup_path is None


# ----------------------------------------------------------------- verify / sweep


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    snap = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            st = path.stat()
            snap[str(path)] = (path.read_bytes() if path.is_file() else b"", st.st_mtime_ns)
    return snap


def test_verify_file_is_read_only(datadir: DataDir) -> None:
    datadir.save("p1", make_envelope(2), expected_token=None, validate=validate_events)
    (datadir.patients_dir / "p2.json").write_bytes(b'{"a": NaN}')
    before = _snapshot(datadir.root)
    ok, summary = datadir.verify_file(datadir.patients_dir / "p1.json", validate=validate_events)
    assert ok and "OK" in summary and "p1" not in summary.replace(patient_hash("p1"), "")
    ok, problem = datadir.verify_file(datadir.patients_dir / "p2.json", validate=validate_events)
    assert not ok and "NaN" in problem
    ok, problem = datadir.verify_file(datadir.root / "nope.json", validate=validate_events)
    assert not ok and "cannot be read" in problem
    assert _snapshot(datadir.root) == before
    assert not datadir.is_quarantined("p2")


def test_sweep_removes_only_temp_files(datadir: DataDir) -> None:
    datadir.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    strays = [
        datadir.patients_dir / ".p1.json.tmp-abc123",
        datadir.patients_dir / ".p9.json.tmp-0",
        datadir.backups_dir / "p1" / ".bk-000002-20260329T003000Z.json.tmp-ff",
        datadir.root / ".bedside.lock.info.tmp-12",
    ]
    for path in strays:
        path.write_bytes(b"partial")
    keep = [datadir.patients_dir / ".hidden", datadir.patients_dir / "notes.tmp-1"]
    for path in keep:
        path.write_bytes(b"x")
    assert datadir.sweep_temp_files() == 4
    assert temp_files(datadir.root) == []
    assert all(p.exists() for p in keep)
    assert datadir.sweep_temp_files() == 0
    assert datadir.load("p1", validate=validate_events).raw == make_envelope(1)


# ----------------------------------------------------------------- privacy


def test_logs_and_errors_never_contain_the_patient_id(
    datadir: DataDir, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    pid = "SECRETPATIENT42"
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    token = datadir.save(pid, make_envelope(2), expected_token=None, validate=validate_events)
    clock.advance(timedelta(hours=1))
    datadir.save(pid, make_envelope(3), expected_token=token, validate=validate_events)
    with pytest.raises(ConcurrentModificationError) as e1:
        datadir.save(pid, make_envelope(4), expected_token=token, validate=validate_events)
    messages.append(str(e1.value))
    (datadir.patients_dir / f"{pid}.json").write_bytes(b'{"x": 1, "x": 2}')
    with pytest.raises(CorruptDataError) as e2:
        datadir.load(pid, validate=validate_events)
    messages.append(str(e2.value))
    with pytest.raises(QuarantinedError) as e3:
        datadir.save(pid, make_envelope(4), expected_token=None, validate=validate_events)
    messages.append(str(e3.value))
    backup = datadir.newest_verified_backup(pid, validate=validate_events)
    assert backup is not None
    datadir.restore_backup(pid, backup, validate=validate_events)
    messages.append(datadir.verify_file(backup, validate=validate_events)[1])
    messages += [r.getMessage() for r in caplog.records]
    assert any(patient_hash(pid) in m for m in messages)
    for message in messages:
        assert pid not in message, message
        assert CANARY not in message, message
    if sys.platform != "win32":
        assert not any(r.levelno >= logging.CRITICAL for r in caplog.records)


# ----------------------------------------------------------------- read-only and failures


def test_read_only_touches_nothing(tmp_path: Path, clock: FakeClock) -> None:
    root = tmp_path / "d"
    writer = DataDir(root, clock=clock)
    writer.acquire_writer_lock()
    writer.save("p1", make_envelope(2), expected_token=None, validate=validate_events)
    (writer.patients_dir / "p2.json").write_bytes(b"{]")
    writer.release_writer_lock()
    before = _snapshot(root)
    ro = DataDir(root, clock=clock, read_only=True)
    assert ro.load("p1", validate=validate_events).raw == make_envelope(2)
    with pytest.raises(CorruptDataError, match="not quarantined") as excinfo:
        ro.load("p2", validate=validate_events)
    assert excinfo.value.quarantine_path is None
    assert not ro.verify_file(ro.patients_dir / "p2.json", validate=validate_events)[0]
    with pytest.raises(StorageError, match="read-only"):
        ro.acquire_writer_lock()
    with pytest.raises(StorageError):
        ro.save("p3", make_envelope(0), expected_token=None, validate=validate_events)
    assert ro.holder() is None
    assert ro.patient_ids() == ["p1", "p2"]
    assert _snapshot(root) == before
    missing = DataDir(tmp_path / "missing", clock=clock, read_only=True)
    assert missing.patient_ids() == []
    assert not (tmp_path / "missing").exists()


def test_quarantine_copy_failure_still_refuses_and_blocks(tmp_path: Path, clock: FakeClock) -> None:
    class FullQuarantine(FileOps):
        def open(self, path: str, flags: int, mode: int) -> int:
            if Path(path).parent.name == "quarantine":
                raise OSError(28, "No space left on device")
            return super().open(path, flags, mode)

    dd = DataDir(tmp_path / "d", clock=clock, ops=FullQuarantine())
    dd.acquire_writer_lock()
    (dd.patients_dir / "p1.json").write_bytes(b"\x00\x00")
    with pytest.raises(CorruptDataError, match="quarantine copy could not be written"):
        dd.load("p1", validate=validate_events)
    assert (dd.patients_dir / "p1.json").read_bytes() == b"\x00\x00"
    with pytest.raises(QuarantinedError):
        dd.save("p1", make_envelope(0), expected_token=None, validate=validate_events)
    dd.release_writer_lock()


# ----------------------------------------------------------------- directory hygiene (issue 12)


@posix_only
def test_an_existing_folder_bedside_did_not_create_is_not_chmodded(tmp_path: Path) -> None:
    root = tmp_path / "chosen"
    root.mkdir()
    os.chmod(root, 0o755)
    dd = DataDir(root, clock=FakeClock(T0))
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # not Bedside's folder: left alone
    for sub in (dd.patients_dir, dd.backups_dir, dd.quarantine_dir):
        assert stat.S_IMODE(sub.stat().st_mode) == 0o700  # created by Bedside


@posix_only
@pytest.mark.parametrize("sub", ["patients", "backups", "quarantine"])
def test_symlinked_sub_folders_are_refused_and_their_targets_untouched(
    tmp_path: Path, sub: str
) -> None:
    root = tmp_path / "ward"
    (root / "patients").mkdir(parents=True, exist_ok=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.chmod(target, 0o755)
    link = root / sub
    if link.exists():
        link.rmdir()
    link.symlink_to(target)
    with pytest.raises(StorageError, match="symbolic link"):
        DataDir(root, clock=FakeClock(T0))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and list(target.iterdir()) == []


@posix_only
def test_a_symlinked_backup_folder_is_never_written_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    dd = DataDir(tmp_path / "ward", clock=clock, backup_interval=timedelta(0))
    dd.acquire_writer_lock()
    try:
        target = tmp_path / "elsewhere"
        target.mkdir()
        (dd.backups_dir / "p1").symlink_to(target)
        dd.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
        assert list(target.iterdir()) == []  # the save succeeded; no backup went through
        assert "backup of patient" in caplog.text
    finally:
        dd.release_writer_lock()

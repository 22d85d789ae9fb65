"""I/O-error injection at every step of a save (the SQLite I/O-error loop, reliability.md AT-03).

Invariants checked after every injected failure:

* the caller sees an exception (a failure in the post-save backup step is the only one
  that is allowed to be swallowed, because the save itself had succeeded);
* the patient file is byte-identical to the old or the new version, never a mix, and
  exactly the old one unless the error says ``ambiguous``;
* no temp file is left;
* retrying the same envelope with the same (now possibly stale) token succeeds and the
  event is stored exactly once.
"""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from store_helpers import T0, make_envelope, make_event, temp_files, validate_events

from bedside.common.clock import FakeClock
from bedside.common.errors import StorageError
from bedside.store.storage import (
    REPLACE_ATTEMPTS,
    AmbiguousWriteError,
    DataDir,
    FileOps,
    atomic_write,
)
from bedside.ward.service import Ward

STEPS = ["open", "write", "fsync", "close", "replace", "fsync_dir"]
ERRNOS = [errno.ENOSPC, errno.EIO, errno.EACCES]


class FaultyOps(FileOps):
    """Fails chosen calls with a chosen errno.

    ``fail_step``: fail calls of that step; ``fail_at``: fail the N-th call of any step
    (1-based, counted from arming). ``persistent`` keeps failing every later matching call.
    """

    def __init__(self) -> None:
        self.armed = False
        self.fail_step: str | None = None
        self.fail_at: int | None = None
        self.err = errno.EIO
        self.persistent = False
        self.calls = 0
        self.failures = 0
        self.sleeps: list[float] = []
        self.max_write: int | None = None

    def arm(
        self,
        *,
        step: str | None = None,
        at: int | None = None,
        err: int = errno.EIO,
        persistent: bool = False,
    ) -> None:
        self.armed, self.fail_step, self.fail_at = True, step, at
        self.err, self.persistent, self.calls, self.failures = err, persistent, 0, 0

    def disarm(self) -> None:
        self.armed = False

    def _maybe_fail(self, step: str) -> None:
        if not self.armed:
            return
        self.calls += 1
        if self.fail_step is not None:
            hit = step == self.fail_step
        else:
            assert self.fail_at is not None
            hit = self.calls == self.fail_at or (self.persistent and self.calls > self.fail_at)
        if hit and (self.persistent or self.failures == 0):
            self.failures += 1
            raise OSError(self.err, os.strerror(self.err))

    def open(self, path: str, flags: int, mode: int) -> int:
        self._maybe_fail("open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        self._maybe_fail("write")
        if self.max_write is not None:
            data = data[: self.max_write]
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe_fail("fsync")
        super().fsync(fd)

    def close(self, fd: int) -> None:
        try:
            self._maybe_fail("close")
        except OSError:
            super().close(fd)  # like Linux: the descriptor is gone even when close() fails
            raise
        super().close(fd)

    def replace(self, src: str, dst: str) -> None:
        self._maybe_fail("replace")
        super().replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        self._maybe_fail("fsync_dir")
        super().fsync_dir(path)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _setup(
    tmp_path: Path, *, backup_due: bool = False
) -> tuple[DataDir, FaultyOps, dict, str, bytes]:
    ops = FaultyOps()
    clock = FakeClock(T0)
    dd = DataDir(tmp_path / "data", clock=clock, ops=ops)
    dd.acquire_writer_lock()
    old = make_envelope(3)
    token = dd.save("p1", old, expected_token=None, validate=validate_events)
    if backup_due:
        clock.advance(timedelta(minutes=11))  # the next save also writes a verified backup
    return dd, ops, old, token, (dd.patients_dir / "p1.json").read_bytes()


def _with_one_more(envelope: dict) -> dict:
    return {**envelope, "events": [*envelope["events"], make_event("new-1", 99)]}


def _check_retry(dd: DataDir, new: dict, stale_token: str) -> None:
    token = dd.save("p1", new, expected_token=stale_token, validate=validate_events)
    data = (dd.patients_dir / "p1.json").read_bytes()
    assert token == hashlib.sha256(data).hexdigest()
    ids = [e["id"] for e in dd.load("p1", validate=validate_events).raw["events"]]
    assert ids.count("new-1") == 1
    assert len(ids) == len(set(ids)) == 4
    assert temp_files(dd.root) == []


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("err", ERRNOS, ids=[errno.errorcode[e] for e in ERRNOS])
@pytest.mark.parametrize("step", STEPS)
def test_failure_at_each_step(tmp_path: Path, step: str, err: int, persistent: bool) -> None:
    dd, ops, old, token, old_bytes = _setup(tmp_path)
    new = _with_one_more(old)
    ops.arm(step=step, err=err, persistent=persistent)
    with pytest.raises(StorageError) as excinfo:
        dd.save("p1", new, expected_token=token, validate=validate_events)
    ops.disarm()
    on_disk = (dd.patients_dir / "p1.json").read_bytes()
    assert temp_files(dd.root) == []
    assert isinstance(excinfo.value.__cause__, OSError)
    assert excinfo.value.__cause__.errno == err
    if step == "fsync_dir":
        # The rename landed: the new bytes are on disk but not known to be durable.
        assert isinstance(excinfo.value, AmbiguousWriteError)
        assert excinfo.value.ambiguous is True
        assert on_disk != old_bytes
    else:
        assert excinfo.value.ambiguous is False
        assert on_disk == old_bytes
    _check_retry(dd, new, token)


def test_ambiguous_retry_resyncs_directory_and_can_fail_again(tmp_path: Path) -> None:
    dd, ops, old, token, _ = _setup(tmp_path)
    new = _with_one_more(old)
    ops.arm(step="fsync_dir", err=errno.EIO, persistent=True)
    with pytest.raises(AmbiguousWriteError):
        dd.save("p1", new, expected_token=token, validate=validate_events)
    # The retry finds the content already there, but must still make the rename durable.
    with pytest.raises(AmbiguousWriteError):
        dd.save("p1", new, expected_token=token, validate=validate_events)
    ops.disarm()
    _check_retry(dd, new, token)


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
def test_fail_at_every_call_position(tmp_path: Path, persistent: bool) -> None:
    """SQLite's loop: fail call 1, 2, 3, ... of a save until the save no longer hits it."""
    completed_without_fault = False
    for n in range(1, 60):
        case = tmp_path / f"n{n}"
        dd, ops, old, token, old_bytes = _setup(case, backup_due=True)
        new = _with_one_more(old)
        ops.arm(at=n, err=ERRNOS[n % 3], persistent=persistent)
        try:
            dd.save("p1", new, expected_token=token, validate=validate_events)
        except StorageError as exc:
            on_disk = (dd.patients_dir / "p1.json").read_bytes()
            if getattr(exc, "ambiguous", False):
                assert on_disk != old_bytes
            else:
                assert on_disk == old_bytes
            raised = True
        else:
            raised = False
        ops.disarm()
        assert temp_files(dd.root) == []
        new_bytes_on_disk = (dd.patients_dir / "p1.json").read_bytes()
        if not raised:
            # Only a failure in the post-save backup may be swallowed; the save stands.
            assert new_bytes_on_disk != old_bytes
        _check_retry(dd, new, token)
        for backup in dd.backups("p1"):
            assert dd.verify_file(backup, validate=validate_events)[0]
        dd.release_writer_lock()
        if ops.failures == 0:
            print(f"\nI/O call positions swept: {n - 1} ({'persistent' if persistent else 'once'})")
            completed_without_fault = True
            break
    assert completed_without_fault, "the loop never got past the last I/O call of a save"


def test_short_writes_are_completed(tmp_path: Path) -> None:
    dd, ops, old, token, _ = _setup(tmp_path)
    ops.max_write = 7
    new = _with_one_more(old)
    dd.save("p1", new, expected_token=token, validate=validate_events)
    assert dd.load("p1", validate=validate_events).raw == new


class _WinError(PermissionError):
    """A PermissionError as Windows raises it for a sharing violation."""

    winerror = 32


class _SharingOps(FileOps):
    def __init__(self, failures: int, exc_type: type[OSError] = _WinError) -> None:
        self.failures = failures
        self.exc_type = exc_type
        self.replaces = 0
        self.sleeps: list[float] = []

    def replace(self, src: str, dst: str) -> None:
        self.replaces += 1
        if self.replaces <= self.failures:
            raise self.exc_type(errno.EACCES, "sharing violation")
        super().replace(src, dst)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_windows_sharing_violation_is_retried(tmp_path: Path) -> None:
    ops = _SharingOps(failures=3)
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    atomic_write(target, b"new", ops=ops)
    assert target.read_bytes() == b"new"
    assert ops.replaces == 4
    assert ops.sleeps == pytest.approx([0.025, 0.05, 0.075])
    assert temp_files(tmp_path) == []


def test_windows_sharing_violation_gives_up_after_budget(tmp_path: Path) -> None:
    ops = _SharingOps(failures=10_000)
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    with pytest.raises(StorageError) as excinfo:
        atomic_write(target, b"new", ops=ops)
    assert excinfo.value.ambiguous is False
    assert ops.replaces == REPLACE_ATTEMPTS
    assert len(ops.sleeps) == REPLACE_ATTEMPTS - 1
    assert sum(ops.sleeps) < 2.0
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_plain_permission_error_is_not_retried(tmp_path: Path) -> None:
    ops = _SharingOps(failures=1, exc_type=PermissionError)
    target = tmp_path / "f.json"
    with pytest.raises(StorageError):
        atomic_write(target, b"new", ops=ops)
    assert ops.replaces == 1
    assert ops.sleeps == []
    assert not target.exists()


def test_interrupt_during_write_removes_temp_and_propagates(tmp_path: Path) -> None:
    class Interrupting(FileOps):
        def fsync(self, fd: int) -> None:
            raise KeyboardInterrupt

    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new", ops=Interrupting())
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_atomic_write_temp_name_and_mode(tmp_path: Path) -> None:
    seen: list[str] = []

    class Recording(FileOps):
        def open(self, path: str, flags: int, mode: int) -> int:
            seen.append(path)
            assert flags & os.O_EXCL and flags & os.O_CREAT
            assert mode == 0o600
            return super().open(path, flags, mode)

    target = tmp_path / "p1.json"
    atomic_write(target, b"{}\n", ops=Recording())
    assert target.read_bytes() == b"{}\n"
    name = Path(seen[0]).name
    assert name.startswith(".p1.json.tmp-") and Path(seen[0]).parent == tmp_path
    if os.name == "posix":
        assert target.stat().st_mode & 0o777 == 0o600


# ----------------------------------------------------------------- ambiguous save in the ward


def test_ambiguous_ward_save_reads_back_and_never_blocks_the_next(tmp_path: Path) -> None:
    """The fsync after the journal append fails (the old single file: the directory fsync
    after the rename; both are failed here): the ward reads the journal back, reports the
    save as on disk (with a durability warning) and the next save goes through."""
    import errno as _errno
    from datetime import UTC, datetime

    from bedside.common.clock import FakeClock
    from bedside.store.storage import FileOps
    from bedside.ward.service import open_ward

    class FailDirSync(FileOps):
        failures = 0  # how many directory fsyncs still fail (a persistently sick disk)

        def fsync_dir(self, path: str) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError(_errno.EIO, "simulated directory fsync failure")
            super().fsync_dir(path)

        def fsync(self, fd: int) -> None:  # the journal append's durability call (issue 15)
            if self.failures:
                self.failures -= 1
                raise OSError(_errno.EIO, "simulated fsync failure")
            super().fsync(fd)

    clock = FakeClock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    ward = open_ward(tmp_path / "w", clock)
    try:
        ops = FailDirSync()
        ward.store._ops = ops  # fault injection
        pid = ward.create_patient(
            recorded_by="AB",
            patient_id="p1",
            mrn="M1",
            name="Amb Iguous",
            date_of_birth="1960-01-01",
            sex="female",
            product="ide-cel",
        )
        ops.failures = 3
        note = ward.chart(pid, "note", recorded_by="AB", text="first")
        assert ops.failures < 3  # the failure really happened
        assert ward.durability_warning and "IS saved" in ward.durability_warning
        assert ward.storage_warning() == ward.durability_warning
        on_disk = ward.store.load(pid, validate=lambda d: d).raw
        assert [e["id"] for e in on_disk["events"]] == [note.id]
        second = ward.chart(pid, "note", recorded_by="AB", text="second")  # not blocked
        reopened = open_ward(tmp_path / "w", clock, read_only=True)
        assert [e.id for e in reopened.records[pid].events] == [note.id, second.id]
    finally:
        ward.close()


def _fresh_ward(tmp_path: Path) -> tuple[FakeClock, Ward, str]:
    from datetime import UTC, datetime

    from bedside.ward.service import open_ward

    clock = FakeClock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    ward = open_ward(tmp_path / "w", clock)
    pid = ward.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="M1",
        name="Amb Iguous",
        date_of_birth="1960-01-01",
        sex="female",
        product="ide-cel",
    )
    return clock, ward, pid


@pytest.mark.parametrize("landed", [0, 7], ids=["nothing", "torn line"])
def test_failed_journal_append_is_reported_not_saved_and_never_blocks_the_next(
    tmp_path: Path, landed: int
) -> None:
    """The append fails after writing nothing (or part of a line): the journal is read
    back, the nurse is told NOT SAVED, nothing half-written is shown, and the next save
    goes through (a torn tail is cut and kept in quarantine)."""
    from bedside.ward.service import open_ward

    class FailWrite(FileOps):
        armed = False

        def write(self, fd: int, data: memoryview) -> int:
            if self.armed:
                self.armed = False
                if landed:
                    super().write(fd, data[:landed])
                raise OSError(errno.ENOSPC, "simulated full disk")
            return super().write(fd, data)

    clock, ward, pid = _fresh_ward(tmp_path)
    try:
        before = [e.id for e in ward.record(pid).events]
        ops = FailWrite()
        ward.store._ops = ops  # fault injection
        ops.armed = True
        with pytest.raises(StorageError, match="NOT SAVED"):
            ward.chart(pid, "note", recorded_by="AB", text="lost")
        assert not ops.armed  # the failure really happened
        assert [e.id for e in ward.record(pid).events] == before
        assert ward.durability_warning is None
        note = ward.chart(pid, "note", recorded_by="AB", text="kept")  # not blocked
        reopened = open_ward(tmp_path / "w", clock, read_only=True)
        assert [e.id for e in reopened.records[pid].events] == [*before, note.id]
    finally:
        ward.close()


def test_partly_landed_append_asks_for_a_reload_and_never_blocks_the_next(tmp_path: Path) -> None:
    """Two entries saved at once (an import) and only the first line lands: the nurse is
    told NOT SAVED as typed and to reload; after the reload the landed entry is shown and
    the next save goes through."""
    from bedside.clinical.record import append, make_event
    from bedside.common.errors import ConcurrentModificationError
    from bedside.ward.service import open_ward

    class FailLastByte(FileOps):
        armed = False

        def write(self, fd: int, data: memoryview) -> int:
            if self.armed:
                self.armed = False
                super().write(fd, data[: len(data) - 1])  # the last line stays torn
                raise OSError(errno.EIO, "simulated write failure")
            return super().write(fd, data)

    clock, ward, pid = _fresh_ward(tmp_path)
    try:
        before = [e.id for e in ward.record(pid).events]
        rec, now = ward.record(pid), clock.now()
        for text in ("first", "second"):
            note = make_event(
                "note", effective_at=now, recorded_at=now, recorded_by="AB", text=text
            )
            rec = append(rec, note, now)
        first, second = rec.events[-2].id, rec.events[-1].id
        ops = FailLastByte()
        ward.store._ops = ops  # fault injection
        ops.armed = True
        with pytest.raises(ConcurrentModificationError, match="reload"):
            ward.store_record(pid, rec)
        assert not ops.armed
        ward.reload()
        assert [e.id for e in ward.record(pid).events] == [*before, first]
        note = ward.chart(pid, "note", recorded_by="AB", text="after")  # not blocked
        reopened = open_ward(tmp_path / "w", clock, read_only=True)
        ids = [e.id for e in reopened.records[pid].events]
        assert ids == [*before, first, note.id] and second not in ids
    finally:
        ward.close()

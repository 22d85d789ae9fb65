"""Issue 15: fault injection on the journal append path (one line, one write, one fsync)."""

from __future__ import annotations

import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedside.common.clock import FakeClock
from bedside.common.errors import StorageError
from bedside.store.journal import parse_journal
from bedside.store.storage import FileOps
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Faulty(FileOps):
    """Fails the chosen step ``times`` times (``after`` the real call when ``landed``)."""

    def __init__(self, step: str, times: int = 1, *, landed: bool = False, short: bool = False):
        self.step, self.left, self.landed, self.short = step, times, landed, short

    def _maybe(self, step: str) -> None:
        if step == self.step and self.left > 0:
            self.left -= 1
            raise OSError(errno.EIO if step != "write" else errno.ENOSPC, "injected")

    def write(self, fd: int, data: memoryview) -> int:
        if self.step == "write" and self.left > 0 and self.short:
            self.short = False
            self.left -= 1
            return super().write(fd, data[: len(data) // 2])  # a short write, then failures
        self._maybe("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.landed:
            super().fsync(fd)
        self._maybe("fsync")
        super().fsync(fd)


def _ward(tmp_path: Path) -> tuple[Ward, str]:
    clock = FakeClock(T0)
    w = open_ward(tmp_path / "w", clock, workstation="pc1")
    pid = w.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="M1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="ide-cel",
    )
    return w, pid


def _lines(w: Ward, pid: str) -> list[dict[str, object]]:
    j = parse_journal(w.store.own_journal(pid).read_bytes(), "pc1", "test", pid)
    assert j.problem == ""
    return j.lines


def test_fsync_failure_after_the_line_landed_is_retried_without_duplicate(tmp_path: Path) -> None:
    w, pid = _ward(tmp_path)
    w.store._ops = Faulty("fsync", landed=True)
    ev = w.chart(pid, "note", recorded_by="AB", text="once")
    ids = [b["event"]["id"] for b in _lines(w, pid) if b["t"] == "event"]
    assert ids == [ev.id]
    assert [e.id for e in w.record(pid).events] == [ev.id]
    w.close()


def test_failed_write_changes_nothing_and_leaves_no_event(tmp_path: Path) -> None:
    w, pid = _ward(tmp_path)
    before = w.store.own_journal(pid).read_bytes()
    w.store._ops = Faulty("write", times=5, short=True)
    with pytest.raises(StorageError):
        w.chart(pid, "note", recorded_by="AB", text="never acknowledged")
    assert w.record(pid).events == []  # in memory: as on disk
    j = parse_journal(w.store.own_journal(pid).read_bytes(), "pc1", "test", pid)
    assert j.problem == "" and len(j.lines) == 1  # a partial line at most, never an event
    w.store._ops = FileOps()
    ev = w.chart(pid, "note", recorded_by="AB", text="after the disk recovered")
    data = w.store.own_journal(pid).read_bytes()
    assert data.startswith(before) and parse_journal(data, "pc1", "t", pid).torn == b""
    assert [e.id for e in w.record(pid).events] == [ev.id]
    w.close()
    again = open_ward(tmp_path / "w", FakeClock(T0), workstation="pc1")
    assert [e.id for e in again.record(pid).events] == [ev.id]
    again.close()


def test_creation_retried_after_a_landed_first_attempt_writes_one_header(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    w = open_ward(tmp_path / "w", clock, workstation="pc1")
    w.store._ops = Faulty("fsync", landed=True)
    pid = w.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="M1",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        product="ide-cel",
    )
    assert [b["t"] for b in _lines(w, pid)] == ["header"]
    w.close()

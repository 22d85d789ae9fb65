"""Single writer per data directory, and stale-lock recovery after a crash (AT-06 a/b)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from store_helpers import HERE, T0, make_envelope, subprocess_env, validate_events

from bedside.common.clock import FakeClock, SystemClock
from bedside.common.errors import LockedError, StorageError
from bedside.store.storage import DataDir


def _start_holder(root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "lock_holder.py"), str(root), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=str(HERE),
    )


def test_second_process_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    holder = _start_holder(root)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().split()
        assert line == ["locked", str(holder.pid)]
        dd = DataDir(root, clock=SystemClock())
        with pytest.raises(LockedError) as excinfo:
            dd.acquire_writer_lock()
        message = str(excinfo.value)
        assert f"pid {holder.pid}" in message
        assert socket.gethostname() in message
        assert "since 20" in message
        info = dd.holder()
        assert info is not None and info["pid"] == holder.pid and info["app"] == "bedside"
        with pytest.raises(StorageError):  # no lock, no writes
            dd.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    finally:
        holder.kill()
        holder.communicate()  # waits and closes its pipes (no ResourceWarning)
    if sys.platform == "win32":  # pragma: no cover
        return
    # The holder died without releasing (SIGKILL): the OS dropped its lock, so a new
    # start acquires at once. Its stale info file is not mistaken for a live holder.
    assert holder.returncode == -9
    dd = DataDir(root, clock=SystemClock())
    assert dd.holder() is None
    dd.acquire_writer_lock()
    try:
        info = dd.holder()
        assert info is not None and info["pid"] == os.getpid()
        dd.save("p1", make_envelope(1), expected_token=None, validate=validate_events)
    finally:
        dd.release_writer_lock()
    assert dd.holder() is None


def test_simultaneous_starts_exactly_one_writer(tmp_path: Path) -> None:
    root = tmp_path / "data"
    DataDir(root, clock=SystemClock())
    procs = [_start_holder(root, "wait") for _ in range(6)]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            results.append(proc.stdout.readline().split()[0])
        assert sorted(results) == ["locked"] + ["refused"] * 5
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()  # waits and closes its pipes (no ResourceWarning)


def test_two_datadirs_in_one_process(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    first = DataDir(tmp_path / "d", clock=clock)
    second = DataDir(tmp_path / "d", clock=clock)
    first.acquire_writer_lock()
    first.acquire_writer_lock()  # idempotent
    with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        second.acquire_writer_lock()
    assert second.holder() is not None
    first.release_writer_lock()
    first.release_writer_lock()  # idempotent
    assert not (tmp_path / "d" / "bedside.lock.info").exists()
    second.acquire_writer_lock()
    assert second.holds_writer_lock()
    second.release_writer_lock()


def test_sweep_and_restore_need_the_lock(tmp_path: Path) -> None:
    dd = DataDir(tmp_path / "d", clock=SystemClock())
    with pytest.raises(StorageError, match="writer lock"):
        dd.sweep_temp_files()
    with pytest.raises(StorageError, match="writer lock"):
        dd.restore_backup("p1", tmp_path / "x.json", validate=validate_events)

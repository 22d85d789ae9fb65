"""Crash harness: SIGKILL a writer at random moments, then start up as the app would.

Pass criteria (reliability.md AT-01): 0 unreadable files, 0 lost acknowledged events,
0 duplicated events, 0 temp files after the startup sweep. The default run kills 200
writers; set ``BEDSIDE_KILLS=1000`` (or more) for the release-level run.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_helpers import HERE, subprocess_env, temp_files, validate_events

from bedside.common.clock import SystemClock
from bedside.store.storage import DataDir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL/fork harness is POSIX-only"),
]

KILLS = int(os.environ.get("BEDSIDE_KILLS", "200"))
PATIENTS = ["p0", "p1", "p2", "p3"]


class _Server:
    """The fork server subprocess and a thread that turns its stdout into a queue."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "kill_writer.py"), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
            cwd=str(HERE),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put("<eof>")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def next_line(self, timeout: float = 20.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("writer server stopped answering")
        if line == "<eof>":
            assert self.proc.stderr is not None
            pytest.fail("writer server died: " + self.proc.stderr.read().decode(errors="replace"))
        return line

    def child(self, lines: list[str]) -> int:
        """The pid of the child just forked.

        The forked child may speak ("ready", "ack ...") before the server has written
        "child <pid>" (whichever process the scheduler runs first); such early lines
        are kept in ``lines`` in the order they came.
        """
        while True:
            line = self.next_line()
            if line.startswith("child "):
                return int(line.split()[1])
            lines.append(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(timeout=10)  # the pump reads stdout to its end first
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _startup_check(root: Path, acked: dict[str, list[str]]) -> int:
    """Open the dir as the next app start would and check every invariant. Returns #swept."""
    dd = DataDir(root, clock=SystemClock())
    dd.acquire_writer_lock()
    try:
        swept = dd.sweep_temp_files()
        assert temp_files(root) == [], "temp files survived the sweep"
        for pid in dd.patient_ids():
            loaded = dd.load(pid, validate=validate_events)  # raises if unreadable
            ids = [e["id"] for e in loaded.raw["events"]]
            assert len(ids) == len(set(ids)), f"{pid}: duplicated events"
            position = {event_id: i for i, event_id in enumerate(ids)}
            missing = [a for a in acked[pid] if a not in position]
            assert not missing, f"{pid}: {len(missing)} acknowledged event(s) lost"
            order = [position[a] for a in acked[pid]]
            assert order == sorted(order), f"{pid}: acknowledged events out of order"
            newest = dd.newest_verified_backup(pid, validate=validate_events)
            if dd.backups(pid):
                assert newest == dd.backups(pid)[0], f"{pid}: newest backup does not verify"
        assert list(dd.quarantine_dir.iterdir()) == [], "a file was quarantined"
    finally:
        dd.release_writer_lock()
    return swept


def test_sigkill_during_saves_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rng = random.Random(int(os.environ.get("BEDSIDE_KILL_SEED", "20260329")))
    acked: dict[str, list[str]] = {pid: [] for pid in PATIENTS}
    server = _Server(root)
    kills = swept_total = acks_total = 0
    started = time.monotonic()
    try:
        for run in range(KILLS):
            pid = PATIENTS[run % len(PATIENTS)]
            backup_ms = 0 if run % 2 else 60_000  # half the runs also write a backup per save
            server.send(f"go r{run} {pid} {backup_ms}")
            lines: list[str] = []
            child = server.child(lines)
            if rng.random() < 0.1:
                # Some kills land during start-up (lock, sweep, load) instead of saves.
                time.sleep(rng.uniform(0.0, 0.03))
            else:
                while "ready" not in lines:
                    lines.append(server.next_line())
                time.sleep(rng.uniform(0.020, 0.150))
            os.kill(child, signal.SIGKILL)
            while True:
                line = server.next_line()
                if line.startswith("exit "):
                    status = int(line.split()[2])
                    break
                lines.append(line)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"writer r{run} did not die by SIGKILL (status {status}); "
                "see stderr for its traceback"
            )
            kills += 1
            new_acks = [ln.split()[1] for ln in lines if ln.startswith("ack ")]
            acked[pid].extend(new_acks)
            acks_total += len(new_acks)
            swept_total += _startup_check(root, acked)
    finally:
        server.close()
    elapsed = time.monotonic() - started
    print(
        f"\nkill harness: {kills} SIGKILLs, {acks_total} acknowledged saves, "
        f"{swept_total} orphan temp files swept, 0 unreadable, 0 lost, {elapsed:.1f}s"
    )
    assert kills == KILLS
    assert acks_total > KILLS, "too few saves were acknowledged for the kills to mean much"


def _ward_startup_check(root: Path, acked: dict[str, list[str]]) -> int:
    """Open the ward as the application does (lock, sweep, load, full validation)."""
    from bedside.store.journal import parse_journal
    from bedside.ward.service import open_ward

    ward = open_ward(root, SystemClock())
    torn = 0
    try:
        assert temp_files(root) == [], "temp files survived the sweep"
        assert ward.failures == {}, "a patient journal failed to load"
        for pid, ids in acked.items():
            if not ids:
                continue
            # Issue 15: the record is an append-only journal; a kill mid-append may leave a
            # torn last line, which is ignored (never read as an event) and cut off by the
            # next append. Every complete line must check.
            journal = parse_journal(
                ward.store.own_journal(pid).read_bytes(), ward.store.workstation, pid, pid
            )
            assert journal.problem == "", journal.problem
            torn += bool(journal.torn)
            stored = [e.id for e in ward.records[pid].events]
            assert len(stored) == len(set(stored)), f"{pid}: duplicated events"
            position = {event_id: i for i, event_id in enumerate(stored)}
            missing = [a for a in ids if a not in position]
            assert not missing, f"{pid}: {len(missing)} acknowledged event(s) lost"
            order = [position[a] for a in ids]
            assert order == sorted(order), f"{pid}: acknowledged events out of order"
        corrupt = list((root / "quarantine").rglob("*.corrupt-*"))
        assert corrupt == [], "a journal was quarantined as corrupt"
    finally:
        ward.close()
    return torn


WARD_KILLS = max(20, KILLS // 2)


def test_sigkill_real_ward_service_loses_nothing(tmp_path: Path) -> None:
    """The same harness through the real record, hash chain and service."""
    root = tmp_path / "ward"
    rng = random.Random(20261124)
    acked: dict[str, list[str]] = {"w0": [], "w1": []}
    server = _Server(root)
    acks_total = torn_total = 0
    try:
        for run in range(WARD_KILLS):
            pid = "w0" if run % 2 else "w1"
            server.send(f"go r{run} {pid} 0 ward")
            lines: list[str] = []
            child = server.child(lines)
            while "ready" not in lines:
                lines.append(server.next_line())
            time.sleep(rng.uniform(0.020, 0.150))
            os.kill(child, signal.SIGKILL)
            while True:
                line = server.next_line()
                if line.startswith("exit "):
                    status = int(line.split()[2])
                    break
                lines.append(line)
            assert os.WIFSIGNALED(status), f"ward writer r{run} failed (status {status})"
            new_acks = [ln.split()[1] for ln in lines if ln.startswith("ack ")]
            acked[pid].extend(new_acks)
            acks_total += len(new_acks)
            torn_total += _ward_startup_check(root, acked)
    finally:
        server.close()
    print(
        f"\nward (journal) kill harness: {WARD_KILLS} SIGKILLs, {acks_total} acknowledged "
        f"events, {torn_total} torn last line(s) seen and ignored, 0 lost, 0 duplicated"
    )
    assert acks_total > WARD_KILLS

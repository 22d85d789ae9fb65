"""Issue 15: the other workstations as a ward folder shows them — honestly.

* A workstation with journals but no heartbeat (or an unreadable one) is named: when it last
  synced is unknown, which is never taken as "just now".
* A workstation whose clock disagrees with its peers is named on the handover too.
* A replicated ward folder this workstation has never opened (only the others' journals and
  heartbeats) is verified, exported and handed over read-only: nothing is written to it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape

from bedside.clinical.protocol import load_default_protocol
from bedside.common.clock import FakeClock
from bedside.reports.handover import build_handover, render_html
from bedside.ward.service import Ward, open_ward
from bedside.ward.wardsync import ward_status, write_heartbeat

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


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


def _unknown(ws: str, why: str) -> str:
    return f"{ws}: {why} — when it last synced is unknown; doses given there may be missing"


# --------------------------------------------------------------------------- no heartbeat


def test_a_workstation_with_journals_but_no_heartbeat_is_named_never_fresh(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    ward = tmp_path / "ward"
    a = open_ward(ward, clock, workstation="4A-PC1")
    c = open_ward(ward, clock, workstation="4A-PC3")
    try:
        pid = _admit(a, clock)
        c.reload()
        c.give_tocilizumab(pid, given_by="EF", checked_by="GH")
        assert ward_status(a).lines == []  # PC3's heartbeat is fresh
        heartbeat = ward / "workstations" / "4A-PC3.json"
        heartbeat.unlink()  # e.g. Syncthing has brought its journal but not its heartbeat
        status = ward_status(a)
        assert status.unknown == [_unknown("4A-PC3", "no heartbeat")]
        assert status.lines == [_unknown("4A-PC3", "no heartbeat")]
        assert status.stale == []  # not "last synced 0 min ago"
        # The handover names it (ward and patient).
        for doc in (build_handover(a, clock.now()), build_handover(a, clock.now(), pid)):
            assert _unknown("4A-PC3", "no heartbeat") in doc.sync
            assert "4A-PC3: no heartbeat" in render_html(doc)
        # A damaged heartbeat is not a heartbeat either.
        heartbeat.write_bytes(b'{"last_seen": "not a time"')
        assert ward_status(a).unknown == [_unknown("4A-PC3", "heartbeat unreadable")]
        heartbeat.write_bytes(b'{"last_seen": "2026-03-01T08:00:00"}')  # no zone: unknown
        assert ward_status(a).unknown == [_unknown("4A-PC3", "heartbeat unreadable")]
        # Its own heartbeat back: fresh again, nothing to say.
        write_heartbeat(c.store)
        assert ward_status(a).lines == []
        # This workstation never names itself.
        (ward / "workstations" / "4A-PC1.json").unlink()
        assert ward_status(a).lines == []
    finally:
        a.close()
        c.close()


def test_an_unreadable_heartbeat_of_a_workstation_without_journals_is_named(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    a = open_ward(tmp_path / "ward", clock, workstation="4A-PC1")
    try:
        (tmp_path / "ward" / "workstations" / "4A-PC4.json").write_bytes(b"\x00\x01")
        assert ward_status(a).unknown == [_unknown("4A-PC4", "heartbeat unreadable")]
    finally:
        a.close()


# --------------------------------------------------------------------------- clocks


def test_a_workstation_whose_clock_disagrees_is_named_in_the_handover(tmp_path: Path) -> None:
    clock_a, clock_b = FakeClock(T0), FakeClock(T0)
    a = open_ward(tmp_path / "w", clock_a, workstation="4A-PC1")
    b = open_ward(tmp_path / "w", clock_b, workstation="4A-PC2")
    try:
        pid = _admit(a, clock_a)
        b.reload()
        tol = load_default_protocol().monitoring.peer_clock_tolerance_min.value
        # Within the tolerance: nothing is said.
        clock_a.advance(timedelta(minutes=tol - 1))
        write_heartbeat(a.store)
        assert ward_status(b).clocks == []
        # A's clock runs ahead by more than the tolerance.
        clock_a.set(clock_b.now() + timedelta(minutes=tol + 20))
        write_heartbeat(a.store)
        doc = build_handover(b, clock_b.now())
        named = [line for line in doc.sync if line.startswith("4A-PC1's clock is at least")]
        assert named and "ahead of this workstation's" in named[0]
        assert str(escape(named[0])) in render_html(doc)  # on the page, escaped
        assert any("4A-PC1's clock" in line for line in build_handover(b, clock_b.now(), pid).sync)
        # Seen from A: B is behind (B's heartbeat records when it saw A's).
        write_heartbeat(b.store)
        assert any(
            line.startswith("4A-PC2's clock is at least") and "behind" in line
            for line in build_handover(a, clock_a.now()).sync
        )
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- never opened


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[p.relative_to(root).as_posix()] = (
            st.st_mode,
            st.st_size,
            st.st_mtime_ns,
            p.read_bytes() if p.is_file() else b"",
        )
    return out


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Syncthing brings to a new workstation: PC1's and PC2's journals and heartbeats."""
    base = tmp_path_factory.mktemp("replica")
    clock = FakeClock(T0)
    a = open_ward(base / "origin", clock, workstation="4A-PC1")
    b = open_ward(base / "origin", clock, workstation="4A-PC2")
    try:
        pid = _admit(a, clock)
        b.reload()
        clock.advance(H)
        b.give_tocilizumab(pid, given_by="EF", checked_by="GH")
        clock.advance(H)
        a.chart(pid, "note", recorded_by="AB", text="settled overnight")
    finally:
        a.close()
        b.close()
    replica = base / "replica"
    for sub in ("journals", "workstations"):
        shutil.copytree(base / "origin" / sub, replica / sub)
    assert not (replica / "patients").exists() and not (replica / "locks").exists()
    return replica


def test_verify_a_replicated_ward_folder_never_opened_here(replica: Path) -> None:
    before = _snapshot(replica)
    proc = _run("verify", "--data-dir", str(replica), "--workstation", "4A-PC9")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not a Bedside data directory" not in proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith(("OK", "FAIL"))]
    assert line.startswith("OK   journals/p1:") and "4A-PC1" in line and "4A-PC2" in line
    assert _snapshot(replica) == before  # read-only: nothing written, renamed or created


def test_export_and_handover_of_a_replicated_ward_folder_are_read_only(
    replica: Path, tmp_path: Path
) -> None:
    before = _snapshot(replica)
    out = tmp_path / "csv"
    proc = _run(
        "export",
        "--data-dir",
        str(replica),
        "--workstation",
        "4A-PC9",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (out / "p1.csv").read_text(encoding="utf-8")
    assert "tocilizumab" in text and "settled overnight" in text  # both workstations' events
    html = tmp_path / "handover.html"
    proc = _run(
        "handover", "--data-dir", str(replica), "--workstation", "4A-PC9", "--out", str(html)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Test Person" in html.read_text(encoding="utf-8")
    assert _snapshot(replica) == before


def test_a_folder_that_is_not_a_ward_is_still_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a ward", encoding="utf-8")
    proc = _run("verify", "--data-dir", str(other))
    assert proc.returncode == 1 and "not a Bedside data directory" in proc.stdout
    proc = _run("export", "--data-dir", str(other), "--format", "csv", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "not a Bedside data directory" in proc.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]

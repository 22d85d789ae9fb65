"""`python -m bedside demo` and `verify` as a nurse or IT department would run them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    proc = _run("demo", "--data-dir", str(d))
    assert proc.returncode == 0, proc.stderr
    return d


def _journals(d: Path) -> list[Path]:
    return sorted((d / "journals").glob("*/*.jsonl"))


def test_demo_writes_a_ward_and_is_idempotent(demo_dir: Path) -> None:
    files = _journals(demo_dir)
    assert len(files) >= 6
    assert not list((demo_dir / "patients").glob("*.json"))  # journals only (issue 15)
    before = {p: p.read_bytes() for p in files}
    again = _run("demo", "--data-dir", str(demo_dir))
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert {p: p.read_bytes() for p in _journals(demo_dir)} == before


def test_verify_accepts_the_demo_ward_and_changes_nothing(demo_dir: Path) -> None:
    snapshot = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in demo_dir.rglob("*") if p.is_file()
    }
    proc = _run("verify", "--data-dir", str(demo_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("OK", "FAIL"))]
    assert len(lines) == len(_journals(demo_dir))
    assert all(ln.startswith("OK") for ln in lines)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in demo_dir.rglob("*") if p.is_file()}
    assert after == snapshot


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _journal(d: Path, pid: str) -> Path:
    (path,) = (d / "journals" / pid).glob("*.jsonl")
    return path


def test_verify_fails_on_a_tampered_value(demo_dir: Path, tmp_path: Path) -> None:
    d = _copy(demo_dir, tmp_path / "w")
    path = _journal(d, "demo-02")
    text = path.read_text("utf-8")
    lines = [json.loads(ln) for ln in text.splitlines()]
    meds = [
        ln["b"]["event"] for ln in lines if ln["b"].get("event", {}).get("drug") == "tocilizumab"
    ]
    assert meds
    pattern = re.compile(r'"dose":\s*' + re.escape(str(meds[0]["dose"])))
    tampered, n = pattern.subn('"dose":400.0', text, count=1)
    assert n == 1
    path.write_text(tampered, "utf-8")
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL journals/demo-02" in proc.stdout and "checksum" in proc.stdout


def test_verify_fails_on_a_journal_cut_shorter_than_its_backup(
    demo_dir: Path, tmp_path: Path
) -> None:
    d = _copy(demo_dir, tmp_path / "w")
    path = _journal(d, "demo-03")
    (backup,) = sorted((d / "backups").glob("*/demo-03/bk-*.jsonl"))[-1:]
    data = path.read_bytes()
    cut = data[: len(backup.read_bytes()) - 10]
    path.write_bytes(cut)
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL journals/demo-03" in proc.stdout and "lines lost" in proc.stdout
    assert path.read_bytes() == cut  # verify never modifies


def test_verify_reports_a_torn_last_line_and_ignores_it(demo_dir: Path, tmp_path: Path) -> None:
    d = _copy(demo_dir, tmp_path / "w")
    path = _journal(d, "demo-03")
    data = path.read_bytes()
    n_lines = data.count(b"\n")
    path.write_bytes(data + data.splitlines(keepends=True)[1][:37])  # a write cut short
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 0, proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if "journals/demo-03" in ln)
    assert f"{n_lines - 1} events" in line and "unfinished last line ignored" in line


def test_verify_fails_on_a_removed_line(demo_dir: Path, tmp_path: Path) -> None:
    """Removing a line (even a whole, valid one) breaks the journal's chain."""
    d = _copy(demo_dir, tmp_path / "w")
    path = _journal(d, "demo-04")
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[2]
    path.write_bytes(b"".join(lines))
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL journals/demo-04" in proc.stdout and "removed or reordered" in proc.stdout


def test_verify_on_missing_dir_fails_without_creating_it(tmp_path: Path) -> None:
    proc = _run("verify", "--data-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 1
    assert not (tmp_path / "nothing").exists()

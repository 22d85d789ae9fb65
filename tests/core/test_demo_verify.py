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


def test_demo_writes_a_ward_and_is_idempotent(demo_dir: Path) -> None:
    files = sorted(p.name for p in (demo_dir / "patients").glob("*.json"))
    assert len(files) >= 6
    before = {p: p.read_bytes() for p in (demo_dir / "patients").glob("*.json")}
    again = _run("demo", "--data-dir", str(demo_dir))
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert {p: p.read_bytes() for p in (demo_dir / "patients").glob("*.json")} == before


def test_verify_accepts_the_demo_ward_and_changes_nothing(demo_dir: Path) -> None:
    snapshot = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in demo_dir.rglob("*") if p.is_file()
    }
    proc = _run("verify", "--data-dir", str(demo_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("OK", "FAIL"))]
    assert len(lines) == len(list((demo_dir / "patients").glob("*.json")))
    assert all(ln.startswith("OK") for ln in lines)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in demo_dir.rglob("*") if p.is_file()}
    assert after == snapshot


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_verify_fails_on_a_tampered_value(demo_dir: Path, tmp_path: Path) -> None:
    d = _copy(demo_dir, tmp_path / "w")
    path = d / "patients" / "demo-02.json"
    text = path.read_text("utf-8")
    data = json.loads(text)
    meds = [e for e in data["events"] if e.get("drug") == "tocilizumab"]
    assert meds
    pattern = re.compile(r'"dose":\s*' + re.escape(str(meds[0]["dose"])))
    tampered, n = pattern.subn('"dose":400.0', text, count=1)
    assert n == 1
    path.write_text(tampered, "utf-8")
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL demo-02.json" in proc.stdout


def test_verify_fails_on_a_truncated_file(demo_dir: Path, tmp_path: Path) -> None:
    d = _copy(demo_dir, tmp_path / "w")
    path = d / "patients" / "demo-03.json"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL demo-03.json" in proc.stdout
    assert path.read_bytes() == data[: len(data) // 2]  # verify never modifies


def test_verify_fails_on_a_removed_event_with_fixed_checksum(
    demo_dir: Path, tmp_path: Path
) -> None:
    """A careful tamperer who also fixes the integrity checksum is still caught by the chain."""
    from bedside.jsonio import strict_loads
    from bedside.storage import encode_envelope

    d = _copy(demo_dir, tmp_path / "w")
    path = d / "patients" / "demo-04.json"
    doc = strict_loads(path.read_bytes(), source="test")
    doc.pop("_sha256", None)
    del doc["events"][2]
    doc["head"]["count"] -= 1
    path.write_bytes(encode_envelope(doc))
    proc = _run("verify", "--data-dir", str(d))
    assert proc.returncode == 1
    assert "FAIL demo-04.json" in proc.stdout and "chain" in proc.stdout


def test_verify_on_missing_dir_fails_without_creating_it(tmp_path: Path) -> None:
    proc = _run("verify", "--data-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 1
    assert not (tmp_path / "nothing").exists()

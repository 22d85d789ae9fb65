"""Bedside's performance record: one table, each figure next to its reference from the same run.

    python build_scripts/bench.py [--runs 7] [--no-frozen] [--skip-core]

Prints a Markdown table (the README's Performance section is a copy of it):

* start-up to the first painted main window over a demo ward, from source and frozen
  (``dist/bedside`` from ``build.py``), against a bare PySide6 ``QMainWindow`` started the
  same way (the frozen reference is that script built by PyInstaller into
  ``build/bench-bare/``, rebuilt when missing). Child processes, alternated, after one
  warm-up run each; the median of ``--runs``. Method and bare window: ``bench_startup.py``;
* peak memory (``ru_maxrss`` of the same child processes) against the same bare window;
* frozen bundle size against the bare window's bundle;
* whole-ward load of 20 patients with 30-day records (with no record cache, unchanged, and
  after every journal grew) and save p95 for a 30-day record (``bench_record.py``);
* derivation cost per tick for 20 patients (``bench_timers.py``);
* validate throughput in cases per second, in this process, against ``json.loads`` of the
  same case files; and the ``validate`` command end to end, frozen against source.

The other scripts run as subprocesses and their output is parsed, so each keeps its
own method and its own process. Targets: frozen bundle <= 150 MB (issue 7); start-up
<= 2.0x and peak memory <= 1.5x a bare PySide6 window, from source and frozen, a 20 x
30-day ward loading in < 300 ms (issue 14 item 7, issue 15); save p95 < 5 ms, tick < 5 ms
for 20 patients. Prints figures; exits 0 unless a measurement could not be made.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "build_scripts"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _load_bench_startup() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_startup", HERE / "bench_startup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_startup = _load_bench_startup()
BARE: str = _startup.BARE
"""The bare PySide6 window of ``bench_startup.py`` (same size, same first-paint line)."""
_env: Callable[[], dict[str, str]] = _startup._env
"""The child environment of ``bench_startup.py`` (offscreen, cached bytecode)."""

FROZEN = ROOT / "dist" / "bedside" / ("bedside.exe" if sys.platform == "win32" else "bedside")
BARE_DIR = ROOT / "build" / "bench-bare"
BARE_FROZEN = BARE_DIR / "dist" / "bare" / ("bare.exe" if sys.platform == "win32" else "bare")
MIB = 1024 * 1024
TIMEOUT_S = 180.0
STARTUP_TARGET = 2.0
"""Issue 14 item 7: first paint within 2.0x a bare PySide6 window, from source and frozen."""
MEMORY_TARGET = 1.5
"""Issue 14 item 7: peak memory within 1.5x the bare window."""


@dataclass
class Row:
    """One line of the table."""

    figure: str
    value: str
    reference: str
    ratio: str
    target: str
    verdict: str = ""


@dataclass
class Run:
    """One child process: seconds to first paint and peak resident memory."""

    first_paint_s: float
    maxrss_bytes: int


# --------------------------------------------------------------------------- child processes


def run_child(cmd: list[str], env: dict[str, str]) -> Run:
    """Run ``cmd``; time spawn -> first paint (child prints it) and read its ``ru_maxrss``."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    killer = threading.Timer(TIMEOUT_S, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        if hasattr(os, "wait4"):
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            rss = maxrss_bytes(usage.ru_maxrss)
        else:  # Windows: no rusage of a child; memory is reported as n/a
            proc.wait()
            rss = 0
    finally:
        killer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}")
    stamp = first_paint_stamp(out)
    if stamp is None:
        raise RuntimeError(f"no first-paint line from {' '.join(cmd)}: {out[-300:]!r}")
    return Run(stamp - start, rss)


def first_paint_stamp(stdout: str) -> float | None:
    """The child's ``first-paint-monotonic=`` value, or None."""
    m = re.search(r"first-paint-monotonic=([\d.]+)", stdout)
    return float(m.group(1)) if m else None


def maxrss_bytes(ru_maxrss: int) -> int:
    """``ru_maxrss`` in bytes (kilobytes on Linux, bytes on macOS)."""
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def alternate(
    app: list[str], bare: list[str], runs: int, env: dict[str, str]
) -> tuple[list[Run], list[Run]]:
    """One warm-up run each, then ``runs`` alternated runs of each; (app runs, bare runs)."""
    run_child(bare, env)
    run_child(app, env)
    ours: list[Run] = []
    ref: list[Run] = []
    for _ in range(runs):
        ref.append(run_child(bare, env))
        ours.append(run_child(app, env))
    return ours, ref


def build_frozen_bare() -> Path | None:
    """Build the bare window with PyInstaller (same options as Bedside's bundle); its exe."""
    if BARE_FROZEN.is_file():
        return BARE_FROZEN
    BARE_DIR.mkdir(parents=True, exist_ok=True)
    script = BARE_DIR / "bare.py"
    script.write_text(BARE, encoding="utf-8")
    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--onedir", "--name", "bare",
        "--log-level", "ERROR", "--distpath", str(BARE_DIR / "dist"),
        "--workpath", str(BARE_DIR / "work"), "--specpath", str(BARE_DIR),
        "--exclude-module", "tkinter", str(script),
    ]  # fmt: skip
    if sys.platform.startswith("linux"):
        cmd.insert(-1, "--strip")
    print("building the frozen bare window (once): build/bench-bare/", file=sys.stderr)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return BARE_FROZEN


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks not counted)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --------------------------------------------------------------------------- the other scripts


def run_script(name: str, *args: str) -> str:
    """Run ``build_scripts/<name>`` with this interpreter; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(HERE / name), *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {proc.stderr[-500:]}")
    return proc.stdout


LOAD_LINES = (
    "whole-ward load (restart, journals unchanged)",
    "whole-ward load after every journal grew",
    "whole-ward load, no cache (first open)",
)
"""The three whole-ward load lines of ``bench_record.py`` (same order as its output)."""


def parse_record(out: str) -> dict[str, tuple[float, float, float]]:
    """``bench_record.py`` figures: name -> (value ms, reference ms, ratio)."""
    rows: dict[str, tuple[float, float, float]] = {}
    for key in (*LOAD_LINES, "save p95", "save p50"):
        m = re.search(
            rf"^{re.escape(key)}.*?ms\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.MULTILINE
        )
        if m:
            rows[key] = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
            if key in LOAD_LINES:  # its parts, on the lines below it
                part = re.search(
                    r"^\s+records read and checked \(store\), ms\s+([\d.]+)"
                    r".*?^\s+\+ first board view = ready to display, ms\s+([\d.]+)",
                    out[m.end() :],
                    re.MULTILINE | re.DOTALL,
                )
                if part:
                    rows[f"{key}/parts"] = (float(part.group(1)), float(part.group(2)), 0.0)
    m = re.search(r"^record: (\d+) events, (\d+) KiB on disk; ward: (\d+)", out, re.MULTILINE)
    if m:
        rows["_record"] = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
    return rows


def parse_timers(out: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``bench_timers.py`` figures: ward -> line label -> (median ms, p95 ms)."""
    wards: dict[str, dict[str, tuple[float, float]]] = {}
    current: dict[str, tuple[float, float]] | None = None
    for line in out.splitlines():
        head = re.match(r"^(demo|heavy) ward .*?: (\d+) patients, (\d+) events", line)
        if head:
            current = wards.setdefault(head.group(1), {})
            current["_size"] = (float(head.group(2)), float(head.group(3)))
            continue
        m = re.match(r"^\s+(.+?)\s+median\s+([\d.]+) ms\s+p95\s+([\d.]+) ms", line)
        if m and current is not None:
            current[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
    return wards


def validate_throughput(repeats: int = 5) -> tuple[float, float, int]:
    """(cases/s of the rules over the shipped cases, cases/s of json.loads of them, cases)."""
    import json

    from bedside.tools.validation import run_files, shipped_case_files

    files = shipped_case_files()
    report = run_files(files)  # warm-up (imports, protocol)
    n = len(report.results)
    runs, refs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_files(files)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for f in files:
            json.loads(f.read_bytes())
        refs.append(time.perf_counter() - t0)
    return n / statistics.median(runs), n / statistics.median(refs), n


def command_wall(cmd: list[str], repeats: int = 3) -> float:
    """Median wall seconds of a command (after one warm-up run)."""
    env = _env()
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True, timeout=TIMEOUT_S)
    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True, timeout=TIMEOUT_S)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------- table


def verdict(ok: bool) -> str:
    """The verdict cell."""
    return "met" if ok else "**missed**"


def startup_rows(label: str, ours: list[Run], ref: list[Run]) -> list[Row]:
    """Start-up and peak-memory rows for one pair of run lists."""
    t, tr = (
        statistics.median(r.first_paint_s for r in ours),
        statistics.median(r.first_paint_s for r in ref),
    )
    m, mr = (
        statistics.median(r.maxrss_bytes for r in ours),
        statistics.median(r.maxrss_bytes for r in ref),
    )
    memory_ratio = f"{m / mr:.2f}x" if mr else "n/a"
    return [
        Row(
            f"start-up to first paint, demo ward, {label} (median of {len(ours)})",
            f"{t * 1000:.0f} ms",
            f"{tr * 1000:.0f} ms bare window",
            f"{t / tr:.2f}x",
            f"<= {STARTUP_TARGET:.1f}x",
            verdict(t / tr <= STARTUP_TARGET),
        ),
        Row(
            f"peak memory (ru_maxrss), {label}",
            f"{m / MIB:.0f} MiB",
            f"{mr / MIB:.0f} MiB bare window",
            memory_ratio,
            f"<= {MEMORY_TARGET:.1f}x",
            verdict(m / mr <= MEMORY_TARGET) if mr else "",
        ),
    ]


def render(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    head = "| figure | Bedside | reference (same run) | ratio | target | |\n"
    head += "|---|---:|---:|---:|---|---|\n"
    return head + "".join(
        f"| {r.figure} | {r.value} | {r.reference} | {r.ratio} | {r.target} | {r.verdict} |\n"
        for r in rows
    )


def machine() -> str:
    """One line describing where the figures were measured."""
    import PySide6

    cpus = os.cpu_count() or 0
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.system()} {platform.machine()}, {cpus} CPUs, "
        f"Python {platform.python_version()}, PySide6 {PySide6.__version__}, "
        f"QT_QPA_PLATFORM={_env().get('QT_QPA_PLATFORM')}"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure everything and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="start-up runs per program")
    parser.add_argument("--no-frozen", action="store_true", help="skip the frozen figures")
    parser.add_argument("--skip-core", action="store_true", help="only start-up and memory")
    ns = parser.parse_args(argv)
    env = _env()
    rows: list[Row] = []
    notes: list[str] = []

    from bedside.common.clock import SystemClock
    from bedside.tools.demo import write_demo_ward

    tmp = Path(tempfile.mkdtemp(prefix="bedside-bench-"))
    try:
        ward = tmp / "ward"
        n_patients = len(write_demo_ward(ward, SystemClock()))
        notes.append(f"demo ward: {n_patients} patients")
        app_src = [sys.executable, "-m", "ui", "--data-dir", str(ward), "--quit-after-show"]
        bare_src = [sys.executable, "-c", BARE]
        print(f"start-up from source ({ns.runs} runs each)...", file=sys.stderr)
        ours, ref = alternate(app_src, bare_src, ns.runs, env)
        rows += startup_rows("source", ours, ref)
        if not ns.no_frozen and FROZEN.is_file():
            bare_exe = build_frozen_bare()
            if bare_exe is not None:
                print(f"start-up frozen ({ns.runs} runs each)...", file=sys.stderr)
                app_frz = [str(FROZEN), "--data-dir", str(ward), "--quit-after-show"]
                ours, ref = alternate(app_frz, [str(bare_exe)], ns.runs, env)
                rows += startup_rows("frozen", ours, ref)
                size, bare_size = tree_size(FROZEN.parent), tree_size(bare_exe.parent)
                rows.append(
                    Row(
                        "frozen bundle size (dist/bedside)",
                        f"{size / MIB:.1f} MiB ({size / 1e6:.1f} MB)",
                        f"{bare_size / MIB:.1f} MiB bare window bundle",
                        f"{size / bare_size:.2f}x",
                        "<= 150 MB",
                        verdict(size <= 150e6),
                    )
                )
        elif not ns.no_frozen:
            notes.append("frozen figures skipped: no dist/bedside (python build_scripts/build.py)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if not ns.skip_core:
        print("bench_record.py...", file=sys.stderr)
        rec = parse_record(run_script("bench_record.py"))
        if "_record" in rec:
            ev, kib, pats = rec["_record"]
            notes.append(f"record: {ev:.0f} events over 30 days, {kib:.0f} KiB; ward: {pats:.0f}")
        labels = (
            ("restart, journals unchanged", "< 300 ms"),
            ("restart after every journal grew", "< 300 ms"),
            ("first open, no record cache (every line checked)", "(information)"),
        )
        for key, (label, target) in zip(LOAD_LINES, labels, strict=True):
            if key in rec:
                v, r, q = rec[key]
                rows.append(
                    Row(
                        f"whole-ward load, 20 patients x 30-day record: {label}",
                        f"{v:.0f} ms",
                        f"{r:.0f} ms json.loads",
                        f"{q:.1f}x",
                        target,
                        verdict(v < 300) if target.startswith("<") else "",
                    )
                )
            parts = rec.get(f"{key}/parts")
            if parts and key != LOAD_LINES[-1]:
                store, ready, _ = parts
                rows.append(
                    Row(
                        f"  of which the store (records read and checked), {label}",
                        f"{store:.0f} ms",
                        "",
                        "",
                        "(information)",
                    )
                )
                rows.append(
                    Row(
                        f"  load + first board view (ready to display), {label}",
                        f"{ready:.0f} ms",
                        f"{r:.0f} ms json.loads",
                        f"{ready / r:.1f}x",
                        "(information)",
                    )
                )
        if "save p95" in rec:
            v, r, q = rec["save p95"]
            rows.append(
                Row(
                    "save p95, 30-day record (validate, append one journal line, fsync)",
                    f"{v:.1f} ms",
                    f"{r:.1f} ms json.dumps+write",
                    f"{q:.1f}x",
                    "< 5 ms",
                    verdict(v < 5),
                )
            )
        print("bench_timers.py...", file=sys.stderr)
        timers = parse_timers(run_script("bench_timers.py"))
        for ward_name, label in (("demo", "demo ward"), ("heavy", "600 events each")):
            w = timers.get(ward_name, {})
            d, ref_t = w.get("derive every due item"), w.get("reference json.dumps")
            if d and ref_t:
                rows.append(
                    Row(
                        f"derivation per tick, 20 patients ({label}), p95",
                        f"{d[1]:.2f} ms",
                        f"{ref_t[1]:.2f} ms json.dumps",
                        f"{d[1] / ref_t[1]:.2f}x",
                        "< 5 ms",
                        verdict(d[1] < 5),
                    )
                )
            cold = w.get("derive, timelines rebuilt")
            if cold and ref_t:
                rows.append(
                    Row(
                        f"tick after every record changed ({label}), p95",
                        f"{cold[1]:.1f} ms",
                        f"{ref_t[1]:.1f} ms json.dumps",
                        f"{cold[1] / ref_t[1]:.2f}x",
                        "(information)",
                    )
                )
        print("validate...", file=sys.stderr)
        rate, ref_rate, n_cases = validate_throughput()
        rows.append(
            Row(
                f"validate throughput ({n_cases} shipped cases, in process)",
                f"{rate:,.0f} cases/s",
                f"{ref_rate:,.0f} cases/s json.loads",
                f"{ref_rate / rate:.1f}x slower",
                "",
            )
        )
        src_wall = command_wall([sys.executable, "-m", "bedside", "validate"])
        if not ns.no_frozen and FROZEN.is_file():
            frz_wall = command_wall([str(FROZEN), "validate"])
            rows.append(
                Row(
                    "`bedside validate` end to end, frozen",
                    f"{frz_wall * 1000:.0f} ms ({n_cases / frz_wall:,.0f} cases/s)",
                    f"{src_wall * 1000:.0f} ms from source",
                    f"{frz_wall / src_wall:.2f}x",
                    "",
                )
            )

    print(f"Measured {machine()}; {'; '.join(notes)}.\n")
    print(render(rows))
    print("Reproduce: python build_scripts/build.py && python build_scripts/bench.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

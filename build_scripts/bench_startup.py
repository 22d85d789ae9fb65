"""Start-up and tick cost of the Bedside window with the demo ward (prints, never asserts).

    python build_scripts/bench_startup.py [--runs 7] [--ticks 300]

1. Start-up to the first painted main window, from the moment the process is spawned to
   the first Paint event of the window (the child prints ``time.monotonic()`` then; on
   Linux that clock is shared between processes), for ``python -m ui --quit-after-show``
   over a demo ward and for a bare PySide6 ``QMainWindow`` of the same size, alternated in
   the same run, both with cached bytecode (a warm-up run of each fills the cache). Reports
   median and minimum of each and the ratio of the medians (target of issue 5: at most 1.6).
2. The 1 s tick with the demo ward, in this process: ``Ticker.tick()`` (recompute every
   due item, budget and board row from the records) plus processing the repaint it
   causes, with the board shown and with a patient's workspace shown. Reports median,
   95th percentile and maximum in ms (target: under 16 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BARE = """
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
w = QMainWindow()
w.resize(1500, 920)
class F(QObject):
    done = False
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            print(f"first-paint-monotonic={time.monotonic():.6f}", flush=True)
            QTimer.singleShot(0, app.quit)
        return False
f = F(w)
w.installEventFilter(f)
w.show()
sys.exit(app.exec())
"""


PYCACHE = Path(tempfile.gettempdir()) / "bedside-bench-pycache"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Measure as installed: with cached bytecode (this sandbox sets PYTHONDONTWRITEBYTECODE,
    # which would recompile every module at each start). The cache lives outside the repo.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _first_paint(cmd: list[str]) -> float:
    """Seconds from spawn to the child's first paint."""
    start = time.monotonic()
    out = subprocess.run(
        cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("first-paint-monotonic="):
            stamp = float(line.split()[0].split("=", 1)[1])
            return stamp - start
    raise RuntimeError(f"no first-paint line in output: {out!r}")


def bench_startup(data_dir: Path, runs: int) -> tuple[list[float], list[float]]:
    """Alternate bare and Bedside starts; return both lists of seconds."""
    bare: list[float] = []
    ours: list[float] = []
    app_cmd = [sys.executable, "-m", "ui", "--data-dir", str(data_dir), "--quit-after-show"]
    bare_cmd = [sys.executable, "-c", BARE]
    _first_paint(bare_cmd)  # warm the file cache for both
    _first_paint(app_cmd)
    for _ in range(runs):
        bare.append(_first_paint(bare_cmd))
        ours.append(_first_paint(app_cmd))
    return bare, ours


def bench_tick(data_dir: Path, ticks: int) -> dict[str, list[float]]:
    """Tick cost (ms) with the board shown and with a patient workspace shown."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from bedside.common.clock import SystemClock
    from ui.app import build_session, create_application

    create_application("bench")

    class _NoTimer:
        """The benchmark calls tick() itself."""

        def __init__(self, parent: object) -> None:
            from PySide6.QtCore import QObject, Signal

            class _T(QObject):
                timeout = Signal()

            self._t = _T()
            self.timeout = self._t.timeout

        def setInterval(self, msec: int) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

    session = build_session(
        data_dir,
        SystemClock(),
        show_error_dialogs=False,
        listen=False,
        install_crash_hook=False,
        timer_factory=_NoTimer,
    )
    window = session.window
    window.resize(1500, 920)
    window.show()
    QApplication.processEvents()
    results: dict[str, list[float]] = {}
    pids = session.controller.patient_ids()
    for label in ("board", "workspace"):
        if label == "workspace" and pids:
            window.open_patient(pids[0], "crs")
            QApplication.processEvents()
        samples: list[float] = []
        for _ in range(ticks):
            t0 = time.perf_counter()
            session.ticker.tick()
            QApplication.processEvents()
            samples.append((time.perf_counter() - t0) * 1000)
        results[label] = samples
    results["derive only"] = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        session.controller.refresh()
        results["derive only"].append((time.perf_counter() - t0) * 1000)
    n = len(pids)
    session.close()
    results["_patients"] = [float(n)]
    return results


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ticks", type=int, default=300)
    ns = parser.parse_args(argv)
    from bedside.common.clock import SystemClock
    from bedside.tools.demo import write_demo_ward

    tmp = Path(tempfile.mkdtemp(prefix="bedside-bench-"))
    try:
        data = tmp / "ward"
        written = write_demo_ward(data, SystemClock())
        print(f"demo ward: {len(written)} patients in {data}")
        bare, ours = bench_startup(data, ns.runs)
        mb, mo = statistics.median(bare), statistics.median(ours)
        print(f"\nStart-up to first painted main window ({ns.runs} runs each, alternated):")
        rows = (("bare PySide6 QMainWindow", bare, mb), ("Bedside, demo ward", ours, mo))
        for name, vals, med in rows:
            print(f"  {name:<25}: median {med * 1000:7.1f} ms  min {min(vals) * 1000:7.1f} ms")
        ratio = f"{mo / mb:.2f}x   (min/min {min(ours) / min(bare):.2f}x; target <= 1.6x)"
        print(f"  {'ratio (medians)':<25}: {ratio}")
        ticks = bench_tick(data, ns.ticks)
        n = int(ticks.pop("_patients")[0])
        print(f"\n1 s tick with the demo ward ({n} patients, {ns.ticks} ticks each):")
        for label, samples in ticks.items():
            print(
                f"  {label:<12}: median {statistics.median(samples):6.2f} ms  "
                f"p95 {_p(samples, 0.95):6.2f} ms  max {max(samples):6.2f} ms  (target < 16 ms)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

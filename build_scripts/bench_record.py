"""Benchmark the real record path: save of a 30-day record and load of a 20-patient ward.

Prints figures (never asserts). Every save goes through ``Ward`` exactly as the
application does: validate the event, seal it onto the hash chain, validate the whole
envelope (schema + chain) before writing, atomic write with fsync, rotating backups.
The reference, measured in the same run on the same envelope, is a plain
``json.dumps`` + ``write`` without fsync or validation.

Whole-ward load, three ways (median of ``--loads`` each): with no record cache (the first
open of these journals: every line checked, every event validated), at a restart with every
journal unchanged, and at a restart after one entry was charted on every patient since the
last load (only the appended lines are checked). Each load runs in a FRESH process, as a
restart does (no projection, protocol or validator left over from an earlier load in the same
process), after its imports and a ``gc.collect()`` that are not timed; garbage collection
stays enabled while it is timed (the application pauses it until its first paint, so this is
the dearer case). A load is ``open_ward``: every journal read and checked (checksums, chain,
signed cache) and every patient checked derivable for display (issue 12); the figure is split
into those two parts, and the first board view at ``now`` (``views.ward_view``, reusing the
projections the check built) is timed after it: load + first view is "ready to display".
The reference is ``json.loads`` of every journal line, in a fresh process too, alternated
with the loads.

    python build_scripts/bench_record.py [--events 1500] [--saves 60] [--patients 20] [--loads 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bedside.clinical.record import make_event, record_to_json
from bedside.common.clock import FakeClock
from bedside.store.journalcache import RecordCache
from bedside.ward.service import Ward, open_ward

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _thirty_day_record(ward: Ward, clock: FakeClock, pid: str, n_events: int) -> None:
    """Fill a record with ~n_events realistic events over 30 days, appended in memory."""
    from bedside.clinical.record import append

    ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"BENCH-{pid}",
        name=f"Bench Patient {pid}",
        date_of_birth="1960-01-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
    )
    rec = ward.records[pid]
    step = timedelta(days=30) / n_events
    for i in range(n_events):
        at = START + step * i
        if i % 3 == 0:
            ev = make_event(
                "vitals",
                effective_at=at,
                recorded_at=at,
                recorded_by="AB",
                temperature_c=37.0 + (i % 20) / 10,
                heart_rate=80 + i % 30,
                systolic_mmhg=120,
                diastolic_mmhg=75,
                spo2_pct=97,
                respiratory_rate=18,
            )
        elif i % 3 == 1:
            ev = make_event(
                "crs_assessment",
                effective_at=at,
                recorded_at=at,
                recorded_by="AB",
                inputs={"temperature_c": 38.1, "hypotension": False},
                grade=1,
                drivers=["fever"],
                explanation="Grade 1: fever 38.1 °C (≥ 38 °C) without hypotension or hypoxia",
            )
        else:
            ev = make_event(
                "lab",
                effective_at=at,
                recorded_at=at,
                recorded_by="AB",
                test="neutrophils",
                value=0.4,
                unit="10^9/L",
                lln=2.0,
                ctcae_grade=4,
                explanation="Grade 4: 0.4 10^9/L, LLN 2 10^9/L — neutrophil count decreased",
            )
        rec = append(rec, ev, at)
    ward._commit(pid, rec)  # one real save of the filled record


def _child_open(root: Path, now: datetime, patients: int) -> dict[str, float]:
    """In this (fresh) process: time ``open_ward`` and the first board view (see the module)."""
    from bedside.clinical import views
    from bedside.store.journal import JournalStore

    store_s = [0.0]
    real_load = JournalStore.load

    def timed_load(self: JournalStore, *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return real_load(self, *args, **kw)
        finally:
            store_s[0] += time.perf_counter() - t

    JournalStore.load = timed_load  # type: ignore[method-assign]
    clock = FakeClock(now)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    w = open_ward(root, clock)
    t1, c1 = time.perf_counter(), time.process_time()
    board = views.ward_view(list(w.records.values()), w.protocol_for, now, budget=w.budget_of)
    t2 = time.perf_counter()
    assert len(w.records) == patients and len(board.patients) == patients, w.failures
    w.close()
    return {
        "open": (t1 - t0) * 1000,
        "cpu": (c1 - c0) * 1000,
        "store": store_s[0] * 1000,
        "view": (t2 - t1) * 1000,
    }


def _child_reference(root: Path) -> dict[str, float]:
    """In this (fresh) process: ``json.loads`` of every journal line."""
    gc.collect()
    t0 = time.perf_counter()
    for p in sorted((root / "journals").glob("*/*.jsonl")):
        for line in p.read_bytes().splitlines():
            json.loads(line)
    return {"ref": (time.perf_counter() - t0) * 1000}


def _fresh(*args: str) -> dict[str, float]:
    """Run this script's child mode in a new process; its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def _open_fresh(root: Path, clock: FakeClock, patients: int) -> dict[str, float]:
    """Figures of one load in a fresh process (see :func:`_child_open`)."""
    return _fresh("open", str(root), clock.now().isoformat(), str(patients))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--saves", type=int, default=60)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5, help="loads per figure (median)")
    parser.add_argument("--verbose", action="store_true", help="print every load time")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ward"
        clock = FakeClock(START + timedelta(days=30))
        ward = open_ward(root, clock)
        for k in range(ns.patients):
            _thirty_day_record(ward, clock, f"bench{k:02d}", ns.events)
        pid = "bench00"
        journal = root / "journals" / pid / f"{ward.workstation}.jsonl"
        size = journal.stat().st_size
        save_ms: list[float] = []
        ref_ms: list[float] = []
        for i in range(ns.saves):
            clock.advance(timedelta(minutes=3))
            t0 = time.perf_counter()
            ward.chart(pid, "note", recorded_by="AB", text=f"bench note {i}")
            save_ms.append((time.perf_counter() - t0) * 1000)
            envelope = record_to_json(ward.records[pid])
            t0 = time.perf_counter()
            (Path(tmp) / "ref.json").write_text(json.dumps(envelope), "utf-8")
            ref_ms.append((time.perf_counter() - t0) * 1000)
        ward.close()
        # Every load in a fresh process, alternated with the reference (also fresh).
        # 1. No cache (the first open of these journals): every line checked, every event
        #    validated, the signed record cache written. The cache is removed before each run.
        cache_dir = RecordCache(root, ward.workstation).dir
        cold: list[dict[str, float]] = []
        warm: list[dict[str, float]] = []
        grown: list[dict[str, float]] = []
        ref_load: list[float] = []
        for _ in range(ns.loads):
            shutil.rmtree(cache_dir, ignore_errors=True)
            cold.append(_open_fresh(root, clock, ns.patients))
            ref_load.append(_fresh("reference", str(root))["ref"])
        # 2. Restart with every journal unchanged since the last load (the usual start).
        for _ in range(ns.loads):
            warm.append(_open_fresh(root, clock, ns.patients))
            ref_load.append(_fresh("reference", str(root))["ref"])
        # 3. Restart after every journal grew (one entry charted on each patient since the
        #    last load): only the appended lines are checked and validated.
        for i in range(ns.loads):
            w = open_ward(root, clock)
            for k in range(ns.patients):
                clock.advance(timedelta(seconds=10))
                w.chart(f"bench{k:02d}", "note", recorded_by="AB", text=f"grown {i}")
            w.close()
            grown.append(_open_fresh(root, clock, ns.patients))
            ref_load.append(_fresh("reference", str(root))["ref"])
    n = len(ward.records[pid].events) if pid in ward.records else ns.events
    print(f"record: {n} events, {size / 1024:.0f} KiB on disk; ward: {ns.patients} such patients")
    print(f"{'figure':44} {'value':>10} {'reference':>10} {'ratio':>7}  target")
    p95, r95 = _pct(save_ms, 0.95), _pct(ref_ms, 0.95)
    print(
        f"{'save p95 (validate+append 1 line+fsync), ms':44} "
        f"{p95:10.1f} {r95:10.1f} {p95 / r95:7.1f}  < 5 ms"
    )
    p50, r50 = statistics.median(save_ms), statistics.median(ref_ms)
    print(f"{'save p50, ms':44} {p50:10.1f} {r50:10.1f} {p50 / r50:7.1f}")
    rm = statistics.median(ref_load)

    def med(values: list[dict[str, float]], key: str) -> float:
        return statistics.median(v[key] for v in values)

    for label, values, target in (
        ("whole-ward load (restart, journals unchanged)", warm, "< 300 ms"),
        ("whole-ward load after every journal grew", grown, "< 300 ms"),
        ("whole-ward load, no cache (first open)", cold, "(every line checked)"),
    ):
        v = med(values, "open")
        print(f"{label + ', ms':44} {v:10.1f} {rm:10.1f} {v / rm:7.1f}  {target}")
        store = med(values, "store")
        print(f"{'  records read and checked (store), ms':44} {store:10.1f}")
        print(f"{'  derivability check, lock, gc pass, ms':44} {v - store:10.1f}")
        print(f"{'  CPU time of the load, ms':44} {med(values, 'cpu'):10.1f}")
        view = med(values, "view")
        ready = statistics.median(x["open"] + x["view"] for x in values)
        print(
            f"{'  + first board view = ready to display, ms':44} {ready:10.1f}  (view {view:.1f})"
        )
    print(
        f"(medians of {ns.loads} loads each, each in a fresh process, alternated with the "
        "reference: json.loads of every journal line, in a fresh process)"
    )
    if ns.verbose:
        for label, values in (("unchanged", warm), ("grew", grown), ("no cache", cold)):
            print(f"  {label}: " + " ".join(f"{v['open']:.0f}" for v in values))
        print("  reference: " + " ".join(f"{v:.0f}" for v in ref_load))
    return 0


def child(args: list[str]) -> int:
    """``--child open ROOT NOW PATIENTS`` or ``--child reference ROOT``: print figures."""
    if args[0] == "open":
        figures = _child_open(Path(args[1]), datetime.fromisoformat(args[2]), int(args[3]))
    else:
        figures = _child_reference(Path(args[1]))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        raise SystemExit(child(sys.argv[2:]))
    raise SystemExit(main())

"""Benchmark the crash-safe store (prints figures; asserts nothing).

Usage: ``python build_scripts/bench_storage.py [--events 1500] [--rounds 40] [--dir PATH]``

Measures, for one envelope of ~1,500 realistic events (each ~300-500 bytes of JSON):

* ``save``: the full :meth:`DataDir.save` (encode + checksum, re-parse + validate, token
  check, temp write + fsync + rename + directory fsync; the backup step is not due);
* ``load``: the full :meth:`DataDir.load` (read, strict parse, checksum, validate);
* ``load x20``: loading 20 such patients, as a ward start-up would;
* references measured in the same run: ``json.dumps`` + write without fsync, and plain
  ``json.loads``, so the ratio is meaningful on any machine.

Uses plain dicts and a trivial validator, not the record model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bedside.common.clock import FakeClock
from bedside.store.storage import DataDir

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def make_event(n: int) -> dict[str, Any]:
    """A realistic charting event of roughly 400 bytes of JSON."""
    ts = T0 + timedelta(minutes=7 * n)
    return {
        "id": f"evt-{n:06d}",
        "uuid": f"6f1c2a9e-{n:04x}-4c1b-9d3e-{n * 7919:012x}",
        "seq": n,
        "ts_utc": ts.isoformat(),
        "ts_local_offset": "+01:00",
        "recorded_at_utc": (ts + timedelta(seconds=40)).isoformat(),
        "user": "nurse.b.ramirez",
        "kind": ["vitals", "dose", "crs_grade", "icans_score", "note"][n % 5],
        "payload": {
            "temp_c": 37.0 + (n % 30) / 10,
            "hr_bpm": 70 + n % 50,
            "sbp_mmhg": 100 + n % 40,
            "spo2_pct": 92 + n % 8,
        },
        "reason": "routine observation" if n % 7 else "late charting: pump alarm",
        "prev_hash": f"{n * 2654435761 % (1 << 64):016x}" * 4,
    }


def validate(doc: dict[str, Any]) -> dict[str, Any]:
    """A cheap stand-in validator (unique ids)."""
    ids = {e["id"] for e in doc["events"]}
    if len(ids) != len(doc["events"]):
        raise ValueError("duplicate id")
    return doc


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    """Run ``fn`` ``rounds`` times; return durations in ms."""
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> float:
    """Print p50/p95 and return p50."""
    p50 = statistics.median(values)
    print(f"{name:<34} p50 {p50:8.2f} ms   p95 {pct(values, 0.95):8.2f} ms   (n={len(values)})")
    return p50


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp) / "data"
        clock = FakeClock(T0)
        dd = DataDir(root, clock=clock)
        dd.acquire_writer_lock()
        envelope: dict[str, Any] = {
            "schema_version": 1,
            "patient": {"display_name": "Test Patient", "weight_kg": 70.0},
            "events": [make_event(n) for n in range(args.events)],
        }
        sizes = [len(json.dumps(e)) for e in envelope["events"]]
        token = dd.save("p0", envelope, expected_token=None, validate=validate)
        file_size = (dd.patients_dir / "p0.json").stat().st_size
        print(
            f"envelope: {args.events} events, {min(sizes)}-{max(sizes)} B each (compact), "
            f"file {file_size / 1024:.0f} KiB"
        )

        def one_save() -> None:
            nonlocal token
            envelope["patient"]["weight_kg"] += 0.1  # a change, so a real write happens
            token = dd.save("p0", envelope, expected_token=token, validate=validate)

        save_p50 = report("save (full, fsync)", timed(one_save, args.rounds))
        load_p50 = report(
            "load (full)", timed(lambda: dd.load("p0", validate=validate), args.rounds)
        )

        for i in range(1, 20):
            dd.save(f"p{i}", envelope, expected_token=None, validate=validate)

        def load_all() -> None:
            for pid in dd.patient_ids():
                dd.load(pid, validate=validate)

        report("load x20 patients", timed(load_all, max(3, args.rounds // 8)))

        ref_path = Path(tmp) / "ref.json"

        def ref_save() -> None:
            ref_path.write_text(json.dumps(envelope), encoding="utf-8")

        ref_save_p50 = report("ref: json.dumps+write, no fsync", timed(ref_save, args.rounds))
        ref_bytes = ref_path.read_bytes()
        ref_load_p50 = report(
            "ref: read+json.loads", timed(lambda: json.loads(ref_path.read_bytes()), args.rounds)
        )
        print(
            f"ratio save/ref {save_p50 / ref_save_p50:.1f}x, load/ref "
            f"{load_p50 / ref_load_p50:.1f}x (ref file {len(ref_bytes) / 1024:.0f} KiB)"
        )
        dd.release_writer_lock()
    return 0


if __name__ == "__main__":
    sys.exit(main())

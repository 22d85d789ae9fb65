"""Benchmark the real record path: save of a 30-day record and load of a 20-patient ward.

Prints figures (never asserts). Every save goes through ``Ward`` exactly as the
application does: validate the event, seal it onto the hash chain, validate the whole
envelope (schema + chain) before writing, atomic write with fsync, rotating backups.
The reference, measured in the same run on the same envelope, is a plain
``json.dumps`` + ``write`` without fsync or validation.

    python build_scripts/bench_record.py [--events 1500] [--saves 60] [--patients 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bedside.clock import FakeClock
from bedside.record import make_event, record_to_json
from bedside.service import Ward, open_ward

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _thirty_day_record(ward: Ward, clock: FakeClock, pid: str, n_events: int) -> None:
    """Fill a record with ~n_events realistic events over 30 days, appended in memory."""
    from bedside.record import append

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


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--saves", type=int, default=60)
    parser.add_argument("--patients", type=int, default=20)
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
        load_ms: list[float] = []
        for _ in range(6):
            t0 = time.perf_counter()
            w = open_ward(root, clock)
            load_ms.append((time.perf_counter() - t0) * 1000)
            assert len(w.records) == ns.patients
            w.close()
        # The first open after the saves checks every line and validates every event (and
        # writes the signed record cache); the later ones find every journal unchanged.
        cold_ms, load_ms = load_ms[0], load_ms[1:]
        ref_load: list[float] = []
        for _ in range(5):
            t0 = time.perf_counter()
            for p in sorted((root / "journals").glob("*/*.jsonl")):
                for line in p.read_bytes().splitlines():
                    json.loads(line)
            ref_load.append((time.perf_counter() - t0) * 1000)
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
    lm, rm = statistics.median(load_ms), statistics.median(ref_load)
    print(
        f"{'whole-ward load (restart, journals unchanged), ms':44} "
        f"{lm:10.1f} {rm:10.1f} {lm / rm:7.1f}  < 300 ms"
    )
    print(
        f"{'first load after changes (check+validate), ms':44} "
        f"{cold_ms:10.1f} {rm:10.1f} {cold_ms / rm:7.1f}  (every journal changed)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

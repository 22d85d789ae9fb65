"""Benchmark the escalation timers: cost per UI tick of deriving every due item of a ward.

Prints figures (never asserts). Target: under 5 ms per tick on this machine.

Two wards are measured:

* **demo** — the patients of ``python -m bedside demo`` (written into a temporary
  directory through the real ``Ward``), repeated under new ids up to ``--patients``;
* **heavy** — ``--patients`` synthetic records of ``--events`` events each (a month of
  four-hourly vitals, ICE, CRS assessments, doses, steroids), the worst case of a long stay.

One tick = :func:`bedside.clinical.escalations.derive_due` for every patient (what the timers
panel does each second), and separately that plus :func:`bedside.ward.alerts.alert_states`.
Timelines are cached per (immutable) record object, so a steady tick only re-derives;
the "no cached timeline" figure is the tick right after every record changed.
The reference, measured in the same run on the same records, is ``json.dumps`` of
every record's JSON form.

    python build_scripts/bench_timers.py [--patients 20] [--events 600] [--ticks 300]
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
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bedside.clinical import views
from bedside.clinical.escalations import derive_due
from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.record import Record, append, make_event, new_record, record_to_json
from bedside.common.clock import FakeClock
from bedside.ward.alerts import alert_states
from bedside.ward.service import open_ward

ZONE = ZoneInfo("Europe/London")


def demo_records(n: int, now: datetime) -> tuple[list[Record], str]:
    """The demo ward's records, repeated under new ids up to ``n``."""
    try:
        from bedside.tools.demo import write_demo_ward
    except ImportError:
        return [], "bedside.tools.demo not available"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        write_demo_ward(root, FakeClock(now))
        ward = open_ward(root, FakeClock(now), read_only=True)
        base = [ward.records[pid] for pid in sorted(ward.records)]
        ward.close()
    out: list[Record] = []
    for i in range(n):
        rec = base[i % len(base)]
        pid = f"{rec.patient.patient_id}-{i:02d}"
        patient = rec.patient.model_copy(
            update={"patient_id": pid, "mrn": f"{rec.patient.mrn}-{i}"}
        )
        out.append(rec.model_copy(update={"patient": patient}))
    return out, f"{len(base)} demo patients repeated to {n}"


def heavy_record(pid: str, n_events: int, now: datetime) -> Record:
    """A synthetic record of ~n_events events over the 30 days before ``now`` (in memory)."""
    start = now - timedelta(days=30)
    from bedside.clinical.record import Patient

    patient = Patient(
        patient_id=pid,
        mrn=f"BENCH-{pid}",
        name="Bench Patient",
        date_of_birth=datetime(1960, 1, 1).date(),
        sex="female",
        weight_kg=70.0,
        weight_measured_at=start,
        product="cilta-cel",
        infusion_at=start + timedelta(days=1),
        protocol_id=load_default_protocol().protocol_id,
        protocol_version=load_default_protocol().version,
        admitted_at=start,
        dose_history_complete=True,
    )
    rec = new_record(patient, [], start)
    step = timedelta(days=30) / n_events
    toci = 0
    for i in range(n_events):
        at = start + step * i
        common = {"effective_at": at, "recorded_at": at, "recorded_by": "AB"}
        kind = i % 6
        if kind in (0, 3):
            ev = make_event(
                "vitals", **common, temperature_c=37.0 + (i % 20) / 10, heart_rate=90,
                systolic_mmhg=118, diastolic_mmhg=72, spo2_pct=96, respiratory_rate=18,
            )  # fmt: skip
        elif kind == 1:
            grade = 2 if (i // 6) % 7 == 3 else 1
            ev = make_event(
                "crs_assessment", **common, inputs={"temperature_c": 38.4}, grade=grade,
                drivers=["fever"], explanation="bench",
            )  # fmt: skip
        elif kind == 2:
            ev = make_event(
                "ice_assessment", **common, orientation=4, naming=3, commands=1, writing=1,
                attention=1 - (i % 2), ice_score=10 - (i % 2), grade=0, drivers=[],
                explanation="bench",
            )  # fmt: skip
        elif kind == 4 and toci < 4 and i % 60 == 4:
            toci += 1
            ev = make_event(
                "medication", **common, drug="tocilizumab", dose=560, unit="mg", route="IV",
                every_h=8, given_by="AB", checked_by="CD",
            )  # fmt: skip
        elif kind == 4:
            ev = make_event(
                "medication", **common, drug="dexamethasone", dose=10, unit="mg", route="IV",
                every_h=12, given_by="AB",
            )  # fmt: skip
        else:
            ev = make_event(
                "neuro_check", **common, handwriting_changed=False, movement_changed=False,
                facial_asymmetry=False, personality_changed=False,
            )  # fmt: skip
        rec = append(rec, ev, at)
    return rec


def timed(fn: Callable[[], object], ticks: int) -> list[float]:
    """Run ``fn`` ``ticks`` times (after 5 warm-up runs); return milliseconds per run."""
    for _ in range(5):
        fn()
    out = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    """95th percentile."""
    return statistics.quantiles(values, n=20)[-1]


def row(label: str, values: list[float], note: str = "") -> None:
    """Print one timing line."""
    med, high = statistics.median(values), p95(values)
    print(f"  {label:<28}median {med:7.3f} ms   p95 {high:7.3f} ms  {note}".rstrip())


def report(name: str, records: list[Record], ticks: int, now: datetime) -> None:
    """Print the per-tick cost for one ward."""
    protocol = load_default_protocol()
    n_events = sum(len(r.events) for r in records)

    def derive_all() -> int:
        return sum(len(derive_due(r, protocol, now, zone=ZONE)) for r in records)

    def derive_and_alerts() -> int:
        total = 0
        for r in records:
            items = derive_due(r, protocol, now, zone=ZONE)
            total += len(alert_states(r, items, now))
        return total

    def derive_cold() -> int:
        views._projections.clear()  # as on the tick after every record changed
        return derive_all()

    def reference() -> int:
        return sum(len(json.dumps(record_to_json(r))) for r in records)

    items = derive_all()
    d = timed(derive_all, ticks)
    a = timed(derive_and_alerts, ticks)
    cold = timed(derive_cold, max(ticks // 5, 20))
    ref = timed(reference, ticks)
    print(f"\n{name}: {len(records)} patients, {n_events} events, {items} due items per tick")
    row("derive every due item", d)
    row("+ alert states", a)
    row("derive, timelines rebuilt", cold, f"(all {len(records)} records changed since last tick)")
    row("reference json.dumps", ref)
    ratio = statistics.median(d) / statistics.median(ref)
    verdict = "under" if p95(d) < 5 else "OVER"
    print(f"  {'derive / reference':<28}{ratio:5.2f}x   target < 5 ms per tick: {verdict} (p95)")


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--events", type=int, default=600, help="events per heavy record")
    parser.add_argument("--ticks", type=int, default=300)
    ns = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    print(f"python {sys.version.split()[0]}, {ns.ticks} ticks per figure")
    records, note = demo_records(ns.patients, now)
    if records:
        report(f"demo ward ({note})", records, ns.ticks, now + timedelta(minutes=1))
    else:
        print(f"demo ward skipped: {note}")
    heavy = [heavy_record(f"h{i:02d}", ns.events, now) for i in range(ns.patients)]
    report(f"heavy ward ({ns.events} events per record)", heavy, ns.ticks, now)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

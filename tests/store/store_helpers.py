"""Shared helpers for the storage tests and their subprocess scripts (no pytest imports)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CANARY = "Zebedee Canaryfield"  # a fake patient name that must never appear in messages/logs

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


class InvalidRecord(ValueError):
    """Raised by :func:`validate_events`."""


def validate_events(doc: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for the real record model: ``events`` is a list of dicts with unique ids.

    Messages never quote values (only positions), like the real validator must.
    """
    if not isinstance(doc, dict):
        raise InvalidRecord("envelope is not an object")
    allowed = {"schema_version", "patient", "events"}
    extra = set(doc) - allowed
    if extra:
        raise InvalidRecord(f"unexpected top-level field(s): {len(extra)}")
    if not isinstance(doc.get("patient"), dict):
        raise InvalidRecord("patient must be an object")
    events = doc.get("events")
    if not isinstance(events, list):
        raise InvalidRecord("events must be a list")
    seen: set[str] = set()
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidRecord(f"events[{i}] is not an object")
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidRecord(f"events[{i}].id must be a non-empty string")
        if event_id in seen:
            raise InvalidRecord(f"events[{i}].id is a duplicate")
        seen.add(event_id)
        if not isinstance(event.get("ts_utc"), str):
            raise InvalidRecord(f"events[{i}].ts_utc must be a string")
    return doc


def make_event(event_id: str, n: int, *, base: datetime = T0) -> dict[str, Any]:
    """A realistic ~350-450 byte charting event (ids, timestamps, a few fields)."""
    ts = base + timedelta(minutes=17 * n)
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    kinds = ["vitals", "dose", "crs_grade", "icans_score", "note"]
    return {
        "id": event_id,
        "uuid": f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}",
        "seq": n,
        "ts_utc": ts.isoformat().replace("+00:00", "Z"),
        "ts_local_offset": "+01:00",
        "recorded_at_utc": (ts + timedelta(seconds=42)).isoformat().replace("+00:00", "Z"),
        "user": "nurse.b.ramirez",
        "kind": kinds[n % len(kinds)],
        "payload": {
            "temp_c": round(37.0 + (n % 30) / 10, 1),
            "hr_bpm": 70 + n % 50,
            "sbp_mmhg": 100 + n % 40,
            "spo2_pct": 92 + n % 8,
            "ice_score": 10 - n % 3,
        },
        "reason": "routine observation" if n % 7 else "late charting: pump alarm",
        "prev_hash": digest[32:64],
    }


def make_envelope(n_events: int, *, prefix: str = "e") -> dict[str, Any]:
    """A version-1 envelope with ``n_events`` events."""
    return {
        "schema_version": 1,
        "patient": {"display_name": CANARY, "mrn_hint": "0000", "weight_kg": 71.5},
        "events": [make_event(f"{prefix}{i}", i) for i in range(n_events)],
    }


def temp_files(root: Path) -> list[Path]:
    """Every temp file (``.*.tmp-*``) anywhere under ``root``."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        found.extend(Path(dirpath) / f for f in files if f.startswith(".") and ".tmp-" in f)
    return found


def subprocess_env() -> dict[str, str]:
    """Environment for helper scripts: the repo root importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env

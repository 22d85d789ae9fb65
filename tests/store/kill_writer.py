"""Fork-server writer for the SIGKILL harness (POSIX only; run with ``sys.executable``).

Usage: ``python kill_writer.py DATA_DIR``. Commands arrive on stdin, one per line:

* ``go RUN PATIENT BACKUP_MS`` - fork a writer child that starts like the app does
  (take the lock, sweep temp files, load) and then appends one event per save forever,
  writing ``ack <event id>`` to stdout only after :meth:`DataDir.save` returned. The
  server prints ``child <pid>`` at once and ``exit <RUN> <wait status>`` once the child
  is gone (the parent SIGKILLs it).
* ``quit``.

Forking from a warm interpreter lets the harness kill hundreds of writers in seconds;
each child is a separate process that dies by SIGKILL exactly like a crashed app.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

from store_helpers import make_envelope, make_event, validate_events

from bedside.common.clock import SystemClock
from bedside.common.errors import LockedError
from bedside.store.storage import DataDir, PatientNotFoundError


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write(2) per line: never interleaved or torn


def run_writer(root: Path, run: str, patient_id: str, backup_ms: int) -> None:
    """The child: behave like an app start, then save forever."""
    dd = DataDir(
        root,
        clock=SystemClock(),
        backup_interval=timedelta(milliseconds=backup_ms),
        backup_keep=3,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            dd.acquire_writer_lock()
            break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    dd.sweep_temp_files()
    try:
        loaded = dd.load(patient_id, validate=validate_events)
        envelope, token = loaded.raw, loaded.token
    except PatientNotFoundError:
        envelope, token = make_envelope(0), None
    _say("ready")
    n = len(envelope["events"])
    while True:
        event_id = f"{run}-{n}"
        envelope["events"].append(make_event(event_id, n))
        token = dd.save(patient_id, envelope, expected_token=token, validate=validate_events)
        _say(f"ack {event_id}")
        n += 1


def run_ward_writer(root: Path, run: str, patient_id: str) -> None:
    """The child, through the real application service: chart notes and ack each one."""
    from datetime import UTC, datetime

    from bedside.ward.service import open_ward

    deadline = time.monotonic() + 10
    while True:
        try:
            ward = open_ward(root, SystemClock())
            break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if patient_id not in ward.records:
        ward.create_patient(
            recorded_by="KW",
            patient_id=patient_id,
            mrn=f"KILL-{patient_id}",
            name=f"Kill Harness {patient_id}",
            date_of_birth="1960-01-01",
            sex="unknown",
            weight_kg=70.0,
            weight_measured_at=datetime.now(UTC),
            product="ide-cel",
        )
    _say("ready")
    n = 0
    while True:
        event = ward.chart(patient_id, "note", recorded_by="KW", text=f"{run} note {n}")
        _say(f"ack {event.id}")
        n += 1


def main() -> int:
    """Serve ``go`` commands until ``quit`` or end of input."""
    root = Path(sys.argv[1])
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        _, run, patient_id, backup_ms, *mode = parts
        pid = os.fork()
        if pid == 0:
            try:
                if mode == ["ward"]:
                    run_ward_writer(root, run, patient_id)
                else:
                    run_writer(root, run, patient_id, int(backup_ms))
            except BaseException:  # noqa: BLE001 - report it, then leave the forked child
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(3)
            os._exit(0)
        _say(f"child {pid}")
        _, status = os.waitpid(pid, 0)
        _say(f"exit {run} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

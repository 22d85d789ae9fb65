"""Golden files per schema version load; logs never carry patient names or identifiers."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.record import SCHEMA_VERSION, Record, validate_envelope
from bedside.common.clock import FakeClock
from bedside.common.errors import LimitError
from bedside.store.storage import CURRENT_SCHEMA, DataDir
from bedside.ward.service import open_ward

DATA = Path(__file__).resolve().parents[1] / "data"


def test_record_schema_matches_storage_schema() -> None:
    assert SCHEMA_VERSION == CURRENT_SCHEMA


@pytest.mark.parametrize("version", range(1, CURRENT_SCHEMA + 1))
def test_golden_file_of_every_schema_version_loads(tmp_path: Path, version: int) -> None:
    golden = DATA / f"patient-schema-v{version}.json"
    assert golden.exists(), f"missing golden file for schema v{version}"
    root = tmp_path / "d"
    store = DataDir(root, clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    shutil.copy(golden, root / "patients" / "demo-02.json")
    loaded = store.load("demo-02", validate=validate_envelope)
    assert isinstance(loaded.value, Record)
    assert loaded.value.head.count == len(loaded.value.events) > 10


def test_logs_carry_no_patient_identity(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    canary_name = "Zebedee Quixotic-Canary"
    canary_mrn = "MRN-CANARY-991"
    canary_pid = "pcanary77"
    clock = FakeClock(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    caplog.set_level(logging.DEBUG)
    ward = open_ward(tmp_path / "d", clock)
    ward.create_patient(
        recorded_by="AB",
        patient_id=canary_pid,
        mrn=canary_mrn,
        name=canary_name,
        date_of_birth="1950-01-01",
        sex="male",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="ide-cel",
    )
    ward.give_tocilizumab(canary_pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(hours=1))
    with pytest.raises(LimitError):
        ward.give_tocilizumab(canary_pid, given_by="AB", checked_by="CD")
    ward.close()
    # Corrupt the file so the quarantine path logs too.
    path = tmp_path / "d" / "journals" / canary_pid / f"{ward.workstation}.jsonl"
    path.write_bytes(b"X" + path.read_bytes()[1:])
    ward = open_ward(tmp_path / "d", clock)
    assert canary_pid in ward.failures
    ward.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "expected some log output"
    for canary in (canary_name, canary_mrn, canary_pid):
        assert canary not in text

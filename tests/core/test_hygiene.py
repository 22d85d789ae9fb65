"""Data hygiene around the store (issue 12): exports and handovers are private files, their
folders must exist, handover temp files are swept, verify compares with the backups."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.common.clock import FakeClock
from bedside.common.errors import BedsideError, InputError
from bedside.reports.export import export_patient, export_ward
from bedside.store.paths import handover_tmp_dir, resolve_data_dir, sweep_handover_tmp
from bedside.store.storage import validate_patient_id
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


@pytest.fixture
def ward(tmp_path: Path) -> Ward:
    w = open_ward(tmp_path / "data", FakeClock(T0))
    w.create_patient(
        recorded_by="AB",
        patient_id="p1",
        mrn="M1",
        name="Hy Giene",
        date_of_birth="1960-01-01",
        sex="female",
        product="ide-cel",
    )
    yield w
    w.close()


def test_export_needs_an_existing_folder_and_writes_private_files(
    ward: Ward, tmp_path: Path
) -> None:
    with pytest.raises(BedsideError, match="does not exist"):
        export_patient(ward, "p1", "json", tmp_path / "missing" / "deeper" / "p1.json", T0)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(BedsideError, match="does not exist"):
        export_ward(ward, "csv", tmp_path / "missing" / "out", T0)
    written = export_ward(ward, "csv", tmp_path / "out", T0)  # one new level is fine
    assert written
    if os.name == "posix":
        for path in written:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600


@posix_only
def test_handover_temp_folder_is_private_and_swept(tmp_path: Path) -> None:
    folder = handover_tmp_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    old = folder / "bedside-handover-old"
    old.mkdir()
    (old / "handover.html").write_text("<p>names</p>")
    young = folder / "bedside-handover-young"
    young.mkdir()
    now = T0
    os.utime(old, (now.timestamp() - 7200, now.timestamp() - 7200))
    os.utime(young, (now.timestamp() - 60, now.timestamp() - 60))
    assert sweep_handover_tmp(now, timedelta(hours=1)) == 1
    assert not old.exists() and young.exists()


def test_windows_device_names_are_not_ids() -> None:
    for bad in ("CON", "nul", "Com1", "LPT9", "aux"):
        with pytest.raises(InputError, match="Windows device name"):
            validate_patient_id(bad)
    assert validate_patient_id("CONNOR") == "CONNOR"


def test_empty_data_dir_is_never_the_current_folder() -> None:
    assert resolve_data_dir("") == Path(".")  # then refused by the store, never used
    from bedside.common.errors import StorageError
    from bedside.store.storage import DataDir

    with pytest.raises(StorageError, match="empty"):
        DataDir(resolve_data_dir(""), clock=FakeClock(T0))


def test_handover_cli_refuses_a_missing_out_folder(ward: Ward, tmp_path: Path) -> None:
    from bedside.reports.handover import main

    ward.close()
    out = tmp_path / "nowhere" / "h.html"
    assert main(["--data-dir", str(ward.root), "--out", str(out)]) == 1
    assert not out.parent.exists()
    ok = tmp_path / "h.html"
    assert main(["--data-dir", str(ward.root), "--out", str(ok)]) == 0
    if os.name == "posix":
        assert stat.S_IMODE(ok.stat().st_mode) == 0o600

"""Issue 12's data-directory guarantees on the journal store (issue 15's ward folder).

The ward folder opens through :class:`bedside.store.journal.JournalStore` (``open_ward``): the
same refusals as the old single-file store, private modes whatever the umask, no chmod of a
folder Bedside did not create, no writing through a symbolic link, nothing touched when
read-only, the low-space warning, and the on-disk token an ambiguous save is settled by.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from store_helpers import T0

from bedside.common.clock import FakeClock
from bedside.common.errors import StorageError
from bedside.store.journal import JournalStore
from bedside.store.storage import DataDirRefusedError
from bedside.ward.service import open_ward

WS = "4A-PC1"
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and symlinks")


def _new_patient(root: Path, clock: FakeClock) -> None:
    ward = open_ward(root, clock, workstation=WS)
    try:
        ward.create_patient(
            recorded_by="AB",
            patient_id="p1",
            mrn="M1",
            name="Ward Folder",
            date_of_birth="1960-01-01",
            sex="female",
            product="ide-cel",
        )
        ward.chart("p1", "note", recorded_by="AB", text="one")
    finally:
        ward.close()


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_ward_folder_is_private_regardless_of_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        root = tmp_path / "ward"
        _new_patient(root, FakeClock(T0))
    finally:
        os.umask(old)
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {"journals", "workstations", "locks", "backups", "quarantine"} <= {
        p.name for p in root.iterdir()
    }
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    journal = root / "journals" / "p1" / f"{WS}.jsonl"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600


@posix_only
def test_an_existing_folder_bedside_did_not_create_is_not_chmodded(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o755)
    open_ward(root, FakeClock(T0), workstation=WS).close()
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # not Bedside's folder: left alone
    for name in ("journals", "workstations", "locks"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o700  # created by Bedside


@posix_only
@pytest.mark.parametrize("name", ["journals", "workstations", "locks", f"quarantine/{WS}"])
def test_symlinked_ward_sub_folders_are_refused_and_their_targets_untouched(
    tmp_path: Path, name: str
) -> None:
    root = tmp_path / "ward"
    (root / "patients").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.chmod(target, 0o755)
    link = root / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    with pytest.raises(DataDirRefusedError, match="symbolic link"):
        open_ward(root, FakeClock(T0), workstation=WS)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and list(target.iterdir()) == []


@pytest.mark.parametrize("kind", ["empty path", "root", "home", "documents"])
def test_folders_that_are_not_a_ward_are_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    if kind == "documents":
        root = tmp_path / "documents"
        root.mkdir()
        (root / "letter.txt").write_text("not a ward")
    else:
        root = {"empty path": Path(""), "root": Path("/"), "home": Path.home()}[kind]
    before = sorted(os.listdir(root if str(root) else "."))
    with pytest.raises(DataDirRefusedError, match="refused"):
        open_ward(root, FakeClock(T0), workstation=WS)
    assert sorted(os.listdir(root if str(root) else ".")) == before


def test_a_joining_workstation_opens_a_replicated_ward_folder(tmp_path: Path) -> None:
    """A folder holding only what replication brings (journals/, workstations/) is a ward."""
    clock = FakeClock(T0)
    first = tmp_path / "first"
    _new_patient(first, clock)
    joined = tmp_path / "joined"
    joined.mkdir()
    for name in ("journals", "workstations"):
        shutil.copytree(first / name, joined / name)
    ward = open_ward(joined, clock, workstation="4A-PC2")
    try:
        assert [e.kind for e in ward.record("p1").events][-1] == "note"
    finally:
        ward.close()


def test_read_only_touches_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    JournalStore(missing, clock=FakeClock(T0), workstation=WS, read_only=True)
    assert not missing.exists()
    root = tmp_path / "ward"
    _new_patient(root, FakeClock(T0))
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    ward = open_ward(root, FakeClock(T0), read_only=True, workstation=WS)
    assert len(ward.records) == 1
    with pytest.raises(StorageError, match="read-only"):
        ward.chart("p1", "note", recorded_by="AB", text="not saved")
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_low_space_warns_on_the_journal_ward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ward"
    _new_patient(root, FakeClock(T0))
    ward = open_ward(root, FakeClock(T0), workstation=WS)
    try:
        assert ward.storage_warning() is None or "LOW DISK" in ward.storage_warning()
        usage = shutil.disk_usage(root)
        monkeypatch.setattr(
            "bedside.store.storage.shutil.disk_usage",
            lambda _p: type(usage)(usage.total, usage.total - 50 * 2**20, 50 * 2**20),
        )
        text = ward.storage_warning()
        assert text is not None and "LOW DISK SPACE" in text and "50 MB" in text
    finally:
        ward.close()


def test_current_token_is_the_own_journal_head_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "ward"
    ward = open_ward(root, FakeClock(T0), workstation=WS)
    try:
        assert ward.store.current_token("p1") is None
        ward.create_patient(
            recorded_by="AB",
            patient_id="p1",
            mrn="M1",
            name="Ward Folder",
            date_of_birth="1960-01-01",
            sex="female",
            product="ide-cel",
        )
        assert ward.store.current_token("p1") == ward.tokens["p1"]
        ward.chart("p1", "note", recorded_by="AB", text="one")
        assert ward.store.current_token("p1") == ward.tokens["p1"]
    finally:
        ward.close()

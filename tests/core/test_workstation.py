"""Issue 15: workstation identity and the machine-wide ward-folder setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.common.errors import InputError
from bedside.store.paths import resolve_data_dir
from bedside.store.workstation import (
    set_workstation,
    site_config_file,
    take_workstation_option,
    this_workstation,
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in ("BEDSIDE_DATA_DIR", "BEDSIDE_WARD_DIR", "BEDSIDE_WORKSTATION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BEDSIDE_SITE_CONFIG", str(tmp_path / "etc" / "bedside.toml"))
    set_workstation(None)
    yield
    set_workstation(None)


def test_generated_id_is_stable_and_recognisable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "4a-pc2.ward.example")
    first = this_workstation()
    assert first == "4A-PC2"
    monkeypatch.setattr("socket.gethostname", lambda: "renamed")
    assert this_workstation() == "4A-PC2"  # generated once, then kept


def test_machine_wide_config_sets_ward_folder_and_workstation(tmp_path: Path) -> None:
    default = resolve_data_dir(None)
    cfg = site_config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text('ward_folder = "/srv/bedside/4A"\nworkstation = "4A-PC7"\n', "utf-8")
    assert resolve_data_dir(None) == Path("/srv/bedside/4A") != default
    assert this_workstation() == "4A-PC7"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"  # --data-dir wins


def test_environment_overrides_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = site_config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text('ward_folder = "/srv/bedside/4A"\nworkstation = "4A-PC7"\n', "utf-8")
    monkeypatch.setenv("BEDSIDE_WARD_DIR", str(tmp_path / "ward"))
    monkeypatch.setenv("BEDSIDE_WORKSTATION", "4A-PC9")
    assert resolve_data_dir(None) == tmp_path / "ward"
    assert this_workstation() == "4A-PC9"
    assert this_workstation("pc1") == "pc1"


def test_a_broken_config_is_ignored_not_fatal() -> None:
    cfg = site_config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text("ward_folder = [unclosed\n", "utf-8")
    assert this_workstation()  # falls back to the generated id


def test_workstation_option_is_taken_and_checked() -> None:
    assert take_workstation_option(["export", "--workstation", "pc2", "--x"]) == ["export", "--x"]
    assert this_workstation() == "pc2"
    assert take_workstation_option(["--workstation=pc3"]) == []
    assert this_workstation() == "pc3"
    for bad in (["--workstation"], ["--workstation", "../etc"], ["--workstation=a b"]):
        with pytest.raises(InputError, match="workstation"):
            take_workstation_option(bad)

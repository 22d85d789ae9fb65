"""Test-wide setup: Qt offscreen, and no test can touch a real user's data.

* ``QT_QPA_PLATFORM=offscreen`` is set before anything imports Qt (``--onscreen`` opts
  out for local debugging).
* An autouse fixture points ``HOME``, the XDG directories, ``APPDATA``/``LOCALAPPDATA``
  and ``BEDSIDE_DATA_DIR`` at the test's ``tmp_path``, so platformdirs (and therefore
  ``bedside.store.paths``) resolve inside it.
* Tests under ``tests/ui`` are marked ``gui``.
* ``BEDSIDE_SOUND=off``: alarms beep (and emit their signal) instead of playing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if "--onscreen" not in sys.argv:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# No test plays through the loudspeaker unless it asks to (tests/ui/test_alarm_sound.py).
os.environ["BEDSIDE_SOUND"] = "off"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--onscreen``: show Qt windows on the real display (local debugging)."""
    parser.addoption("--onscreen", action="store_true", help="use the real display for Qt")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/ui as gui."""
    for item in items:
        if f"{os.sep}tests{os.sep}ui{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every per-user directory (and BEDSIDE_DATA_DIR) into ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for var, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("APPDATA", "AppData/Roaming"),
        ("LOCALAPPDATA", "AppData/Local"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("BEDSIDE_DATA_DIR", str(tmp_path / "bedside-data"))
    yield home

"""Fixtures for the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import T0

from bedside.common.clock import FakeClock
from bedside.store.storage import DataDir


@pytest.fixture
def clock() -> FakeClock:
    """A fake UTC clock at a fixed instant."""
    return FakeClock(T0)


@pytest.fixture
def datadir(tmp_path: Path, clock: FakeClock) -> Iterator[DataDir]:
    """A data directory whose writer lock is held for the test."""
    dd = DataDir(tmp_path / "data", clock=clock)
    dd.acquire_writer_lock()
    yield dd
    dd.release_writer_lock()

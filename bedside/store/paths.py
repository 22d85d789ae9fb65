"""The one place that decides where Bedside keeps its data.

Order: an explicit ``--data-dir``, then ``BEDSIDE_DATA_DIR``, then
``platformdirs.user_data_dir("bedside")`` (per OS user, local, not roaming).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

import platformdirs

from bedside import APP_NAME

logger = logging.getLogger(__name__)

ENV_VAR = "BEDSIDE_DATA_DIR"


def default_data_dir() -> Path:
    """The per-user data directory (``BEDSIDE_DATA_DIR`` overrides it)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from bedside.store.workstation import configured_ward_folder

    ward = configured_ward_folder()  # machine-wide ward folder (issue 15), set by IT
    if ward is not None:
        return ward
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=False))


def resolve_data_dir(explicit: Path | str | None) -> Path:
    """The data directory to use: explicit argument first, else :func:`default_data_dir`.

    An explicit empty path is kept as ``""`` (never silently the current folder or the
    default): opening it is refused by :func:`bedside.store.storage.check_data_dir`.
    """
    if explicit is None:
        return default_data_dir()
    return Path(explicit).expanduser()


def log_dir() -> Path:
    """Where log files go (never inside the patient data directory)."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def handover_tmp_dir() -> Path:
    """The private folder (0700) for handover HTML while a PDF is rendered.

    Never the system temp directory: a killed renderer must not leave patient names where
    other users can read them. :func:`sweep_handover_tmp` empties it at start.
    """
    path = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "handover-tmp"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise OSError(f"{path} is not a private folder") from None
    if os.name == "posix":
        os.chmod(path, 0o700)  # Bedside's own folder
    return path


def sweep_handover_tmp(now: datetime, older_than: timedelta = timedelta(hours=1)) -> int:
    """Remove what a killed handover left in :func:`handover_tmp_dir`; return the count.

    ``now`` comes from the injected clock. Entries younger than ``older_than`` are kept
    (another Bedside may be printing right now).
    """
    import shutil

    try:
        root = handover_tmp_dir()
    except OSError:
        return 0
    removed = 0
    cutoff = (now - older_than).timestamp()
    for entry in root.iterdir():
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            continue
    if removed:
        logger.info("swept %d stale handover temp file(s)", removed)
    return removed

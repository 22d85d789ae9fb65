"""The one place that decides where Bedside keeps its data.

Order: an explicit ``--data-dir``, then ``BEDSIDE_DATA_DIR``, then
``platformdirs.user_data_dir("bedside")`` (per OS user, local, not roaming).
"""

from __future__ import annotations

import logging
import os
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
    from bedside.workstation import configured_ward_folder

    ward = configured_ward_folder()  # machine-wide ward folder (issue 15), set by IT
    if ward is not None:
        return ward
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=False))


def resolve_data_dir(explicit: Path | str | None) -> Path:
    """The data directory to use: explicit argument first, else :func:`default_data_dir`."""
    return Path(explicit).expanduser() if explicit else default_data_dir()


def log_dir() -> Path:
    """Where log files go (never inside the patient data directory)."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))

"""Who is writing: the workstation id, the OS user, and the machine-wide ward-folder setting.

A *workstation* is one Bedside installation on one PC. Its id is generated once (from the
host name, upper-cased, e.g. ``4A-PC2``) and kept in the user config directory; IT can set
it for every account of a PC instead. Every journal line carries the workstation id and the
operating-system user beside the nurse's initials held in the event itself.

Resolution order of the workstation id:

1. an explicit ``--workstation ID`` (every command takes it);
2. the environment variable ``BEDSIDE_WORKSTATION``;
3. ``workstation = "..."`` in the machine-wide config file (see :func:`site_config_file`);
4. the id generated once and stored in ``<user config dir>/workstation-id``.

Resolution order of the ward folder (the data directory shared by a ward's workstations):

1. an explicit ``--data-dir``;
2. ``BEDSIDE_DATA_DIR`` (per process) or ``BEDSIDE_WARD_DIR`` (machine-wide, set by IT);
3. ``ward_folder = "..."`` in the machine-wide config file;
4. the per-user data directory: a ward of one, exactly as before.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import platformdirs

from bedside import APP_NAME
from bedside.common.errors import InputError

logger = logging.getLogger(__name__)

WORKSTATION_ENV = "BEDSIDE_WORKSTATION"
WARD_ENV = "BEDSIDE_WARD_DIR"
SITE_CONFIG_ENV = "BEDSIDE_SITE_CONFIG"
"""Overrides the path of the machine-wide config file (tests, unusual installs)."""
CONFIG_NAME = "bedside.toml"
ID_FILE_NAME = "workstation-id"

WORKSTATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
_WS_RE = re.compile(WORKSTATION_PATTERN)
_override: str | None = None


def set_workstation(value: str | None) -> None:
    """Set (or clear) the process-wide workstation id, as ``--workstation ID`` does."""
    global _override
    _override = validate_workstation_id(value) if value is not None else None


def take_workstation_option(args: list[str]) -> list[str]:
    """Remove ``--workstation ID`` / ``--workstation=ID`` from ``args`` and apply it.

    Every ``python -m bedside`` command takes it, so two workstations can run on one
    machine (tests, scripts). Raises :class:`InputError` for a missing or bad id.
    """
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--workstation":
            value = next(it, None)
            if value is None:
                raise InputError("--workstation: give an id, for example --workstation 4A-PC2")
            set_workstation(value)
        elif arg.startswith("--workstation="):
            set_workstation(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return rest


def validate_workstation_id(value: str) -> str:
    """Check a workstation id (1–32 letters, digits, ``-`` or ``_``, starting alphanumeric).

    Raises:
        InputError: The id is not usable as a file name on every platform.
    """
    if not isinstance(value, str) or _WS_RE.fullmatch(value) is None:
        raise InputError(
            "workstation: use 1 to 32 letters, digits, '-' or '_' starting with a letter or "
            "digit (for example 4A-PC2)"
        )
    return value


def site_config_file() -> Path:
    """The machine-wide config file: ``<platformdirs site config dir>/bedside.toml``.

    ``BEDSIDE_SITE_CONFIG`` names another file. On Linux this is
    ``/etc/xdg/bedside/bedside.toml``, on Windows ``C:\\ProgramData\\bedside\\bedside.toml``,
    on macOS ``/Library/Application Support/bedside/bedside.toml``.
    """
    env = os.environ.get(SITE_CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.site_config_dir(APP_NAME, appauthor=False)) / CONFIG_NAME


def site_config() -> dict[str, Any]:
    """The machine-wide settings (empty when the file is absent or unreadable, logged)."""
    path = site_config_file()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        logger.warning("machine-wide config cannot be read (%s)", type(exc).__name__)
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        logger.error("machine-wide config is not valid TOML (%s); ignored", type(exc).__name__)
        return {}


def configured_ward_folder() -> Path | None:
    """The machine-wide ward folder (``BEDSIDE_WARD_DIR`` or ``ward_folder`` in the config)."""
    env = os.environ.get(WARD_ENV)
    if env:
        return Path(env).expanduser()
    value = site_config().get("ward_folder")
    if isinstance(value, str) and value.strip():
        return Path(value.strip()).expanduser()
    return None


def _generated_id() -> str:
    host = socket.gethostname().split(".", 1)[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", host).strip("-_").upper()[:32]
    return cleaned if cleaned and _WS_RE.fullmatch(cleaned) else "WORKSTATION"


def _id_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / ID_FILE_NAME


def this_workstation(explicit: str | None = None) -> str:
    """The id of this workstation (see the module docstring for the order).

    The generated id is written once to the user config directory so it stays stable even
    if the host is renamed. A stored id that is not valid is ignored (logged) and replaced.

    Raises:
        InputError: ``explicit``, the environment variable or the config holds a bad id.
    """
    if explicit:
        return validate_workstation_id(explicit)
    if _override:
        return _override
    env = os.environ.get(WORKSTATION_ENV)
    if env:
        return validate_workstation_id(env)
    configured = site_config().get("workstation")
    if isinstance(configured, str) and configured:
        return validate_workstation_id(configured)
    path = _id_file()
    try:
        stored = path.read_text("utf-8").strip()
    except OSError:
        stored = ""
    if stored and _WS_RE.fullmatch(stored):
        return stored
    if stored:
        logger.warning("stored workstation id is not valid; generating a new one")
    generated = _generated_id()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generated + "\n", "utf-8")
    except OSError as exc:
        logger.warning("could not store the workstation id (%s)", type(exc).__name__)
    return generated


def os_user() -> str:
    """The operating-system account name (``"unknown"`` when it cannot be determined)."""
    try:
        return getpass.getuser()[:64] or "unknown"
    except (OSError, KeyError, ImportError):  # no login name on odd systems
        return "unknown"


def host_name() -> str:
    """This machine's host name (for the heartbeat and the lock info)."""
    return socket.gethostname()[:255]


__all__ = [
    "WARD_ENV",
    "WORKSTATION_ENV",
    "configured_ward_folder",
    "os_user",
    "set_workstation",
    "site_config",
    "site_config_file",
    "take_workstation_option",
    "this_workstation",
    "validate_workstation_id",
]

"""The only module that knows the layout of ``resources/`` (icons, styles, sounds).

Paths are resolved from this file, which also works in a PyInstaller one-folder bundle
as long as the spec ships ``resources`` next to the ``ui`` package.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from PySide6.QtCore import QDir
from PySide6.QtGui import QIcon

logger = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICONS = RESOURCES / "icons"
STYLES = RESOURCES / "styles"
SOUNDS = RESOURCES / "sounds"

ICON_NAMES: tuple[str, ...] = (
    "acknowledged",
    "app",
    "blocked",
    "demo",
    "dose",
    "due",
    "info",
    "overdue",
    "patient",
    "snoozed",
    "sound-off",
    "unverified",
    "upcoming",
    "warning",
)
"""Every icon the application uses (a test checks each loads)."""

_registered = False


def register_search_paths() -> None:
    """Register ``icons:`` so code can write ``QIcon("icons:overdue.svg")``."""
    global _registered
    if not _registered:
        QDir.addSearchPath("icons", str(ICONS))
        _registered = True


@cache
def icon(name: str) -> QIcon:
    """The icon ``name`` (without extension); an unknown name is a programming error."""
    if name not in ICON_NAMES:
        raise KeyError(f"unknown icon {name!r}")
    return QIcon(str(ICONS / f"{name}.svg"))


def stylesheet(name: str = "app") -> str:
    """A style sheet (``app``, or ``night`` laid over it); empty when missing (unstyled)."""
    path = STYLES / f"{name}.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        logger.warning("style sheet missing; running unstyled")
        return ""


ALARM_TONES: tuple[str, ...] = ("due", "critical")
"""The alarm sounds: ``due`` (a timed item is due) and ``critical`` (overdue or critical)."""


def alarm_sound(tone: str = "critical") -> Path:
    """The sound file of an alarm tone (``due`` or ``critical``)."""
    if tone not in ALARM_TONES:
        raise ValueError(f"unknown alarm tone {tone!r}")
    return SOUNDS / f"{tone}.wav"

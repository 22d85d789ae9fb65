"""Screen size, the compact arrangement and the remembered window geometry.

Ward PCs are often 1366×768 at 100 %; laptops are 1920×1080 at 150 % or 200 %, that is
1280×720 or 960×540 logical pixels. Every size decision goes through
:func:`available_geometry` (tests replace it to try each size) and window geometry is kept
in :func:`settings`, an INI file in the per-user config directory (under the test's
temporary home in tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs
from PySide6.QtCore import QRect, QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

logger = logging.getLogger(__name__)

COMPACT_WIDTH = 1300
"""Below this logical width the timers panel becomes a drawer and banners fold."""
COMPACT_HEIGHT = 700
"""Below this logical height the same compact arrangement is used."""
WIDE_HEADER = 1500
"""Below this logical width the patient header uses its short form (name, bed, product stay)."""
TITLE_BAR = 32
"""Room left for the window manager's title bar before the frame is known."""
DEFAULT_SIZE = (1500, 920)
"""The main window's size when the screen has room and nothing was remembered."""


def available_geometry(widget: QWidget | None = None) -> QRect:
    """The usable area (logical pixels) of the screen ``widget`` is on, or the primary one."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    if screen is None:
        return QRect(0, 0, 1366, 768)
    return screen.availableGeometry()


def settings_path() -> Path:
    """Where window geometry is remembered (never in the ward's data directory)."""
    return Path(platformdirs.user_config_dir("bedside", appauthor=False)) / "window.ini"


def settings() -> QSettings:
    """The window settings (an INI file at :func:`settings_path`, read afresh each time)."""
    return QSettings(str(settings_path()), QSettings.Format.IniFormat)


def is_compact(width: int, height: int) -> bool:
    """Whether a window of this logical size needs the compact arrangement."""
    return width < COMPACT_WIDTH or height < COMPACT_HEIGHT

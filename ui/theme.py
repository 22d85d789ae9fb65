"""Day and night themes: View ▸ Night dims the whole interface for a dark ward at night.

The night theme shows the same information: the same words, icons and state colours, only
darker. It is three things, all switched by :func:`apply`:

* ``resources/styles/night.qss``, laid over ``app.qss`` (same selectors, dark colours);
* a dark :class:`QPalette` for what the style sheet does not reach (text browsers, tables);
* :data:`NIGHT_COLOURS`, the night twin of every colour the models and the chart paint
  (:func:`colour` maps a day colour to the current theme's).

Every text/background pair meets WCAG 2.1 AA (contrast ratio >= 4.5:1), and the state
colours (overdue, due, silenced) stay far apart; ``tests/ui/test_night_theme.py`` computes
both from these tables and from ``night.qss``. The choice is remembered in ``QSettings``
(``view/theme``).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ui import resources

logger = logging.getLogger(__name__)

THEMES = ("day", "night")
SETTINGS_KEY = "view/theme"

NIGHT_COLOURS: dict[str, str] = {
    # state cells (ui/models): overdue, due, silenced (acknowledged/snoozed)
    "#b00020": "#7d1522",
    "#ffffff": "#f3e3e5",
    "#ffb300": "#a87a00",
    "#000000": "#111111",
    "#e0e0e0": "#3a4048",
    # CRS/ICANS grade cells 2, 3, 4
    "#ffe0b2": "#5a4526",
    "#ffab91": "#6b3a2c",
    "#ef9a9a": "#6e2f33",
    # timeline: voided text, amended and voided rows
    "#6b6b6b": "#9aa0a6",
    "#fff8e1": "#3d3a2a",
    "#f1f1f1": "#2a2d31",
    # chart: paper, ink, grid, axes, threshold
    "#0d2a45": "#dde4ec",
    "#9aa7b4": "#6d7884",
    "#44505c": "#9aa4ae",
    "#5d4037": "#d7b9a8",
    "#333333": "#c9d1d9",
    "#e1e6eb": "#2c323a",
    "#1f4e79": "#6fa8dc",
    # eligibility checklist marks
    "#1b5e20": "#8fd19e",
    "#8a4b00": "#e6c35c",
}
"""Day colour (lower-case ``#rrggbb``) -> night colour, for everything painted in code."""

INK_NIGHT: dict[str, str] = {
    "#ffffff": "#15181c",  # paper (and the latest-value box)
    "#b00020": "#ff8a95",  # threshold line and label
}
"""Page colours (chart paper, threshold, checklist) whose night twin differs from the cells'."""

NIGHT_TEXT_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("overdue cell", "#f3e3e5", "#7d1522"),
    ("due cell", "#111111", "#a87a00"),
    ("acknowledged/snoozed cell", "#c9d1d9", "#3a4048"),
    ("grade 2 cell", "#c9d1d9", "#5a4526"),
    ("grade 3 cell", "#c9d1d9", "#6b3a2c"),
    ("grade 4 cell", "#c9d1d9", "#6e2f33"),
    ("voided timeline row", "#9aa0a6", "#2a2d31"),
    ("amended timeline row", "#c9d1d9", "#3d3a2a"),
    ("chart labels", "#9aa4ae", "#15181c"),
    ("chart axis numbers", "#c9d1d9", "#15181c"),
    ("chart threshold", "#ff8a95", "#15181c"),
    ("chart band labels", "#d7b9a8", "#15181c"),
    ("chart series value", "#dde4ec", "#15181c"),
    ("chart title", "#dde4ec", "#15181c"),
    ("checklist met", "#8fd19e", "#15181c"),
    ("checklist not met", "#ff8a95", "#15181c"),
    ("checklist caution", "#e6c35c", "#15181c"),
)
"""Text on background painted in code (the models, the chart, the checklist) at night."""

NIGHT_PALETTE: dict[str, str] = {
    "Window": "#1b1f24",
    "WindowText": "#c9d1d9",
    "Base": "#15181c",
    "AlternateBase": "#1d2127",
    "Text": "#c9d1d9",
    "Button": "#262b31",
    "ButtonText": "#c9d1d9",
    "ToolTipBase": "#262b31",
    "ToolTipText": "#c9d1d9",
    "Highlight": "#2f6fb0",
    "HighlightedText": "#ffffff",
    "PlaceholderText": "#8b949e",
    "Link": "#6fa8dc",
    "BrightText": "#ff8a95",
}
"""The night :class:`QPalette` (role -> colour)."""

_current = "day"
_day_palette: QPalette | None = None


def current() -> str:
    """The theme in use (``day`` or ``night``)."""
    return _current


def colour(day: str | QColor) -> QColor:
    """The current theme's twin of a day colour (unchanged by day or when it has none)."""
    key = day.name() if isinstance(day, QColor) else day.lower()
    if _current == "night" and key in NIGHT_COLOURS:
        out = QColor(NIGHT_COLOURS[key])
        if isinstance(day, QColor):
            out.setAlpha(day.alpha())
        return out
    return QColor(day)


def ink(day: str) -> QColor:
    """The night twin of a colour drawn on the page (chart, checklist text)."""
    if _current == "night" and day.lower() in INK_NIGHT:
        return QColor(INK_NIGHT[day.lower()])
    return colour(day)


def night_palette(base: QPalette) -> QPalette:
    """``base`` with the night colours."""
    pal = QPalette(base)
    for role, value in NIGHT_PALETTE.items():
        pal.setColor(getattr(QPalette.ColorRole, role), QColor(value))
    return pal


def apply(name: str, app: QApplication | None = None) -> None:
    """Switch the whole application to ``name`` (style sheet, palette, painted colours)."""
    global _current, _day_palette
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}")
    if app is None:
        running = QApplication.instance()
        app = running if isinstance(running, QApplication) else None
    if app is None:
        _current = name
        return
    if _day_palette is None:
        _day_palette = QPalette(app.palette())
    _current = name
    if name == "night":
        app.setPalette(night_palette(_day_palette))
        app.setStyleSheet(resources.stylesheet() + "\n" + resources.stylesheet("night"))
    else:
        app.setPalette(_day_palette)
        app.setStyleSheet(resources.stylesheet())
    for widget in app.topLevelWidgets():
        widget.update()
    logger.info("theme: %s", name)


def saved() -> str:
    """The theme remembered in QSettings (``day`` when none or unknown)."""
    value = QSettings().value(SETTINGS_KEY, "day")
    return value if value in THEMES else "day"


def remember(name: str) -> None:
    """Remember the theme for the next start."""
    QSettings().setValue(SETTINGS_KEY, name)

"""View ▸ Night: dim colours, the same information, WCAG AA contrast, distinct state colours.

The contrast ratios are computed (WCAG 2.1 relative luminance) for every text/background
pair of the night theme: the pairs declared in ``ui/theme.py`` (colours painted in code)
and every rule of ``resources/styles/night.qss`` that sets a text colour.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication
from ui_helpers import DialogLog, Sessions, add_patient

from ui import resources, theme
from ui.models import DUE_BG, OVERDUE_BG, SILENCED_BG, brush

AA = 4.5


def luminance(hex_colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    h = hex_colour.lstrip("#")
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio (1..21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the AA boundary


def _qss_rules(text: str) -> list[tuple[str, dict[str, str]]]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", text):
        props = {}
        for decl in body.split(";"):
            if ":" in decl:
                k, v = decl.split(":", 1)
                props[k.strip()] = v.strip()
        for sel in selectors.split(","):
            rules.append((" ".join(sel.split()), props))
    return rules


def _night_qss_pairs() -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every night rule that sets a text colour."""
    rules = _qss_rules(resources.stylesheet("night"))
    backgrounds = {sel: p["background"] for sel, p in rules if p.get("background", "")[:1] == "#"}
    window = theme.NIGHT_PALETTE["Window"]
    pairs = []
    for sel, props in rules:
        fg = props.get("color") or props.get("selection-color")
        if not fg:
            continue
        bg = props.get("background", "transparent")
        if not bg.startswith("#"):
            parent = sel.rsplit(" ", 1)[0] if " " in sel else ""
            bg = backgrounds.get(parent, window)
        pairs.append((sel, fg, bg))
        if "selection-color" in props:
            pairs.append(
                (sel + " (selected)", props["selection-color"], props["selection-background-color"])
            )
    return pairs


def test_night_stylesheet_text_meets_wcag_aa() -> None:
    pairs = _night_qss_pairs()
    assert len(pairs) > 30  # the parser found the rules
    low = [(s, fg, bg, round(contrast(fg, bg), 2)) for s, fg, bg in pairs if contrast(fg, bg) < AA]
    assert low == []


def test_night_painted_colours_and_palette_meet_wcag_aa() -> None:
    low = [(w, fg, bg) for w, fg, bg in theme.NIGHT_TEXT_PAIRS if contrast(fg, bg) < AA]
    assert low == []
    pal = theme.NIGHT_PALETTE
    for fg, bg in (
        ("WindowText", "Window"),
        ("Text", "Base"),
        ("Text", "AlternateBase"),
        ("ButtonText", "Button"),
        ("ToolTipText", "ToolTipBase"),
        ("HighlightedText", "Highlight"),
        ("PlaceholderText", "Base"),
    ):
        assert contrast(pal[fg], pal[bg]) >= AA, (fg, bg)
    # The pairs declared for the cells are the colours the models really paint at night.
    night = theme.NIGHT_COLOURS
    assert (night["#ffffff"], night["#b00020"]) == theme.NIGHT_TEXT_PAIRS[0][1:]
    assert (night["#000000"], night["#ffb300"]) == theme.NIGHT_TEXT_PAIRS[1][1:]


def test_night_is_dim_and_state_colours_stay_distinct() -> None:
    night = theme.NIGHT_COLOURS
    states = {
        k: night[c.name()]
        for k, c in (("overdue", OVERDUE_BG), ("due", DUE_BG), ("silenced", SILENCED_BG))
    }
    states["base"] = theme.NIGHT_PALETTE["Base"]
    for (a, ca), (b, cb) in itertools.combinations(states.items(), 2):
        rgb_a = [int(ca[i : i + 2], 16) for i in (1, 3, 5)]
        rgb_b = [int(cb[i : i + 2], 16) for i in (1, 3, 5)]
        distance = sum((x - y) ** 2 for x, y in zip(rgb_a, rgb_b, strict=True)) ** 0.5
        assert distance > 60, (a, b, distance)
    # Dim: every night background is darker than its day colour, and the window is dark.
    for day, colour in night.items():
        if day in ("#ffffff", "#ffb300", "#b00020", "#e0e0e0", "#ffe0b2", "#ffab91", "#ef9a9a"):
            assert luminance(colour) < luminance(day), day
    assert luminance(theme.NIGHT_PALETTE["Window"]) < 0.03


@pytest.fixture
def night() -> Iterator[None]:
    yield
    theme.apply("day")


def test_view_night_switches_the_colours_and_is_remembered(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, night: Any
) -> None:
    session = sessions.open(data_dir)
    add_patient(session, dialog_log)
    window = session.window
    assert theme.current() == "day"
    assert brush(OVERDUE_BG).color().name() == "#b00020"
    window.night_action.setChecked(True)
    window.toggle_night()
    assert theme.current() == "night" and theme.saved() == "night"
    assert brush(OVERDUE_BG).color().name() == theme.NIGHT_COLOURS["#b00020"]
    app = QApplication.instance()
    assert "#1b1f24" in app.styleSheet()
    assert app.palette().color(app.palette().ColorRole.Window).name() == "#1b1f24"
    # The same information: the board shows the same texts by night.
    board = window.board.model
    texts = [
        board.index(r, c).data()
        for r in range(board.rowCount())
        for c in range(board.columnCount())
    ]
    window.night_action.setChecked(False)
    window.toggle_night()
    assert theme.current() == "day" and theme.saved() == "day"
    again = [
        board.index(r, c).data()
        for r in range(board.rowCount())
        for c in range(board.columnCount())
    ]
    assert texts == again
    assert app.palette().color(app.palette().ColorRole.Window).name() != "#1b1f24"

"""Ward screens (issue 10, item 2) at the logical sizes nurses meet.

1366×768 at 100 % (ward PC), 1920×1080 at 150 % (1280×720) and at 200 % (960×540). The
available screen is replaced through :func:`ui.screens.available_geometry`; the window
is then given that size, as a maximised window would be, and the named widgets must lie
inside the window and inside their scroll area's viewport.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QDialog, QScrollArea, QWidget
from test_dialog_safety import FACTORIES
from ui_helpers import DialogLog, Sessions, add_patient

from ui import screens

SIZES = [(1366, 768), (1280, 720), (960, 540)]


def _use_screen(monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    monkeypatch.setattr(
        screens, "available_geometry", lambda widget=None: QRect(0, 0, size[0], size[1])
    )


def _inside(widget: QWidget, window: QWidget) -> tuple[bool, str]:
    """Whether ``widget`` is shown whole inside ``window`` and its scroll viewport."""
    if not widget.isVisible():
        return False, "hidden"
    top_left = widget.mapTo(window, QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    if not window.rect().contains(rect):
        return False, f"{rect} outside window {window.rect()}"
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, QScrollArea):
            port = parent.viewport()
            vp = QRect(port.mapTo(window, QPoint(0, 0)), port.size())
            if not vp.contains(rect):
                return False, f"{rect} outside scroll viewport {vp}"
        parent = parent.parentWidget()
    return True, ""


def _settle(qtbot: Any) -> None:
    """Let queued layout requests and zero-delay timers run (no sleeping)."""
    for _ in range(5):
        QApplication.sendPostedEvents()
        QApplication.processEvents()


@pytest.fixture
def ward(sessions: Sessions, data_dir: Path, dialog_log: DialogLog) -> tuple[Any, str]:
    session = sessions.open(data_dir)
    pid = add_patient(
        session, dialog_log, name="Bartholomew Alexander Featherstonehaugh-Smythe", bed="4A-02"
    )
    c = session.controller
    c.update_patient(pid, {"infusion_at": c.now.isoformat()}, recorded_by="AB")
    sessions.advance(session, timedelta(hours=30))
    c.chart(pid, "vitals", recorded_by="AB", temperature_c=38.9, systolic_mmhg=84)
    c.assess_crs(pid, {"temperature_c": 38.9, "hypotension": True}, recorded_by="AB")
    c.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    sessions.advance(session, timedelta(hours=2))
    return session, pid


@pytest.mark.parametrize("size", SIZES)
def test_main_window_never_larger_than_the_screen(
    size: tuple[int, int], ward: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    session, pid = ward
    _use_screen(monkeypatch, size)
    window = session.window
    window.resize(1500, 950)
    window.place_on_screen()
    _settle(qtbot)
    assert window.width() <= size[0] and window.height() <= size[1]
    assert window.compact == screens.is_compact(*size)
    window.open_patient(pid, "crs")
    _settle(qtbot)
    hint = window.minimumSizeHint()
    assert hint.width() <= size[0] and hint.height() <= size[1], hint


@pytest.mark.parametrize("size", SIZES)
def test_crs_tab_shows_what_matters_without_scrolling(
    size: tuple[int, int], ward: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    session, pid = ward
    _use_screen(monkeypatch, size)
    window = session.window
    window.resize(*size)
    window.place_on_screen()
    ws = window.open_patient(pid, "crs")
    _settle(qtbot)
    crs = ws.crs
    assert "CRS grade 2" in crs.last_line.text()
    assert "1/3 in 24 h" in crs.counts.text()
    assert crs.next_line.text() and crs.why_line.text().startswith("Why not now")
    named = {
        "recorded grade": crs.last_line,
        "tocilizumab counts": crs.counts,
        "next allowed time": crs.next_line,
        "reason": crs.why_line,
        "Give button": crs.give_button,
        "Record CRS button": crs.record_button,
        "bed": ws.bed,
        "name": ws.name,
        "product": ws.product,
        "clock": window.clock_label,
        "Show (F8)": window.overdue_button if window.overdue_banner.isVisible() else None,
    }
    for what, widget in named.items():
        if widget is None:
            continue
        ok, why = _inside(widget, window)
        assert ok, f"{size}: {what}: {why}"
    # The bed is never shortened; the name may be (its full text is the tooltip).
    assert ws.bed.width() >= ws.bed.sizeHint().width()
    assert ws.bed.text() == "Bed 4A-02"
    assert ws.name.shown_text().startswith("Bart")
    assert ws.name.toolTip() == "Bartholomew Alexander Featherstonehaugh-Smythe"
    if window.compact:
        ok, why = _inside(window.timers_toggle, window)
        assert ok, why
    else:
        ok, why = _inside(window.timers.ack_button, window)
        assert ok, f"{size}: Acknowledge: {why}"


@pytest.mark.parametrize("size", SIZES)
def test_every_dialog_fits_with_its_buttons_on_screen(
    size: tuple[int, int], ward: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    session, pid = ward
    _use_screen(monkeypatch, size)
    session.window.resize(*size)
    for case, factory in sorted(FACTORIES.items()):
        dlg = factory(session, pid, session.window)
        qtbot.addWidget(dlg)
        dlg.show()
        _settle(qtbot)
        assert dlg.width() <= size[0] and dlg.height() <= size[1], (case, dlg.size())
        # ... and not needlessly small: the whole form shows when the screen has room.
        want = dlg.holder.sizeHint().height() + dlg.buttons.height()
        assert dlg.height() >= min(want, size[1] - 100), (case, dlg.height(), want)
        for btn in (dlg.ok_button, dlg.cancel_button):
            ok, why = _inside(btn, dlg)
            assert ok, f"{size} {case}: {btn.text()}: {why}"
        dlg.done(QDialog.DialogCode.Rejected)


def test_f8_scrolls_to_the_item_it_names(
    ward: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    session, _pid = ward
    _use_screen(monkeypatch, (960, 540))
    window = session.window
    window.resize(960, 540)
    window.place_on_screen()
    rows = session.controller.due_rows()
    first = rows[0]
    window.go_most_urgent()
    _settle(qtbot)
    ws = window.workspace
    tab = ws.pages[ws.current_tab_key()]
    name = tab.ITEM_WIDGETS.get(first.item.kind)
    assert name, first.item.kind
    target = getattr(tab, name)
    area = target.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    y = target.mapTo(area.viewport(), QPoint(0, 0)).y()
    assert 0 <= y <= 12, (first.item.kind, y)
    # The Neuro tab's daily check (4.4 screens down on main) comes into view the same way.
    ws.show_item("delayed_neurotox_check")
    _settle(qtbot)
    box = ws.neuro.delayed_box
    area = box.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    y = box.mapTo(area.viewport(), QPoint(0, 0)).y()
    bar = area.verticalScrollBar()
    assert bar.value() > 0
    assert 0 <= y <= 12 or (bar.value() == bar.maximum() and y < area.viewport().height()), y


def test_geometry_is_remembered_in_the_test_home(
    sessions: Sessions, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_screen(monkeypatch, (1366, 768))
    assert tmp_path in screens.settings_path().parents
    session = sessions.open(data_dir)
    session.window.resize(790, 560)  # the offscreen screen is 800x600
    session.window.move(20, 30)
    session.close()
    again = sessions.open(data_dir)
    again.window.place_on_screen()
    assert (again.window.width(), again.window.height()) == (790, 560)
    assert screens.settings_path().exists()

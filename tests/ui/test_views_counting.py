"""The read side through the real window (issue 14, item 1): one "Give dose" click builds
each projection of the new record version once; a tick builds none and derives each
patient's budget once. The builders are wrapped with counters (real calls counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QAction
from ui_helpers import DialogLog, Sessions

from bedside.clinical import alertstate, escalations, views
from bedside.tools import demo
from bedside.ward import service
from ui import dialogs

PARTS = ("events", "header", "timeline", "alert_index", "doses")


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counts: Counter[str] = Counter()

    def counted(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[part] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(views, "effective_events", counted("events", views.effective_events))
    monkeypatch.setattr(views, "header_from", counted("header", views.header_from))
    monkeypatch.setattr(
        escalations, "build_timeline", counted("timeline", escalations.build_timeline)
    )
    monkeypatch.setattr(
        alertstate, "alert_index_of", counted("alert_index", alertstate.alert_index_of)
    )
    monkeypatch.setattr(views, "voided_doses", counted("doses", views.voided_doses))
    monkeypatch.setattr(service, "dose_budget", counted("budget", service.dose_budget))
    return counts


def test_give_dose_and_tick_build_each_projection_once(
    sessions: Sessions, data_dir: Path, dialog_log: DialogLog, builds: Counter[str]
) -> None:
    data_dir.mkdir(parents=True)
    demo.write_demo_ward(data_dir, sessions.clock)
    session = sessions.open(data_dir)
    c = session.controller
    pid = next(p for p in c.patient_ids() if c.budget(p) and c.budget(p).allowed_now)
    session.window.open_patient(pid, "crs")
    sessions.advance(session, timedelta(seconds=1))

    def fill(dlg: dialogs.DoseDialog) -> bool:
        dlg.checked_by.setText("CD")
        return dlg.submit()

    dialog_log.on(dialogs.DoseDialog, fill)
    before = c.projection(pid)
    others = {p: c.projection(p) for p in c.patient_ids() if p != pid}
    builds.clear()
    session.window.findChild(QAction, "dose").trigger()
    after = c.projection(pid)
    assert len(after.doses) == len(before.doses) + 1  # the dose was given and is shown
    assert {p: builds[p] for p in PARTS} == dict.fromkeys(PARTS, 1)
    assert all(c.projection(p) is proj for p, proj in others.items())

    builds.clear()
    sessions.advance(session, timedelta(seconds=1))
    sessions.advance(session, timedelta(minutes=5))
    assert sum(builds[p] for p in PARTS) == 0
    # The budget depends on the time: one derivation per patient per tick, no more.
    assert builds["budget"] == 2 * len(c.patient_ids())
    assert c.view(pid).projection is after and c.view(pid).now == c.now

"""The read side (issue 14, item 1): projections built once per record version.

The projection builders of :mod:`bedside.clinical.views` are wrapped with counters (monkeypatched,
so the count is of real calls, whoever triggers them). Every reader a screen uses is run
after each write, as the ward does on a save and on a tick:

* one dose given → each projection part built exactly once for the new record version;
* a tick (a view at a later ``now``) with no new event builds none;
* a second patient's save builds that patient's parts only, never the first's again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.clinical import alertstate, escalations, views
from bedside.clinical.doses import dose_budget
from bedside.clinical.record import current_patient, effective_events
from bedside.common.clock import FakeClock
from bedside.reports import handover, summary
from bedside.ward import alerts, wardsync
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
PARTS = ("events", "header", "timeline", "alert_index", "doses")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Iterator[Ward]:
    views._projections.clear()  # a fresh read side: other tests' records are not ours
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()
    views._projections.clear()


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count every call of each projection builder (wrapped where views calls them)."""
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
    return counts


def _add(ward: Ward, clock: FakeClock, pid: str) -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name=f"Person {pid}",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="ide-cel",
        infusion_at=clock.now() - timedelta(hours=2),
        dose_history_complete=True,
    )


def _read_everything(ward: Ward, now: datetime) -> views.WardView:
    """What the screens read after a save or on a tick: the ward view (board, timers),
    each patient's header, due items, alerts, budget, summary, handover, ward status."""
    wv = views.ward_view(ward.records.values(), ward.protocol_for, now, budget=ward.budget_of)
    for pid, record in ward.records.items():
        protocol = ward.protocol_for(record)
        ward.patient(pid)
        escalations.derive_due(record, protocol, now)
        alerts.patient_alerts(ward, pid, now)
        wardsync.duplicate_doses(ward, pid)
        summary.summarize(record, now)
        handover.build_patient(record, protocol, now)
    return wv


def test_one_dose_builds_each_projection_once(
    ward: Ward, clock: FakeClock, builds: Counter[str]
) -> None:
    pid = _add(ward, clock, "p1")
    _read_everything(ward, clock.now())
    builds.clear()
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(seconds=1))
    wv = _read_everything(ward, clock.now())
    _read_everything(ward, clock.now())  # a second reader of the same version: no build
    assert {p: builds[p] for p in PARTS} == dict.fromkeys(PARTS, 1)
    view = wv.view(pid)
    assert view is not None and view.projection.version == views.record_version(ward.records[pid])
    assert len(view.projection.doses) == 1 and view.budget.total == 1


def test_a_tick_without_new_events_builds_nothing(
    ward: Ward, clock: FakeClock, builds: Counter[str]
) -> None:
    for pid in ("p1", "p2"):
        _add(ward, clock, pid)
    ward.give_tocilizumab("p1", given_by="AB", checked_by="CD")
    before = _read_everything(ward, clock.now())
    builds.clear()
    for _ in range(3):
        clock.advance(timedelta(minutes=30))
        after = _read_everything(ward, clock.now())
    assert sum(builds.values()) == 0
    # Same projections, a new instant: the clock-dependent parts did move on.
    for pid in ("p1", "p2"):
        old, new = before.view(pid), after.view(pid)
        assert old is not None and new is not None
        assert new.projection is old.projection and new.now > old.now


def test_a_second_patients_save_does_not_rebuild_the_first(
    ward: Ward, clock: FakeClock, builds: Counter[str]
) -> None:
    for pid in ("p1", "p2"):
        _add(ward, clock, pid)
    first = _read_everything(ward, clock.now()).view("p1")
    builds.clear()
    ward.chart("p2", "note", recorded_by="AB", text="slept well")
    after = _read_everything(ward, clock.now())
    assert {p: builds[p] for p in PARTS} == dict.fromkeys(PARTS, 1)  # p2's new version only
    again = after.view("p1")
    assert first is not None and again is not None
    assert again.projection is first.projection


def test_the_view_says_what_the_rules_say(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, "p1")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(timedelta(hours=2))
    now = clock.now()
    record = ward.records[pid]
    protocol = ward.protocol_for(record)
    view = views.project(record).at(now, protocol, zone=UTC, budget=ward.budget_of)
    assert view.patient == current_patient(record)
    assert view.events == effective_events(record)
    assert view.due == escalations.derive_due(record, protocol, now, zone=UTC)
    assert view.budget == dose_budget(record, protocol, now)
    assert not view.budget.allowed_now  # 2 h after a dose: the interval holds
    assert view.day == 0
    states = alerts.alert_states(record, view.due, now, events=effective_events(record))
    assert [view.alerts[s.item.key] for s in states] == states


def test_a_header_change_is_a_new_version(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock, "p1")
    before = views.project(ward.records[pid])
    ward.chart(pid, "patient_update", recorded_by="AB", changes={"bed": "12"})
    after = views.project(ward.records[pid])
    assert after is not before and after.patient.bed == "12"
    assert after.version != before.version


def test_one_record_that_cannot_be_derived_is_set_aside(
    ward: Ward, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pid in ("p1", "p2"):
        _add(ward, clock, pid)
    real = escalations.build_timeline

    def broken(record: Any, *args: Any) -> Any:
        if record.patient.patient_id == "p1":
            raise OverflowError("date value out of range")
        return real(record, *args)

    monkeypatch.setattr(escalations, "build_timeline", broken)
    views._projections.clear()  # the ward read them while saving
    wv = views.ward_view(ward.records.values(), ward.protocol_for, clock.now())
    assert [v.pid for v in wv.patients] == ["p2"]
    assert set(wv.failures) == {"p1"}
    message = wv.failures["p1"].message
    assert message.startswith("cannot display") and "OverflowError" in message
    assert "date value" not in message  # the error type only, never its text


def test_the_cache_is_bounded(
    ward: Ward, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "CACHE_SIZE", 2)
    for pid in ("p1", "p2", "p3"):
        _add(ward, clock, pid)
        views.project(ward.records[pid])
    assert list(views._projections) == ["p2", "p3"]

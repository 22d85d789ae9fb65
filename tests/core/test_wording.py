"""One place for the words (issue 14, item 2): each concept a nurse reads about is worded by
one function of :mod:`bedside.reports.presenters`, used by the screens, the handover and the
exports alike; one definition of a CRS episode and of the day post-infusion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from bedside.clinical.escalations import grade_episodes
from bedside.clinical.record import Note, Vitals, calendar_day, make_event
from bedside.common.clock import FakeClock
from bedside.reports import export, handover, presenters, summary
from bedside.ward.service import open_ward

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def _vitals(**fields: object) -> Vitals:
    ev = make_event("vitals", recorded_by="AB", effective_at=T0, recorded_at=T0, **fields)
    assert isinstance(ev, Vitals)
    return ev


def test_handover_and_screens_share_the_budget_and_unit_words() -> None:
    assert handover.budget_text is presenters.budget_text
    assert handover.toci_next_text is presenters.toci_next_text
    assert handover.unit_text is presenters.unit_text
    assert handover.vitals_text is presenters.vitals_text


def test_the_vitals_line_says_what_was_not_measured() -> None:
    v = _vitals(
        temperature_c=38.9,
        heart_rate=118,
        spo2_pct=95,
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=2.0,
    )
    line = presenters.summarize(v)
    assert line.startswith("T 38.9 °C · HR 118/min")
    assert "BP not measured" in line and "RR not measured" in line  # unknown is never zero
    assert "nasal cannula 2 L/min" in line
    assert presenters.device_text("none") == "room air"


def test_the_export_line_is_the_timeline_line() -> None:
    v = _vitals(temperature_c=37.2)
    assert export.describe_event(v) == f"Vital signs: {presenters.summarize(v)}"
    note = make_event("note", recorded_by="AB", effective_at=T0, recorded_at=T0, text="ok")
    assert isinstance(note, Note)
    assert export.describe_event(note) == "Note: ok"


def test_units_are_worded_once() -> None:
    assert presenters.unit_text("10^9/L") == "×10⁹/L"
    assert presenters.unit_text("/uL") == "cells/µL"
    assert presenters.unit_text("mmol/L") == "mmol/L"  # unknown units pass through unchanged


def test_one_crs_episode_definition_for_timers_and_summary() -> None:
    grades = [0, 1, 2, 0, 1, 1]
    points = [summary.GradePoint(T0 + timedelta(hours=i), g, f"e{i}") for i, g in enumerate(grades)]
    runs = grade_episodes(points, lambda p: p.grade)
    assert [[p.grade for p in run] for run, _ in runs] == [[1, 2], [1, 1]]
    assert runs[0][1] is points[3] and runs[1][1] is None  # closed by grade 0; still open
    episodes = summary._episodes(points)
    assert [(e.onset_at, e.max_grade, e.resolved_at) for e in episodes] == [
        (points[1].at, 2, points[3].at),
        (points[4].at, 1, None),
    ]


def test_one_day_post_infusion() -> None:
    zone = timezone(timedelta(hours=2))
    infusion = datetime(2026, 3, 28, 21, 30, tzinfo=UTC)  # 23:30 local
    assert calendar_day(infusion, infusion + timedelta(minutes=40), zone) == 1  # 00:10 next day
    assert calendar_day(infusion, infusion - timedelta(hours=30), zone) == -1
    assert presenters.day_label(0) == "Day 0 (infusion)" and presenters.day_label(3) == "Day +3"


def test_the_next_dose_sentence_says_allow_only_when_the_budget_allows(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    ward = open_ward(tmp_path / "data", clock)
    try:
        for pid, complete in (("p1", True), ("p2", False)):
            ward.create_patient(
                recorded_by="AB",
                patient_id=pid,
                mrn=f"MRN-{pid}",
                name=f"Person {pid}",
                date_of_birth="1960-05-01",
                sex="female",
                weight_kg=70.0,
                weight_measured_at=T0,
                product="ide-cel",
                infusion_at=T0 - timedelta(hours=2),
                dose_history_complete=complete,
            )
        full, unsure = ward.budget("p1"), ward.budget("p2")
        assert full.allowed_now and not unsure.allowed_now and unsure.check.allowed
        assert presenters.next_dose_text(full, T0) == "the limits allow a dose now"
        text = presenters.next_dose_text(unsure, T0)
        assert "allow" not in text and "needs an override" in text and "incomplete" in text
        ward.give_tocilizumab("p1", given_by="AB", checked_by="CD")
        clock.advance(timedelta(hours=1))
        after = ward.budget("p1")
        text = presenters.next_dose_text(after, clock.now())
        assert not after.allowed_now and text.startswith("next dose allowed from")
        assert "(in 7 h" in text
        counts, nxt = presenters.budget_lines(after, clock.now())
        assert counts == "1/3 in 24 h · 1/4 course" and nxt == text
        # The dose dialog's limits text states the budget's own verdict (never re-decided).
        assert presenters.dose_limits_text(full, T0).startswith("Allowed now by every limit.")
        worded = presenters.dose_limits_text(unsure, T0)
        assert worded.startswith("Not allowed without an override.")
        assert "This would be dose at least 1 of at most 4" in worded
        worded = presenters.dose_limits_text(after, clock.now())
        assert worded.startswith("Not allowed without an override.")
        assert "This would be dose 2 of at most 4" in worded and "(in 7 h" in worded
    finally:
        ward.close()


def test_eligibility_keys_are_worded_in_the_handover(tmp_path: Path) -> None:
    """The record keeps criterion and caution keys; the handover shows words, never a key."""
    assert presenters.eligibility_items_text(["rapid_progression", "anti_cd38"]) == (
        "rapidly progressing disease; prior anti-CD38 antibody"
    )
    assert presenters.eligibility_items_text(["new_key"]) == "new key"  # never dropped
    root = tmp_path / "ward"
    from bedside.tools.demo import main as demo_main

    assert demo_main(["--data-dir", str(root)]) == 0
    ward = open_ward(root, FakeClock(T0), read_only=True)
    try:
        html = handover.render_html(handover.build_handover(ward, T0))
    finally:
        ward.close()
    assert "rapid_progression" not in html and "prior_bcma" not in html

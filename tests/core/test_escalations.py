"""Escalation timers derived from a real record through the ward service.

The contract semantics themselves are pinned by ``resources/validation/escalations.json``;
these tests check that a record charted through :class:`Ward` gives the same timers
(voids and amendments applied), that states, severities, keys and messages are what a
nurse needs, that DST never changes elapsed time, and that a misspelt expectation in a
case file can never pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedside.clinical.crsform import last_assessment
from bedside.clinical.escalations import (
    DUE_KINDS,
    DueItem,
    compare_escalations,
    contract_escalations,
    derive_due,
    derive_ward,
    due_state,
)
from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.record import effective_events
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
PROTOCOL = load_default_protocol()

GRADE = {
    0: {"temperature_c": 37.0},
    1: {"temperature_c": 38.5},
    2: {"temperature_c": 38.5, "hypotension": True},
    3: {"temperature_c": 38.5, "vasopressors": ["norepinephrine"]},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Ward:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def add_patient(
    ward: Ward, clock: FakeClock, pid: str = "p1", product: str = "ide-cel", **kw: object
) -> str:
    fields = {
        "patient_id": pid,
        "mrn": f"MRN-{pid}",
        "name": f"Test Person {pid}",
        "date_of_birth": "1960-05-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": clock.now(),
        "product": product,
        "dose_history_complete": True,
    }
    fields.update(kw)
    return ward.create_patient(recorded_by="AB", **fields)


def crs(ward: Ward, clock: FakeClock, pid: str, grade: int) -> str:
    last = last_assessment(effective_events(ward.record(pid)))
    improved = last is not None and grade < last.grade
    event, result = ward.assess_crs(
        pid,
        GRADE[grade],
        recorded_by="AB",
        confirmation={"limits": ["crs_improved"]} if improved else None,
    )
    assert result.grade == grade
    return event.id


def toci(ward: Ward, pid: str, **kw: object) -> str:
    return ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", **kw).id


def by_kind(items: list[DueItem]) -> dict[str, DueItem]:
    out: dict[str, DueItem] = {}
    for item in items:
        assert item.kind not in out, f"two {item.kind} items"
        out[item.kind] = item
    return out


def due(ward: Ward, pid: str, now: datetime, zone: ZoneInfo = LONDON) -> dict[str, DueItem]:
    record = ward.record(pid)
    return by_kind(derive_due(record, ward.protocol_for(record), now, zone=zone))


# --------------------------------------------------------------------------- record path


def test_tocilizumab_course_timers_from_the_record(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    crs(ward, clock, pid, 2)
    first = toci(ward, pid)
    items = due(ward, pid, clock.now())
    reassess, escalation = items["tocilizumab_reassess"], items["crs_escalation"]
    assert reassess.due_at == T0 + 8 * H
    assert reassess.key == f"{pid}/tocilizumab_reassess/{first}"
    assert reassess.state == "upcoming" and reassess.severity == "warning"
    assert reassess.rule == "monitoring.tocilizumab_reassess_h"
    assert reassess.source == ("S2", "S3", "SEED") and reassess.verified
    # 08:00 UTC is 09:00 BST: the message is in local time with the zone.
    assert reassess.message.startswith(
        "Reassess for tocilizumab dose 2 — 8 h after dose 1 at 09:00 BST"
    )
    assert escalation.due_at == T0 + 24 * H
    assert escalation.severity == "warning"

    # Due for the grace window, then overdue (sleep/resume: nothing ticks, just derive again).
    assert due(ward, pid, T0 + 8 * H)["tocilizumab_reassess"].state == "due"
    grace = timedelta(minutes=PROTOCOL.monitoring.due_grace_min.value)
    assert due(ward, pid, T0 + 8 * H + grace)["tocilizumab_reassess"].state == "overdue"

    clock.set(T0 + 8 * H)
    crs(ward, clock, pid, 2)
    second = toci(ward, pid)
    items = due(ward, pid, clock.now())
    assert items["tocilizumab_reassess"].due_at == T0 + 16 * H
    assert items["tocilizumab_reassess"].key.endswith(second)
    assert items["crs_escalation"].key.endswith(first)  # the first dose of the episode
    assert items["crs_escalation"].due_at == T0 + 24 * H

    # The escalation review turns critical once due.
    late = due(ward, pid, T0 + 24 * H + M)
    assert late["crs_escalation"].severity == "critical"
    assert not late["crs_escalation"].snoozable

    # Grade 1 stops both clocks; prolonged-grade-1 does not start (tocilizumab given).
    clock.set(T0 + 10 * H)
    crs(ward, clock, pid, 1)
    items = due(ward, pid, clock.now())
    assert {"tocilizumab_reassess", "crs_escalation", "crs_prolonged_grade1"}.isdisjoint(items)


def test_four_doses_replace_the_reassessment_by_a_critical_limit(
    ward: Ward, clock: FakeClock
) -> None:
    pid = add_patient(ward, clock)
    crs(ward, clock, pid, 3)
    for step in range(3):
        clock.set(T0 + step * 8 * H)
        toci(ward, pid)
    clock.set(T0 + 30 * H)  # the 24 h window has freed: no override needed
    toci(ward, pid)
    crs(ward, clock, pid, 3)
    items = due(ward, pid, clock.now())
    assert "tocilizumab_reassess" not in items
    limit = items["tocilizumab_limit"]
    assert limit.severity == "critical" and not limit.snoozable
    assert limit.due_at == T0 + 38 * H
    assert "4 of 4" in limit.message


def test_voided_and_amended_events(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    crs(ward, clock, pid, 2)
    dose = toci(ward, pid)
    clock.advance(H)
    # A mistaken vitals set is voided: the timer falls back to the previous set.
    ward.chart(pid, "vitals", recorded_by="AB", effective_at=T0 + 30 * M, temperature_c=37.1)
    wrong = ward.chart(pid, "vitals", recorded_by="AB", temperature_c=39.0)
    assert due(ward, pid, clock.now())["vitals_next"].due_at == T0 + H + 2 * H  # febrile
    ward.correct(pid, wrong.id, action="void", reason="wrong patient", recorded_by="AB")
    vitals = due(ward, pid, clock.now())["vitals_next"]
    # Back to the earlier set; still every 2 h: CRS grade 2 with the fever masked by tocilizumab.
    assert vitals.due_at == T0 + 30 * M + 2 * H
    assert vitals.severity == "warning" and "CRS grade 2" in vitals.message
    # The tocilizumab dose time is amended: the timers follow the amended time.
    ward.correct(
        pid,
        dose,
        action="amend",
        reason="charted late, given at 07:45 UTC",
        reason_code="wrong_time",
        second_nurse="CD",
        recorded_by="AB",
        amended={"effective_at": "2026-06-10T07:45:00Z"},
    )
    items = due(ward, pid, clock.now())
    assert items["tocilizumab_reassess"].due_at == T0 - 15 * M + 8 * H
    # Voiding the only dose removes both tocilizumab timers.
    ward.correct(
        pid,
        dose,
        action="void",
        reason="never given",
        reason_code="not_given",
        second_nurse="CD",
        recorded_by="AB",
    )
    items = due(ward, pid, clock.now())
    assert "tocilizumab_reassess" not in items and "crs_escalation" not in items


def test_prolonged_grade_1_and_steroids(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    crs(ward, clock, pid, 1)
    onset = T0
    ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="dexamethasone",
        dose=10,
        unit="mg",
        route="IV",
        every_h=6,
        given_by="AB",
    )
    clock.advance(25 * H)
    crs(ward, clock, pid, 1)
    items = due(ward, pid, clock.now())
    assert items["crs_prolonged_grade1"].due_at == onset + 72 * H
    dex = items["dexamethasone_next"]
    assert dex.due_at == T0 + 6 * H and dex.state == "overdue"
    assert dex.source == ("ORDER",) and "10 mg IV" in dex.message
    ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="methylprednisolone",
        dose=1,
        unit="g",
        route="IV",
        every_h=24,
        given_by="AB",
    )
    assert due(ward, pid, clock.now())["methylprednisolone_next"].due_at == clock.now() + 24 * H
    # A single dexamethasone dose with no interval ends the dexamethasone timer.
    ward.chart(
        pid, "medication", recorded_by="AB", drug="dexamethasone", dose=10, unit="mg", route="IV",
        given_by="AB",
    )  # fmt: skip
    assert "dexamethasone_next" not in due(ward, pid, clock.now())


def test_ice_drop_brings_recheck_forward(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    full = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}
    ward.assess_ice(pid, full, recorded_by="AB")
    assert due(ward, pid, clock.now())["ice_next"].due_at == T0 + 8 * H
    clock.advance(4 * H)
    ward.assess_ice(pid, {**full, "orientation": 2}, recorded_by="AB")
    item = due(ward, pid, clock.now())["ice_next"]
    assert item.due_at == clock.now() + 30 * M
    assert item.severity == "warning" and "10 → 8" in item.message
    # Not assessable after a score: treated as a fall (recheck in 30 min).
    clock.advance(30 * M)
    ward.assess_ice(
        pid, {**full, "naming": None}, consciousness="awakens_to_touch", recorded_by="AB"
    )
    assert due(ward, pid, clock.now())["ice_next"].due_at == clock.now() + 30 * M


def test_ice_series_after_a_fall_30_min_then_4h_then_routine(ward: Ward, clock: FakeClock) -> None:
    """The amended contract: q30 min for 2 h from the first lower score, q4h while below."""
    pid = add_patient(ward, clock)
    full = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}
    low = {**full, "orientation": 1}  # 7
    ward.assess_ice(pid, full, recorded_by="AB")
    clock.advance(1 * H)
    fell = clock.now()
    ward.assess_ice(pid, low, recorded_by="AB")
    for _ in range(3):  # rechecks at +30, +60, +90 min: each next one 30 min later
        clock.advance(30 * M)
        ward.assess_ice(pid, low, recorded_by="AB")
        item = due(ward, pid, clock.now())["ice_next"]
        assert item.due_at == clock.now() + 30 * M
        assert item.rule == "monitoring.ice_recheck_after_drop_min"
    clock.advance(30 * M)  # at exactly +2 h: the next 30-min recheck would pass the window
    assert clock.now() == fell + 2 * H
    ward.assess_ice(pid, low, recorded_by="AB")
    item = due(ward, pid, clock.now())["ice_next"]
    assert item.due_at == clock.now() + 4 * H
    assert item.rule == "monitoring.ice_recheck_stable_h" and "below 10" in item.message
    clock.advance(4 * H)
    ward.assess_ice(pid, full, recorded_by="AB")  # back at the pre-fall score
    item = due(ward, pid, clock.now())["ice_next"]
    assert item.due_at == clock.now() + 8 * H and item.rule == "monitoring.ice_interval_h"


def test_cilta_cel_monitoring_day_and_neurotox_check(ward: Ward, clock: FakeClock) -> None:
    infusion = T0 - 3 * 24 * H  # 7 Jun 08:00 UTC = 09:00 BST
    pid = add_patient(ward, clock, product="cilta-cel", infusion_at=infusion)
    items = due(ward, pid, clock.now())
    day = items["monitoring_day"]
    assert day.severity == "info" and day.state == "upcoming"
    assert day.due_at == infusion + 7 * 24 * H  # current label: daily for at least 1 week (S4)
    assert day.message.startswith("Day +3 of the 7-day daily monitoring period (cilta-cel)")
    assert day.key == f"{pid}/monitoring_day/day3"
    neuro = items["delayed_neurotox_check"]
    assert neuro.due_at == infusion + 24 * H and neuro.state == "overdue"
    assert neuro.severity == "warning"  # info raised once overdue
    check = ward.chart(
        pid,
        "neuro_check",
        recorded_by="AB",
        handwriting_changed=False,
        movement_changed=False,
        facial_asymmetry=False,
        personality_changed=False,
    )
    neuro = due(ward, pid, clock.now())["delayed_neurotox_check"]
    assert neuro.due_at == T0 + 24 * H and neuro.key.endswith(check.id)
    # After 28 days: no more daily check; after 7 days: no monitoring-day item.
    later = due(ward, pid, infusion + 29 * 24 * H)
    assert "delayed_neurotox_check" not in later and "monitoring_day" not in later


def test_ide_cel_neuro_check_through_its_monitoring_window(ward: Ward, clock: FakeClock) -> None:
    infusion = T0 - 24 * H
    pid = add_patient(ward, clock, product="ide-cel", infusion_at=infusion)
    items = due(ward, pid, clock.now())
    assert items["monitoring_day"].due_at == infusion + 7 * 24 * H
    assert items["delayed_neurotox_check"].due_at == infusion + 24 * H
    # 14 days for ide-cel (current monitoring window), not cilta-cel's 28.
    assert "delayed_neurotox_check" in due(ward, pid, infusion + 13 * 24 * H + H)
    assert "delayed_neurotox_check" not in due(ward, pid, infusion + 14 * 24 * H + H)


def test_positive_neuro_check_raises_alert_weakness_critical(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock, product="ide-cel", infusion_at=T0 - 24 * H)
    base = {
        "handwriting_changed": False,
        "movement_changed": False,
        "facial_asymmetry": False,
        "personality_changed": False,
    }
    ward.chart(pid, "neuro_check", recorded_by="AB", **base)
    assert "neuro_check_positive" not in due(ward, pid, clock.now())
    clock.advance(H)
    ward.chart(pid, "neuro_check", recorded_by="AB", **{**base, "facial_asymmetry": True})
    item = due(ward, pid, clock.now())["neuro_check_positive"]
    assert item.severity == "warning" and item.active and "Facial droop" in item.message
    clock.advance(H)
    ev = ward.chart(
        pid, "neuro_check", recorded_by="AB", **base, findings=["limb_weakness", "reflexes_reduced"]
    )
    item = due(ward, pid, clock.now())["neuro_check_positive"]
    assert item.severity == "critical" and not item.snoozable and item.anchor_id == ev.id
    assert "New weakness" in item.message and "reflexes" in item.message


def test_febrile_neutropenia_and_iec_hs_from_charted_labs(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock, product="cilta-cel", infusion_at=T0 - 5 * 24 * H)
    ward.record_lab(pid, test="neutrophils", value=400, unit="/uL", recorded_by="AB")
    ward.chart(pid, "vitals", recorded_by="AB", temperature_c=37.9)
    assert "febrile_neutropenia" not in due(ward, pid, clock.now())
    clock.advance(H)
    ward.chart(pid, "vitals", recorded_by="AB", temperature_c=38.0)
    fn = due(ward, pid, clock.now())["febrile_neutropenia"]
    assert fn.severity == "critical" and fn.due_at == clock.now() and "0.4" in fn.message
    # IEC-HS: CRS 2 then 1 (settling), ferritin rising, fibrinogen low.
    crs(ward, clock, pid, 2)
    ward.record_lab(pid, test="ferritin", value=900, unit="ng/mL", recorded_by="AB")
    clock.advance(H)
    crs(ward, clock, pid, 1)
    ward.record_lab(pid, test="fibrinogen", value=120, unit="mg/dL", recorded_by="AB")
    ward.record_lab(pid, test="ferritin", value=2500, unit="ng/mL", recorded_by="AB")
    item = due(ward, pid, clock.now())["iec_hs_possible"]
    assert "Possible IEC-HS" in item.message and "fibrinogen 120" in item.message
    assert "check triglycerides" in item.message
    ward.record_lab(pid, test="triglycerides", value=420, unit="mg/dL", recorded_by="AB")
    ward.record_lab(pid, test="ldh", value=900, unit="U/L", recorded_by="AB")
    item = due(ward, pid, clock.now())["iec_hs_possible"]
    assert "triglycerides 420 mg/dL" in item.message and "LDH 900 U/L" in item.message
    # A ferritin in another unit is refused, nothing written (nothing guessed).
    with pytest.raises(InputError, match="ng/mL"):
        ward.record_lab(pid, test="ferritin", value=1.0, unit="mg/L", recorded_by="AB")
    with pytest.raises(InputError, match="test"):
        ward.record_lab(pid, test="sodium", value=140, unit="mmol/L", recorded_by="AB")
    assert "iec_hs_possible" in due(ward, pid, clock.now())


def test_derive_ward_orders_most_urgent_first(ward: Ward, clock: FakeClock) -> None:
    a = add_patient(ward, clock, "a")
    b = add_patient(ward, clock, "b")
    ward.chart(a, "vitals", recorded_by="AB", temperature_c=37.0)
    ward.chart(b, "vitals", recorded_by="AB", effective_at=T0 - 5 * H, temperature_c=37.0)
    items = derive_ward(ward.records.values(), ward.protocol_for, clock.now(), zone=LONDON)
    assert [i.patient_id for i in items] == [b, a]
    assert items[0].state == "overdue" and items[1].state == "upcoming"


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("zone", "dose_local", "due_local", "abbrev"),
    [
        # Spring forward: 8 elapsed hours read as 9 on the wall clock.
        (LONDON, datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 9, 30), "BST"),
        # Fall back: 8 elapsed hours read as 7.
        (LONDON, datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 7, 30), "GMT"),
        (NEW_YORK, datetime(2026, 3, 8, 0, 30), datetime(2026, 3, 8, 9, 30), "EDT"),
        (NEW_YORK, datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 7, 30), "EST"),
        (SYDNEY, datetime(2026, 4, 5, 0, 30), datetime(2026, 4, 5, 7, 30), "AEST"),
        (SYDNEY, datetime(2026, 10, 4, 0, 30), datetime(2026, 10, 4, 9, 30), "AEDT"),
    ],
)
def test_eight_hours_is_elapsed_time_across_dst(
    tmp_path: Path, zone: ZoneInfo, dose_local: datetime, due_local: datetime, abbrev: str
) -> None:
    dose_at = dose_local.replace(tzinfo=zone).astimezone(UTC)
    clock = FakeClock(dose_at)
    ward = open_ward(tmp_path / "w", clock)
    try:
        pid = add_patient(ward, clock)
        crs(ward, clock, pid, 2)
        toci(ward, pid)
        item = due(ward, pid, clock.now(), zone=zone)["tocilizumab_reassess"]
        assert item.due_at - dose_at == 8 * H
        assert item.due_at.astimezone(zone).replace(tzinfo=None) == due_local
        assert item.due_at.astimezone(zone).strftime("%Z") == abbrev
        # The message shows the dose in local time with the zone of that instant.
        assert dose_at.astimezone(zone).strftime("%H:%M %Z") in item.message
        # The escalation review is 24 elapsed hours later, whatever the wall clock says.
        assert due(ward, pid, clock.now(), zone=zone)["crs_escalation"].due_at == dose_at + 24 * H
    finally:
        ward.close()


def test_monitoring_day_counts_calendar_days_in_the_ward_zone() -> None:
    # Infused 23:30 BST on 9 Jun (22:30 UTC): at 00:30 BST on 10 Jun it is day +1 in London,
    # still day 0 in New York.
    out = contract_escalations(
        {
            "events": [],
            "now": "2026-06-09T23:30:00Z",
            "product": "ide-cel",
            "infusion_at": "2026-06-09T22:30:00Z",
        },
        PROTOCOL,
    )
    assert {
        "kind": "monitoring_day",
        "due_at": datetime(2026, 6, 16, 22, 30, tzinfo=UTC),
        "severity": "info",
    } in out["due"]


# --------------------------------------------------------------------------- units


def test_due_state_boundaries() -> None:
    g = 15 * M
    assert due_state(T0, T0 - timedelta(microseconds=1), g) == "upcoming"
    assert due_state(T0, T0, g) == "due"
    assert due_state(T0, T0 + g - timedelta(microseconds=1), g) == "due"
    assert due_state(T0, T0 + g, g) == "overdue"


def test_naive_now_is_refused(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    record = ward.record(pid)
    with pytest.raises(InputError, match="now"):
        derive_due(record, PROTOCOL, datetime(2026, 6, 10, 12, 0))


def test_contract_error_messages_name_the_field() -> None:
    now = "2026-06-10T12:00:00Z"
    cases = [
        (
            {"events": [{"kind": "vitals", "at": "2026-06-10T12:06:00Z"}], "now": now},
            "events[0].at",
        ),
        (
            {"events": [{"kind": "dexamethasone", "at": now, "every_h": 0}], "now": now},
            "every_h",
        ),
        (
            {"events": [{"kind": "dexamethasone", "at": now, "every_h": -6}], "now": now},
            "every_h",
        ),
        ({"events": [{"kind": "vitals", "at": "2026-06-10T10:00:00"}], "now": now}, "at"),
    ]
    for data, needle in cases:
        with pytest.raises(InputError) as err:
            contract_escalations(data, PROTOCOL)
        assert needle in str(err.value), str(err.value)


def test_compare_never_passes_a_misspelt_or_wrong_expectation() -> None:
    got = contract_escalations(
        {
            "events": [{"kind": "vitals", "at": "2026-06-10T10:00:00Z"}],
            "now": "2026-06-10T10:00:00Z",
        },
        PROTOCOL,
    )
    ok = {"due": [{"kind": "vitals_next", "due_at": "2026-06-10T15:00:00+01:00"}]}
    assert compare_escalations(ok, got) == []
    assert compare_escalations({"not_due": ["ice_next"]}, got) == []
    bad = [
        {"due": [{"kind": "vitals_next", "due_at": "2026-06-10T14:01:00Z"}]},
        {"due": [{"kind": "vital_next", "due_at": "2026-06-10T14:00:00Z"}]},
        {"due": [{"kind": "vitals_next", "due_at": "2026-06-10T14:00:00"}]},
        {"due": [{"kind": "vitals_next", "due_at": "2026-06-10T14:00:00Z", "state": "due"}]},
        {"due": {"kind": "vitals_next"}},
        {"not_due": ["vitals_next"]},
        {"not_due": ["vital_next"]},
        {"not_due": "vitals_next"},
    ]
    for expect in bad:
        assert compare_escalations(expect, got), expect
    assert set(got["not_due"]) == DUE_KINDS - {"vitals_next"}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"effective_at": T0 + 6 * M}, "effective_at"),  # beyond the 5 min tolerance
        ({"every_h": 0}, "every_h"),
        ({"every_h": -6}, "every_h"),
    ],
)
def test_bad_timer_input_is_refused_and_nothing_written(
    ward: Ward, clock: FakeClock, fields: dict, needle: str
) -> None:
    pid = add_patient(ward, clock)
    before = ward.record(pid)
    dex = {"drug": "dexamethasone", "dose": 10, "unit": "mg", "route": "IV", "given_by": "AB"}
    dex.setdefault("every_h", 6)
    dex.update(fields)
    with pytest.raises(InputError) as err:
        ward.chart(pid, "medication", recorded_by="AB", **dex)
    assert needle in str(err.value), str(err.value)
    assert ward.record(pid) is before
    assert "dexamethasone_next" not in due(ward, pid, clock.now())


def test_event_within_the_future_tolerance_is_accepted(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock)
    ward.chart(pid, "vitals", recorded_by="AB", effective_at=T0 + 4 * M, temperature_c=37.0)
    assert due(ward, pid, clock.now())["vitals_next"].due_at == T0 + 4 * M + 4 * H


def test_vitals_every_2h_while_tachycardic_from_the_charted_heart_rate(
    ward: Ward, clock: FakeClock
) -> None:
    pid = add_patient(ward, clock)
    ward.chart(pid, "vitals", recorded_by="AB", temperature_c=37.0, heart_rate=100)
    item = due(ward, pid, clock.now())["vitals_next"]
    assert item.due_at == clock.now() + 4 * H and item.severity == "info"
    clock.advance(H)
    ward.chart(pid, "vitals", recorded_by="AB", temperature_c=37.0, heart_rate=118)
    item = due(ward, pid, clock.now())["vitals_next"]
    assert item.due_at == clock.now() + 2 * H and "tachycardic (118 bpm" in item.message
    assert item.rule == "monitoring.vitals_tachycardia_above_bpm" and "LOCAL" in item.source


def test_grade1_review_mentions_early_onset_guidance(ward: Ward, clock: FakeClock) -> None:
    pid = add_patient(ward, clock, infusion_at=T0 - 24 * H)
    crs(ward, clock, pid, 1)
    item = due(ward, pid, clock.now())["crs_prolonged_grade1"]
    assert item.due_at == clock.now() + 72 * H
    assert "Early onset" in item.message and item.source == ("SEED",) and not item.verified


def test_boxed_warning_checklist_open_until_every_item_confirmed(
    ward: Ward, clock: FakeClock
) -> None:
    infusion = T0 + 24 * H
    pid = add_patient(ward, clock, infusion_at=infusion)
    protocol = ward.protocol_for(ward.record(pid))
    keys = list(protocol.toxicity.checklist)
    item = due(ward, pid, clock.now())["checklist_open"]
    assert item.due_at == infusion and item.state == "upcoming"
    assert f"{len(keys)} of {len(keys)}" in item.message
    with pytest.raises(InputError, match="item"):
        ward.chart(pid, "checklist", recorded_by="AB", item="vaccines", done=True)
    for key in keys[:-1]:
        ward.chart(pid, "checklist", recorded_by="AB", item=key, done=True)
    item = due(ward, pid, clock.now())["checklist_open"]
    assert f"1 of {len(keys)}" in item.message
    ward.chart(pid, "checklist", recorded_by="AB", item=keys[-1], done=True)
    assert "checklist_open" not in due(ward, pid, clock.now())
    # Un-ticking an item (recorded as still open) brings it back; overdue stays info (no alarm).
    ward.chart(pid, "checklist", recorded_by="AB", item=keys[0], done=False)
    item = due(ward, pid, infusion + 48 * H)["checklist_open"]
    assert item.state == "overdue" and item.severity == "info"

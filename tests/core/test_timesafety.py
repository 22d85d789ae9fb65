"""Time safety: high-water mark, clock jumps at start and while running, sleep/resume, and
dose checks that a bad clock can never loosen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.escalations import derive_due
from bedside.clinical.record import ClockAnomaly
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError, LimitError
from bedside.ward.service import Ward, open_ward
from bedside.ward.timesafety import CLOCK_FILE, ClockGuard, attach, suspend_aware_monotonic

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)


class FakeMonotonic:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, delta: timedelta) -> None:
        self.value += delta.total_seconds()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def mono() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Ward:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def add_patient(ward: Ward, pid: str) -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name=f"Test Person {pid}",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=T0 - H,
        product="ide-cel",
        dose_history_complete=True,
    )


def both(clock: FakeClock, mono: FakeMonotonic, delta: timedelta) -> None:
    clock.advance(delta)
    mono.advance(delta)


def anomalies(ward: Ward, pid: str) -> list[ClockAnomaly]:
    return [e for e in ward.record(pid).events if isinstance(e, ClockAnomaly)]


# --------------------------------------------------------------------------- high-water mark


def test_high_water_mark_is_persisted_atomically(
    tmp_path: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    guard = ClockGuard(tmp_path, clock, monotonic=mono)
    assert guard.start() == []
    doc = json.loads((tmp_path / CLOCK_FILE).read_text("utf-8"))
    assert doc == {"format": "bedside-clock/1", "high_water": "2026-06-10T08:00:00Z"}
    both(clock, mono, 30 * S)
    guard.tick()  # less than persist_every: not rewritten
    assert json.loads((tmp_path / CLOCK_FILE).read_text("utf-8"))["high_water"].endswith(
        "08:00:00Z"
    )
    both(clock, mono, 31 * S)
    guard.tick()
    assert json.loads((tmp_path / CLOCK_FILE).read_text("utf-8"))["high_water"].endswith(
        "08:01:01Z"
    )
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_backwards_while_closed_is_detected_at_start_and_recorded(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pids = [add_patient(ward, "a"), add_patient(ward, "b")]
    guard, reports = attach(ward, monotonic=mono)
    assert reports == []
    both(clock, mono, 2 * H)
    guard.tick()
    # Closed; the clock is set back 1 h below the last time seen (beyond the 5 min tolerance).
    clock.set(T0 + H)
    guard2, reports = attach(ward, monotonic=FakeMonotonic())
    assert [r.anomaly for r in reports] == ["backwards"]
    report = reports[0]
    assert report.at_start and report.delta_s == pytest.approx(-3600)
    assert report.high_water == T0 + 2 * H
    assert "1 h 00 min behind" in report.message
    for pid in pids:
        [event] = anomalies(ward, pid)
        assert event.anomaly == "backwards" and event.delta_s == pytest.approx(-3600)
        assert event.high_water == T0 + 2 * H and event.recorded_by == "SYS"
    assert guard2.behind and guard2.high_water == T0 + 2 * H


def test_small_steps_within_tolerance_are_not_reported(
    tmp_path: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    guard = ClockGuard(tmp_path, clock, monotonic=mono)
    guard.start()
    clock.advance(-4 * M)  # NTP-sized correction, under 5 min
    assert guard.tick() == []
    clock.set(T0)  # and forward again by 4 min
    assert guard.tick() == []
    again = ClockGuard(tmp_path, FakeClock(T0 + M), monotonic=FakeMonotonic())
    assert again.start() == []


def test_unreadable_clock_file_is_reported_not_fatal(
    tmp_path: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    (tmp_path / CLOCK_FILE).write_text('{"format": "bedside-clock/1", "high_water": "yesterday"}')
    reports = ClockGuard(tmp_path, clock, monotonic=mono).start()
    assert [r.anomaly for r in reports] == ["high_water_unreadable"]
    # It is rewritten with a valid mark.
    assert json.loads((tmp_path / CLOCK_FILE).read_text("utf-8"))["high_water"].startswith("2026")


# --------------------------------------------------------------------------- while running


def test_forward_jump_while_running_pauses_dosing_until_confirmed(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pid = add_patient(ward, "a")
    ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    guard, _ = attach(ward, monotonic=mono)
    both(clock, mono, 2 * H)
    assert guard.tick() == []
    # The wall clock jumps 7 h ahead while only 1 s passes: a dose would look allowed.
    clock.advance(7 * H)
    mono.advance(S)
    [report] = guard.tick()
    assert report.anomaly == "forward_jump" and report.delta_s == pytest.approx(7 * 3600 - 1)
    assert guard.dosing_suspended
    [event] = anomalies(ward, pid)
    assert event.anomaly == "forward_jump"
    plan = ward.plan_tocilizumab(pid)
    assert plan.hard_block and not plan.check.allowed
    assert "jumped forward" in plan.check.explanation
    assert not ward.budget(pid).allowed_now
    with pytest.raises(LimitError, match="Cannot give"):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    assert len([e for e in ward.record(pid).events if e.kind == "medication"]) == 1
    with pytest.raises(InputError, match="initials"):
        guard.confirm_time("")
    assert guard.dosing_suspended
    # A nurse checks the ward clock: it really is 9 h after the dose. Dosing resumes.
    guard.confirm_time("ef")
    assert not guard.dosing_suspended
    assert ward.plan_tocilizumab(pid).check.allowed
    doc = json.loads((ward.root / CLOCK_FILE).read_text("utf-8"))
    assert doc["confirmed"]["by"] == "EF"


def test_backwards_step_while_running_checks_doses_at_both_times(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pid = add_patient(ward, "a")
    guard, _ = attach(ward, monotonic=mono)
    # A dose at 12:00; the mark reaches 13:00.
    both(clock, mono, 4 * H)
    guard.tick()
    ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    both(clock, mono, H)
    guard.tick()
    # The clock is set back to 03:00: at 03:00 the 12:00 dose is 9 h "later", so the
    # interval check alone would allow a dose now.
    clock.set(T0 - 5 * H)
    mono.advance(S)
    [report] = guard.tick()
    assert report.anomaly == "backwards" and guard.behind
    assert guard.high_water == T0 + 5 * H
    unguarded = ward.budget(pid)  # computed with the guard: must not be allowed
    assert not unguarded.allowed_now
    plan = ward.plan_tocilizumab(pid)
    assert not plan.check.allowed and "min_interval" in plan.check.reasons
    assert "latest time Bedside has seen" in plan.check.explanation
    with pytest.raises(LimitError):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    # Without the guard the same check would have allowed it: that is what the hook prevents.
    ward.time_guard = None
    assert ward.plan_tocilizumab(pid).check.allowed
    ward.time_guard = guard


def test_stale_high_water_from_a_fast_clock_cannot_allow_a_dose(
    tmp_path: Path, mono: FakeMonotonic
) -> None:
    # The clock ran 10 h fast for a while (mark 18:00), then was corrected to 08:00.
    # A dose was given at 07:00 real time. Checking only at the later instant (the mark)
    # would put the dose 11 h back and allow another; checking both refuses it.
    root = tmp_path / "data"
    (root).mkdir()
    (root / CLOCK_FILE).write_text(
        '{"format": "bedside-clock/1", "high_water": "2026-06-10T18:00:00Z"}\n'
    )
    clock = FakeClock(T0 - H)
    ward = open_ward(root, clock)
    try:
        pid = add_patient(ward, "a")
        ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
        clock.set(T0)
        guard, reports = attach(ward, monotonic=mono)
        assert [r.anomaly for r in reports] == ["backwards"]
        plan = ward.plan_tocilizumab(pid)
        assert not plan.check.allowed and "min_interval" in plan.check.reasons
        # After a nurse confirms the clock, the stale mark is dropped; still 1 h after the dose.
        guard.confirm_time("EF")
        assert guard.high_water == T0
        assert not ward.plan_tocilizumab(pid).check.allowed
        clock.set(T0 + 7 * H)
        assert ward.plan_tocilizumab(pid).check.allowed
    finally:
        ward.close()


def test_back_dated_dose_is_restricted_by_the_guard_too(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pid = add_patient(ward, "a")
    guard, _ = attach(ward, monotonic=mono)
    clock.advance(7 * H)
    mono.advance(S)
    guard.tick()
    assert guard.dosing_suspended
    # After a forward jump a back-dated dose is blocked like a dose now: its time was read
    # off the same doubtful clock (issue 12: 3/3 back-dated doses passed).
    assert not ward.budget(pid, at=T0 - 2 * H).check.allowed
    assert not ward.budget(pid, at=clock.now() - 6 * M).check.allowed
    guard.confirm_time("EF")
    assert ward.budget(pid, at=clock.now() - 6 * M).check.allowed


def test_clock_set_back_then_back_dated_dose_needs_the_override(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pid = add_patient(ward, "a")
    guard, _ = attach(ward, monotonic=mono)
    ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    both(clock, mono, H)
    guard.tick()
    clock.set(clock.now() - 10 * H)  # the clock is set back 10 h
    mono.advance(S)
    guard.tick()
    with pytest.raises(LimitError):
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", effective_at=clock.now() - 6 * M)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_clock_file_falls_back_to_the_records(
    tmp_path: Path, mono: FakeMonotonic, damage: str
) -> None:
    root = tmp_path / "data"
    clock = FakeClock(T0)
    ward = open_ward(root, clock)
    try:
        pid = add_patient(ward, "a")
        ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
        ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    finally:
        ward.close()
    if damage == "missing":
        (root / CLOCK_FILE).unlink(missing_ok=True)
    else:
        (root / CLOCK_FILE).write_text("{not json")
    clock.set(T0 - 10 * H)  # clock set back while closed; the 12:00 dose looks 18 h away
    ward = open_ward(root, clock)
    try:
        guard, reports = attach(ward, monotonic=mono)
        assert "backwards" in [r.anomaly for r in reports]
        assert guard.high_water is not None and guard.high_water >= T0
        with pytest.raises(LimitError):
            ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    finally:
        ward.close()


def test_sleep_and_resume_is_not_an_anomaly_and_timers_catch_up(
    ward: Ward, clock: FakeClock, mono: FakeMonotonic
) -> None:
    pid = add_patient(ward, "a")
    ward.assess_crs(pid, {"temperature_c": 38.6, "hypotension": True}, recorded_by="AB")
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    ward.chart(pid, "vitals", recorded_by="AB", temperature_c=38.6)
    guard, _ = attach(ward, monotonic=mono)
    record = ward.record(pid)
    protocol = ward.protocol_for(record)
    before = {i.kind: i for i in derive_due(record, protocol, clock.now())}
    assert before["tocilizumab_reassess"].state == "upcoming"
    # The laptop sleeps for 9 h; the suspend-aware monotonic clock counts it. No tick ran.
    both(clock, mono, 9 * H)
    assert guard.tick() == []
    assert anomalies(ward, pid) == []
    after = {i.kind: i for i in derive_due(record, protocol, clock.now())}
    assert after["tocilizumab_reassess"].state == "overdue"
    assert after["tocilizumab_reassess"].due_at == before["tocilizumab_reassess"].due_at
    assert after["vitals_next"].state == "overdue"  # febrile: 2 h, 7 h ago
    assert after["crs_escalation"].state == "upcoming"


def test_slow_slide_backwards_is_reported_once(
    tmp_path: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    guard = ClockGuard(tmp_path, clock, monotonic=mono)
    guard.start()
    reports = []
    for _ in range(3):
        clock.advance(-4 * M)  # each step under the tolerance
        mono.advance(S)
        reports.extend(guard.tick())
    assert [r.anomaly for r in reports] == ["backwards"]
    clock.advance(-M)
    assert guard.tick() == []


def test_read_only_ward_writes_nothing(
    tmp_path: Path, clock: FakeClock, mono: FakeMonotonic
) -> None:
    root = tmp_path / "data"
    writer = open_ward(root, clock)
    add_patient(writer, "a")
    writer.close()
    reader = open_ward(root, clock, read_only=True)
    guard, _ = attach(reader, monotonic=mono)
    clock.advance(3 * H)
    mono.advance(S)
    assert [r.anomaly for r in guard.tick()] == ["forward_jump"]
    assert not (root / CLOCK_FILE).exists()


def test_default_monotonic_source_counts_forward() -> None:
    source = suspend_aware_monotonic()
    a = source()
    assert source() >= a


@pytest.mark.parametrize(
    ("zone", "change_utc"),
    [
        ("Europe/London", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
        ("Australia/Sydney", datetime(2026, 10, 3, 16, 0, tzinfo=UTC)),
    ],
)
def test_a_dst_change_is_not_a_clock_jump(
    tmp_path: Path, mono: FakeMonotonic, zone: str, change_utc: datetime
) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    clock = FakeClock(change_utc - 30 * M)
    guard = ClockGuard(tmp_path, clock, monotonic=mono)
    guard.start()
    offset_before = clock.now().astimezone(tz).utcoffset()
    both(clock, mono, H)  # local wall time moves by 0 or 2 hours; UTC by exactly 1
    assert clock.now().astimezone(tz).utcoffset() != offset_before
    assert guard.tick() == []

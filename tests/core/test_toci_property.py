"""Property tests of ``bedside.clinical.rules.tocilizumab_check`` against a brute-force oracle.

The oracle is deliberately simple and independent of the engine: it sorts all doses
(the recorded ones plus the proposed one) as UTC instants and checks the three rules of
``design/validation-vectors.md`` literally -- every consecutive gap is at least 8 h, no
window (d - 24 h, d] ending at a dose d holds more than 3 doses, and the course holds
at most 4 doses.

Histories are drawn at one-second resolution with gaps clustered on the 8 h / 24 h
boundaries (+-0..2 s), in any order, written in arbitrary UTC offsets and in the
Europe/London and America/New_York zones around their 2026 daylight-saving changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.rules import TocilizumabCheckInput, tocilizumab_check

MIN_GAP = timedelta(hours=8)
WINDOW = timedelta(hours=24)
MAX_PER_WINDOW = 3
MAX_TOTAL = 4
ONE_S = timedelta(seconds=1)
H = 3600

PROTOCOL = load_default_protocol()
SETTINGS = settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Instants near the 2026 DST changes (London 29 Mar / 25 Oct, New York 8 Mar / 1 Nov) and one
# ordinary day.
ANCHORS = [
    datetime(2026, 3, 28, 12, tzinfo=UTC),
    datetime(2026, 10, 24, 12, tzinfo=UTC),
    datetime(2026, 3, 7, 12, tzinfo=UTC),
    datetime(2026, 10, 31, 12, tzinfo=UTC),
    datetime(2026, 5, 1, 0, tzinfo=UTC),
]
ZONES: list[tzinfo] = [ZoneInfo("Europe/London"), ZoneInfo("America/New_York")]


# --------------------------------------------------------------------------- the oracle


def _utc(values: list[datetime]) -> list[datetime]:
    return [v.astimezone(UTC) for v in values]


def oracle_violations(recorded: list[datetime], at: datetime) -> set[str]:
    """Which rules the whole set (recorded + proposed) breaks, checked literally."""
    doses = sorted(_utc([*recorded, at]))
    broken: set[str] = set()
    if any(b - a < MIN_GAP for a, b in pairwise(doses)):
        broken.add("min_interval")
    for d in doses:
        if sum(1 for x in doses if d - WINDOW < x <= d) > MAX_PER_WINDOW:
            broken.add("max_per_24h")
    if len(doses) > MAX_TOTAL:
        broken.add("max_total")
    return broken


def oracle_allows(recorded: list[datetime], at: datetime) -> bool:
    return not oracle_violations(recorded, at)


def oracle_next(recorded: list[datetime], at: datetime) -> datetime | None:
    """Earliest allowed instant >= ``at`` (None when the course total is reached).

    The set of allowed instants is a union of intervals closed on the left, whose left
    ends are ``at`` itself, r + 8 h (a dose r leaves the minimum interval) or r + 24 h
    (a dose r leaves the window); so the earliest allowed instant is one of those.
    """
    if len(recorded) >= MAX_TOTAL:
        return None
    rec = _utc(recorded)
    start = at.astimezone(UTC)
    candidates = sorted({start, *(r + MIN_GAP for r in rec), *(r + WINDOW for r in rec)})
    return next(c for c in candidates if c >= start and oracle_allows(rec, c))


def involving_violations(recorded: list[datetime], at: datetime) -> set[str]:
    """Rules broken by constraints that involve the proposed dose itself."""
    rec = _utc(recorded)
    a = at.astimezone(UTC)
    everything = [*rec, a]
    broken: set[str] = set()
    if any(abs(r - a) < MIN_GAP for r in rec):
        broken.add("min_interval")
    for end in everything:
        if end - WINDOW < a <= end and (
            sum(1 for x in everything if end - WINDOW < x <= end) > MAX_PER_WINDOW
        ):
            broken.add("max_per_24h")
    if len(everything) > MAX_TOTAL:
        broken.add("max_total")
    return broken


def last_24h(recorded: list[datetime], at: datetime) -> int:
    """Recorded doses t with at - 24 h < t <= at (elapsed time: arithmetic in UTC)."""
    a = at.astimezone(UTC)
    return sum(1 for r in _utc(recorded) if a - WINDOW < r <= a)


def run(recorded: list[datetime], at: datetime):
    inp = TocilizumabCheckInput.model_validate({"given_at": recorded, "at": at})
    return tocilizumab_check(inp, PROTOCOL)


# --------------------------------------------------------------------------- strategies


def near(hours: list[int]) -> st.SearchStrategy[int]:
    """Seconds within +-2 s of one of ``hours``."""
    return st.sampled_from(hours).flatmap(lambda h: st.integers(-2, 2).map(lambda j: h * H + j))


fixed_offsets = st.integers(-48, 56).map(lambda k: timezone(timedelta(minutes=15 * k)))
zones = st.one_of(fixed_offsets, st.sampled_from(ZONES))
start_instants = st.builds(
    lambda anchor, s: anchor + timedelta(seconds=s),
    st.sampled_from(ANCHORS),
    st.one_of(st.integers(0, 2 * 24 * H), near([0, 4, 8, 12, 13, 14])),
)
valid_gaps = st.one_of(
    near([8, 12, 16, 24]).map(lambda s: max(s, 8 * H)),
    st.integers(8 * H, 72 * H),
)
any_gaps = st.one_of(near([0, 1, 4, 8, 12, 16, 24]).map(abs), st.integers(0, 72 * H))
at_offsets = st.one_of(
    near([-32, -24, -16, -8, 0, 8, 16, 24, 32]),
    st.integers(-48 * H, 96 * H),
)


@st.composite
def cases(draw: st.DrawFn, *, valid: bool, max_doses: int = 4) -> tuple[list[datetime], datetime]:
    """A recorded history (shuffled, mixed zones) and a proposed time."""
    n = draw(st.integers(0, max_doses))
    start = draw(start_instants)
    times: list[datetime] = []
    t = start
    for i in range(n):
        if i:
            t = t + timedelta(seconds=draw(valid_gaps if valid else any_gaps))
        times.append(t)
    anchor = draw(st.sampled_from(times)) if times else start
    at = anchor + timedelta(seconds=draw(at_offsets))
    shuffled = draw(st.permutations(times))
    recorded = [x.astimezone(draw(zones)) for x in shuffled]
    return recorded, at.astimezone(draw(zones))


def assert_valid_history(recorded: list[datetime]) -> None:
    doses = sorted(_utc(recorded))
    assert all(b - a >= MIN_GAP for a, b in pairwise(doses))
    assert len(doses) <= MAX_TOTAL


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(cases(valid=True))
def test_matches_oracle_on_valid_histories(case: tuple[list[datetime], datetime]) -> None:
    recorded, at = case
    assert_valid_history(recorded)
    result = run(recorded, at)
    expected = oracle_violations(recorded, at)

    assert result.allowed == (not expected)
    assert set(result.reasons) == expected
    assert len(result.reasons) == len(set(result.reasons))
    assert result.total == len(recorded)
    assert result.doses_last_24h == last_24h(recorded, at)

    # Compare instants in UTC: inter-zone == is always False for a time in a DST fold (PEP 495).
    at_utc = at.astimezone(UTC)
    nxt = result.next_allowed_at
    if nxt is not None:
        assert nxt.tzinfo is not None and nxt.utcoffset() is not None
        nxt = nxt.astimezone(UTC)
    if result.allowed:
        assert nxt == at_utc
    if nxt is not None:
        assert nxt >= at_utc
        assert oracle_allows(recorded, nxt)
        if nxt > at_utc:
            assert not oracle_allows(recorded, nxt - ONE_S)
        assert nxt == oracle_next(recorded, at)
    else:
        assert len(recorded) >= MAX_TOTAL
        for later in (at_utc, at_utc + MIN_GAP, at_utc + WINDOW, at_utc + timedelta(days=365)):
            assert not oracle_allows(recorded, later)


@settings(SETTINGS, max_examples=1500)
@given(cases(valid=False, max_doses=6))
def test_never_allows_what_the_rules_forbid(case: tuple[list[datetime], datetime]) -> None:
    """Any history, even one charted in breach of the limits (back-charting, overrides).

    The contract's rule is stated for the whole set; an engine may or may not hold an old
    breach between recorded doses against a new dose. Both readings must refuse whatever
    breaks a rule that involves the proposed dose, and neither may invent a reason.
    """
    recorded, at = case
    result = run(recorded, at)
    must = involving_violations(recorded, at)
    may = oracle_violations(recorded, at)
    assert must <= set(result.reasons) <= may
    assert result.allowed == (not result.reasons)
    assert result.total == len(recorded)
    assert result.doses_last_24h == last_24h(recorded, at)
    if must:
        assert not result.allowed
    nxt = result.next_allowed_at
    if nxt is not None:
        assert nxt.astimezone(UTC) >= at.astimezone(UTC)
        assert not involving_violations(recorded, nxt)
    else:
        assert len(recorded) >= MAX_TOTAL


@settings(SETTINGS, max_examples=500)
@given(cases(valid=True), st.data())
def test_order_and_zone_do_not_matter(
    case: tuple[list[datetime], datetime], data: st.DataObject
) -> None:
    recorded, at = case
    a = run(recorded, at)
    b = run(sorted(_utc(recorded)), at.astimezone(UTC))
    c = run(
        [r.astimezone(data.draw(zones)) for r in reversed(recorded)],
        at.astimezone(data.draw(zones)),
    )
    for other in (b, c):
        assert other.allowed == a.allowed
        assert set(other.reasons) == set(a.reasons)
        assert other.next_allowed_at == a.next_allowed_at
        assert other.doses_last_24h == a.doses_last_24h
        assert other.total == a.total


# --------------------------------------------------------------------------- oracle self-check


T0 = datetime(2026, 4, 1, tzinfo=UTC)


def hours(*hs: float) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in hs]


@pytest.mark.parametrize(
    ("recorded", "at", "broken", "nxt"),
    [
        (hours(), T0, set(), T0),
        (hours(0), T0 + MIN_GAP - ONE_S, {"min_interval"}, T0 + MIN_GAP),
        (hours(0, 8, 16), T0 + WINDOW, set(), T0 + WINDOW),
        (hours(0, 8, 16), T0 + WINDOW - ONE_S, {"min_interval", "max_per_24h"}, T0 + WINDOW),
        (hours(0, 8, 16, 24), T0 + timedelta(hours=32), {"max_total"}, None),
        (hours(8, 16, 24), T0 + ONE_S, {"min_interval", "max_per_24h"}, T0 + timedelta(hours=32)),
        (hours(0, 15), T0 + timedelta(hours=8), {"min_interval"}, T0 + timedelta(hours=23)),
    ],
)
def test_oracle_on_hand_worked_cases(
    recorded: list[datetime], at: datetime, broken: set[str], nxt: datetime | None
) -> None:
    """The oracle itself, on cases worked by hand (also in tocilizumab_check.json)."""
    assert oracle_violations(recorded, at) == broken
    assert oracle_next(recorded, at) == nxt

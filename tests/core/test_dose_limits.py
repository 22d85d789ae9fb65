"""Drugs with limits as protocol data: one generic dose check for every limited drug.

* the protocol's ``dose_limits`` blocks (tocilizumab's numbers unchanged; anakinra only
  with its sourced 100 mg q6h, everything else LOCAL/unverified or absent);
* the generic check (:func:`bedside.clinical.rules.limits_check`) against a brute-force oracle for
  each drug's numbers, and table cases for interval, 24 h, course, cap and mg/kg;
* the ward refuses a limited drug outside the dose path, and refuses a dose past a hard
  limit for any limited drug;
* a third drug added as pure protocol data (a temporary protocol file) is enforced with
  no code change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bedside.clinical.protocol as protocol_module
from bedside.clinical.doses import dose_budget, limits_of
from bedside.clinical.protocol import (
    DEFAULT_PROTOCOL,
    DoseLimits,
    load_default_protocol,
    load_protocol,
    parse_protocol,
)
from bedside.clinical.record import CORRECTION_REASONS, Medication
from bedside.clinical.rules import limited_dose, limits_check
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError, LimitError, ProtocolError
from bedside.ward.service import Ward, open_ward

P = load_default_protocol()
BASE: dict[str, Any] = json.loads(DEFAULT_PROTOCOL.read_text("utf-8"))
T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


# --------------------------------------------------------------------------- protocol data


def test_tocilizumab_numbers_moved_unchanged() -> None:
    t = P.dose_limits["tocilizumab"]
    assert P.tocilizumab is t and t.basis == "mg/kg"
    got = {
        "mg_per_kg": (t.mg_per_kg, 8, "S2, S3, S10, SEED", True),
        "low_weight_threshold_kg": (t.low_weight_threshold_kg, 30, "S10", True),
        "mg_per_kg_below_threshold": (t.mg_per_kg_below_threshold, 12, "S10", True),
        "max_dose_mg": (t.max_dose_mg, 800, "S2, S3, S10", True),
        "concentration_mg_per_ml": (t.concentration_mg_per_ml, 20, "S10", True),
        "min_interval": (t.min_interval, 8, "S2, S3, SEED", True),
        "max_per_24h": (t.max_per_24h, 3, "S2, S3, SEED", True),
        "max_total": (t.max_total, 4, "S2, S3, SEED", True),
        "window_h": (t.window_h, 24, "S2, S3, SEED", True),
        "weight_max_age_h": (t.weight_max_age_h, 72, "LOCAL", False),
    }
    for name, (item, value, source, verified) in got.items():
        assert item is not None, name
        assert (item.value, item.source, item.verified) == (value, source, verified), name
    assert t.min_interval is not None and t.min_interval.enforcement == "soft"
    assert t.max_per_24h is not None and t.max_per_24h.enforcement == "soft"
    assert t.max_total is not None and t.max_total.enforcement == "hard"


def test_anakinra_carries_only_its_sourced_dose() -> None:
    a = P.dose_limits["anakinra"]
    assert a.basis == "fixed"
    assert a.dose_mg is not None and a.dose_mg.value == 100 and a.dose_mg.source == "S2"
    assert a.min_interval is not None and a.min_interval.value == 6
    # The reference marks the NCCN transcription S (secondary): nothing anakinra is verified.
    numbers = [a.dose_mg, a.min_interval, a.max_per_24h, a.window_h, a.override_policy]
    assert all(n is not None and not n.verified for n in numbers)
    # Every number either cites the q6h row (S2) or is ward policy.
    assert {n.source for n in numbers if n is not None} <= {"S2", "LOCAL"}
    # No route, cap, course maximum or concentration is sourced: absent, not invented.
    assert a.route is None and a.max_dose_mg is None and a.max_total is None
    assert a.concentration_mg_per_ml is None


def test_siltuximab_is_not_shipped() -> None:
    assert "siltuximab" not in P.dose_limits
    assert P.limited_drug("other", "siltuximab") is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"basis": "mg/kg"}, "mg_per_kg"),
        ({"dose_mg": None, "basis": "fixed"}, "dose_mg"),
        ({"window_h": None}, "window_h"),
        ({"min_interval": None, "max_per_24h": None, "window_h": None}, "at least one limit"),
        ({"max_dose_mg": {"value": 50, "unit": "mg", "source": "LOCAL", "verified": False}}, ""),
    ],
)
def test_incoherent_limits_are_refused(change: dict[str, Any], needle: str) -> None:
    block = {**BASE["dose_limits"]["anakinra"], **change}
    block = {k: v for k, v in block.items() if v is not None}
    with pytest.raises(ValueError, match=needle or "dose_mg is above max_dose_mg"):
        DoseLimits.model_validate(block)


def test_protocol_without_tocilizumab_block_is_refused() -> None:
    data = json.loads(json.dumps(BASE))
    del data["dose_limits"]["tocilizumab"]
    with pytest.raises(ProtocolError, match="dose_limits"):
        parse_protocol(json.dumps(data))


def test_a_name_cannot_belong_to_two_drugs() -> None:
    data = json.loads(json.dumps(BASE))
    data["dose_limits"]["anakinra"]["names"] = ["tocilizumab"]
    with pytest.raises(ProtocolError, match="already names"):
        parse_protocol(json.dumps(data))


@pytest.mark.parametrize(
    ("drug", "name", "key"),
    [
        ("anakinra", None, "anakinra"),
        ("tocilizumab", None, "tocilizumab"),
        ("other", "Anakinra", "anakinra"),
        ("other", "  anakinra 100 mg ", "anakinra"),
        ("other", "TOCILIZUMAB", "tocilizumab"),
        ("other", "anakinrax", None),
        ("other", "paracetamol", None),
        ("dexamethasone", None, None),
    ],
)
def test_limited_drug_by_key_or_typed_name(drug: str, name: str | None, key: str | None) -> None:
    assert P.limited_drug(drug, name) == key


# --------------------------------------------------------------------------- the generic check

DRUGS = {
    "tocilizumab": P.dose_limits["tocilizumab"],
    "anakinra": P.dose_limits["anakinra"],
    "anakinra+course": P.dose_limits["anakinra"].model_copy(
        update={"max_total": P.tocilizumab.max_total.model_copy(update={"value": 6})}  # type: ignore[union-attr]
    ),
}


def _numbers(limits: DoseLimits) -> tuple[timedelta, timedelta, int, int | None]:
    assert limits.min_interval and limits.window_h and limits.max_per_24h
    return (
        timedelta(hours=limits.min_interval.value),
        timedelta(hours=limits.window_h.value),
        limits.max_per_24h.value,
        limits.max_total.value if limits.max_total else None,
    )


def oracle(limits: DoseLimits, recorded: list[datetime], at: datetime) -> set[str]:
    """Rules the whole set (recorded + proposed) breaks, checked literally."""
    gap, window, most, total = _numbers(limits)
    doses = sorted([*recorded, at])
    broken: set[str] = set()
    if any(b - a < gap for a, b in pairwise(doses)):
        broken.add("min_interval")
    if any(sum(1 for x in doses if d - window < x <= d) > most for d in doses):
        broken.add("max_per_24h")
    if total is not None and len(doses) > total:
        broken.add("max_total")
    return broken


def _valid_history(limits: DoseLimits, gaps: list[int]) -> list[datetime]:
    """A history that respects every limit: each next dose kept only when allowed."""
    out: list[datetime] = []
    t = T0
    for g in gaps:
        t = t + timedelta(minutes=g)
        if not oracle(limits, out, t):
            out.append(t)
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drug=st.sampled_from(sorted(DRUGS)),
    gaps=st.lists(st.integers(0, 30 * 60), max_size=8),
    offset_min=st.integers(-30 * 60, 50 * 60),
)
def test_generic_check_matches_the_oracle(drug: str, gaps: list[int], offset_min: int) -> None:
    limits = DRUGS[drug]
    recorded = _valid_history(limits, gaps)
    at = T0 + timedelta(minutes=offset_min)
    result = limits_check(limits, recorded, at, P)
    broken = oracle(limits, recorded, at)
    # Allowed exactly when adding the dose breaks nothing (the history itself is valid).
    assert result.allowed == (not broken)
    assert set(result.reasons) <= {"min_interval", "max_per_24h", "max_total"}
    if result.allowed:
        assert result.next_allowed_at == at
    elif result.next_allowed_at is not None:
        assert result.next_allowed_at > at
        assert not oracle(limits, recorded, result.next_allowed_at)
    else:
        _, _, _, total = _numbers(limits)
        assert total is not None and len(recorded) >= total
    _, window, _, _ = _numbers(limits)
    assert result.doses_last_24h == sum(1 for d in recorded if at - window < d <= at)


def _at(*hours: float) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in hours]


@pytest.mark.parametrize(
    ("drug", "given", "at_h", "reasons", "hard"),
    [
        # interval
        ("tocilizumab", (0,), 8 - 1 / 3600, ["min_interval"], False),
        ("tocilizumab", (0,), 8, [], False),
        ("anakinra", (0,), 6 - 1 / 3600, ["min_interval"], False),
        ("anakinra", (0,), 6, [], False),
        ("anakinra", (10,), 5, ["min_interval"], False),  # back-charting before a later dose
        # rolling 24 h (doses already given closer together, on an override)
        ("tocilizumab", (0, 8, 16), 24, [], False),
        ("tocilizumab", (0, 4, 12), 20, ["max_per_24h"], False),
        ("anakinra", (0, 6, 12, 18), 24, [], False),
        ("anakinra", (0, 3, 9, 15), 21, ["max_per_24h"], False),
        # course
        ("tocilizumab", (0, 8, 16, 40), 80, ["max_total"], True),
        ("anakinra", tuple(6 * i for i in range(12)), 72, [], False),  # no course maximum
        ("anakinra+course", tuple(8 * i for i in range(6)), 60, ["max_total"], True),
    ],
)
def test_limits_table(
    drug: str, given: tuple[float, ...], at_h: float, reasons: list[str], hard: bool
) -> None:
    result = limits_check(DRUGS[drug], _at(*given), _at(at_h)[0], P)
    assert result.reasons == reasons
    assert result.hard_limit is hard
    assert result.allowed is (not reasons)
    if "max_total" in reasons:
        assert result.next_allowed_at is None


@pytest.mark.parametrize(
    ("weight", "dose", "capped", "volume"),
    [(70.0, 560.0, False, 28.0), (25.0, 300.0, False, 15.0), (120.0, 800.0, True, 40.0)],
)
def test_mg_per_kg_and_cap(weight: float, dose: float, capped: bool, volume: float) -> None:
    r = limited_dose(P.tocilizumab, weight, P)
    assert (r.dose_mg, r.capped, r.volume_ml) == (dose, capped, volume)
    assert r.dose_mg <= (r.max_dose_mg or 0)


@given(weight=st.floats(2.5, 350, allow_nan=False))
def test_mg_per_kg_dose_never_passes_the_cap(weight: float) -> None:
    r = limited_dose(P.tocilizumab, weight, P)
    assert r.max_dose_mg == 800 and r.dose_mg <= 800
    rate = 12 if weight < 30 else 8
    assert r.dose_mg == pytest.approx(min(weight * rate, 800))
    assert r.capped == (weight * rate > 800)


def test_fixed_dose_ignores_weight_and_has_no_volume() -> None:
    a = P.dose_limits["anakinra"]
    for weight in (None, 40.0, 140.0):
        r = limited_dose(a, weight, P)
        assert (r.dose_mg, r.capped, r.volume_ml, r.mg_per_kg) == (100.0, False, None, None)
        assert "[S2]" in r.explanation


def test_a_fixed_dose_above_its_cap_cannot_be_written_as_protocol() -> None:
    block = {
        **BASE["dose_limits"]["anakinra"],
        "max_dose_mg": {"value": 80, "unit": "mg", "source": "LOCAL", "verified": False},
    }
    with pytest.raises(ValueError, match="above max_dose_mg"):
        DoseLimits.model_validate(block)


# --------------------------------------------------------------------------- the ward


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Iterator[Ward]:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def _add(ward: Ward, clock: FakeClock, **kw: Any) -> str:
    fields: dict[str, Any] = {
        "patient_id": "p1",
        "mrn": "MRN-1",
        "name": "Test Person",
        "date_of_birth": "1960-05-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": clock.now(),
        "product": "ide-cel",
    }
    fields.update(kw)
    return ward.create_patient(recorded_by="AB", **fields)


def _meds(ward: Ward, pid: str) -> list[Medication]:
    return [e for e in ward.record(pid).events if isinstance(e, Medication)]


@pytest.mark.parametrize(
    "fields",
    [
        {"drug": "anakinra"},
        {"drug": "tocilizumab"},
        {"drug": "other", "drug_name": "Anakinra"},
        {"drug": "other", "drug_name": "tocilizumab 400 mg"},
    ],
)
def test_limited_drug_is_refused_outside_the_dose_path(
    ward: Ward, clock: FakeClock, fields: dict[str, Any]
) -> None:
    pid = _add(ward, clock)
    with pytest.raises(InputError) as info:
        ward.chart(
            pid,
            "medication",
            recorded_by="AB",
            dose=100,
            unit="mg",
            route="SC",
            given_by="AB",
            **fields,
        )
    msg = str(info.value)
    assert msg.startswith("drug: ") and "Give dose (F4)" in msg and "Nothing was recorded" in msg
    assert _meds(ward, pid) == []
    # Drugs without dose limits still chart as before.
    ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="dexamethasone",
        dose=10,
        unit="mg",
        route="IV",
        given_by="AB",
    )
    assert [m.drug for m in _meds(ward, pid)] == ["dexamethasone"]


def test_anakinra_through_the_dose_path(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    plan = ward.plan_dose(pid, "anakinra")
    assert plan.dose.dose_mg == 100 and plan.route is None and plan.budget.allowed_now
    with pytest.raises(InputError, match=r"^route: "):
        ward.give_dose(pid, "anakinra", given_by="AB", checked_by="CD")
    assert _meds(ward, pid) == []
    first = ward.give_dose(pid, "anakinra", given_by="AB", checked_by="CD", route="SC")
    assert (first.drug, first.dose, first.route, first.every_h) == ("anakinra", 100, "SC", 6)
    clock.advance(5 * H)
    budget = dose_budget(ward.record(pid), P, clock.now(), "anakinra")
    assert not budget.allowed_now and budget.needs_override == ("min_interval",)
    assert budget.needs_prescriber and not budget.hard_block
    with pytest.raises(LimitError, match="min_interval"):
        ward.give_dose(pid, "anakinra", given_by="AB", checked_by="CD", route="SC")
    with pytest.raises(InputError) as info:
        ward.give_dose(
            pid,
            "anakinra",
            given_by="AB",
            checked_by="CD",
            route="SC",
            override={"reason": "", "second_nurse": "ab"},
        )
    text = str(info.value)
    assert "override.reason" in text and "override.second_nurse" in text
    assert "override.prescriber" in text
    second = ward.give_dose(
        pid,
        "anakinra",
        given_by="AB",
        checked_by="CD",
        route="SC",
        override={"reason": "worsening ICANS, ordered", "second_nurse": "EF", "prescriber": "Dr X"},
    )
    assert second.override is not None and second.override.limits == ["min_interval"]
    # Tocilizumab's budget is not touched by anakinra doses.
    assert ward.budget(pid).total == 0


def test_hard_limit_refused_for_any_limited_drug(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(json.dumps(BASE))
    data["version"] = "test-anakinra-course"
    data["dose_limits"]["anakinra"]["max_total"] = {
        "value": 5,
        "enforcement": "hard",
        "source": "LOCAL",
        "verified": False,
    }
    ward = _ward_with_protocol(tmp_path, clock, monkeypatch, data)
    try:
        pid = _add(ward, clock, protocol_id=data["protocol_id"], protocol_version=data["version"])
        for _ in range(5):
            ward.give_dose(pid, "anakinra", given_by="AB", checked_by="CD", route="IV")
            clock.advance(7 * H)
        plan = ward.plan_dose(pid, "anakinra")
        assert plan.hard_block and plan.budget.next_allowed_at is None
        override = {"reason": "consultant wants more", "second_nurse": "EF", "prescriber": "Dr X"}
        with pytest.raises(LimitError, match="course maximum of 5 doses reached"):
            ward.give_dose(
                pid, "anakinra", given_by="AB", checked_by="CD", route="IV", override=override
            )
        assert len(_meds(ward, pid)) == 5
    finally:
        ward.close()


def _ward_with_protocol(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, data: dict[str, Any]
) -> Ward:
    """A ward whose protocol folder holds ``data`` (written as a file: pure data)."""
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "local.json").write_text(json.dumps(data), "utf-8")
    load_protocol(folder / "local.json")  # it is a valid protocol file
    monkeypatch.setattr(protocol_module, "PROTOCOL_DIR", folder)
    return open_ward(tmp_path / "data", clock)


THIRD_DRUG = {
    "label": "Testamab",
    "names": ["testamab-x"],
    "basis": "mg/kg",
    "route": {"value": "IV", "source": "LOCAL", "verified": False},
    "mg_per_kg": {"value": 5, "unit": "mg/kg", "source": "LOCAL", "verified": False},
    "max_dose_mg": {"value": 400, "unit": "mg", "source": "LOCAL", "verified": False},
    "concentration_mg_per_ml": {"value": 10, "unit": "mg/mL", "source": "LOCAL", "verified": False},
    "plausible_weight_min_kg": {"value": 2.5, "unit": "kg", "source": "LOCAL", "verified": False},
    "plausible_weight_max_kg": {"value": 350, "unit": "kg", "source": "LOCAL", "verified": False},
    "min_interval": {
        "value": 12,
        "unit": "h",
        "enforcement": "hard",
        "source": "LOCAL",
        "verified": False,
    },
    "max_total": {"value": 2, "enforcement": "hard", "source": "LOCAL", "verified": False},
    "override_requires_second_nurse": True,
    "override_policy": {"requires_prescriber": True, "source": "LOCAL", "verified": False},
}
"""A made-up drug with made-up LOCAL numbers: test data only, never shipped."""


def test_third_drug_as_pure_protocol_data_is_enforced(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(json.dumps(BASE))
    data["version"] = "test-third-drug"
    data["dose_limits"]["testamab"] = THIRD_DRUG
    ward = _ward_with_protocol(tmp_path, clock, monkeypatch, data)
    try:
        pid = _add(
            ward,
            clock,
            weight_kg=100.0,
            protocol_id=data["protocol_id"],
            protocol_version=data["version"],
        )
        protocol = ward.protocol_for(ward.record(pid))
        assert limits_of(protocol, "testamab").label == "Testamab"
        # Outside the dose path, by any of its names: refused.
        for name in ("Testamab", "testamab-x 500 mg"):
            with pytest.raises(InputError, match="Give dose"):
                ward.chart(
                    pid,
                    "medication",
                    recorded_by="AB",
                    drug="other",
                    drug_name=name,
                    dose=500,
                    unit="mg",
                    route="IV",
                    given_by="AB",
                )
        # Through the dose path: 5 mg/kg x 100 kg = 500 mg, capped at 400 mg (confirmed).
        plan = ward.plan_dose(pid, "testamab")
        assert plan.dose.capped and plan.dose.dose_mg == 400 and plan.dose.volume_ml == 40
        dose = ward.give_dose(
            pid, "testamab", given_by="AB", checked_by="CD", weight_confirmed=True
        )
        assert (dose.drug, dose.drug_name, dose.dose, dose.route) == (
            "other",
            "Testamab",
            400,
            "IV",
        )
        # Its hard interval: refused even with an override.
        clock.advance(11 * H)
        override = {"reason": "asked by the consultant", "second_nurse": "EF", "prescriber": "Dr X"}
        with pytest.raises(LimitError, match="less than 12 h from another dose"):
            ward.give_dose(
                pid,
                "testamab",
                given_by="AB",
                checked_by="CD",
                weight_confirmed=True,
                override=override,
            )
        clock.advance(1 * H)
        second = ward.give_dose(
            pid, "testamab", given_by="AB", checked_by="CD", weight_confirmed=True
        )
        # Moving that dose back to 1 h after the first would break the hard interval.
        with pytest.raises(InputError, match="hard limit"):
            ward.correct(
                pid,
                second.id,
                action="amend",
                amended={"effective_at": (T0 + H).isoformat()},
                reason="time typed wrong",
                recorded_by="AB",
                reason_code=next(iter(CORRECTION_REASONS)),
                second_nurse="CD",
            )
        # Its course maximum (2): the third dose is refused.
        clock.advance(24 * H)
        budget = dose_budget(ward.record(pid), protocol, clock.now(), "testamab")
        assert budget.total == 2 and budget.course_complete and budget.hard_block
        with pytest.raises(LimitError, match="course maximum of 2 doses"):
            ward.give_dose(pid, "testamab", given_by="AB", checked_by="CD", weight_confirmed=True)
        assert len(_meds(ward, pid)) == 2
    finally:
        ward.close()


def test_amendment_cannot_bypass_the_dose_path(ward: Ward, clock: FakeClock) -> None:
    pid = _add(ward, clock)
    dex = ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        drug="dexamethasone",
        dose=10,
        unit="mg",
        route="IV",
        given_by="AB",
    )
    amend = {
        "reason": "wrong drug charted",
        "recorded_by": "AB",
        "reason_code": next(iter(CORRECTION_REASONS)),
    }
    with pytest.raises(InputError, match="Give dose"):
        ward.correct(
            pid,
            dex.id,
            action="amend",
            amended={"drug": "anakinra", "dose": 100},
            second_nurse="CD",
            **amend,
        )
    # A tocilizumab dose cannot be amended above its cap.
    first = ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    with pytest.raises(InputError, match="800 mg per dose"):
        ward.correct(
            pid, first.id, action="amend", amended={"dose": 900}, second_nurse="CD", **amend
        )
    assert [m.drug for m in _meds(ward, pid)] == ["dexamethasone", "tocilizumab"]

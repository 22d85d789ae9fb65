"""A realistic demo ward, written through the same service the application uses.

``python -m bedside demo --data-dir DIR`` writes seven fictional patients at different
stages, relative to the current time. Every event is charted through :class:`Ward`
(so every dose passes the dose checks) with a clock stepped through the history.
Running it again on the same directory leaves existing demo patients untouched
(idempotent) and exits 0. All names are fictional and marked DEMO.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.clinical.crsform import fever_masking, last_assessment
from bedside.clinical.record import effective_events
from bedside.clinical.rules import CrsInput, crs_grade
from bedside.common.clock import Clock, FakeClock, SystemClock
from bedside.common.errors import BedsideError
from bedside.ward.service import Ward, open_ward

logger = logging.getLogger(__name__)

H = timedelta(hours=1)
M = timedelta(minutes=1)
DEMO_PREFIX = "demo-"


@dataclass
class _Builder:
    """Charts events at past instants by stepping a fake clock (recorded 2 min later)."""

    ward: Ward
    clock: FakeClock
    now: datetime
    pid: str = ""

    def at(self, offset: timedelta) -> datetime:
        when = self.now + offset
        self.clock.set(when + 2 * M)
        return when

    def vitals(
        self, offset: timedelta, temp: float, hr: int, sbp: int, dbp: int, spo2: int, **kw: Any
    ) -> None:
        when = self.at(offset)
        self.ward.chart(
            self.pid,
            "vitals",
            recorded_by=kw.pop("by", "RN"),
            effective_at=when,
            temperature_c=temp,
            heart_rate=hr,
            systolic_mmhg=sbp,
            diastolic_mmhg=dbp,
            spo2_pct=spo2,
            respiratory_rate=kw.pop("rr", 18),
            **kw,
        )

    def crs(self, offset: timedelta, by: str = "RN", **inputs: Any) -> None:
        when = self.at(offset)
        rec = self.ward.record(self.pid)
        protocol = self.ward.protocol_for(rec)
        masked = fever_masking(rec, protocol, self.clock.now()).masked
        last = last_assessment(effective_events(rec))
        graded = crs_grade(
            CrsInput.model_validate(
                {**inputs, "fever_masked": masked or inputs.get("fever_masked", False)}
            ),
            protocol,
        )
        improved = last is not None and graded.grade < last.grade
        self.ward.assess_crs(
            self.pid,
            inputs,
            recorded_by=by,
            effective_at=when,
            confirmation={"limits": ["crs_improved"]} if improved else None,
        )

    def ice(
        self,
        offset: timedelta,
        score_items: tuple[int, int, int, int, int],
        by: str = "RN",
        **kw: Any,
    ) -> None:
        when = self.at(offset)
        names = ("orientation", "naming", "commands", "writing", "attention")
        self.ward.assess_ice(
            self.pid,
            dict(zip(names, score_items, strict=True)),
            recorded_by=by,
            effective_at=when,
            **kw,
        )

    def toci(self, offset: timedelta, **kw: Any) -> None:
        when = self.at(offset)
        self.ward.give_tocilizumab(
            self.pid,
            given_by=kw.pop("by", "RN"),
            checked_by=kw.pop("checked", "CN"),
            effective_at=when,
            **kw,
        )

    def med(
        self, offset: timedelta, drug: str, dose: float, every_h: float | None, by: str = "RN"
    ) -> None:
        when = self.at(offset)
        self.ward.chart(
            self.pid,
            "medication",
            recorded_by=by,
            effective_at=when,
            drug=drug,
            dose=dose,
            unit="mg",
            route="IV" if drug != "levetiracetam" else "PO",
            every_h=every_h,
            given_by=by,
            checked_by="CN",
        )

    def lab(self, offset: timedelta, test: str, value: float, unit: str) -> None:
        when = self.at(offset)
        self.ward.record_lab(
            self.pid, test=test, value=value, unit=unit, recorded_by="RN", effective_at=when
        )

    def chart(self, offset: timedelta, kind: str, **fields: Any) -> None:
        when = self.at(offset)
        self.ward.chart(
            self.pid, kind, recorded_by=fields.pop("by", "RN"), effective_at=when, **fields
        )


def _checklist_done(b: _Builder, infusion: timedelta) -> None:
    """The boxed-warning checklist confirmed before the infusion."""
    for key in b.ward.protocol_for(b.ward.record(b.pid)).toxicity.checklist:
        b.chart(infusion - 2 * H, "checklist", item=key, done=True)


def _patient(b: _Builder, pid: str, admitted: timedelta, **fields: Any) -> bool:
    if pid in b.ward.records or pid in b.ward.store.patient_ids():
        return False
    b.at(admitted)
    fields.setdefault("admitted_at", b.clock.now())
    # A header weight is a recorded fact: the file is created once it has been measured.
    weighed = fields.get("weight_measured_at")
    if isinstance(weighed, datetime) and weighed > b.clock.now():
        b.clock.set(weighed + 2 * M)
    b.ward.create_patient(recorded_by="CN", patient_id=pid, **fields)
    b.pid = pid
    return True


def _screening(b: _Builder) -> None:
    if not _patient(
        b,
        "demo-01",
        -2 * H,
        mrn="DEMO-0001",
        name="DEMO Alice Marsh",
        date_of_birth="1958-04-12",
        sex="female",
        weight_kg=68.0,
        weight_measured_at=b.now - 2 * H,
        product="cilta-cel",
        bed="4A-01",
        baseline_ice=10,
    ):
        return
    b.at(-1 * H)
    b.ward.screen_eligibility(
        b.pid,
        {
            "product": "cilta-cel",
            "criteria": "label-2024",
            "prior_lines": 2,
            "exposed_to": ["imid", "pi", "anti_cd38"],
            "lenalidomide_refractory": True,
            "ecog": 1,
            "prior_bcma_therapy": False,
            "rapid_progression": True,
        },
        recorded_by="CN",
    )


def _idecel_day1(b: _Builder) -> None:
    infusion = -30 * H
    if not _patient(
        b,
        "demo-02",
        infusion - 20 * H,
        mrn="DEMO-0002",
        name="DEMO Brian Okafor",
        date_of_birth="1961-09-30",
        sex="male",
        weight_kg=70.0,
        weight_measured_at=b.now + infusion - 20 * H,
        product="ide-cel",
        lot_number="DEMO-LOT-2207",
        bed="4A-02",
        baseline_ice=10,
        baseline_handwriting="Neat cursive, steady",
    ):
        return
    b.chart(infusion, "patient_update", changes={"infusion_at": (b.now + infusion).isoformat()})
    _checklist_done(b, infusion)
    for h in range(-28, -10, 4):
        b.vitals(h * H, 37.1, 84, 124, 76, 97)
        b.ice(h * H + 5 * M, (4, 3, 1, 1, 1))
    b.vitals(-10 * H, 38.4, 104, 118, 70, 96)
    b.crs(-10 * H + 5 * M, temperature_c=38.4)
    b.chart(
        -9 * H,
        "medication",
        drug="other",
        drug_name="paracetamol",
        dose=1000,
        unit="mg",
        route="PO",
        given_by="RN",
    )
    b.vitals(-6 * H, 38.9, 118, 86, 50, 95)
    b.crs(-6 * H + 5 * M, temperature_c=38.9, hypotension=True, fever_masked=True)
    b.toci(-5 * H - 30 * M)
    b.ice(-5 * H, (4, 3, 1, 1, 1))
    b.vitals(-2 * H, 38.2, 110, 92, 55, 95)
    b.crs(-2 * H + 5 * M, temperature_c=38.2, hypotension=True, fever_masked=True)
    b.lab(-4 * H, "neutrophils", 0.9, "10^9/L")
    b.lab(-4 * H, "platelets", 96, "10^9/L")
    b.lab(-4 * H, "hemoglobin", 9.8, "g/dL")


def _ciltacel_day7(b: _Builder) -> None:
    infusion = -7 * 24 * H
    if not _patient(
        b,
        "demo-03",
        infusion - 24 * H,
        mrn="DEMO-0003",
        name="DEMO Carmen Ruiz",
        date_of_birth="1955-01-22",
        sex="female",
        weight_kg=82.0,
        weight_measured_at=b.now + infusion - 24 * H,
        product="cilta-cel",
        lot_number="DEMO-LOT-3391",
        bed="4A-03",
        baseline_ice=10,
        baseline_handwriting="Print, slightly shaky at baseline",
    ):
        return
    b.chart(infusion, "patient_update", changes={"infusion_at": (b.now + infusion).isoformat()})
    _checklist_done(b, infusion)
    b.chart(
        -40 * H,
        "patient_update",
        changes={"weight_kg": 81.2, "weight_measured_at": (b.now - 40 * H).isoformat()},
    )
    for h in range(-60, -36, 4):
        b.vitals(h * H, 37.0, 80, 122, 74, 98)
    b.vitals(-36 * H, 38.3, 100, 120, 72, 97)
    b.crs(-36 * H + 5 * M, temperature_c=38.3)
    b.vitals(-30 * H, 39.1, 122, 84, 48, 93, oxygen_device="nasal_cannula", oxygen_flow_l_min=2.0)
    b.crs(
        -30 * H + 5 * M,
        temperature_c=39.1,
        hypotension=True,
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=2.0,
    )
    b.toci(-29 * H - 30 * M)
    b.ice(-29 * H, (4, 3, 1, 1, 1))
    b.vitals(-22 * H, 38.8, 120, 88, 50, 93, oxygen_device="nasal_cannula", oxygen_flow_l_min=3.0)
    b.crs(
        -22 * H + 5 * M,
        temperature_c=38.8,
        fever_masked=True,
        hypotension=True,
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=3.0,
    )
    b.toci(-21 * H - 20 * M)
    b.vitals(
        -14 * H,
        38.1,
        128,
        80,
        44,
        92,
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=4.0,
        vasopressors=["norepinephrine"],
    )
    b.crs(
        -14 * H + 5 * M,
        temperature_c=38.1,
        fever_masked=True,
        vasopressors=["norepinephrine"],
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=4.0,
    )
    b.ice(-14 * H + 10 * M, (4, 3, 1, 1, 1))
    for k, h in enumerate((-13, -7, -1)):
        b.med(h * H, "dexamethasone", 10, 6, by="RN" if k % 2 else "JT")
    b.toci(-12 * H)
    b.vitals(
        -2 * H,
        37.6,
        110,
        98,
        58,
        94,
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=3.0,
        vasopressors=["norepinephrine"],
    )
    b.crs(
        -2 * H + 5 * M,
        temperature_c=37.6,
        fever_masked=True,
        vasopressors=["norepinephrine"],
        oxygen_device="nasal_cannula",
        oxygen_flow_l_min=3.0,
    )
    b.ice(-6 * H, (4, 3, 1, 1, 1))
    b.lab(-6 * H, "neutrophils", 0.4, "10^9/L")
    b.lab(-6 * H, "platelets", 41, "10^9/L")
    for d in range(6, 0, -1):
        b.chart(
            -d * 24 * H + 3 * H,
            "neuro_check",
            handwriting_changed=False,
            movement_changed=False,
            facial_asymmetry=False,
            personality_changed=False,
        )


def _icans(b: _Builder) -> None:
    infusion = -4 * 24 * H
    if not _patient(
        b,
        "demo-04",
        infusion - 24 * H,
        mrn="DEMO-0004",
        name="DEMO David Chen",
        date_of_birth="1966-11-03",
        sex="male",
        weight_kg=74.5,
        weight_measured_at=b.now + infusion - 24 * H,
        product="ide-cel",
        lot_number="DEMO-LOT-1184",
        bed="4A-04",
        baseline_ice=10,
    ):
        return
    b.chart(infusion, "patient_update", changes={"infusion_at": (b.now + infusion).isoformat()})
    _checklist_done(b, infusion)
    b.med(infusion + 1 * H, "levetiracetam", 500, 12)
    b.vitals(-70 * H, 38.2, 96, 128, 78, 98)
    b.crs(-70 * H + 5 * M, temperature_c=38.2)
    b.vitals(-30 * H, 37.2, 82, 126, 76, 98)
    b.crs(-30 * H + 5 * M, temperature_c=37.2)
    b.ice(-16 * H, (4, 3, 1, 1, 1))
    b.ice(-8 * H, (3, 3, 1, 1, 0))
    b.vitals(-4 * H, 37.3, 86, 130, 80, 97)
    b.ice(-40 * M, (2, 2, 1, 0, 0), consciousness="awakens_to_voice")
    b.med(-30 * M, "dexamethasone", 10, 12)
    b.chart(
        -25 * M,
        "note",
        text="Word-finding difficulty; MRI brain and EEG requested; neurology informed.",
    )
    _daily_neuro_checks(b, 3)


def _daily_neuro_checks(b: _Builder, days: int, **findings: Any) -> None:
    """A negative daily neurological check on each of the last ``days`` mornings."""
    for d in range(days, 0, -1):
        b.chart(
            -d * 24 * H + 4 * H,
            "neuro_check",
            handwriting_changed=False,
            movement_changed=False,
            facial_asymmetry=False,
            personality_changed=False,
            **findings,
        )


def _neutropenia(b: _Builder) -> None:
    infusion = -21 * 24 * H
    if not _patient(
        b,
        "demo-05",
        infusion - 24 * H,
        mrn="DEMO-0005",
        name="DEMO Eva Lindqvist",
        date_of_birth="1952-06-18",
        sex="female",
        weight_kg=59.0,
        weight_measured_at=b.now - 20 * H,
        product="cilta-cel",
        lot_number="DEMO-LOT-4410",
        bed="4A-05",
        baseline_ice=10,
    ):
        return
    b.chart(infusion, "patient_update", changes={"infusion_at": (b.now + infusion).isoformat()})
    _checklist_done(b, infusion)
    for d, anc in ((14, 0.2), (10, 0.3), (7, 0.25), (4, 0.3), (1, 0.35)):
        b.lab(-d * 24 * H, "neutrophils", anc, "10^9/L")
        b.lab(-d * 24 * H, "platelets", 22 + d, "10^9/L")
        b.lab(-d * 24 * H, "hemoglobin", 78 + d, "g/L")
    b.vitals(-30 * H, 38.6, 112, 110, 64, 96)
    b.chart(
        -29 * H,
        "toxicity",
        category="infection",
        description=(
            "Febrile neutropenia; blood cultures: Klebsiella pneumoniae bacteraemia; on meropenem"
        ),
        ctcae_grade=3,
    )
    b.chart(
        -28 * H,
        "note",
        text="Prolonged grade 4 neutropenia beyond day 14; G-CSF started per haematology.",
    )
    b.vitals(-3 * H, 37.4, 92, 116, 70, 97)
    b.chart(
        -2 * H,
        "neuro_check",
        handwriting_changed=False,
        movement_changed=False,
        facial_asymmetry=False,
        personality_changed=False,
    )


def _recovered(b: _Builder) -> None:
    infusion = -13 * 24 * H
    if not _patient(
        b,
        "demo-06",
        infusion - 24 * H,
        mrn="DEMO-0006",
        name="DEMO Farah Haddad",
        date_of_birth="1963-02-09",
        sex="female",
        weight_kg=64.0,
        weight_measured_at=b.now - 26 * H,
        product="ide-cel",
        lot_number="DEMO-LOT-0951",
        bed="4A-06",
        baseline_ice=10,
    ):
        return
    b.chart(infusion, "patient_update", changes={"infusion_at": (b.now + infusion).isoformat()})
    _checklist_done(b, infusion)
    b.vitals(infusion + 26 * H, 38.4, 98, 122, 74, 98)
    b.crs(infusion + 26 * H + 5 * M, temperature_c=38.4)
    b.vitals(infusion + 70 * H, 37.0, 80, 124, 76, 98)
    b.crs(infusion + 70 * H + 5 * M, temperature_c=37.0)
    b.lab(-26 * H, "neutrophils", 1.6, "10^9/L")
    b.lab(-26 * H, "platelets", 88, "10^9/L")
    b.lab(-26 * H, "hemoglobin", 10.4, "g/dL")
    b.ice(-6 * H, (4, 3, 1, 1, 1))
    b.vitals(-3 * H, 36.8, 76, 122, 74, 98)
    _daily_neuro_checks(b, 12)
    b.chart(
        -2 * H,
        "note",
        text=(
            "Recovered; discharge planning with outpatient follow-up and driving advice "
            "per current label."
        ),
    )


def _transferred(b: _Builder) -> None:
    infusion = -2 * 24 * H
    if not _patient(
        b,
        "demo-07",
        -3 * H,
        mrn="DEMO-0007",
        name="DEMO George Papadakis",
        date_of_birth="1959-07-27",
        sex="male",
        weight_kg=91.0,
        weight_measured_at=b.now - 3 * H,
        product="cilta-cel",
        lot_number="DEMO-LOT-5120",
        bed="4A-07",
        baseline_ice=10,
        infusion_at=b.now + infusion,
    ):
        return
    b.ward.record_prior_dose(
        b.pid,
        effective_at=b.now - 20 * H,
        dose_mg=728,
        source="Transfer letter from ICU (bed 12)",
        recorded_by="CN",
    )
    b.vitals(-2 * H, 38.5, 104, 112, 68, 96)
    b.crs(-2 * H + 5 * M, temperature_c=38.5, fever_masked=True)


BUILDERS: list[Callable[[_Builder], None]] = [
    _screening,
    _idecel_day1,
    _ciltacel_day7,
    _icans,
    _neutropenia,
    _recovered,
    _transferred,
]


def write_demo_ward(root: Path, clock: Clock) -> list[str]:
    """Write the demo patients that are not there yet; return the ids written."""
    now = clock.now().replace(second=0, microsecond=0).astimezone(UTC)
    fake = FakeClock(now)
    ward = open_ward(root, fake)
    written: list[str] = []
    try:
        for build in BUILDERS:
            before = set(ward.records)
            b = _Builder(ward=ward, clock=fake, now=now)
            build(b)
            written.extend(sorted(set(ward.records) - before))
    finally:
        ward.close()
    logger.info("demo ward: %d patient(s) written", len(written))
    return written


def main(argv: list[str]) -> int:
    """``python -m bedside demo --data-dir DIR``."""
    from bedside.store.paths import resolve_data_dir

    parser = argparse.ArgumentParser(prog="python -m bedside demo")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    ns = parser.parse_args(argv)
    root = resolve_data_dir(ns.data_dir)
    try:
        written = write_demo_ward(root, SystemClock())
    except BedsideError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    if written:
        print(f"demo ward: wrote {len(written)} patient(s) to {root}: {', '.join(written)}")  # noqa: T201
    else:
        print(f"demo ward: already present in {root}; nothing changed")  # noqa: T201
    return 0

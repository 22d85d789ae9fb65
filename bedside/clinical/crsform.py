"""The CRS form's starting state: the patient's real, worst state since the last assessment.

A nurse grading CRS should start from what the record says, not from the latest vital
signs alone. :func:`crs_prefill` gives, from the record:

* the highest temperature since the last CRS assessment (or in the last 24 h when that
  assessment is older, or there is none);
* hypotension, vasopressors and oxygen carried forward from the last assessment (until
  the nurse marks them resolved by unticking them in a new assessment), made worse by any
  vital signs charted since;
* fever masking (:func:`fever_masking`): once tocilizumab or a steroid has been given,
  or an antipyretic after CRS began, fever is no longer required for grading (ASTCT) for
  the rest of the course, with the reason;
* the recorded grade, so a lower grade is never recorded by accident
  (:func:`crs_record_findings`: "improved" needs an explicit confirmation naming both).

:func:`crs_verdict` says how a grade should be shown: grade 0 with hypotension or
hypoxia and no fever is a warning ("not CRS by ASTCT without fever — tell the doctor").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

from bedside.clinical.dosecheck import Finding, library_entry
from bedside.clinical.protocol import Protocol
from bedside.clinical.record import (
    CrsAssessment,
    EventBase,
    Medication,
    Record,
    Vitals,
)
from bedside.clinical.rules import DEVICE_LABELS, CrsResult, hypoxia_rank
from bedside.clinical.views import project
from bedside.common.timeutil import format_local

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
"""How far back the prefill looks when there is no recent assessment (issue 10: "or the
last 24 h"; a display window, not a clinical number)."""

VerdictKind = Literal["ok", "warning", "danger"]


@dataclass(frozen=True)
class Masking:
    """Whether fever is masked for grading, and why (None reason: not masked)."""

    masked: bool
    reason: str
    since: datetime | None = None


@dataclass(frozen=True)
class CrsPrefill:
    """What the CRS form starts with, each value with where it came from."""

    inputs: dict[str, Any]
    """CrsInput fields: temperature_c, fever_masked, hypotension, vasopressors,
    oxygen_device, oxygen_flow_l_min."""
    notes: dict[str, str] = field(default_factory=dict)
    """Per field, the nurse-readable origin of the value."""
    recorded_grade: int | None = None
    recorded_at: datetime | None = None
    masking: Masking = Masking(False, "")
    window_start: datetime | None = None


def _masking_drugs(ev: Medication, protocol: Protocol) -> tuple[str, bool] | None:
    """(name, anti-cytokine?) when this dose masks fever; None otherwise."""
    anti = protocol.crs_support.anti_cytokine_drugs.drugs
    if ev.drug in anti:
        return ev.drug, True
    found = library_entry(ev.drug, ev.drug_name, protocol)
    if found is not None:
        key, entry = found
        if key in anti:
            return key, True
        if entry.antipyretic and protocol.crs_support.antipyretics_mask_fever.value:
            return (ev.drug_name or key).strip().lower(), False
    return None


def crs_onset(events: list[EventBase], protocol: Protocol) -> datetime | None:
    """When CRS first showed: the first assessment graded >= 1 or the first fever charted."""
    threshold = protocol.crs.fever_threshold_c.value
    times = [e.effective_at for e in events if isinstance(e, CrsAssessment) and e.grade >= 1]
    times += [
        e.effective_at
        for e in events
        if isinstance(e, Vitals) and e.temperature_c is not None and e.temperature_c >= threshold
    ]
    return min(times) if times else None


def fever_masking(
    record: Record, protocol: Protocol, now: datetime, zone: tzinfo | None = None
) -> Masking:
    """Fever masking from the record (ASTCT, R3).

    Tocilizumab or a steroid (``crs_support.anti_cytokine_drugs``) given since the
    infusion masks fever for the rest of the course; an antipyretic from the drug
    vocabulary masks it once given at or after CRS onset (an antipyretic premedication
    before any CRS does not).
    """
    projection = project(record)
    events, patient = projection.events, projection.patient
    since = patient.infusion_at
    onset = crs_onset(events, protocol)
    found: list[tuple[datetime, str, bool]] = []
    for ev in events:
        if not isinstance(ev, Medication) or ev.effective_at > now:
            continue
        hit = _masking_drugs(ev, protocol)
        if hit is None:
            continue
        name, anti = hit
        start = since if anti else onset
        if (anti and start is None) or (start is not None and ev.effective_at >= start):
            found.append((ev.effective_at, name, anti))
    if not found:
        return Masking(False, "No antipyretic, tocilizumab or steroid charted since CRS began.")
    at, name, anti = min(found, key=lambda t: (not t[2], t[0]))
    what = "anti-cytokine/steroid" if anti else "antipyretic"
    return Masking(
        True,
        f"{name.capitalize()} ({what}) given {format_local(at, zone)}: fever is no longer "
        "required for CRS grading for the rest of this course (ASTCT).",
        since=at,
    )


def last_assessment(events: list[EventBase]) -> CrsAssessment | None:
    """The latest effective CRS assessment."""
    found = [e for e in events if isinstance(e, CrsAssessment)]
    return max(found, key=lambda e: (e.effective_at, e.recorded_at)) if found else None


def crs_prefill(
    record: Record, protocol: Protocol, now: datetime, zone: tzinfo | None = None
) -> CrsPrefill:
    """The CRS form's starting values: worst since the last assessment, carried forward."""
    events = project(record).events
    last = last_assessment(events)
    start = now - WINDOW
    if last is not None and last.effective_at > start:
        start = last.effective_at
    since_text = (
        f"since the last assessment ({format_local(last.effective_at, zone)})"
        if last is not None and last.effective_at >= now - WINDOW
        else "in the last 24 h"
    )
    vitals = sorted(
        (e for e in events if isinstance(e, Vitals) and start < e.effective_at <= now),
        key=lambda e: e.effective_at,
    )
    notes: dict[str, str] = {}
    inputs: dict[str, Any] = {
        "temperature_c": None,
        "fever_masked": False,
        "hypotension": False,
        "vasopressors": [],
        "oxygen_device": "none",
        "oxygen_flow_l_min": None,
    }
    temps = [v for v in vitals if v.temperature_c is not None]
    if temps:
        hottest = max(temps, key=lambda v: (v.temperature_c, v.effective_at))
        inputs["temperature_c"] = hottest.temperature_c
        notes["temperature_c"] = (
            f"Highest {since_text}: {hottest.temperature_c:g} °C at "
            f"{format_local(hottest.effective_at, zone)}."
        )
    else:
        day = [
            e
            for e in events
            if isinstance(e, Vitals)
            and e.temperature_c is not None
            and now - WINDOW < e.effective_at <= now
        ]
        if day and since_text != "in the last 24 h":
            hottest = max(day, key=lambda v: (v.temperature_c, v.effective_at))
            inputs["temperature_c"] = hottest.temperature_c
            notes["temperature_c"] = (
                f"No temperature charted {since_text}; highest in the last 24 h: "
                f"{hottest.temperature_c:g} °C at {format_local(hottest.effective_at, zone)}. "
                "Measure it now."
            )
        else:
            notes["temperature_c"] = f"No temperature charted {since_text}: measure it now."

    # Carried forward from the last assessment until the nurse marks them resolved.
    prev = last.inputs if last is not None else {}
    when_last = format_local(last.effective_at, zone) if last is not None else ""
    hypo_notes: list[str] = []
    if prev.get("hypotension"):
        inputs["hypotension"] = True
        hypo_notes.append(f"carried forward from the assessment at {when_last}")
    sbp_limit = protocol.crs_support.hypotension_systolic_below_mmhg.value
    low = [v for v in vitals if v.systolic_mmhg is not None and v.systolic_mmhg < sbp_limit]
    if low:
        lowest = min(low, key=lambda v: v.systolic_mmhg or 0)
        inputs["hypotension"] = True
        hypo_notes.append(
            f"systolic {lowest.systolic_mmhg} mmHg at {format_local(lowest.effective_at, zone)}"
        )
    if hypo_notes:
        notes["hypotension"] = (
            "Ticked: " + "; ".join(hypo_notes) + ". Untick only if it has resolved."
        )
    pressors: list[str] = list(prev.get("vasopressors") or [])
    pressor_src = [f"the assessment at {when_last}"] if pressors else []
    for v in vitals:
        new = [p for p in v.vasopressors if p not in pressors]
        if new:
            pressors += new
            pressor_src.append(f"vital signs at {format_local(v.effective_at, zone)}")
    inputs["vasopressors"] = pressors
    if pressors:
        notes["vasopressors"] = (
            "From " + ", ".join(pressor_src) + ". Untick any that has been stopped."
        )
    best: tuple[int, str, float | None, str] | None = None
    if prev.get("oxygen_device", "none") != "none":
        dev, flow = str(prev["oxygen_device"]), prev.get("oxygen_flow_l_min")
        best = (
            hypoxia_rank(dev, flow, protocol),
            dev,
            flow,
            f"carried forward from the assessment at {when_last}",
        )
    for v in vitals:
        if v.oxygen_device == "none":
            continue
        rank = hypoxia_rank(v.oxygen_device, v.oxygen_flow_l_min, protocol)
        if best is None or rank >= best[0]:
            best = (
                rank,
                v.oxygen_device,
                v.oxygen_flow_l_min,
                f"charted {format_local(v.effective_at, zone)}",
            )
    if best is not None:
        inputs["oxygen_device"], inputs["oxygen_flow_l_min"] = best[1], best[2]
        flow_txt = f" {best[2]:g} L/min" if best[2] is not None else ""
        notes["oxygen_device"] = (
            f"{DEVICE_LABELS.get(best[1], best[1]).capitalize()}{flow_txt}, {best[3]}. "
            "Change it only if oxygen has been reduced or stopped."
        )
    masking = fever_masking(record, protocol, now, zone)
    inputs["fever_masked"] = masking.masked
    notes["fever_masked"] = masking.reason
    return CrsPrefill(
        inputs=inputs,
        notes=notes,
        recorded_grade=last.grade if last is not None else None,
        recorded_at=last.effective_at if last is not None else None,
        masking=masking,
        window_start=start,
    )


def crs_record_findings(
    record: Record,
    protocol: Protocol,
    inputs: dict[str, Any],
    result: CrsResult,
    now: datetime,
    zone: tzinfo | None = None,
) -> list[Finding]:
    """What must be settled before an assessment is recorded.

    * fever masking switched off although the record masks it: refused (hard);
    * a grade lower than the recorded one: needs the "improved" confirmation (soft).
    """
    out: list[Finding] = []
    masking = fever_masking(record, protocol, now, zone)
    if masking.masked and not inputs.get("fever_masked"):
        out.append(Finding("fever_masked", "fever_masked_off", masking.reason, hard=True))
    last = last_assessment(project(record).events)
    if last is not None and result.grade < last.grade:
        out.append(
            Finding(
                "grade",
                "crs_improved",
                f"CRS grade {last.grade} was recorded at {format_local(last.effective_at, zone)}; "
                f"this assessment gives grade {result.grade}. Record it only if the patient "
                f"has improved from grade {last.grade} to grade {result.grade}.",
                hard=False,
            )
        )
    return out


def crs_verdict(result: CrsResult) -> tuple[VerdictKind, str]:
    """How to show a grade: never green for hypotension or hypoxia without fever."""
    if result.grade == 0 and (result.hypotension_grade or result.hypoxia_grade):
        return (
            "warning",
            "Hypotension or hypoxia without fever: not CRS by ASTCT without fever — tell the "
            "doctor (look for another cause; grade again when fever appears).",
        )
    if result.grade == 0:
        return "ok", ""
    return ("warning" if result.grade == 1 else "danger"), ""


__all__ = [
    "CrsPrefill",
    "Masking",
    "crs_onset",
    "crs_prefill",
    "crs_record_findings",
    "crs_verdict",
    "fever_masking",
    "last_assessment",
]

"""The words for what the record says: plain values in, plain strings out (Qt-free).

One function per concept a nurse reads about — the dose budget (:func:`budget_counts`,
:func:`budget_lines`, :func:`budget_text`, :func:`next_dose_text`, :func:`voided_text`),
the day post-infusion (:func:`day_label`), event one-liners (:func:`summarize`), units
(:data:`UNIT_LABELS`) and oxygen devices (``DEVICE_LABELS``) — for the screens, the
handover and the exports alike, built on the read side (:mod:`bedside.clinical.views`).

Everything here *describes* what the core decided (grades, budgets, due items); it
never decides anything itself. Grades come from the recorded assessments, doses from
:mod:`bedside.clinical.doses`, timers from :mod:`bedside.clinical.escalations`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bedside.clinical.doses import DoseBudget
from bedside.clinical.labels import (
    DRUG_LABELS,
    EVENT_KIND_LABELS,
    LAB_TEST_LABELS,
    PRODUCT_LABELS,
    TOXICITY_LABELS,
)
from bedside.clinical.record import (
    AlertAck,
    ChecklistCheck,
    ClockAnomaly,
    Correction,
    CrsAssessment,
    EligibilityScreen,
    EventBase,
    HistoryConfirmation,
    IceAssessment,
    Lab,
    Medication,
    NeuroCheck,
    Note,
    Patient,
    PatientUpdate,
    Restored,
    Toxicity,
    Vitals,
)
from bedside.clinical.rules import DEVICE_LABELS
from bedside.clinical.views import (
    SEVERITY_RANK as SEVERITY_RANK,  # re-exported: the screens' sort order
)
from bedside.clinical.views import STATE_RANK as STATE_RANK
from bedside.clinical.views import latest as latest
from bedside.common.timeutil import format_duration, format_local, local_zone

logger = logging.getLogger(__name__)

LEGACY_EXTRA_SKIP = frozenset({"handwriting", "movement", "facial_palsy", "personality"})
"""Findings already shown through the four yes/no items of the neurological check."""

STATE_LABELS = {"overdue": "OVERDUE", "due": "DUE NOW", "upcoming": "upcoming"}
SEVERITY_LABELS = {"critical": "critical", "warning": "warning", "info": "routine"}
TEST_LABELS = LAB_TEST_LABELS
KIND_LABELS = EVENT_KIND_LABELS
CONSCIOUSNESS_LABELS = {
    "alert": "Alert",
    "awakens_spontaneously": "Depressed: awakens spontaneously",
    "awakens_to_voice": "Depressed: awakens to voice",
    "awakens_to_touch": "Depressed: awakens only to tactile stimulus",
    "unarousable": "Unarousable, or needs vigorous/repetitive tactile stimuli",
}
SEIZURE_LABELS = {
    "none": "No seizure",
    "resolved": "Seizure that resolved rapidly (or non-convulsive on EEG, resolved)",
    "prolonged_or_repetitive": "Prolonged (> 5 min) or repetitive seizures",
}
MOTOR_LABELS = {"none": "No motor weakness", "deep_focal_weakness": "Deep focal motor weakness"}
EDEMA_LABELS = {
    "none": "No raised ICP / oedema",
    "focal": "Focal/local oedema on imaging",
    "diffuse": "Diffuse oedema, posturing, CN VI palsy, papilloedema or Cushing's triad",
}


TAB_FOR_KIND = {
    "tocilizumab_reassess": "crs",
    "tocilizumab_limit": "crs",
    "crs_escalation": "crs",
    "crs_prolonged_grade1": "crs",
    "dexamethasone_next": "crs",
    "methylprednisolone_next": "crs",
    "ice_next": "neuro",
    "delayed_neurotox_check": "neuro",
    "vitals_next": "crs",
    "monitoring_day": "timeline",
    "crs_grade_now": "crs",
    "neuro_check_positive": "neuro",
    "febrile_neutropenia": "toxicity",
    "cytopenia_check": "toxicity",
    "prolonged_cytopenia": "toxicity",
    "ivig_consider": "toxicity",
    "iec_hs_possible": "toxicity",
    "tls_labs": "toxicity",
    "checklist_open": "toxicity",
    "igg_check": "toxicity",
    "duplicate_dose": "crs",
}
"""Which tab answers each kind of due item."""


DUE_KIND_LABELS = {
    "tocilizumab_reassess": "tocilizumab reassessment",
    "tocilizumab_limit": "tocilizumab limit reached",
    "crs_escalation": "CRS escalation review",
    "crs_prolonged_grade1": "prolonged grade 1 CRS",
    "dexamethasone_next": "next dexamethasone dose",
    "methylprednisolone_next": "next methylprednisolone dose",
    "ice_next": "next ICE assessment",
    "vitals_next": "next vital signs",
    "monitoring_day": "daily monitoring period",
    "crs_grade_now": "grade CRS now",
    "delayed_neurotox_check": "daily neurological check",
    "neuro_check_positive": "positive neurological check",
    "febrile_neutropenia": "febrile neutropenia",
    "cytopenia_check": "prolonged-cytopenia blood count",
    "prolonged_cytopenia": "prolonged cytopenia",
    "ivig_consider": "low IgG (IVIG)",
    "iec_hs_possible": "possible IEC-HS",
    "tls_labs": "tumour lysis labs",
    "checklist_open": "boxed-warning checklist",
    "igg_check": "serum IgG",
    "duplicate_dose": "possible duplicate dose",
}
UNIT_LABELS = {"10^9/L": "×10⁹/L", "/uL": "cells/µL", "g/dL": "g/dL", "g/L": "g/L"}
"""Units as a nurse reads them (see :func:`unit_text`)."""


def unit_text(unit: str) -> str:
    """A unit as shown and printed (``10^9/L`` as ``×10⁹/L``)."""
    return UNIT_LABELS.get(unit, unit)


def device_text(device: str, flow_l_min: float | None = None) -> str:
    """An oxygen device (and its flow) in words: ``nasal cannula 2 L/min``, ``room air``."""
    text = DEVICE_LABELS.get(device, device)
    return text if flow_l_min is None else f"{text} {flow_l_min:g} L/min"


def vitals_text(v: Vitals) -> str:
    """One line of vital signs (timeline, handover, exports); a value not measured says so."""
    nm = "not measured"
    temp = f"{v.temperature_c:.1f} °C" if v.temperature_c is not None else nm
    hr = f"{v.heart_rate}/min" if v.heart_rate is not None else nm
    if v.systolic_mmhg is not None or v.diastolic_mmhg is not None:
        bp = f"{v.systolic_mmhg or '?'}/{v.diastolic_mmhg or '?'} mmHg"
    else:
        bp = nm
    spo2 = f"{v.spo2_pct} %" if v.spo2_pct is not None else nm
    o2 = device_text(v.oxygen_device, v.oxygen_flow_l_min)
    rr = f"{v.respiratory_rate}/min" if v.respiratory_rate is not None else nm
    vaso = ", ".join(v.vasopressors) if v.vasopressors else "none"
    return f"T {temp} · HR {hr} · BP {bp} · SpO₂ {spo2} on {o2} · RR {rr} · vasopressors: {vaso}"


def product_label(product: str) -> str:
    """``ide-cel (Abecma)`` etc."""
    return PRODUCT_LABELS.get(product, product)


def day_label(day: int | None) -> str:
    """``Day +3`` (day 0 is the infusion day), ``Day −2`` before it, or not infused."""
    if day is None:
        return "Not infused"
    if day == 0:
        return "Day 0 (infusion)"
    sign = "+" if day > 0 else "−"
    return f"Day {sign}{abs(day)}"


def age_years(dob: date, today: date) -> int:
    """Completed years."""
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def countdown(due_at: datetime, now: datetime) -> str:
    """``in 2 h 05 min`` / ``now`` / ``12 min ago`` from absolute instants (never counted)."""
    delta = due_at - now
    if abs(delta) < timedelta(seconds=30):
        return "now"
    if delta > timedelta(0):
        return f"in {format_duration(delta)}"
    return f"{format_duration(delta)} ago"


def due_phrase(state: str, due_at: datetime, now: datetime) -> str:
    """State and countdown together, e.g. ``OVERDUE by 12 min`` or ``in 7 h 59 min``."""
    if state == "overdue":
        return f"OVERDUE by {format_duration(now - due_at)}"
    if state == "due":
        return "DUE NOW" if due_at >= now else f"DUE ({format_duration(now - due_at)} ago)"
    return countdown(due_at, now)


def when_phrase(state: str, due_at: datetime, now: datetime) -> str:
    """The countdown alone: ``5 h 33 min late``, ``due now``, ``in 2 h 05 min``."""
    if state == "overdue":
        return f"{format_duration(now - due_at)} late"
    if state == "due":
        return "due now" if due_at >= now else f"due {format_duration(now - due_at)} ago"
    return countdown(due_at, now)


def short_time(dt: datetime, now: datetime) -> str:
    """Local time with zone, without the date when it is today (``11:06 UTC``)."""
    zone = local_zone()
    if dt.astimezone(zone).date() == now.astimezone(zone).date():
        return dt.astimezone(zone).strftime("%H:%M %Z")
    return format_local(dt)


def bed_or_name(patient: Patient) -> str:
    """``bed 4A-02`` when the patient has a bed, else the patient's name."""
    return f"bed {patient.bed}" if patient.bed else patient.name


def weight_text(patient: Patient, now: datetime) -> str:
    """``70 kg (weighed 2 h 05 min ago)`` or ``no weight``."""
    if patient.weight_kg is None or patient.weight_measured_at is None:
        return "no weight recorded"
    age = now - patient.weight_measured_at
    return f"{patient.weight_kg:g} kg (weighed {format_duration(age)} ago)"


def grade_text(event: EventBase | None) -> str:
    """``Grade 2`` from an assessment event, or ``not assessed``."""
    if event is None:
        return "not assessed"
    grade = getattr(event, "grade", None)
    return f"Grade {grade}" if grade is not None else "—"


def budget_lines(budget: DoseBudget, now: datetime) -> tuple[str, str]:
    """(counts, next) lines of the tocilizumab budget, never showing unknown as zero."""
    return budget_counts(budget), next_dose_text(budget, now)


def budget_counts(budget: DoseBudget, *, voided: bool = False) -> str:
    """``1/3 in 24 h · 1/4 course``; minimums (``≥``) when the history is incomplete; with
    ``voided``, the voided doses are named after the counts (never hidden)."""
    at_least = "" if budget.history_complete else "≥"
    text = (
        f"{at_least}{budget.doses_last_24h}/{budget.max_per_24h} in 24 h · "
        f"{at_least}{budget.total}/{budget.max_total} course"
    )
    if voided and budget.voided:
        text += f" · {len(budget.voided)} voided (not counted)"
    return text


def next_dose_text(budget: DoseBudget, now: datetime) -> str:
    """When the next tocilizumab dose may be given: the one sentence of the board, the CRS
    tab and the handover. "Allow" is said only when :attr:`DoseBudget.allowed_now` says so
    (the limits allow a dose AND the dose history is complete)."""
    nxt = budget.next_allowed_at
    if budget.course_complete:
        text = (
            f"course maximum reached ({budget.total}/{budget.max_total}): no further dose "
            "— escalate per protocol"
        )
    elif budget.allowed_now:
        text = "the limits allow a dose now"
    elif budget.check.allowed or (nxt is not None and nxt <= now):
        text = "a dose now needs an override (reason and a second nurse)"
    elif nxt is None:
        text = "no dose allowed now"
    else:
        text = f"next dose allowed from {format_local(nxt)} ({countdown(nxt, now)})"
    if not budget.history_complete:
        text += " — dose history incomplete: confirm prior doses first"
    return text


toci_next_text = next_dose_text
"""The handover's name for :func:`next_dose_text` (the same function)."""


def budget_text(budget: DoseBudget, *, short: bool = False) -> str:
    """Doses in 24 h and in the course; says 'history incomplete' instead of bare counts.

    Voided doses are named next to the count (they stay visible, never silently gone).
    """
    voided = f"; {len(budget.voided)} voided dose(s) not counted" if budget.voided else ""
    return _budget_counts(budget, short=short) + voided


def _budget_counts(budget: DoseBudget, *, short: bool) -> str:
    if not budget.history_complete:
        if short:
            return f"history incomplete — dose count unknown ({budget.total} recorded here)"
        return (
            f"history incomplete — true dose count unknown ({budget.total} recorded here; "
            f"limits {budget.max_per_24h} per 24 h, {budget.max_total} per course)"
        )
    return (
        f"{budget.doses_last_24h}/{budget.max_per_24h} in 24 h, "
        f"{budget.total}/{budget.max_total} in course"
    )


@dataclass(frozen=True)
class TimelineRow:
    """One event as the Timeline tab shows it."""

    event_id: str
    effective_at: datetime
    recorded_at: datetime
    recorded_by: str
    kind: str
    what: str
    status: str
    voided: bool
    amended: bool
    correctable: bool


def summarize(event: EventBase) -> str:
    """A one-line description of an event with units, in nurse words (no citation keys):
    the one event line of the timeline, the tabs, the handover and the exports."""
    from bedside.reports.wording import nurse_text

    return nurse_text(_summarize(event))


def event_line(event: EventBase) -> str:
    """The kind of an event and its one-line description (``Vital signs: T 38.2 °C …``)."""
    kind = getattr(event, "kind", "")
    return f"{KIND_LABELS.get(kind, kind)}: {summarize(event)}"


def _summarize(event: EventBase) -> str:
    if isinstance(event, Vitals):
        return vitals_text(event)
    if isinstance(event, CrsAssessment):
        return f"CRS grade {event.grade} — {event.explanation}"
    if isinstance(event, IceAssessment):
        ice = "not assessable" if event.ice_score is None else f"{event.ice_score}/10"
        return f"ICE {ice}; ICANS grade {event.grade} — {event.explanation}"
    if isinstance(event, Medication):
        name = event.drug_name if event.drug == "other" else DRUG_LABELS[event.drug]
        text = f"{name} {event.dose:g} {event.unit} {event.route}"
        if event.every_h and event.drug != "tocilizumab":
            text += f" every {event.every_h:g} h"
        text += f"; given by {event.given_by}"
        if event.checked_by:
            text += f", checked by {event.checked_by}"
        if event.weight_kg_used:
            text += f"; weight used {event.weight_kg_used:g} kg"
        if event.prior:
            text += f"; given elsewhere ({event.prior_source})"
        if event.override is not None:
            text += (
                f"; OVERRIDE of {', '.join(event.override.limits)} — "
                f"“{event.override.reason}” (second nurse {event.override.second_nurse}"
                + (f", ordered by {event.override.prescriber}" if event.override.prescriber else "")
                + ")"
            )
        return text
    if isinstance(event, Lab):
        label = TEST_LABELS.get(event.test, event.test)
        text = f"{label} {event.value:g} {unit_text(event.unit)}"
        if event.ctcae_grade is not None:
            text += f" — CTCAE grade {event.ctcae_grade}"
        return text
    if isinstance(event, Toxicity):
        grade = f", CTCAE grade {event.ctcae_grade}" if event.ctcae_grade else ""
        return (
            f"{TOXICITY_LABELS.get(event.category, event.category)} ({event.status}{grade}): "
            f"{event.description}"
        )
    if isinstance(event, NeuroCheck):
        flags = {
            "handwriting changed": event.handwriting_changed,
            "movement changed": event.movement_changed,
            "facial asymmetry": event.facial_asymmetry,
            "personality changed": event.personality_changed,
        }
        found = [k for k, v in flags.items() if v]
        found += [f.replace("_", " ") for f in event.findings if f not in LEGACY_EXTRA_SKIP]
        text = "CHANGES: " + ", ".join(found) if found else "no change in any item"
        if event.note:
            text += f"; {event.note}"
        return text
    if isinstance(event, ChecklistCheck):
        state = "confirmed" if event.done else "still open"
        return f"{event.item.replace('_', ' ')}: {state}" + (
            f" — {event.detail}" if event.detail else ""
        )
    if isinstance(event, EligibilityScreen):
        reason = f" (reason: {event.criteria_reason})" if event.criteria_reason else ""
        return f"{event.status.replace('_', ' ')} — {event.explanation}{reason}"
    if isinstance(event, AlertAck):
        kind = DUE_KIND_LABELS.get(event.alert_kind, event.alert_kind)
        text = f"{event.action}: {kind} (due {format_local(event.due_at)})"
        if event.snooze_until:
            text += f" until {format_local(event.snooze_until)}"
        if event.reason:
            text += f" — {event.reason}"
        return text
    if isinstance(event, ClockAnomaly):
        return f"clock {event.anomaly.replace('_', ' ')} by {event.delta_s:g} s"
    if isinstance(event, Note):
        return event.text
    if isinstance(event, Correction):
        verb = "Voided" if event.action == "void" else "Amended"
        extra = (
            " → "
            + ", ".join(
                f"{FIELD_LABELS.get(k, k.replace('_', ' '))} {_update_value(k, v)}"
                for k, v in event.amended.items()
            )
            if event.amended
            else ""
        )
        return f"{verb} an earlier entry: “{event.reason}”{extra}"
    if isinstance(event, PatientUpdate):
        return ", ".join(
            f"{FIELD_LABELS.get(k, k.replace('_', ' '))} → {_update_value(k, v)}"
            for k, v in event.changes.items()
        )
    if isinstance(event, HistoryConfirmation):
        state = "complete" if event.complete else "NOT complete"
        return f"history {state} (source: {event.source})"
    if isinstance(event, Restored):
        return f"restored from backup {event.backup_name}; later doses may be missing"
    return event.__class__.__name__


FIELD_LABELS: dict[str, str] = {
    "weight_kg": "weight",
    "weight_measured_at": "weighed at",
    "infusion_at": "infusion",
    "lot_number": "lot number",
    "baseline_ice": "baseline ICE",
    "bed": "bed",
    "name": "name",
    "mrn": "MRN",
    "date_of_birth": "date of birth",
    "product": "product",
    "dose_history_complete": "dose history complete",
    "temperature_c": "temperature (°C)",
    "heart_rate": "heart rate",
    "systolic_mmhg": "systolic BP",
    "diastolic_mmhg": "diastolic BP",
    "spo2_pct": "SpO₂ (%)",
    "respiratory_rate": "respiratory rate",
    "oxygen_device": "oxygen device",
    "oxygen_flow_l_min": "oxygen flow (L/min)",
    "vasopressors": "vasopressors",
    "effective_at": "time",
    "dose": "dose",
    "unit": "unit",
    "route": "route",
    "every_h": "every (h)",
    "drug": "drug",
    "drug_name": "drug name",
    "given_by": "given by",
    "checked_by": "checked by",
    "text": "text",
    "value": "value",
    "test": "test",
    "description": "description",
    "status": "status",
    "note": "note",
    "reason": "reason",
}
"""Words for record fields wherever a nurse sees them (timeline, corrections)."""


def _update_value(key: str, value: Any) -> str:
    if key.endswith("_at") and isinstance(value, str):
        from bedside.common.timeutil import parse_instant

        try:
            return format_local(parse_instant(value))
        except ValueError:
            return value
    if key == "weight_kg":
        return f"{value:g} kg"
    return str(value)


def timeline_rows(events: list[EventBase]) -> list[TimelineRow]:
    """Every event in recorded order, with its correction status spelled out."""
    corrections: dict[str, list[Correction]] = {}
    for ev in events:
        if isinstance(ev, Correction):
            corrections.setdefault(ev.target_id, []).append(ev)
    rows: list[TimelineRow] = []
    for ev in events:
        fixes = corrections.get(ev.id, [])
        voids = [c for c in fixes if c.action == "void"]
        amends = [c for c in fixes if c.action == "amend"]
        status_parts = []
        for c in amends:
            status_parts.append(
                f"AMENDED by {c.recorded_by} {format_local(c.recorded_at)}: {c.reason}"
            )
        for c in voids:
            status_parts.append(
                f"VOIDED by {c.recorded_by} {format_local(c.recorded_at)}: {c.reason}"
            )
        rows.append(
            TimelineRow(
                event_id=ev.id,
                effective_at=ev.effective_at,
                recorded_at=ev.recorded_at,
                recorded_by=ev.recorded_by,
                kind=KIND_LABELS.get(getattr(ev, "kind", ""), getattr(ev, "kind", "")),
                what=summarize(ev),
                status="; ".join(status_parts),
                voided=bool(voids),
                amended=bool(amends),
                correctable=not isinstance(ev, Correction) and not voids,
            )
        )
    return rows


ELIGIBILITY_ITEM_LABELS: dict[str, str] = {
    "prior_lines": "prior lines of therapy",
    "imid": "prior immunomodulatory drug (IMiD)",
    "pi": "prior proteasome inhibitor",
    "anti_cd38": "prior anti-CD38 antibody",
    "lenalidomide_refractory": "lenalidomide-refractory",
    "active_infection": "active infection or inflammatory disorder",
    "ecog": "ECOG performance status ≥ 2",
    "cns_involvement": "CNS involvement by myeloma",
    "prior_bcma_therapy": "prior BCMA-directed therapy",
    "rapid_progression": "rapidly progressing disease",
}
"""Unmet criteria and cautions of an eligibility screening, in words (the record keeps keys)."""


def eligibility_items_text(keys: list[str]) -> str:
    """``rapidly progressing disease; prior BCMA-directed therapy`` (a key no table names is
    shown with spaces, never dropped)."""
    return "; ".join(ELIGIBILITY_ITEM_LABELS.get(k, k.replace("_", " ")) for k in keys)


def voided_text(budget: Any) -> str:
    """Voided tocilizumab doses, shown next to the count (never hidden): "" when none."""
    voided = getattr(budget, "voided", ())
    if not voided:
        return ""
    times = ", ".join(format_local(d.effective_at) for d in voided)
    return f"Voided (not counted): {len(voided)} dose(s), charted for {times}."


def dose_limits_text(b: DoseBudget, at: datetime) -> str:
    """What the dose dialog says about the limits for a dose at ``at``: the budget's own
    verdict (:attr:`DoseBudget.allowed_now`, never decided again here), the course and 24 h
    counts (minimums when the history is incomplete), the next allowed time and voided doses.
    """
    prefix = "" if b.history_complete else "at least "
    if b.next_allowed_at is None:
        next_text = "no further doses"
    elif b.next_allowed_at <= at:
        next_text = "now"
    else:
        next_text = f"{format_local(b.next_allowed_at)} ({countdown(b.next_allowed_at, at)})"
    frees = (
        f" The 24 h window frees at {format_local(b.check.window_frees_at)}."
        if b.check.window_frees_at
        else ""
    )
    course = (
        f"This would be dose {prefix}{b.total + 1} of at most {b.max_total} in the course."
        if b.max_total is not None
        else f"This would be dose {prefix}{b.total + 1} (the protocol sets no course maximum)."
    )
    per_day = (
        f"Doses in the 24 h before: {prefix}{b.doses_last_24h} of at most {b.max_per_24h}."
        if b.max_per_24h is not None
        else f"Doses in the 24 h before: {prefix}{b.doses_last_24h} (no 24 h maximum)."
    )
    if b.allowed_now:
        verdict = "Allowed now by every limit."
    elif b.hard_block:
        verdict = "Not allowed: a hard limit."
    else:
        verdict = "Not allowed without an override."
    return f"{verdict} {course} {per_day}\nNext dose allowed by the limits: {next_text}.{frees}" + (
        f"\n{voided_text(b)}" if b.voided else ""
    )

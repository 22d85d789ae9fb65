"""The SBAR shift handover for one patient or the whole ward, as data and as printable HTML.

:func:`build_handover` derives a :class:`HandoverDoc` from the ward's records at an
instant: Situation (day post-infusion, product, current CRS/ICANS grades, latest
vitals), Background (eligibility, baseline ICE and handwriting, weight, admission,
dose-history completeness), Assessment (grade trajectory, tocilizumab budget with the
next allowed time, steroid regimen, open timers and overdue items, latest labs with
CTCAE grades, active toxicities, recent notes), Recommendation (what is due next, and
the protocol guidance for the current grades with its source and verified flag) and
the episode summary. Every page names the protocol id/version; unverified rules are
marked ``[UNVERIFIED]``.

:func:`render_html` turns it into HTML that Qt's ``QTextDocument`` renders (screen and
PDF) and that reads in black and white: no meaning is carried by colour, states are
words in capitals (``OVERDUE``, ``DUE``), tables have borders, the type is large. The
markup lives in Jinja2 templates (``resources/templates/handover/``, every value escaped,
a missing value an error); this module gives them plain, already worded values.

``python -m bedside handover --data-dir DIR --out FILE.html [--patient ID]`` writes the
HTML (Qt-free). A PDF needs Qt: the application's entry point passes its PDF writer to
:func:`main` (``bedside handover --out FILE.pdf``, or ``python -m ui handover`` from
source); the core never starts or imports the UI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from markupsafe import Markup
from pydantic import BaseModel

from bedside.clinical.doses import DoseBudget, dose_budget, tocilizumab_doses
from bedside.clinical.escalations import DueItem, derive_due
from bedside.clinical.labels import LAB_TEST_LABELS
from bedside.clinical.protocol import RESOURCES, Protocol, Text
from bedside.clinical.record import (
    EligibilityScreen,
    EventBase,
    Lab,
    Medication,
    NeuroCheck,
    Note,
    Patient,
    Record,
    Toxicity,
    Vitals,
    day_post_infusion,
)
from bedside.clinical.views import project
from bedside.common.errors import BedsideError
from bedside.common.timeutil import format_duration, format_local, local_zone
from bedside.reports.presenters import (
    budget_text,
    day_label,
    eligibility_items_text,
    toci_next_text,
    unit_text,
    vitals_text,
)
from bedside.reports.summary import STEROIDS, EpisodeSummary, GradePoint, drug_label, summarize
from bedside.ward.alerts import alert_states

if TYPE_CHECKING:
    import jinja2

logger = logging.getLogger(__name__)

SECTION_MARK = "<!--BEDSIDE-SECTION:"
"""Start of a section marker in the HTML; the PDF renderer starts a new page there and
prints the marker's header text on every page of the section."""

NOTES_WINDOW = timedelta(hours=24)
STEROID_WINDOW = timedelta(hours=72)
UPCOMING_WINDOW = timedelta(hours=8)

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DueEntry:
    """An open timer or overdue item (from ``bedside.clinical.escalations.derive_due``)."""

    kind: str
    due_at: datetime | None
    state: str
    severity: str
    message: str
    rule: str
    source: str
    verified: bool = True
    key: str = ""
    alert: str = ""
    """The nurse's side: acknowledged/snoozed by whom and why (empty when nobody acted)."""


@dataclass(frozen=True)
class Guidance:
    """Protocol guidance text for a current grade, with provenance."""

    topic: str
    text: str
    source: str
    verified: bool
    discrepancies: tuple[str, ...]


@dataclass(frozen=True)
class LabEntry:
    """The latest value of a laboratory test (and the one before, for the trend)."""

    test: str
    label: str
    value: float
    unit: str
    ctcae_grade: int | None
    at: datetime
    previous: tuple[float, str, datetime] | None


@dataclass(frozen=True)
class SteroidLine:
    """One steroid given in the last days: the regimen as last charted."""

    drug: str
    dose: float
    unit: str
    route: str
    every_h: float | None
    first_at: datetime
    last_at: datetime
    doses_24h: int
    doses_total: int

    @property
    def next_due_at(self) -> datetime | None:
        """Last dose plus the charted interval (None when no interval was charted)."""
        if self.every_h is None:
            return None
        return self.last_at + timedelta(hours=self.every_h)


@dataclass(frozen=True)
class PatientHandover:
    """Everything the handover says about one patient."""

    patient: Patient
    now: datetime
    day: int | None
    protocol_label: str
    protocol_signed_off: bool
    latest_vitals: Vitals | None
    max_temp_24h: float | None
    eligibility: EligibilityScreen | None
    budget: DoseBudget
    toci_doses: tuple[Medication, ...]
    steroids: tuple[SteroidLine, ...]
    other_meds_24h: tuple[Medication, ...]
    due: tuple[DueEntry, ...]
    due_available: bool
    labs: tuple[LabEntry, ...]
    toxicities: tuple[Toxicity, ...]
    neuro_changes: tuple[NeuroCheck, ...]
    last_neuro_check: NeuroCheck | None
    notes: tuple[Note, ...]
    summary: EpisodeSummary
    guidance: tuple[Guidance, ...]
    recommendations: tuple[str, ...]
    discrepancies: tuple[tuple[str, str, str], ...]
    unverified: tuple[str, ...]
    discharge: tuple[tuple[str, str, str, bool], ...] = ()
    """Discharge and follow-up items: (title, text, source, verified)."""

    @property
    def header(self) -> str:
        """The running header of this patient's pages."""
        p = self.patient
        bed = f"Bed {p.bed} · " if p.bed else ""
        return f"{bed}{p.name} · MRN {p.mrn} · born {date_text(p.date_of_birth)}"


@dataclass(frozen=True)
class HandoverDoc:
    """A handover document for one patient or the whole ward."""

    scope: Literal["ward", "patient"]
    generated_at: datetime
    patients: tuple[PatientHandover, ...]
    failures: tuple[tuple[str, str], ...] = field(default=())
    protocols: tuple[str, ...] = field(default=())
    sync: tuple[str, ...] = field(default=())
    """Issue 15: other workstations out of touch, clock disagreements, possible duplicates."""


# --------------------------------------------------------------------------- derivation


def _derive_due(record: Record, protocol: Protocol, now: datetime) -> tuple[list[Any], bool]:
    """Escalation items for ``now`` and whether they could be derived."""
    return list(derive_due(record, protocol, now)), True


def _alert_texts(record: Record, items: Sequence[Any], now: datetime) -> dict[str, str]:
    """What nurses did about each item: acknowledged / snoozed, by whom, when and why."""
    real = [i for i in items if isinstance(i, DueItem)]
    out: dict[str, str] = {}
    for st in alert_states(record, real, now):  # the projection's alert index
        last = st.last_action
        if last is None or (st.state == "active" and last.action != "snoozed"):
            continue
        why = f" ({last.reason})" if last.reason else ""
        by = last.recorded_by
        if st.state == "acknowledged":
            out[st.item.key] = f"acknowledged {format_local(last.effective_at)} {by}{why}"
        elif st.state == "snoozed":
            out[st.item.key] = f"snoozed until {format_local(st.snoozed_until)} {by}{why}"
        else:
            out[st.item.key] = f"ALARM ON again (snooze by {by} ended){why}"
    return out


def _due_entry(item: Any, alert: str = "") -> DueEntry:
    source = getattr(item, "source", "")
    if isinstance(source, tuple | list):
        source = ", ".join(str(x) for x in source)
    return DueEntry(
        kind=str(getattr(item, "kind", "")),
        due_at=getattr(item, "due_at", None),
        state=str(getattr(item, "state", "")),
        severity=str(getattr(item, "severity", "")),
        message=str(getattr(item, "message", "")),
        rule=str(getattr(item, "rule", "")),
        source=str(source),
        verified=bool(getattr(item, "verified", True)),
        key=str(getattr(item, "key", "")),
        alert=alert,
    )


_STATE_ORDER = {"overdue": 0, "due": 1, "upcoming": 2}


def _due_sort_key(d: DueEntry) -> tuple[int, datetime]:
    return (_STATE_ORDER.get(d.state, 3), d.due_at or datetime.max.replace(tzinfo=local_zone()))


def unverified_rules(protocol: Protocol) -> list[str]:
    """Dotted paths (with sources) of every protocol value whose ``verified`` flag is false."""
    out: list[str] = []

    def walk(obj: object, path: str) -> None:
        if isinstance(obj, BaseModel):
            if getattr(obj, "verified", True) is False:
                out.append(f"{path} ({getattr(obj, 'source', '?')})")
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{path}.{name}" if path else name)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]")

    walk(protocol, "")
    return out


def _guidance(protocol: Protocol, syndrome: str, grade: int | None) -> Guidance | None:
    if not grade:
        return None
    table: dict[str, Text] = (
        protocol.management.crs if syndrome == "CRS" else protocol.management.icans
    )
    text = table.get(str(min(grade, 4)))
    if text is None:
        return None
    return Guidance(
        topic=f"{syndrome} grade {grade}",
        text=text.text,
        source=text.source,
        verified=text.verified,
        discrepancies=tuple(text.discrepancies),
    )


def _labs(events: Sequence[EventBase], protocol: Protocol) -> tuple[LabEntry, ...]:
    by_test: dict[str, list[Lab]] = {}
    for e in events:
        if isinstance(e, Lab):
            by_test.setdefault(e.test, []).append(e)
    order = list(protocol.ctcae.tests)
    out: list[LabEntry] = []
    for test, items in by_test.items():
        items.sort(key=lambda x: (x.effective_at, x.recorded_at))
        last = items[-1]
        prev = items[-2] if len(items) > 1 else None
        spec = protocol.ctcae.tests.get(test)
        out.append(
            LabEntry(
                test=test,
                label=LAB_TEST_LABELS.get(test, spec.label if spec else test),
                value=last.value,
                unit=last.unit,
                ctcae_grade=last.ctcae_grade,
                at=last.effective_at,
                previous=(prev.value, prev.unit, prev.effective_at) if prev else None,
            )
        )
    out.sort(key=lambda x: (order.index(x.test) if x.test in order else len(order), x.test))
    return tuple(out)


def _steroids(meds: Sequence[Medication], now: datetime) -> tuple[SteroidLine, ...]:
    lines: list[SteroidLine] = []
    for drug in sorted(STEROIDS):
        given = [m for m in meds if m.drug == drug and m.effective_at <= now]
        if not given:
            continue
        last = given[-1]
        if now - last.effective_at > STEROID_WINDOW:
            continue
        lines.append(
            SteroidLine(
                drug=drug,
                dose=last.dose,
                unit=last.unit,
                route=last.route,
                every_h=last.every_h,
                first_at=given[0].effective_at,
                last_at=last.effective_at,
                doses_24h=sum(1 for m in given if now - m.effective_at <= timedelta(hours=24)),
                doses_total=len(given),
            )
        )
    return tuple(lines)


def _active_toxicities(events: Sequence[EventBase]) -> tuple[Toxicity, ...]:
    latest: dict[str, Toxicity] = {}
    for e in sorted(
        (x for x in events if isinstance(x, Toxicity)),
        key=lambda x: (x.effective_at, x.recorded_at),
    ):
        latest[e.episode_id or e.id] = e
    return tuple(t for t in latest.values() if t.status == "active")


def _recommendations(
    ph_due: Sequence[DueEntry],
    budget: DoseBudget,
    crs_grade: int | None,
    now: datetime,
) -> list[str]:
    recs: list[str] = []
    for d in ph_due:
        if d.state == "overdue":
            recs.append(f"OVERDUE since {format_local(d.due_at)}: {d.message}")
        elif d.state == "due":
            recs.append(f"DUE now ({format_local(d.due_at)}): {d.message}")
    upcoming = [
        d
        for d in ph_due
        if d.state == "upcoming" and (d.due_at is None or d.due_at - now <= UPCOMING_WINDOW)
    ]
    recs.extend(f"Next at {format_local(d.due_at)}: {d.message}" for d in upcoming)
    if crs_grade is not None and crs_grade >= 1:
        recs.append("Tocilizumab: " + toci_next_text(budget, now))
    return recs


def build_patient(
    record: Record,
    protocol: Protocol,
    now: datetime,
    *,
    derive: Callable[[Record, Protocol, datetime], tuple[list[Any], bool]] = _derive_due,
    budget: DoseBudget | None = None,
) -> PatientHandover:
    """Derive the handover of one patient at ``now``.

    Args:
        record: The patient record.
        protocol: The protocol the patient is charted under.
        now: The handover instant.
        derive: The escalation derivation (tests can replace it).
        budget: The tocilizumab budget as the ward computes it (with its clock-anomaly
            guard); derived from the record when not given.

    Returns:
        The patient's handover.
    """
    projection = project(record)
    events, patient = projection.events, projection.patient
    budget = budget or dose_budget(record, protocol, now)
    items, available = derive(record, protocol, now)
    alert_texts = _alert_texts(record, items, now)
    due = sorted(
        (_due_entry(i, alert_texts.get(getattr(i, "key", ""), "")) for i in items),
        key=_due_sort_key,
    )
    summary = summarize(record, now, due=due if available else None, events=events)

    vitals = sorted(
        (e for e in events if isinstance(e, Vitals) and e.effective_at <= now),
        key=lambda e: e.effective_at,
    )
    temps = [
        v.temperature_c
        for v in vitals
        if v.temperature_c is not None and now - v.effective_at <= timedelta(hours=24)
    ]
    meds = sorted(
        (e for e in events if isinstance(e, Medication)), key=lambda m: (m.effective_at, m.id)
    )
    screens = sorted(
        (e for e in events if isinstance(e, EligibilityScreen)), key=lambda e: e.effective_at
    )
    checks = sorted((e for e in events if isinstance(e, NeuroCheck)), key=lambda e: e.effective_at)
    changed = tuple(c for c in checks if c.positive)
    notes = tuple(
        n
        for n in sorted((e for e in events if isinstance(e, Note)), key=lambda e: e.effective_at)
        if now - n.effective_at <= NOTES_WINDOW
    )
    crs_now = summary.crs.current.grade if summary.crs.current else None
    icans_now = summary.icans.current.grade if summary.icans.current else None
    guidance = tuple(
        g
        for g in (
            _guidance(protocol, "CRS", crs_now),
            _guidance(protocol, "ICANS", icans_now),
        )
        if g is not None
    )
    wanted = {d for g in guidance for d in g.discrepancies}
    wanted |= {d.id for d in protocol.discrepancies_for("monitoring", "discharge", "toxicities")}
    discrepancies = tuple(
        (d.id, d.topic, d.current_position) for d in protocol.discrepancies if d.id in wanted
    )
    other = tuple(
        m
        for m in meds
        if m.drug != "tocilizumab"
        and m.drug not in STEROIDS
        and timedelta(0) <= now - m.effective_at <= timedelta(hours=24)
    )
    return PatientHandover(
        patient=patient,
        now=now,
        day=day_post_infusion(patient, now),
        protocol_label=protocol.label,
        protocol_signed_off=protocol.signed_off,
        latest_vitals=vitals[-1] if vitals else None,
        max_temp_24h=max(temps) if temps else None,
        eligibility=screens[-1] if screens else None,
        budget=budget,
        toci_doses=tuple(tocilizumab_doses(events)),
        steroids=_steroids(meds, now),
        other_meds_24h=other,
        due=tuple(due),
        due_available=available,
        labs=_labs(events, protocol),
        toxicities=_active_toxicities(events),
        neuro_changes=changed,
        last_neuro_check=checks[-1] if checks else None,
        notes=notes,
        summary=summary,
        guidance=guidance,
        recommendations=tuple(_recommendations(due, budget, crs_now, now)),
        discrepancies=discrepancies,
        unverified=tuple(unverified_rules(protocol)),
        discharge=tuple(_discharge(protocol, patient.product)),
    )


DISCHARGE_FIGURES = ("Monitoring", "Stay near the centre", "No driving")
"""Titles of the post-infusion figures (shown on each patient's page; the rest once per product)."""


def _discharge(protocol: Protocol, product: str) -> list[tuple[str, str, str, bool]]:
    """Follow-up items for discharge: post-infusion figures, later toxicities, malignancy."""
    version = protocol.monitoring.post_infusion[protocol.monitoring.post_infusion_current]
    out: list[tuple[str, str, str, bool]] = []
    figures = zip(
        DISCHARGE_FIGURES,
        (version.total_monitoring_days, version.proximity_days, version.driving_days),
        ("at least {} days after infusion", "{} days after infusion", "{} days after infusion"),
        strict=True,
    )
    for title, table, text in figures:
        n = table.get(product)  # type: ignore[call-overload]
        if n is not None:
            out.append(
                (title, text.format(f"{n.value:g}") + f" ({version.title})", n.source, n.verified)
            )
    items = protocol.toxicity.discharge
    keys = [k for k in items if k != "delayed_neurotoxicity" or product == "cilta-cel"]
    for key in keys:
        t = items[key]
        out.append((key.replace("_", " ").capitalize(), t.text, t.source, t.verified))
    return out


def _bed_key(ph: PatientHandover) -> tuple[str, str]:
    return (ph.patient.bed or "~", ph.patient.patient_id)


def _ward_budget(ward: Any, pid: str, now: datetime) -> DoseBudget | None:
    """The ward's budget (it applies the clock-anomaly guard when one is attached)."""
    budget = getattr(ward, "budget", None)
    return budget(pid, now) if callable(budget) else None


def _ward_derive(
    ward: Any, pid: str
) -> Callable[[Record, Protocol, datetime], tuple[list[Any], bool]]:
    """The escalation items plus the ward's possible duplicate doses (issue 15)."""
    from bedside.ward import wardsync

    def derive(record: Record, protocol: Protocol, now: datetime) -> tuple[list[Any], bool]:
        items = list(derive_due(record, protocol, now))
        return list(wardsync.with_duplicate_doses(ward, pid, items, now, record=record)), True

    return derive


def build_handover(ward: Any, now: datetime, pid: str | None = None) -> HandoverDoc:
    """Build the handover of one patient (``pid``) or of every patient of ``ward``.

    Args:
        ward: A :class:`bedside.ward.service.Ward` (``records``, ``failures``, ``protocol_for``).
        now: The handover instant.
        pid: One patient, or ``None`` for the whole ward.

    Returns:
        The document. A patient whose file failed to load, or whose handover could not
        be computed, is listed in ``failures`` (never silently left out).

    Raises:
        InputError: ``pid`` is not a patient of this ward.
    """
    if pid is not None:
        record = ward.record(pid)
        ph = build_patient(
            record,
            ward.protocol_for(record),
            now,
            derive=_ward_derive(ward, pid),
            budget=_ward_budget(ward, pid, now),
        )
        return HandoverDoc(
            "patient", now, (ph,), (), (ph.protocol_label,), sync=_sync_lines(ward, pid)
        )
    patients: list[PatientHandover] = []
    failures: list[tuple[str, str]] = [(p, msg) for p, msg in sorted(ward.failures.items())]
    for p, record in sorted(ward.records.items()):
        try:
            patients.append(
                build_patient(
                    record,
                    ward.protocol_for(record),
                    now,
                    derive=_ward_derive(ward, p),
                    budget=_ward_budget(ward, p, now),
                )
            )
        except Exception as exc:  # noqa: BLE001 - one patient never stops the ward's handover
            logger.error("handover of one patient could not be computed: %s", type(exc).__name__)
            failures.append((p, f"cannot display: handover could not be computed ({exc})"))
    patients.sort(key=_bed_key)
    labels = tuple(sorted({ph.protocol_label for ph in patients}))
    return HandoverDoc(
        "ward", now, tuple(patients), tuple(failures), labels, sync=_sync_lines(ward, None)
    )


def _sync_lines(ward: Any, pid: str | None) -> tuple[str, ...]:
    """What the ward folder says about other workstations (issue 15); empty for a ward of one."""
    from bedside.ward import wardsync

    if not hasattr(ward, "store") or not hasattr(ward.store, "workstations_dir"):
        return ()
    lines = list(wardsync.ward_status(ward).lines)
    for p in [pid] if pid else sorted(ward.records):
        lines = [d.message for d in wardsync.unacknowledged_duplicates(ward, p)] + lines
    return tuple(lines)


# --------------------------------------------------------------------------- words

TEMPLATE_DIR = RESOURCES / "templates" / "handover"
"""The Jinja2 templates of the printout (markup and layout only; the values come worded)."""

KEY_WIDTH = 30
"""Width (%) of the key column of the key/value tables."""


def _trajectory(points: Sequence[GradePoint], with_ice: bool) -> str:
    if not points:
        return "no assessments"
    parts = []
    for p in points:
        ice = f", ICE {p.ice_score}/10" if with_ice and p.ice_score is not None else ""
        parts.append(f"G{p.grade}{ice} ({format_local(p.at)})")
    return " → ".join(parts)


def _age(dob: date, now: datetime) -> int:
    today = now.astimezone(local_zone()).date()
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def date_text(d: date) -> str:
    """A calendar date as the application shows it (``30 Sep 1961``)."""
    return f"{d.day:02d} {d:%b %Y}"


RECENT_CHANGES = 4
"""Grade changes shown on a patient's page (the earlier ones are in the record)."""
RECENT_NOTES = 3


def _recent_trajectory(points: Sequence[GradePoint], with_ice: bool) -> str:
    shown = list(points)[-RECENT_CHANGES:]
    text = _trajectory(shown, with_ice)
    if len(points) > len(shown):
        text = f"… {len(points) - len(shown)} earlier → " + text
    return text


def _brief(recommendation: str) -> str:
    """``OVERDUE since 02:10: Escalation review …`` cut to its first clause after the time."""
    head, sep, rest = recommendation.partition(": ")
    if not sep or head.startswith("Tocilizumab"):
        return recommendation
    return f"{head}: {_short(rest, 110)}"


def _clip(message: str, limit: int = 200) -> str:
    """A due item's text cut at a word before ``limit`` (the whole text is on the screen)."""
    if len(message) <= limit:
        return message
    cut = message.rfind(" ", 0, limit - 20)
    return message[: cut if cut > 0 else limit - 20] + " … (whole text on the screen)"


def _short(message: str, limit: int = 90) -> str:
    """The first clause of a timer message (the overview has no room for the whole text)."""
    cut = min(
        (i for i in (message.find(" — "), message.find(" ("), message.find(": ")) if i > 0),
        default=len(message),
    )
    text = message[:cut]
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- page data
# What each template lays out: plain values (text already worded, times already local,
# numbers already formatted). The templates escape every value and add only markup.

View = dict[str, Any]
"""The values one template reads (a key it needs and does not find is an error)."""


def _t(dt: datetime | None) -> str:
    return format_local(dt)


def _overview_view(doc: HandoverDoc) -> View:
    """``overview.html``: the ward table, one row per patient, and what is not included."""
    rows: list[View] = []
    for ph in doc.patients:
        s = ph.summary
        crs, icans = s.crs.current, s.icans.current
        budget = ph.budget
        active = [d for d in ph.due if d.state in {"overdue", "due"}]
        shown = active[:2] or list(ph.due[:1])
        show_next = (crs and crs.grade >= 1) or budget.total or not budget.history_complete
        rows.append(
            {
                "bed": ph.patient.bed or "—",
                "name": ph.patient.name,
                "product": ph.patient.product,
                "day": day_label(ph.day),
                "crs": crs.grade if crs else None,
                "icans": icans.grade if icans else None,
                "ice": icans.ice_score if icans else None,
                "budget": budget_text(budget, short=True),
                "toci_next": toci_next_text(budget, ph.now) if show_next else "",
                "due": [
                    {"state": d.state, "text": _short(d.message), "due_at": _t(d.due_at)}
                    for d in shown
                ],
                "no_due": "—" if ph.due_available else "timers unavailable",
                "more": max(0, len(active) - len(shown)),
            }
        )
    return {
        "generated_at": _t(doc.generated_at),
        "protocols": ", ".join(doc.protocols) or "—",
        "sync": doc.sync,
        "failures": doc.failures,
        "patients": rows,
    }


def _patient_view(ph: PatientHandover, sync: Sequence[str]) -> View:
    """``patient.html``: one patient's page (SBAR, budget, due items, recommendation)."""
    p, s, b = ph.patient, ph.summary, ph.budget
    crs, icans, el = s.crs.current, s.icans.current, ph.eligibility
    nc = ph.last_neuro_check
    flags = [f.replace("_", " ") for f in nc.positive] if nc else []
    shown_notes = ph.notes[-RECENT_NOTES:]
    figures = [d for d in ph.discharge if d[0] in DISCHARGE_FIGURES]
    return {
        "sync": sync,
        "p": {
            "name": p.name,
            "bed": p.bed or "—",
            "mrn": p.mrn,
            "born": date_text(p.date_of_birth),
            "age": _age(p.date_of_birth, ph.now),
            "sex": p.sex,
            "product": p.product,
            "day": day_label(ph.day),
            "protocol": ph.protocol_label,
            "signed_off": ph.protocol_signed_off,
            "at": _t(ph.now),
            "lot": p.lot_number or "",
            "infused_at": _t(p.infusion_at) if p.infusion_at else "",
            "baseline_ice": p.baseline_ice if p.baseline_ice is not None else "not recorded",
            "baseline_handwriting": p.baseline_handwriting or "not recorded",
            "weight": f"{p.weight_kg:g}" if p.weight_kg is not None else "",
            "weight_at": _t(p.weight_measured_at),
            "admitted_at": _t(p.admitted_at),
        },
        "crs": crs and {"grade": crs.grade, "at": _t(crs.at), "max": s.crs.max_grade},
        "icans": icans
        and {
            "grade": icans.grade,
            "ice": icans.ice_score,
            "at": _t(icans.at),
            "max": s.icans.max_grade,
        },
        "vitals": ph.latest_vitals
        and {"text": vitals_text(ph.latest_vitals), "at": _t(ph.latest_vitals.effective_at)},
        "max_temp": f"{ph.max_temp_24h:.1f} °C" if ph.max_temp_24h is not None else "none recorded",
        "el": el
        and {
            "status": el.status.replace("_", " "),
            "criteria": el.criteria,
            "at": _t(el.effective_at),
            "unmet": eligibility_items_text(el.unmet),
            "cautions": eligibility_items_text(el.cautions),
            "superseded": el.superseded,
            "reason": el.criteria_reason or "",
        },
        "crs_changes": _recent_trajectory(s.crs.changes(), with_ice=False),
        "icans_changes": _recent_trajectory(s.icans.changes(), with_ice=True),
        "toci": {
            "budget": budget_text(b),
            "next": toci_next_text(b, ph.now),
            "history_complete": b.history_complete,
            "doses": [_dose_view(m) for m in ph.toci_doses],
        },
        "steroids": [_steroid_view(st, ph.now) for st in ph.steroids],
        "other_meds": [
            {
                "at": _t(m.effective_at),
                "drug": drug_label(m),
                "dose": f"{m.dose:g}",
                "unit": m.unit,
                "route": m.route,
            }
            for m in ph.other_meds_24h
        ],
        "labs": [_lab_view(lab) for lab in ph.labs],
        "toxicities": [
            {
                "category": t.category.replace("_", " "),
                "description": t.description,
                "grade": t.ctcae_grade,
                "at": _t(t.effective_at),
            }
            for t in ph.toxicities
        ],
        "neuro": (p.infusion_at is not None or nc is not None)
        and {
            "at": _t(nc.effective_at) if nc else "",
            "changes": ", ".join(flags),
            "earlier": len(ph.neuro_changes) if ph.neuro_changes and not flags else 0,
        },
        "notes": [
            {"at": _t(n.effective_at), "by": n.recorded_by, "text": n.text} for n in shown_notes
        ],
        "earlier_notes": len(ph.notes) - len(shown_notes),
        "due_available": ph.due_available,
        "due": [
            {
                "state": d.state,
                "critical": d.severity == "critical",
                "text": _clip(d.message),
                "verified": d.verified,
                "due_at": _t(d.due_at),
                "alert": d.alert or ("ALARM ON" if d.state in {"due", "overdue"} else "—"),
            }
            for d in ph.due
        ],
        "recommendations": [_brief(r) for r in ph.recommendations],
        "discharge_figures": [
            {"title": title.lower(), "text": text.split(" (")[0], "verified": verified}
            for title, text, _src, verified in figures
        ],
        "guidance_topics": [{"topic": g.topic, "verified": g.verified} for g in ph.guidance],
    }


def _dose_view(m: Medication) -> View:
    o = m.override
    return {
        "at": _t(m.effective_at),
        "dose": f"{m.dose:g}",
        "unit": m.unit,
        "route": m.route,
        "who": m.given_by + (f"/{m.checked_by}" if m.checked_by else ""),
        "prior": m.prior,
        "override": o
        and {
            "limits": ", ".join(o.limits),
            "reason": o.reason,
            "second_nurse": o.second_nurse,
            "prescriber": o.prescriber or "",
        },
    }


def _steroid_view(st: SteroidLine, now: datetime) -> View:
    nxt = st.next_due_at
    return {
        "drug": st.drug,
        "dose": f"{st.dose:g}",
        "unit": st.unit,
        "route": st.route,
        "every": f"every {st.every_h:g} h" if st.every_h else "no interval charted",
        "doses_24h": st.doses_24h,
        "doses_total": st.doses_total,
        "last_at": _t(st.last_at),
        "next_at": _t(nxt) if nxt is not None else "",
        "was_due": nxt is not None and nxt < now,
    }


def _lab_view(lab: LabEntry) -> View:
    prev = lab.previous
    return {
        "label": lab.label,
        "value": f"{lab.value:g}",
        "unit": unit_text(lab.unit),
        "grade": lab.ctcae_grade,
        "grade_strong": (lab.ctcae_grade or 0) >= 3,
        "at": _t(lab.at),
        "previous": f"{prev[0]:g} {unit_text(prev[1])}" if prev else "",
    }


def _discharge_view(doc: HandoverDoc) -> View:
    """``discharge.html``: guidance for the grades on the ward, discharge advice per product."""
    guidance: dict[tuple[str, str], Guidance] = {}
    for ph in doc.patients:
        for g in ph.guidance:
            guidance.setdefault((g.topic, g.text), g)
    notes: dict[str, tuple[str, str]] = {}
    for ph in doc.patients:
        for i, topic, current in ph.discrepancies:
            notes.setdefault(i, (topic, current))
    products: list[View] = []
    seen: set[str] = set()
    for ph in doc.patients:
        product = ph.patient.product
        if not ph.discharge or product in seen:
            continue
        seen.add(product)
        items = [
            {"title": title, "text": text, "source": source, "verified": verified}
            for title, text, source, verified in ph.discharge
            if title not in DISCHARGE_FIGURES
        ]
        products.append({"name": product, "entries": items})
    return {
        "guidance": [
            {
                "topic": g.topic,
                "text": g.text,
                "source": g.source,
                "verified": g.verified,
                "discrepancies": ", ".join(g.discrepancies),
            }
            for g in guidance.values()
        ],
        "products": products,
        "notes": [{"id": i, "topic": t, "current": c} for i, (t, c) in notes.items()],
    }


def _syndrome_text(sy: Any) -> str:
    if sy.assessments == 0:
        return "not assessed"
    if not sy.occurred:
        return "no"
    day = f" day {sy.onset_day:+d}" if sy.onset_day is not None else ""
    res = "ongoing" if sy.ongoing else f"resolved {_t(sy.resolved_at)}"
    ther = ", ".join(f"{t.label} × {t.doses}" for t in sy.therapies)
    return f"max G{sy.max_grade}, onset {_t(sy.onset_at)}{day}, {res}" + (
        f"; {ther}" if ther else ""
    )


def _registry_row(ph: PatientHandover) -> View:
    s = ph.summary
    g2 = (
        format_duration(s.grade2_to_tocilizumab)
        if s.grade2_to_tocilizumab is not None
        else s.grade2_to_tocilizumab_note
    )
    return {
        "bed": ph.patient.bed or "—",
        "name": ph.patient.name,
        "crs": _syndrome_text(s.crs),
        "icans": _syndrome_text(s.icans),
        "toci": f"{s.tocilizumab_text()}; G≥2 → toci {g2}",
        "counts": f"{s.overdue_timer_count} overdue, {s.alarms_raised} alarms, "
        f"{s.alarms_acknowledged} ack, {s.alarms_snoozed} snooze; "
        f"{s.override_count} override(s); {s.voided_events + s.amended_events} correction(s)",
    }


def _appendix_view(doc: HandoverDoc) -> View:
    """``appendix.html``: registry summary, rules behind the timers, discrepancy notes."""
    rules: dict[str, tuple[str, bool, set[str]]] = {}
    for ph in doc.patients:
        for d in ph.due:
            src, ver, kinds = rules.get(d.rule, (d.source, d.verified, set()))
            kinds.add(d.kind.replace("_", " "))
            rules[d.rule] = (src, ver, kinds)
    seen: dict[str, tuple[str, str]] = {}
    for ph in doc.patients:
        for i, t, c in ph.discrepancies:
            seen.setdefault(i, (t, c))
    unverified = sorted({u for ph in doc.patients for u in ph.unverified})
    return {
        "registry": [_registry_row(ph) for ph in doc.patients],
        "rules": [
            {"key": rule, "verified": ver, "source": src, "used_for": ", ".join(sorted(kinds))}
            for rule, (src, ver, kinds) in sorted(rules.items())
        ],
        "discrepancies": [
            {"id": i, "topic": t, "current": c} for i, (t, c) in sorted(seen.items())
        ],
        "unverified": "; ".join(unverified),
    }


# --------------------------------------------------------------------------- HTML


@cache
def _templates() -> jinja2.Environment:
    """The template environment: every value escaped, a missing value an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["key_width"] = KEY_WIDTH
    return env


def _render(template: str, view: View) -> str:
    return _templates().get_template(template).render(view)


@dataclass(frozen=True)
class Section:
    """A part of the printout that starts on a new page with its own running header."""

    header: str
    body: str
    fit: bool = False
    """Print on one page (slightly smaller when needed): a patient's page."""


def render_sections(doc: HandoverDoc, *, appendix: bool = False) -> list[Section]:
    """The document as sections: ward overview first, one per patient, the appendix last."""
    sections: list[Section] = []
    if doc.scope == "ward":
        sections.append(Section("Ward handover", _render("overview.html", _overview_view(doc))))
    sync = doc.sync if doc.scope == "patient" else ()
    sections.extend(
        Section(ph.header, _render("patient.html", _patient_view(ph, sync)), fit=True)
        for ph in doc.patients
    )
    if any(ph.discharge or ph.guidance for ph in doc.patients):
        body = _render("discharge.html", _discharge_view(doc))
        sections.append(Section("Guidance and discharge", body, fit=True))
    if appendix and doc.patients:
        body = _render("appendix.html", _appendix_view(doc))
        sections.append(Section("Handover appendix", body, fit=True))
    return sections


def _marker(section: Section, footer: str) -> Markup:
    """The section marker ``ui.printing`` reads (new page, running header and footer).

    Safe as markup: JSON with every non-ASCII character and ``-``, ``<``, ``>``, ``&``
    escaped as ``\\uXXXX``, so nothing in a name can close the comment or open a tag.
    """
    meta: dict[str, object] = {"header": section.header, "footer": footer}
    if section.fit:
        meta["fit"] = True
    payload = json.dumps(meta, ensure_ascii=True)
    for char, escaped in (("-", "\\u002d"), ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        payload = payload.replace(char, escaped)
    return Markup(SECTION_MARK + payload + "-->")


def footer_text(doc: HandoverDoc) -> str:
    """The running footer (before the page number): what, when, which protocol."""
    protos = ", ".join(doc.protocols) or "—"
    return f"Bedside handover · {format_local(doc.generated_at)} · protocol {protos} · CONFIDENTIAL"


def render_html(doc: HandoverDoc, *, appendix: bool = False) -> str:
    """The whole document as one HTML page (sections separated by page breaks).

    ``appendix`` adds the optional last page(s): protocol keys and rule paths, discrepancy
    notes and the registry summary.
    """
    footer = footer_text(doc)
    sections = [
        # A section body is the output of an autoescaping template: markup already.
        {"marker": _marker(sec, footer), "body": Markup(sec.body)}
        for sec in render_sections(doc, appendix=appendix)
    ]
    return _render("document.html", {"sections": sections})


# --------------------------------------------------------------------------- PDF (injected)

PdfWriter = Callable[[str, Path], int]
"""Writes HTML to an A4 PDF file and returns the page count (raises ``OSError`` when it cannot).

The core has none: the program that owns Qt (the application's entry point) passes its own
to :func:`main` (``bedside handover``, ``python -m ui handover``)."""


def write_pdf(html_text: str, out: Path, writer: PdfWriter) -> int:
    """Write ``html_text`` as a PDF at ``out`` with ``writer``; the file is private (0600).

    Raises:
        BedsideError: The folder of ``out`` does not exist, or the writer failed.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise BedsideError(f"--out: the folder {out.parent} does not exist; nothing was written")
    try:
        pages = writer(html_text, out)
    except OSError as exc:
        raise BedsideError(f"the PDF could not be written: {exc}") from None
    if os.name == "posix":
        os.chmod(out, 0o600)  # patient data: readable by this user only
    return pages


# --------------------------------------------------------------------------- command


PDF_NEEDS_THE_APPLICATION = (
    "a PDF is printed by the application: run 'bedside handover' (or, from source, "
    "'python -m ui handover') with the same options, or write HTML with --out FILE.html; "
    "nothing was written"
)


def main(argv: list[str], *, pdf_writer: PdfWriter | None = None) -> int:
    """``handover --data-dir DIR --out FILE.pdf|FILE.html [--patient ID] [--appendix]``.

    Args:
        argv: The command's arguments.
        pdf_writer: How to write a PDF, from the program that owns Qt; without one only
            HTML can be written (``--out FILE.pdf`` is refused, exit status 2).
    """
    from bedside.common.clock import SystemClock
    from bedside.store.paths import resolve_data_dir
    from bedside.ward.service import open_ward

    parser = argparse.ArgumentParser(
        prog="python -m bedside handover",
        description="Write the SBAR handover (PDF or HTML) for the whole ward or one patient.",
    )
    parser.add_argument("--data-dir", type=Path, help="data directory (default: the user data dir)")
    parser.add_argument("--out", type=Path, required=True, help="PDF file to write (or .html)")
    parser.add_argument("--patient", help="one patient id (default: the whole ward)")
    parser.add_argument(
        "--appendix",
        action="store_true",
        help="add the appendix: protocol keys, rule paths, registry summary",
    )
    ns = parser.parse_args(argv)
    as_html = ns.out.suffix.lower() in {".html", ".htm"}
    if not as_html and pdf_writer is None:
        sys.stderr.write(f"error: {PDF_NEEDS_THE_APPLICATION}\n")
        return 2
    root = resolve_data_dir(ns.data_dir)
    from bedside.store.storage import is_data_dir, not_a_data_dir

    if not is_data_dir(root):
        sys.stderr.write(f"error: {not_a_data_dir(root)}\n")
        return 2
    clock = SystemClock()
    from bedside.store.paths import sweep_handover_tmp
    from bedside.store.storage import atomic_write

    sweep_handover_tmp(clock.now())
    try:
        ward = open_ward(root, clock, read_only=True)
        doc = build_handover(ward, clock.now(), ns.patient)
        text = render_html(doc, appendix=ns.appendix)
        if as_html or pdf_writer is None:
            if not ns.out.parent.is_dir():
                raise BedsideError(f"--out: the folder {ns.out.parent} does not exist")
            atomic_write(ns.out, text.encode("utf-8"))  # mode 0600
        else:
            write_pdf(text, ns.out, pdf_writer)
    except BedsideError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for pid, problem in doc.failures:
        sys.stderr.write(f"warning: {pid} not in the handover: {problem}\n")
    sys.stdout.write(
        f"handover of {len(doc.patients)} patient(s) written to {ns.out}"
        + (f" ({len(doc.failures)} could not be included)" if doc.failures else "")
        + "\n"
    )
    return 1 if doc.failures else 0


__all__ = [
    "HandoverDoc",
    "PatientHandover",
    "PdfWriter",
    "Section",
    "budget_text",
    "build_handover",
    "build_patient",
    "render_html",
    "render_sections",
    "toci_next_text",
    "write_pdf",
]

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
words in capitals (``OVERDUE``, ``DUE``), tables have borders, the type is large.

``python -m bedside handover --data-dir DIR --out FILE.pdf [--patient ID]`` builds the
HTML here (Qt-free) and runs the Qt renderer :mod:`ui.printing` in a subprocess. In a
frozen build the bundled executable must route ``print-pdf --html H --out F`` to
``ui.printing.main`` (see :func:`renderer_command`).
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from bedside.alerts import alert_states
from bedside.doses import DoseBudget, dose_budget, tocilizumab_doses
from bedside.errors import BedsideError
from bedside.escalations import DueItem, derive_due
from bedside.labels import LAB_TEST_LABELS
from bedside.presenters import budget_text, toci_next_text, unit_text, vitals_text
from bedside.protocol import Protocol, Text
from bedside.record import (
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
from bedside.summary import STEROIDS, EpisodeSummary, GradePoint, drug_label, summarize
from bedside.timeutil import format_duration, format_local, local_zone
from bedside.views import project

logger = logging.getLogger(__name__)

SECTION_MARK = "<!--BEDSIDE-SECTION:"
"""Start of a section marker in the HTML; the PDF renderer starts a new page there and
prints the marker's header text on every page of the section."""

RENDER_TIMEOUT_S = 180
NOTES_WINDOW = timedelta(hours=24)
STEROID_WINDOW = timedelta(hours=72)
UPCOMING_WINDOW = timedelta(hours=8)

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DueEntry:
    """An open timer or overdue item (from ``bedside.escalations.derive_due``)."""

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


def build_handover(ward: Any, now: datetime, pid: str | None = None) -> HandoverDoc:
    """Build the handover of one patient (``pid``) or of every patient of ``ward``.

    Args:
        ward: A :class:`bedside.service.Ward` (``records``, ``failures``, ``protocol_for``).
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
            record, ward.protocol_for(record), now, budget=_ward_budget(ward, pid, now)
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
                    record, ward.protocol_for(record), now, budget=_ward_budget(ward, p, now)
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
    from bedside import wardsync

    if not hasattr(ward, "store") or not hasattr(ward.store, "workstations_dir"):
        return ()
    lines = list(wardsync.ward_status(ward).lines)
    for p in [pid] if pid else sorted(ward.records):
        lines = [d.message for d in wardsync.duplicate_doses(ward, p)] + lines
    return tuple(lines)


def _sync_html(doc: HandoverDoc) -> str:
    if not doc.sync:
        return ""
    return (
        "<p><b>WARNING — other workstations:</b></p><ul>"
        + "".join(f"<li><b>{_e(line)}</b></li>" for line in doc.sync)
        + "</ul>"
    )


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: 'DejaVu Sans', 'Segoe UI', Arial, sans-serif; font-size: 10pt; color: #000; }
h1 { font-size: 16pt; font-weight: bold; margin-top: 0; margin-bottom: 2px; }
h2 { font-size: 12pt; font-weight: bold; margin-top: 8px; margin-bottom: 2px; }
h3 { font-size: 11pt; font-weight: bold; margin-top: 6px; margin-bottom: 2px; }
p { margin-top: 1px; margin-bottom: 2px; }
ol { margin-top: 0; margin-bottom: 0; }
table.grid { border-collapse: collapse; border-color: #000; border-style: solid; }
table.grid td, table.grid th { border: 1px solid #000; padding: 2px; vertical-align: top; }
th { font-weight: bold; text-align: left; background-color: #e6e6e6; }
td.k { font-weight: bold; width: 26%; }
.small { font-size: 8.5pt; }
table.ov td { font-size: 10pt; }
table.ap td { font-size: 8.5pt; }
.warn { font-weight: bold; }
.unv { font-style: italic; font-weight: bold; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _t(dt: datetime | None) -> str:
    return _e(format_local(dt))


def _grade(g: int | None) -> str:
    if g is None:
        return "not assessed"
    return f"<b>Grade {g}</b>" if g >= 2 else f"Grade {g}"


def _state_word(state: str) -> str:
    word = {"overdue": "OVERDUE", "due": "DUE", "upcoming": "upcoming"}.get(state, state)
    return f"<b>{_e(word)}</b>" if state in {"overdue", "due"} else _e(word)


def _unv(verified: bool) -> str:
    return "" if verified else ' <span class="unv">[UNVERIFIED]</span>'


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[int] = (),
    *,
    css_class: str = "grid",
) -> str:
    ths = "".join(
        f'<th width="{widths[i]}%">{h}</th>' if i < len(widths) else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<table class="{css_class}" border="1" cellspacing="0" cellpadding="4" width="100%">'
        f"<thead><tr>{ths}</tr></thead>{body}</table>"
    )


KEY_WIDTH = 30


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f'<tr><td class="k" width="{KEY_WIDTH}%">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows
    )
    return (
        '<table class="grid" border="1" cellspacing="0" cellpadding="4" width="100%">'
        f"{body}</table>"
    )


def _trajectory(points: Sequence[GradePoint], with_ice: bool) -> str:
    if not points:
        return "no assessments"
    parts = []
    for p in points:
        ice = f", ICE {p.ice_score}/10" if with_ice and p.ice_score is not None else ""
        parts.append(f"G{p.grade}{ice} ({_t(p.at)})")
    return " → ".join(parts)


def _age(dob: date, now: datetime) -> int:
    today = now.astimezone(local_zone()).date()
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _day_text(ph: PatientHandover) -> str:
    if ph.day is None:
        return "not yet infused"
    return f"day +{ph.day}" if ph.day >= 0 else f"day {ph.day}"


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


def _lines(items: Sequence[str], empty: str) -> str:
    return "<br/>".join(items) if items else _e(empty)


def _patient_html(ph: PatientHandover) -> str:
    """One patient on one page: SBAR, tocilizumab budget, due items and open alerts.

    Protocol keys, rule paths, the registry summary and discrepancy notes are in the
    appendix (:func:`_appendix_html`), not here.
    """
    p = ph.patient
    s = ph.summary
    b = ph.budget
    out: list[str] = []
    out.append(f"<h1>{_e(p.name)}</h1>")
    out.append(
        f"<p><b>Bed {_e(p.bed or '—')}</b> · MRN {_e(p.mrn)} · born "
        f"{_e(date_text(p.date_of_birth))} ({_age(p.date_of_birth, ph.now)} y, {_e(p.sex)})"
        f" · <b>{_e(p.product)}</b> · <b>{_e(_day_text(ph))}</b></p>"
    )
    signed = "" if ph.protocol_signed_off else " — <b>protocol NOT signed off</b>"
    out.append(
        f'<p class="small">Protocol {_e(ph.protocol_label)}{signed} · handover at {_t(ph.now)}</p>'
    )

    # S -----------------------------------------------------------------
    out.append("<h2>S — Situation</h2>")
    crs_cur, icans_cur = s.crs.current, s.icans.current
    crs_txt = (
        f"{_grade(crs_cur.grade)} at {_t(crs_cur.at)} (maximum so far: grade {s.crs.max_grade})"
        if crs_cur
        else "not assessed"
    )
    if icans_cur:
        ice = (
            f", ICE {icans_cur.ice_score}/10"
            if icans_cur.ice_score is not None
            else ", ICE not scorable"
        )
        icans_txt = (
            f"{_grade(icans_cur.grade)}{ice} at {_t(icans_cur.at)} "
            f"(maximum so far: grade {s.icans.max_grade})"
        )
    else:
        icans_txt = "not assessed"
    vit = (
        f"{_e(vitals_text(ph.latest_vitals))} ({_t(ph.latest_vitals.effective_at)})"
        if ph.latest_vitals
        else "none recorded"
    )
    tmax = f"{ph.max_temp_24h:.1f} °C" if ph.max_temp_24h is not None else "none recorded"
    infused = (
        f"{_e(p.product)}"
        + (f" (lot {_e(p.lot_number)})" if p.lot_number else "")
        + (f" · infused {_t(p.infusion_at)}" if p.infusion_at else " · <b>not yet infused</b>")
    )
    out.append(
        _kv(
            [
                ("Product / infusion", infused),
                ("CRS now", crs_txt),
                ("ICANS now", icans_txt),
                ("Latest vitals", vit),
                ("Highest temperature 24 h", _e(tmax)),
            ]
        )
    )

    # B -----------------------------------------------------------------
    out.append("<h2>B — Background</h2>")
    el = ph.eligibility
    el_txt = (
        f"<b>{_e(el.status.replace('_', ' '))}</b> ({_e(el.criteria)}) screened "
        f"{_t(el.effective_at)}"
        + (f"; unmet: {_e('; '.join(el.unmet))}" if el.unmet else "")
        + (f"; cautions: {_e('; '.join(el.cautions))}" if el.cautions else "")
        + (
            f"; <b>SUPERSEDED label version</b> — reason: {_e(el.criteria_reason or '')}"
            if el.superseded
            else ""
        )
        if el
        else "no screening recorded"
    )
    weight = (
        f"{p.weight_kg:g} kg, measured {_t(p.weight_measured_at)}"
        if p.weight_kg is not None
        else "<b>no weight recorded</b>"
    )
    baseline = (
        f"ICE {_e(p.baseline_ice if p.baseline_ice is not None else 'not recorded')} · "
        f"handwriting: {_e(p.baseline_handwriting or 'not recorded')}"
    )
    out.append(
        _kv(
            [
                ("Eligibility", el_txt),
                ("Baseline", baseline),
                ("Weight / admitted", f"{weight} · admitted {_t(p.admitted_at)}"),
            ]
        )
    )

    # A -----------------------------------------------------------------
    out.append("<h2>A — Assessment</h2>")
    hist = (
        ""
        if b.history_complete
        else "<br/><b>Dose history INCOMPLETE</b> — doses may have been given before this "
        "workstation knew the patient; confirm against the MAR/transfer letter"
    )
    doses = []
    for m in ph.toci_doses:
        who = _e(m.given_by) + (f"/{_e(m.checked_by)}" if m.checked_by else "")
        extra = " given elsewhere" if m.prior else ""
        if m.override:
            extra += (
                f" <b>OVERRIDE</b> ({_e(', '.join(m.override.limits))}: "
                f"{_e(m.override.reason)}, 2nd nurse {_e(m.override.second_nurse)}"
                + (f", ordered by {_e(m.override.prescriber)}" if m.override.prescriber else "")
                + ")"
            )
        doses.append(f"{_t(m.effective_at)} {m.dose:g} {_e(m.unit)} {_e(m.route)} ({who}){extra}")
    toci = (
        f"<b>{_e(budget_text(b))}</b> · next dose: <b>{_e(toci_next_text(b, ph.now))}</b>{hist}"
        + (f"<br/>Given: {'; '.join(doses)}" if doses else "")
    )
    steroids = []
    for st in ph.steroids:
        every = f"every {st.every_h:g} h" if st.every_h else "no interval charted"
        nxt = st.next_due_at
        nxt_txt = (
            ""
            if nxt is None
            else (f" · <b>was due {_t(nxt)}</b>" if nxt < ph.now else f" · next {_t(nxt)}")
        )
        steroids.append(
            f"{_e(st.drug)} {st.dose:g} {_e(st.unit)} {_e(st.route)} {_e(every)} · "
            f"{st.doses_24h} in 24 h / {st.doses_total} total · last {_t(st.last_at)}{nxt_txt}"
        )
    others = [
        f"{_t(m.effective_at)} {_e(drug_label(m))} {m.dose:g} {_e(m.unit)} {_e(m.route)}"
        for m in ph.other_meds_24h
    ]
    labs = []
    for lab in ph.labs:
        grade = (
            f" <b>CTCAE {lab.ctcae_grade}</b>"
            if (lab.ctcae_grade or 0) >= 3
            else (f" CTCAE {lab.ctcae_grade}" if lab.ctcae_grade is not None else "")
        )
        prev = (
            f" (before: {lab.previous[0]:g} {_e(unit_text(lab.previous[1]))})"
            if lab.previous
            else ""
        )
        labs.append(
            f"{_e(lab.label)} <b>{lab.value:g}</b> {_e(unit_text(lab.unit))}{grade} "
            f"{_t(lab.at)}{prev}"
        )
    toxic = [
        f"{_e(t.category.replace('_', ' '))}: {_e(t.description)}"
        + (f" (CTCAE {t.ctcae_grade})" if t.ctcae_grade is not None else "")
        + f" since {_t(t.effective_at)}"
        for t in ph.toxicities
    ]
    rows = [
        ("CRS changes", _recent_trajectory(s.crs.changes(), with_ice=False)),
        ("ICANS changes", _recent_trajectory(s.icans.changes(), with_ice=True)),
        ("Tocilizumab", toci),
        ("Steroids (72 h)", _lines(steroids, "none in the last 72 h")),
    ]
    if others:
        rows.append(("Other medication (24 h)", "<br/>".join(others)))
    rows.append(("Latest labs", _lines(labs, "none recorded")))
    rows.append(("Active toxicities", _lines(toxic, "none recorded")))
    if p.infusion_at is not None or ph.last_neuro_check is not None:
        rows.append(("Neurological check", _neuro_text(ph)))
    if ph.notes:
        recent = ph.notes[-RECENT_NOTES:]
        more = len(ph.notes) - len(recent)
        rows.append(
            (
                "Notes (24 h)",
                "<br/>".join(
                    f"{_t(n.effective_at)} {_e(n.recorded_by)}: {_e(n.text)}" for n in recent
                )
                + (f"<br/>… {more} earlier note(s) in the record" if more else ""),
            )
        )
    out.append(_kv(rows))

    # Due items and open alerts ------------------------------------------
    out.append("<h2>Due items and open alerts</h2>")
    if not ph.due_available:
        out.append(
            "<p><b>Timers could not be derived in this build</b> — check the timers panel.</p>"
        )
    elif ph.due:
        out.append(
            _table(
                ["State", "What", "Due", "Alert"],
                [
                    [
                        _state_word(d.state)
                        + (" <b>critical</b>" if d.severity == "critical" else ""),
                        _e(_clip(d.message)) + _unv(d.verified),
                        _t(d.due_at),
                        _e(d.alert or ("ALARM ON" if d.state in {"due", "overdue"} else "—")),
                    ]
                    for d in ph.due
                ],
                (13, 55, 14, 18),
            )
        )
    else:
        out.append("<p>No open timers.</p>")

    # R -----------------------------------------------------------------
    out.append("<h2>R — Recommendation</h2>")
    if ph.recommendations:
        # The due table above has the whole text: here the first clause of each, in order.
        out.append(
            "<ol>" + "".join(f"<li>{_e(_brief(r))}</li>" for r in ph.recommendations) + "</ol>"
        )
    else:
        out.append("<p>Nothing due. Continue routine monitoring.</p>")
    figures = [d for d in ph.discharge if d[0] in DISCHARGE_FIGURES]
    tail = []
    if figures:
        tail.append(
            "<b>Discharge:</b> "
            + "; ".join(
                f"{_e(title.lower())} {_e(text.split(' (')[0])}{_unv(verified)}"
                for title, text, _src, verified in figures
            )
        )
    if ph.guidance:
        topics = ", ".join(f"{_e(g.topic)}{_unv(g.verified)}" for g in ph.guidance)
        tail.append(f"<b>protocol guidance</b> for {topics}")
    if tail:
        out.append(f'<p class="small">{" · ".join(tail)} — on the last pages.</p>')
    return "".join(out)


def _brief(recommendation: str) -> str:
    """``OVERDUE since 02:10: Escalation review …`` cut to its first clause after the time."""
    head, sep, rest = recommendation.partition(": ")
    if not sep or head.startswith("Tocilizumab"):
        return recommendation
    return f"{head}: {_short(rest, 110)}"


def _neuro_text(ph: PatientHandover) -> str:
    nc = ph.last_neuro_check
    if nc is None:
        return "no neurological check recorded"
    flags = [f.replace("_", " ") for f in nc.positive]
    txt = f"last check {_t(nc.effective_at)}: " + (
        f"<b>CHANGES: {_e(', '.join(flags))}</b>" if flags else "no changes"
    )
    if ph.neuro_changes and not flags:
        txt += f" (earlier changes on {len(ph.neuro_changes)} check(s))"
    return txt


SUMMARY_FIELDS = (
    "Occurred",
    "Onset (first documented)",
    "Maximum grade (ASTCT)",
    "Resolved",
    "Therapies given while active",
)


def _syndrome_cells(sy: Any) -> list[str]:
    if sy.assessments == 0:
        return ["not assessed", "—", "—", "—", "—"]
    if not sy.occurred:
        return [f"No (all {sy.assessments} assessments grade 0)", "—", "0", "—", "—"]
    day = f" (day {sy.onset_day:+d})" if sy.onset_day is not None else ""
    res = "<b>ongoing</b>" if sy.ongoing else _t(sy.resolved_at)
    episodes = f" ({len(sy.episodes)} episodes)" if len(sy.episodes) > 1 else ""
    ther = "<br/>".join(f"{_e(t.label)} × {t.doses}" for t in sy.therapies) or "none recorded"
    return [
        f"<b>Yes</b>{episodes}",
        f"{_t(sy.onset_at)}{_e(day)}",
        f"<b>Grade {sy.max_grade}</b> ({_t(sy.max_grade_at)})",
        res,
        ther,
    ]


def summary_html(s: EpisodeSummary) -> str:
    """The episode summary as an HTML fragment (a CRS/ICANS table and the counts)."""
    crs, icans = _syndrome_cells(s.crs), _syndrome_cells(s.icans)
    parts = [
        _table(
            ["", "CRS", "ICANS"],
            [[f"<b>{_e(f)}</b>", c, i] for f, c, i in zip(SUMMARY_FIELDS, crs, icans, strict=True)],
            (KEY_WIDTH, 35, 35),
        )
    ]
    if s.grade2_to_tocilizumab is not None:
        g2 = f"{format_duration(s.grade2_to_tocilizumab)} ({s.grade2_to_tocilizumab_note})"
    else:
        g2 = s.grade2_to_tocilizumab_note
    now_txt = "not derived" if s.overdue_now is None else f"{s.overdue_now} overdue now"
    overdue = (
        f"{s.overdue_timer_count} timer(s) went overdue ({s.alarms_raised} alarm(s) raised, "
        f"{now_txt}; {s.alarms_acknowledged} acknowledged, {s.alarms_snoozed} snooze(s))"
    )
    ov = str(s.override_count)
    if s.overrides:
        ov += ": " + "; ".join(
            f"{format_local(o.at)} {o.drug} ({', '.join(o.limits)}) — {o.reason} "
            f"[{o.given_by}/{o.second_nurse}"
            + (f", ordered by {o.prescriber}" if o.prescriber else "")
            + "]"
            for o in s.overrides
        )
    parts.append(
        _kv(
            [
                ("Tocilizumab doses (course)", _e(s.tocilizumab_text())),
                ("Grade ≥ 2 CRS → first tocilizumab", _e(g2)),
                ("Overdue timers", _e(overdue)),
                ("Limit overrides", _e(ov)),
                (
                    "Corrections",
                    _e(f"{s.voided_events} voided, {s.amended_events} amended event(s)"),
                ),
            ]
        )
    )
    parts.append(
        '<p class="small">Onset = first assessment with grade ≥ 1; resolution = first grade-0 '
        "assessment after it. Therapies are the doses given while the syndrome was active "
        "(the record stores no indication); every tocilizumab dose counts for CRS.</p>"
    )
    return "".join(parts)


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


def _overview_html(doc: HandoverDoc) -> str:
    out = [f"<h1>Ward handover — {len(doc.patients)} patient(s)</h1>"]
    protos = ", ".join(doc.protocols) or "—"
    out.append(f"<p>Generated {_t(doc.generated_at)} · protocol {_e(protos)}</p>")
    out.append(_sync_html(doc))
    if doc.failures:
        out.append(
            "<p><b>WARNING — not included (file could not be loaded or computed):</b></p><ul>"
            + "".join(f"<li><b>{_e(p)}</b>: {_e(msg)}</li>" for p, msg in doc.failures)
            + "</ul>"
        )
    rows = []
    for ph in doc.patients:
        s = ph.summary
        crs, icans = s.crs.current, s.icans.current
        day = (
            "not yet infused"
            if ph.day is None
            else (f"day +{ph.day}" if ph.day >= 0 else f"day {ph.day}")
        )
        grades = "CRS " + (_grade(crs.grade) if crs else "not assessed")
        grades += "<br/>ICANS " + (_grade(icans.grade) if icans else "not assessed")
        if icans and icans.ice_score is not None:
            grades += f" · ICE {icans.ice_score}"
        toci = f"<b>{_e(budget_text(ph.budget, short=True))}</b>"
        if (crs and crs.grade >= 1) or ph.budget.total or not ph.budget.history_complete:
            toci += f"<br/>{_e(toci_next_text(ph.budget, ph.now))}"
        active = [d for d in ph.due if d.state in {"overdue", "due"}]
        shown = active[:2] or list(ph.due[:1])
        due_txt = "<br/>".join(
            f"{_state_word(d.state)} {_e(_short(d.message))} (due {_t(d.due_at)})" for d in shown
        ) or ("—" if ph.due_available else "timers unavailable")
        if len(active) > len(shown):
            due_txt += f"<br/><b>+{len(active) - len(shown)} more due/overdue</b>"
        rows.append(
            [
                f"<b>{_e(ph.patient.bed or '—')}</b>",
                f"<b>{_e(ph.patient.name)}</b><br/>{_e(ph.patient.product)} · {_e(day)}",
                grades,
                toci,
                due_txt,
            ]
        )
    out.append(
        _table(
            ["Bed", "Patient", "Grades now", "Tocilizumab", "Due / overdue"],
            rows,
            (10, 19, 19, 24, 28),
            css_class="grid ov",
        )
    )
    return "".join(out)


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
        sections.append(Section("Ward handover", _overview_html(doc)))
    sync = _sync_html(doc) if doc.scope == "patient" else ""
    sections.extend(Section(ph.header, sync + _patient_html(ph), fit=True) for ph in doc.patients)
    if any(ph.discharge or ph.guidance for ph in doc.patients):
        sections.append(Section("Guidance and discharge", _discharge_html(doc), fit=True))
    if appendix and doc.patients:
        sections.append(Section("Handover appendix", _appendix_html(doc), fit=True))
    return sections


def _registry_row(ph: PatientHandover) -> list[str]:
    s = ph.summary

    def syndrome(sy: Any) -> str:
        if sy.assessments == 0:
            return "not assessed"
        if not sy.occurred:
            return "no"
        day = f" day {sy.onset_day:+d}" if sy.onset_day is not None else ""
        res = "ongoing" if sy.ongoing else f"resolved {_t(sy.resolved_at)}"
        ther = ", ".join(f"{t.label} × {t.doses}" for t in sy.therapies)
        return f"max G{sy.max_grade}, onset {_t(sy.onset_at)}{_e(day)}, {res}" + (
            f"; {_e(ther)}" if ther else ""
        )

    g2 = (
        format_duration(s.grade2_to_tocilizumab)
        if s.grade2_to_tocilizumab is not None
        else s.grade2_to_tocilizumab_note
    )
    return [
        f"<b>{_e(ph.patient.bed or '—')}</b> {_e(ph.patient.name)}",
        syndrome(s.crs),
        syndrome(s.icans),
        f"{_e(s.tocilizumab_text())}; G≥2 → toci {_e(g2)}",
        f"{s.overdue_timer_count} overdue, {s.alarms_raised} alarms, "
        f"{s.alarms_acknowledged} ack, {s.alarms_snoozed} snooze; "
        f"{s.override_count} override(s); {s.voided_events + s.amended_events} correction(s)",
    ]


def _discharge_html(doc: HandoverDoc) -> str:
    """Guidance for the grades on the ward (once each), then discharge advice per product."""
    out = ["<h1>Guidance, discharge and follow-up</h1>"]
    guidance: dict[tuple[str, str], Guidance] = {}
    for ph in doc.patients:
        for g in ph.guidance:
            guidance.setdefault((g.topic, g.text), g)
    if guidance:
        out.append("<h2>Protocol guidance for the current grades</h2>")
        out.append(
            _kv(
                [
                    (
                        g.topic,
                        _unv(g.verified).lstrip()
                        + f' {_e(g.text)} <span class="small">[{_e(g.source)}]'
                        + (
                            f" — discrepancy {_e(', '.join(g.discrepancies))}, below"
                            if g.discrepancies
                            else ""
                        )
                        + "</span>",
                    )
                    for g in guidance.values()
                ]
            )
        )
    out.append(
        "<h2>Discharge and follow-up</h2>"
        '<p class="small">What to tell the patient and the next team, per product; the '
        "monitoring, proximity and driving days are on each patient's page.</p>"
    )
    notes: dict[str, tuple[str, str]] = {}
    for ph in doc.patients:
        for i, topic, current in ph.discrepancies:
            notes.setdefault(i, (topic, current))
    seen: set[str] = set()
    for ph in doc.patients:
        product = ph.patient.product
        if not ph.discharge or product in seen:
            continue
        seen.add(product)
        out.append(f"<h3>{_e(product)}</h3>")
        out.append(
            _kv(
                [
                    (
                        title,
                        _unv(verified).lstrip()
                        + f' {_e(text)} <span class="small">[{_e(source)}]</span>',
                    )
                    for title, text, source, verified in ph.discharge
                    if title not in DISCHARGE_FIGURES
                ]
            )
        )
    if notes:
        out.append("<h3>Seed article vs current labels and guidelines</h3>")
        out.append(
            '<p class="small">Where the protocol departs from the seed article, for the rules '
            "used on the patient pages (current position):<br/>"
            + "<br/>".join(
                f"<b>{_e(i)} {_e(topic)}:</b> {_e(current)}"
                for i, (topic, current) in notes.items()
            )
            + "</p>"
        )
    return "".join(out)


def _appendix_html(doc: HandoverDoc) -> str:
    """Protocol keys, rule paths, discrepancy notes and the registry summary (optional)."""
    out = [
        "<h1>Appendix — rules and registry summary</h1>",
        '<p class="small">For pharmacists, audit and the registry; the bedside handover is '
        "on the pages before. Times are local.</p>",
        "<h2>Episode summary (registry fields)</h2>",
        _table(
            ["Patient", "CRS", "ICANS", "Tocilizumab", "Timers, alarms, corrections"],
            [_registry_row(ph) for ph in doc.patients],
            (16, 23, 23, 18, 20),
            css_class="grid ap",
        ),
        '<p class="small">Onset = first assessment with grade ≥ 1; resolution = first grade-0 '
        "assessment after it. Therapies are doses given while the syndrome was active.</p>",
    ]
    rules: dict[str, tuple[str, bool, set[str]]] = {}
    for ph in doc.patients:
        for d in ph.due:
            src, ver, kinds = rules.get(d.rule, (d.source, d.verified, set()))
            kinds.add(d.kind.replace("_", " "))
            rules[d.rule] = (src, ver, kinds)
    if rules:
        out.append("<h2>Protocol rules behind the timers</h2>")
        out.append(
            _table(
                ["Protocol key", "Source", "Used for"],
                [
                    [_e(rule) + _unv(ver), _e(src), _e(", ".join(sorted(kinds)))]
                    for rule, (src, ver, kinds) in sorted(rules.items())
                ],
                (42, 14, 44),
                css_class="grid ap",
            )
        )
    seen: dict[str, tuple[str, str]] = {}
    for ph in doc.patients:
        for i, t, c in ph.discrepancies:
            seen.setdefault(i, (t, c))
    if seen:
        out.append("<h2>Discrepancy notes for the current grades</h2>")
        out.append(
            '<p class="small">'
            + "<br/>".join(
                f"<b>{_e(i)}</b> {_e(t)} — current position: {_e(c)}"
                for i, (t, c) in sorted(seen.items())
            )
            + "</p>"
        )
    unverified = sorted({u for ph in doc.patients for u in ph.unverified})
    if unverified:
        out.append(
            '<p class="small"><span class="unv">[UNVERIFIED]</span> protocol values in use '
            "(need pharmacist sign-off): " + _e("; ".join(unverified)) + "</p>"
        )
    return "".join(out)


def _marker(section: Section, footer: str) -> str:
    meta: dict[str, object] = {"header": section.header, "footer": footer}
    if section.fit:
        meta["fit"] = True
    payload = json.dumps(meta, ensure_ascii=True)
    return SECTION_MARK + payload.replace("-", "\\u002d") + "-->"


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
    parts = []
    for i, sec in enumerate(render_sections(doc, appendix=appendix)):
        brk = ' style="page-break-before: always"' if i else ""
        parts.append(f"{_marker(sec, footer)}<div{brk}>{sec.body}</div>")
    if not parts:
        parts.append("<p>No patients.</p>")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"/>'
        f"<title>Bedside handover</title><style>{CSS}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )


# --------------------------------------------------------------------------- PDF (subprocess)


def renderer_command(html_path: Path, out_path: Path) -> list[str]:
    """The command that renders ``html_path`` to ``out_path`` with Qt.

    From source: ``python -m ui.printing --html H --out F``. In a frozen build the
    bundled executable must route its first argument ``print-pdf`` to
    ``ui.printing.main`` (the UI entry point does this).
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "print-pdf", "--html", str(html_path), "--out", str(out_path)]
    return [sys.executable, "-m", "ui.printing", "--html", str(html_path), "--out", str(out_path)]


def write_pdf(html_text: str, out: Path, *, timeout_s: float = RENDER_TIMEOUT_S) -> None:
    """Render HTML to a PDF in a Qt subprocess (the core never imports Qt).

    Raises:
        BedsideError: The renderer failed or timed out (its message is included).
    """
    from bedside.paths import handover_tmp_dir

    out = Path(out)
    if not out.parent.is_dir():
        raise BedsideError(f"--out: the folder {out.parent} does not exist; nothing was written")
    try:
        private = handover_tmp_dir()
    except OSError as exc:
        raise BedsideError(f"no private folder for the handover ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="bedside-handover-", dir=private) as tmp:
        html_path = Path(tmp) / "handover.html"
        html_path.write_text(html_text, encoding="utf-8")
        env = dict(os.environ)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.run(
                renderer_command(html_path, out),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BedsideError(f"the PDF renderer did not finish within {timeout_s:g} s") from None
        except OSError as exc:
            raise BedsideError(f"the PDF renderer could not be started: {exc.strerror}") from None
    if proc.returncode != 0 or not out.is_file():
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BedsideError(
            "the PDF renderer failed: " + (" | ".join(detail) or f"exit {proc.returncode}")
        )
    if os.name == "posix":
        os.chmod(out, 0o600)  # patient data: readable by this user only


# --------------------------------------------------------------------------- command


def main(argv: list[str]) -> int:
    """``python -m bedside handover --data-dir DIR --out FILE.pdf [--patient ID]``."""
    from bedside.clock import SystemClock
    from bedside.paths import resolve_data_dir
    from bedside.service import open_ward

    parser = argparse.ArgumentParser(
        prog="python -m bedside handover",
        description="Write the SBAR handover (PDF) for the whole ward or one patient.",
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
    root = resolve_data_dir(ns.data_dir)
    if not (root / "patients").is_dir():
        sys.stderr.write(f"error: {root} is not a Bedside data directory (no patients/ folder)\n")
        return 2
    clock = SystemClock()
    from bedside.paths import sweep_handover_tmp
    from bedside.storage import atomic_write

    sweep_handover_tmp(clock.now())
    try:
        ward = open_ward(root, clock, read_only=True)
        doc = build_handover(ward, clock.now(), ns.patient)
        text = render_html(doc, appendix=ns.appendix)
        if ns.out.suffix.lower() in {".html", ".htm"}:
            if not ns.out.parent.is_dir():
                raise BedsideError(f"--out: the folder {ns.out.parent} does not exist")
            atomic_write(ns.out, text.encode("utf-8"))  # mode 0600
        else:
            write_pdf(text, ns.out)
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
    "Section",
    "budget_text",
    "build_handover",
    "build_patient",
    "render_html",
    "render_sections",
    "renderer_command",
    "toci_next_text",
    "write_pdf",
]

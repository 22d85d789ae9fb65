"""Alerts: what the nurse did about each due item, kept in the patient record.

An alert is a :class:`~bedside.clinical.escalations.DueItem` seen from the nurse's side. Its
state is derived, like the timers, from the record and ``now``: every change (raised,
acknowledged, snoozed) is an ``alert`` event (:class:`~bedside.clinical.record.AlertAck`) in the
patient's hash-chained record, so the audit trail shows who saw what and when, and
nothing is lost on a restart.

Rules:

* An alert is identified by the item's ``key`` *and* ``due_at``: a new anchor event (a
  new dose, a new set of vitals) or a changed due time is a new alert.
* Acknowledging needs the nurse's initials, and a reason for the severities listed in
  ``monitoring.ack_reason_required_for`` (critical by default). An item can only be
  acknowledged once it is due, except informational items, so acknowledging early can
  never silence a reassessment before it is due.
* A snooze needs initials and a number of minutes in (0, ``monitoring.snooze_max_min``].
  Critical items (an overdue escalation review, a tocilizumab course limit reached)
  cannot be snoozed; a snooze recorded before an item became critical stops counting
  when it does.
* A voided alert event does not count (corrections work as for every event).
* A sounding alert sounds again at the protocol's interval (``monitoring.alarm_repeat_*_s``:
  due, overdue, critical) until it is acknowledged, snoozed or done. Which repetition is due
  is derived from the item, its alert events and ``now`` (:func:`alarm_call`), never counted.

Bad input (no initials, zero/negative/too long snooze, missing reason, unknown or
not-yet-due key) raises :class:`~bedside.common.errors.InputError` naming the field; a snooze of
a critical item raises :class:`~bedside.common.errors.LimitError`. In both cases nothing is
written.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

# The pure part, re-exported (see bedside.clinical.alertstate).
from bedside.clinical.alertstate import (
    AlarmCall,
    AlarmTone,
    AlertState,
    AlertStatus,
    alarm_call,
    alert_states,
    check_initials,
    record_alert_index,
)
from bedside.clinical.escalations import DueItem, derive_due
from bedside.clinical.record import (
    AlertAck,
    DoctorInformed,
    make_event,
)
from bedside.common.errors import InputError, LimitError

if TYPE_CHECKING:
    from bedside.ward.service import Ward

logger = logging.getLogger(__name__)


def due_items(ward: Ward, pid: str, now: datetime, *, zone: tzinfo | None = None) -> list[DueItem]:
    """Every alert item of a patient at ``now``: the record's due items
    (:func:`~bedside.clinical.escalations.derive_due`) and the ward's possible duplicate doses
    (:func:`~bedside.ward.wardsync.duplicate_dose_items`), most urgent first (nothing is
    written)."""
    from bedside.ward import wardsync  # the ward's side of alerts (wardsync reads the read side)

    record = ward.record(pid)
    items = derive_due(record, ward.protocol_for(record), now, zone=zone)
    return wardsync.with_duplicate_doses(ward, pid, items, now, zone=zone)


def patient_alerts(ward: Ward, pid: str, now: datetime | None = None) -> list[AlertStatus]:
    """Derive the alert items of a patient and their alert states (nothing is written)."""
    now = now or ward.clock.now()
    items = due_items(ward, pid, now)
    return alert_states(ward.record(pid), items, now)


# --------------------------------------------------------------------------- commands


def _find(ward: Ward, pid: str, key: object, now: datetime) -> DueItem:
    if not isinstance(key, str) or not key:
        raise InputError("key: the alert key is required")
    for item in due_items(ward, pid, now, zone=UTC):
        if item.key == key:
            return item
    # The key embeds the patient id: never echo it (messages may be logged).
    raise InputError(
        "key: no current alert with this key for this patient (it may have been replaced)"
    )


def _require_due(item: DueItem, what: str) -> None:
    if not item.active and item.severity != "info":
        raise InputError(
            f"key: this {item.kind.replace('_', ' ')} is not due until "
            f"{item.due_at.isoformat()}; it can be {what} once it is due"
        )


def _latest_action(ward: Ward, pid: str, item: DueItem) -> AlertAck | None:
    acks = record_alert_index(ward.record(pid)).get((item.key, item.due_at), [])
    acted = [a for a in acks if a.action != "raised"]
    return acted[-1] if acted else None


def _write_alert(
    ward: Ward, pid: str, item: DueItem, nurse: str, now: datetime, action: str, **extra: object
) -> AlertAck:
    """Append one alert-state event for ``item`` (the only place alert events are built)."""
    event = make_event(
        "alert",
        effective_at=now,
        recorded_at=now,
        recorded_by=nurse,
        alert_key=item.key,
        alert_kind=item.kind,
        due_at=item.due_at,
        action=action,
        **extra,
    )
    saved = ward.add_event(pid, event)
    assert isinstance(saved, AlertAck)
    return saved


def acknowledge(
    ward: Ward, pid: str, key: str, initials: str, reason: str | None = None
) -> AlertAck:
    """Acknowledge a due item: the nurse has seen it (and, where required, says what was done).

    Args:
        ward: The open ward.
        pid: The patient.
        key: The item's key (:attr:`DueItem.key`).
        initials: The acknowledging nurse's initials.
        reason: What was done; required for the severities in
            ``monitoring.ack_reason_required_for``.

    Returns:
        The ``alert`` event written to the record.

    Raises:
        InputError: Missing/invalid initials or reason, unknown key, item not yet due, or
            already acknowledged. Nothing is written.
    """
    nurse = check_initials(initials)
    now = ward.clock.now()
    item = _find(ward, pid, key, now)
    _require_due(item, "acknowledged")
    record = ward.record(pid)
    rule = ward.protocol_for(record).monitoring.ack_reason_required_for
    text = reason.strip() if isinstance(reason, str) else None
    if reason is not None and not isinstance(reason, str):
        raise InputError("reason: must be text")
    if item.severity in rule.severities and not text:
        raise InputError(
            f"reason: acknowledging a {item.severity} alert needs a reason "
            "(what was done, who was told)"
        )
    if text is not None and len(text) < 3:
        raise InputError("reason: too short (at least 3 characters)")
    last = _latest_action(ward, pid, item)
    if last is not None and last.action == "acknowledged":
        raise InputError(
            f"key: already acknowledged by {last.recorded_by} at {last.effective_at.isoformat()}"
        )
    saved = _write_alert(ward, pid, item, nurse, now, "acknowledged", reason=text or None)
    logger.info("alert acknowledged (%s)", item.kind)
    return saved


def snooze(
    ward: Ward,
    pid: str,
    key: str,
    initials: str,
    minutes: float,
    reason: str | None = None,
) -> AlertAck:
    """Snooze a due item for at most ``monitoring.snooze_max_min`` minutes.

    Raises:
        InputError: Missing/invalid initials, minutes not in (0, cap], unknown or not-yet-due
            key. Nothing is written.
        LimitError: The item is critical and cannot be snoozed. Nothing is written.
    """
    nurse = check_initials(initials)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
        raise InputError(f"minutes: must be a number of minutes, got {minutes!r}")
    if not math.isfinite(minutes) or minutes <= 0:
        raise InputError(f"minutes: a snooze must be more than 0 minutes, got {minutes!r}")
    record = ward.record(pid)
    cap = ward.protocol_for(record).monitoring.snooze_max_min.value
    if minutes > cap:
        raise InputError(
            f"minutes: a snooze can be at most {cap:g} min "
            f"(protocol monitoring.snooze_max_min), got {minutes:g}"
        )
    if reason is not None and (not isinstance(reason, str) or len(reason.strip()) < 3):
        raise InputError("reason: when given, must be at least 3 characters of text")
    now = ward.clock.now()
    item = _find(ward, pid, key, now)
    if not item.snoozable:
        raise LimitError(
            f"A critical alert ({item.kind.replace('_', ' ')}) cannot be snoozed: "
            "act on it and acknowledge it with a reason"
        )
    _require_due(item, "snoozed")
    saved = _write_alert(
        ward,
        pid,
        item,
        nurse,
        now,
        "snoozed",
        snooze_until=now + timedelta(minutes=minutes),
        reason=reason.strip() if reason else None,
    )
    logger.info("alert snoozed for %g min (%s)", minutes, item.kind)
    return saved


DOCTOR_REVIEW_KINDS: frozenset[str] = frozenset({"crs_escalation"})
"""Due items that are closed by informing the doctor (with a plan and the next review)."""


def inform_doctor(
    ward: Ward,
    pid: str,
    key: str,
    initials: str,
    doctor: str,
    plan: str,
    next_review_at: datetime,
) -> DoctorInformed:
    """Record that the doctor was told about an escalation review, the plan and the next review.

    The review is then not due (nor overdue) until ``next_review_at``, when it comes back as
    a new alert. ``next_review_at`` must be later than now and at most
    ``monitoring.doctor_review_max_h`` ahead.

    Raises:
        InputError: Missing/invalid initials, doctor's name, plan or review time; unknown
            key; an item that is not an escalation review. Nothing is written.
    """
    nurse = check_initials(initials)
    name = doctor.strip() if isinstance(doctor, str) else ""
    if len(name) < 2:
        raise InputError("doctor: the name of the doctor who was informed is required")
    text = plan.strip() if isinstance(plan, str) else ""
    if len(text) < 3:
        raise InputError("plan: the doctor's plan is required (at least 3 characters)")
    if not isinstance(next_review_at, datetime) or next_review_at.tzinfo is None:
        raise InputError("next_review_at: the next review time is required")
    now = ward.clock.now()
    record = ward.record(pid)
    cap = ward.protocol_for(record).monitoring.doctor_review_max_h.value
    if next_review_at <= now:
        raise InputError("next_review_at: the next review must be later than now")
    if next_review_at > now + timedelta(hours=cap):
        raise InputError(
            f"next_review_at: the next review can be at most {cap:g} h from now "
            "(protocol monitoring.doctor_review_max_h)"
        )
    item = _find(ward, pid, key, now)
    if item.kind not in DOCTOR_REVIEW_KINDS:
        raise InputError("key: only an escalation review is closed by informing the doctor")
    event = make_event(
        "doctor_informed",
        effective_at=now,
        recorded_at=now,
        recorded_by=nurse,
        alert_key=item.key,
        alert_kind=item.kind,
        due_at=item.due_at,
        review_of=_review_anchor(ward, pid, item),
        doctor=name,
        plan=text,
        next_review_at=next_review_at.astimezone(UTC),
    )
    saved = ward.add_event(pid, event)
    assert isinstance(saved, DoctorInformed)
    logger.info("doctor informed (%s)", item.kind)
    return saved


def _review_anchor(ward: Ward, pid: str, item: DueItem) -> str:
    """The first-dose event a review counts from (also after earlier 'doctor informed')."""
    from bedside.clinical.views import project  # the read side sits above this module

    for ev in project(ward.record(pid)).events:
        if isinstance(ev, DoctorInformed) and ev.id == item.anchor_id:
            return ev.review_of
    return item.anchor_id


def record_raised(ward: Ward, pid: str, recorded_by: str) -> list[AlertAck]:
    """Write a ``raised`` event for every due or overdue item not yet raised (audit of display).

    The UI calls this when it first shows an alert; ``recorded_by`` is the nurse signed in
    at the workstation (or ``SYS``). Items already raised are skipped, so calling it on
    every tick writes each alert once.
    """
    nurse = check_initials(recorded_by)
    now = ward.clock.now()
    items = due_items(ward, pid, now, zone=UTC)
    seen = record_alert_index(ward.record(pid))
    written: list[AlertAck] = []
    for item in items:
        if not item.active or (item.key, item.due_at) in seen:
            continue
        written.append(_write_alert(ward, pid, item, nurse, now, "raised"))
    return written


__all__ = [
    "AlarmCall",
    "AlarmTone",
    "AlertState",
    "AlertStatus",
    "acknowledge",
    "alarm_call",
    "alert_states",
    "check_initials",
    "due_items",
    "inform_doctor",
    "patient_alerts",
    "record_raised",
    "snooze",
]

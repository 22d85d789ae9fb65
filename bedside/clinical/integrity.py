"""Every write valid for the state it produces; one patient never takes down the ward.

A single event can be valid on its own and still leave the record unusable: a patient
update whose value breaks the header (a 600 kg weight, an over-long lot number), an
instant in year 9999 that overflows the timeline arithmetic, a snooze until 2099. The
service (:meth:`bedside.ward.service.Ward.add_event`) and the import
(:func:`bedside.ward.transfer.merge_into_ward`) therefore check the record *as it would be
after the write* with :func:`check_written`, and refuse the write (nothing saved) when:

* any new event's instants lie before :data:`EARLIEST` or beyond the protocol's
  ``monitoring.future_event_tolerance_min`` after now;
* a new event's canonical JSON is larger than :data:`MAX_EVENT_BYTES` (bounded free text
  and free-form ``inputs``);
* a snooze lasts longer than the protocol's ``monitoring.snooze_max_min``;
* the header with every update applied, the effective events, the escalation timers or
  the tocilizumab budget can no longer be derived.

:func:`derivation_problem` is the same derivation check on a loaded record: the ward
(:meth:`bedside.ward.service.Ward.reload`) lists a record that fails it as "cannot display"
rather than letting it break the board, the timers, the handover or the exports.
Messages and logs never carry field values of the record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bedside.clinical.doses import dose_budget
from bedside.clinical.escalations import derive_due
from bedside.clinical.protocol import Protocol
from bedside.clinical.record import (
    AlertAck,
    ClockAnomaly,
    EventBase,
    PatientUpdate,
    Record,
    current_patient,
    effective_events,
    event_to_json,
)
from bedside.common.errors import InputError
from bedside.common.timeutil import parse_instant

logger = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No charted instant lies before this (a typo such as 1026 or a zeroed clock)."""

PLANNED_INFUSION_MAX = timedelta(days=366)
"""How far ahead an infusion may be planned (a date sanity bound, not a clinical rule)."""

DERIVE_AFTER = frozenset(
    {"patient_update", "correction", "restored", "history_confirmation", "alert"}
)
"""Event kinds after which a save derives the whole record (they change the header or what
other events mean); the derivation of a 30-day record costs tens of ms per save."""

MAX_EVENT_BYTES = 32 * 1024
"""Largest canonical JSON of one event (a CRS assessment with its inputs is ~1.5 KB)."""

__all__ = [
    "EARLIEST",
    "MAX_EVENT_BYTES",
    "PossibleDuplicateError",
    "check_event_bounds",
    "check_header_bounds",
    "check_written",
    "derivation_problem",
    "duplicate_of",
    "normalise_mrn",
    "normalise_name",
]


def _instants(event: EventBase) -> list[tuple[str, datetime]]:
    out = [("effective_at", event.effective_at), ("recorded_at", event.recorded_at)]
    if isinstance(event, AlertAck):
        out.append(("due_at", event.due_at))
        if event.snooze_until is not None:
            out.append(("snooze_until", event.snooze_until))
    return out


def check_event_bounds(event: EventBase, protocol: Protocol, now: datetime) -> None:
    """Refuse an event whose instants, size or snooze fall outside what the ward accepts.

    Raises:
        InputError: Naming the field (never the record's other values).
    """
    tol = timedelta(minutes=protocol.monitoring.future_event_tolerance_min.value)
    latest = now + tol
    snooze_cap = timedelta(minutes=protocol.monitoring.snooze_max_min.value)
    for name, when in _instants(event):
        if when < EARLIEST:
            raise InputError(f"{name}: {when.date().isoformat()} lies before 2000; check the date")
        if name == "due_at":
            continue  # an alert's due time may lie ahead (it is bounded by the timers)
        if name == "snooze_until":
            if when - event.effective_at > snooze_cap + tol:
                raise InputError(
                    f"snooze_until: a snooze may last at most {snooze_cap.total_seconds() / 60:g} "
                    "min (ward policy)"
                )
            continue
        if isinstance(event, ClockAnomaly):
            continue
        if when > latest:
            raise InputError(
                f"{name}: {when.isoformat()} lies in the future "
                f"(more than {tol.total_seconds() / 60:g} min after now)"
            )
    size = len(json.dumps(event_to_json(event), ensure_ascii=False).encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        raise InputError(
            f"{getattr(event, 'kind', 'event')}: too much text in one entry "
            f"({size // 1024} KB, at most {MAX_EVENT_BYTES // 1024} KB)"
        )


_HEADER_INSTANTS = ("admitted_at", "weight_measured_at", "infusion_at")


def check_header_bounds(values: dict[str, Any], protocol: Protocol, now: datetime) -> None:
    """Refuse implausible header values being written (a new header, or an update's changes).

    Every instant lies on or after :data:`EARLIEST`; the admission and the weight's
    measurement (recorded facts) no later than the future tolerance after now; an infusion
    may be planned, at most :data:`PLANNED_INFUSION_MAX` ahead; a date of birth lies between
    1900 and today. Values already in the record are not re-judged.

    Raises:
        InputError: Naming the field.
    """
    latest = now + timedelta(minutes=protocol.monitoring.future_event_tolerance_min.value)
    for name in _HEADER_INSTANTS:
        raw = values.get(name)
        if raw is None:
            continue
        try:
            when = parse_instant(raw)
        except ValueError:
            continue  # the schema check names it
        if when < EARLIEST:
            raise InputError(f"{name}: {when.date().isoformat()} lies before 2000; check the date")
        if name == "infusion_at":
            if when > now + PLANNED_INFUSION_MAX:
                raise InputError(
                    f"{name}: {when.date().isoformat()} is more than a year ahead; check the date"
                )
        elif when > latest:
            raise InputError(f"{name}: {when.isoformat()} lies in the future")
    dob = values.get("date_of_birth")
    if isinstance(dob, str):
        with contextlib.suppress(ValueError):
            dob = date.fromisoformat(dob)
    if isinstance(dob, date) and (dob > now.date() or dob.year < 1900):
        raise InputError("date_of_birth: not a plausible date of birth")


def derivation_problem(record: Record, protocol: Protocol, now: datetime) -> str | None:
    """Why the record cannot be derived for display (None when it can).

    Runs what every view needs: the current header, the effective events, the escalation
    timers and the tocilizumab budget. The message names the step and the error type or
    the failing field names only, never values.
    """
    step = "header"
    try:
        current_patient(record)
        step = "events"
        effective_events(record)
        step = "timers"
        derive_due(record, protocol, now, zone=UTC)
        step = "dose budget"
        dose_budget(record, protocol, now)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        return f"the {step} cannot be derived (invalid {', '.join(fields) or 'value'})"
    except Exception as exc:  # noqa: BLE001 - any failure isolates this patient, logged by caller
        return f"the {step} cannot be derived ({type(exc).__name__})"
    return None


def check_written(
    after: Record,
    new_events: Iterable[EventBase],
    protocol: Protocol,
    now: datetime,
    *,
    new_header: bool = False,
    full: bool = False,
) -> None:
    """Refuse a write whose new events or resulting record are not valid (see the module).

    Args:
        after: The record as it would be saved.
        new_events: The events this write adds.
        protocol: The patient's protocol.
        now: The clock's current reading.
        new_header: The header is written by this write too (a new patient, an import).
        full: Derive the whole record whatever the new events are (imports). Otherwise the
            derivation runs when a new event changes the header or what other events mean
            (:data:`DERIVE_AFTER`); other kinds are bounded field by field, and a record
            that still fails to derive is set aside at load, never the ward.

    Raises:
        InputError: Nothing may be written; the message says why in the nurse's words.
    """
    added = list(new_events)
    for event in added:
        check_event_bounds(event, protocol, now)
        if isinstance(event, PatientUpdate):
            check_header_bounds(event.changes, protocol, now)
    if new_header:
        check_header_bounds(after.patient.model_dump(), protocol, now)
    if any(isinstance(e, PatientUpdate) for e in added):
        try:
            current_patient(after)
        except ValidationError as exc:
            # Name the field so the form can show the reason next to it (nothing saved).
            parts = [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'not valid')}"
                for e in exc.errors(include_url=False, include_input=False)
            ]
            logger.warning("a header update was refused: it would make the header invalid")
            raise InputError("; ".join(parts) + " (not saved)") from None
    if not (full or new_header or any(getattr(e, "kind", "") in DERIVE_AFTER for e in added)):
        return
    problem = derivation_problem(after, protocol, now)
    if problem is not None:
        logger.warning("a write was refused: it would leave a record underivable")
        raise InputError(
            f"not saved: this entry would leave the record unusable — {problem}. "
            "Check the values entered."
        )


# --------------------------------------------------------------------------- duplicate patients


class PossibleDuplicateError(InputError):
    """Another patient has the same name and date of birth: a nurse must confirm it is a
    different person (``confirm_not_duplicate``) before the record is created."""


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_DASHES = dict.fromkeys(
    map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), ord("-")
)


def normalise_mrn(mrn: str) -> str:
    """The form two MRNs are compared in: NFKC, case-folded, no spaces, zero-width or soft
    hyphens, every dash variant as ``-``. "  mrn\u200b\u20111234" and "MRN-1234" are equal."""
    text = unicodedata.normalize("NFKC", mrn).translate(_ZERO_WIDTH).translate(_DASHES)
    return "".join(text.split()).casefold()


def normalise_name(name: str) -> str:
    """A name compared without case, accents' composition, zero-width or extra spaces."""
    text = unicodedata.normalize("NFKC", name).translate(_ZERO_WIDTH).translate(_DASHES)
    return " ".join(text.split()).casefold()


def duplicate_of(
    records: dict[str, Record], *, patient_id: str, mrn: str, name: str, date_of_birth: date
) -> tuple[str, str] | None:
    """Another patient of the ward who may be the same person: (their id, why) or None.

    Same normalised MRN, or same normalised name and date of birth.
    """
    key_mrn = normalise_mrn(mrn)
    key_name = normalise_name(name)
    for other_pid, rec in sorted(records.items()):
        if other_pid == patient_id:
            continue
        try:
            other = current_patient(rec)
        except ValidationError:
            other = rec.patient
        if normalise_mrn(other.mrn) == key_mrn:
            return other_pid, "the same MRN"
        if normalise_name(other.name) == key_name and other.date_of_birth == date_of_birth:
            return other_pid, "the same name and date of birth"
    return None

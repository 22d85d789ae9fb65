"""Dose error reduction: the drug-library checks of a smart pump, on charted values.

Every number comes from the protocol's ``drug_library`` section (ward policy, ``LOCAL``,
unverified unless a source is named). Each check returns :class:`Finding` objects:

* a *hard* finding refuses the value (nothing is written; the message says why and,
  where it looks like a unit slip, which unit the nurse probably typed);
* a *soft* finding needs an explicit confirmation: the caller passes the finding's
  ``code`` back in ``confirmation.limits`` and the confirmation is recorded on the event.

:func:`enforce` is what the ward service calls before writing anything. The UI calls the
same functions to show the messages before the nurse saves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bedside.clinical.protocol import DoseRange, Protocol
from bedside.clinical.rules import DEVICE_LABELS
from bedside.common.errors import ConfirmationRequired, InputError

logger = logging.getLogger(__name__)

_LAB_NAMES = {
    "neutrophils": "neutrophils",
    "lymphocytes": "lymphocytes",
    "wbc": "white cells",
    "platelets": "platelets",
    "hemoglobin": "haemoglobin",
}


@dataclass(frozen=True)
class Finding:
    """One problem with a charted value.

    Attributes:
        field: The form field it belongs to (``weight_kg``, ``dose``, ``temperature_c``...).
        code: Stable key of the limit; a soft finding is confirmed by passing this code.
        message: What the nurse reads (no field names, no software words).
        hard: True when the value is refused; False when a confirmation is enough.
        needs_reason: The confirmation must carry a written reason (e.g. a stale weight).
    """

    field: str
    code: str
    message: str
    hard: bool
    needs_reason: bool = False

    def text(self) -> str:
        """``field: message`` (the form places it next to the field)."""
        return f"{self.field}: {self.message}"


def _g(value: float) -> str:
    """A number as a nurse writes it (no trailing zeros, at most 2 decimals)."""
    return f"{round(value, 2):g}"


def round_to(value: float, step: float) -> float:
    """``value`` rounded half-up to a multiple of ``step`` (display only)."""
    q = Decimal(str(step))
    return float((Decimal(str(value)) / q).quantize(Decimal(1), rounding=ROUND_HALF_UP) * q)


def shown_volume_ml(volume_ml: float, protocol: Protocol) -> str:
    """A volume as shown to the nurse, rounded by the protocol rule (e.g. to 0.1 mL)."""
    step = protocol.drug_library.volume_round_ml.value
    decimals = max(0, -Decimal(str(step)).normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{round_to(volume_ml, step):.{decimals}f} mL"


def shown_dose_mg(dose_mg: float, protocol: Protocol) -> str:
    """A calculated dose as shown to the nurse, rounded by the protocol rule."""
    step = protocol.drug_library.dose_round_mg.value
    return f"{round_to(dose_mg, step):g} mg"


# --------------------------------------------------------------------------- weight


def check_weight(new_kg: float, last_kg: float | None, protocol: Protocol) -> list[Finding]:
    """A new weight against the adult-ward ranges, the last weight and the pounds slip."""
    lib = protocol.drug_library
    out: list[Finding] = []
    lb = lib.pounds_per_kg.value
    tol = lib.pounds_match_tolerance_pct.value / 100
    pounds_hint = ""
    if last_kg is not None and abs(new_kg / (last_kg * lb) - 1) <= tol:
        pounds_hint = (
            f" It looks like pounds: {_g(new_kg)} lb is {_g(new_kg / lb)} kg "
            f"(last weight {_g(last_kg)} kg)."
        )
    elif new_kg > lib.weight_soft_max_kg.value:
        pounds_hint = f" If this was typed in pounds, it is {_g(new_kg / lb)} kg."
    hard_lo, hard_hi = lib.weight_hard_min_kg.value, lib.weight_hard_max_kg.value
    soft_lo, soft_hi = lib.weight_soft_min_kg.value, lib.weight_soft_max_kg.value
    if not hard_lo <= new_kg <= hard_hi:
        out.append(
            Finding(
                "weight_kg",
                "weight_hard_range",
                f"{_g(new_kg)} kg cannot be right for an adult on this ward (accepted "
                f"{_g(hard_lo)}–{_g(hard_hi)} kg). Check the scale and the unit.{pounds_hint}",
                hard=True,
            )
        )
        return out
    if not soft_lo <= new_kg <= soft_hi:
        out.append(
            Finding(
                "weight_kg",
                "weight_soft_range",
                f"{_g(new_kg)} kg is outside the usual adult range {_g(soft_lo)}–{_g(soft_hi)} "
                f"kg: confirm it is right.{pounds_hint}",
                hard=False,
            )
        )
    if last_kg is not None:
        pct = lib.weight_change_confirm_pct.value
        change = (new_kg - last_kg) / last_kg * 100
        if abs(change) > pct:
            more = "more" if change > 0 else "less"
            out.append(
                Finding(
                    "weight_kg",
                    "weight_change",
                    f"{_g(new_kg)} kg is {abs(change):.0f} % {more} than the last weight "
                    f"({_g(last_kg)} kg); a change of more than {_g(pct)} % needs "
                    f"confirmation.{'' if out else pounds_hint}",
                    hard=False,
                )
            )
    return out


# --------------------------------------------------------------------------- doses


def library_entry(
    drug: str, drug_name: str | None, protocol: Protocol
) -> tuple[str, DoseRange] | None:
    """The drug-library entry of a drug (by key, or by a name typed for "other")."""
    doses = protocol.drug_library.doses
    if drug != "other" and drug in doses:
        return drug, doses[drug]
    if drug_name:
        typed = drug_name.strip().lower()
        for key, entry in doses.items():
            words = [key, *entry.names]
            if any(typed == w.lower() or typed.startswith(w.lower() + " ") for w in words):
                return key, entry
    return None


def check_dose(
    drug: str,
    drug_name: str | None,
    dose: float,
    unit: str,
    weight_kg: float | None,
    protocol: Protocol,
) -> list[Finding]:
    """A dose against its drug-library range (drugs not in the library are not checked)."""
    found = library_entry(drug, drug_name, protocol)
    if found is None:
        return []
    key, entry = found
    name = key.replace("_", " ")
    if unit == "mg":
        mg = dose
        shown = f"{_g(dose)} mg"
    elif unit == "g":
        mg = dose * 1000
        shown = f"{_g(dose)} g (= {_g(mg)} mg)"
    elif unit == "mg/kg" and weight_kg is not None:
        mg = dose * weight_kg
        shown = f"{_g(dose)} mg/kg (= {_g(mg)} mg at {_g(weight_kg)} kg)"
    else:
        why = "no weight is recorded" if unit == "mg/kg" else f"it is charted in {unit}"
        return [
            Finding(
                "unit",
                "dose_unchecked",
                f"This {name} dose cannot be checked against the drug library ({why}): "
                "confirm the dose against the prescription.",
                hard=False,
            )
        ]
    if (entry.hard_max is not None and mg > entry.hard_max) or (
        entry.hard_min is not None and mg < entry.hard_min
    ):
        limit = (
            f"more than {_g(entry.hard_max)} mg"
            if entry.hard_max is not None and mg > entry.hard_max
            else f"less than {_g(entry.hard_min or 0)} mg"
        )
        return [
            Finding(
                "dose",
                "dose_hard_limit",
                f"{name.capitalize()} {shown} is {limit} per dose, the hard limit of the drug "
                "library: not recorded. Check the dose and the unit (mg or g?) with the "
                "prescriber.",
                hard=True,
            )
        ]
    if (entry.soft_max is not None and mg > entry.soft_max) or (
        entry.soft_min is not None and mg < entry.soft_min
    ):
        lo = _g(entry.soft_min) if entry.soft_min is not None else "0"
        hi = _g(entry.soft_max) if entry.soft_max is not None else "—"
        return [
            Finding(
                "dose",
                "dose_soft_limit",
                f"{name.capitalize()} {shown} is outside the usual dose range {lo}–{hi} mg: "
                "confirm it matches the prescription.",
                hard=False,
            )
        ]
    return []


# --------------------------------------------------------------------------- vitals, labs


def check_temperature(value_c: float | None, protocol: Protocol) -> list[Finding]:
    """A temperature in °C; one that looks like °F is refused with the conversion."""
    if value_c is None:
        return []
    lib, crs = protocol.drug_library, protocol.crs
    lo, hi = crs.plausible_temperature_min_c.value, crs.plausible_temperature_max_c.value
    if lo <= value_c <= hi:
        return []
    if lib.fahrenheit_hint_min.value <= value_c <= lib.fahrenheit_hint_max.value:
        celsius = (value_c - 32) * 5 / 9
        msg = (
            f"{_g(value_c)} looks like degrees Fahrenheit ({_g(value_c)} °F = "
            f"{celsius:.1f} °C). Enter the temperature in °C."
        )
    else:
        msg = f"{_g(value_c)} °C is not a possible temperature (accepted {_g(lo)}–{_g(hi)} °C)."
    return [Finding("temperature_c", "temperature_unit", msg, hard=True)]


def check_lab(test: str, value: float, unit: str, protocol: Protocol) -> list[Finding]:
    """A lab value that is implausible in its unit is refused, naming the likely unit."""
    lib = protocol.drug_library
    limit = lib.lab_max.get(test)
    if limit is None:
        return []
    spec = protocol.ctcae.tests.get(test)
    factors = protocol.ctcae.unit_factors.get(spec.canonical_unit, {}) if spec else {}
    factor = factors.get(unit)
    if factor is None:
        return []
    canonical = value / factor
    if canonical <= limit.value:
        return []
    name = _LAB_NAMES.get(test, test)
    hint = ""
    if unit == "10^9/L" and value / 1000 <= limit.value:
        hint = (
            f" It looks like cells/µL: {_g(value)} /µL = {_g(value / 1000)} ×10⁹/L. "
            "Choose the unit /µL or convert."
        )
    elif unit == "g/dL" and value / 10 <= limit.value:
        hint = f" It looks like g/L: {_g(value)} g/L = {_g(value / 10)} g/dL. Choose g/L."
    shown_unit = {"10^9/L": "×10⁹/L", "/uL": "/µL"}.get(unit, unit)
    return [
        Finding(
            "value",
            "lab_unit",
            f"{name.capitalize()} {_g(value)} {shown_unit} is not plausible (above "
            f"{_g(limit.value)} {limit.unit.replace('10^9/L', '×10⁹/L')}).{hint}",
            hard=True,
        )
    ]


def check_oxygen(device: str, flow: float | None, protocol: Protocol) -> list[Finding]:
    """Contradictory oxygen entries (a device without its flow, a flow without a device)."""
    rule = protocol.drug_library.oxygen_flow.get(device)
    if rule is None:
        return []
    label = DEVICE_LABELS.get(device, device)
    if device == "none":
        if flow is not None and flow > rule.max_l_min:
            return [
                Finding(
                    "oxygen_flow_l_min",
                    "oxygen_contradiction",
                    f"Room air with oxygen at {_g(flow)} L/min: choose the oxygen device, or "
                    "clear the flow.",
                    hard=True,
                )
            ]
        return []
    if flow is None:
        if rule.flow_required:
            return [
                Finding(
                    "oxygen_flow_l_min",
                    "oxygen_contradiction",
                    f"Enter the {label} flow in L/min.",
                    hard=True,
                )
            ]
        return []
    lo = rule.min_l_min
    if (lo is not None and flow < lo) or flow > rule.max_l_min:
        low = f"at least {_g(lo)}" if lo is not None else "0"
        return [
            Finding(
                "oxygen_flow_l_min",
                "oxygen_contradiction",
                f"{label.capitalize()} at {_g(flow)} L/min does not fit that device (expected "
                f"{low} to {_g(rule.max_l_min)} L/min). Check the device and the flow.",
                hard=True,
            )
        ]
    return []


# --------------------------------------------------------------------------- enforcing


def enforce(findings: list[Finding], confirmation: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse hard findings; require every soft one to be confirmed.

    Args:
        findings: What the checks found.
        confirmation: ``{"limits": [codes], "reason": str | None}`` from the nurse, or None.

    Returns:
        The confirmation to record on the event (exactly the soft codes found), or None
        when nothing needed confirming.

    Raises:
        InputError: A hard finding (every message listed), or a confirmation given for a
            limit that does not apply.
        ConfirmationRequired: A soft finding not confirmed (or a reason missing).
    """
    hard = [f for f in findings if f.hard]
    if hard:
        raise InputError("; ".join(f.text() for f in hard))
    soft = [f for f in findings if not f.hard]
    given = list((confirmation or {}).get("limits") or [])
    codes = [f.code for f in soft]
    extra = [c for c in given if c not in codes]
    if extra:
        raise InputError(
            "confirmation: the value no longer needs the confirmation you gave; check again"
        )
    missing = [f for f in soft if f.code not in given]
    reason = (confirmation or {}).get("reason")
    reason = reason.strip() if isinstance(reason, str) else None
    if any(f.needs_reason for f in soft) and not missing and (not reason or len(reason) < 5):
        missing = [f for f in soft if f.needs_reason]
    if missing:
        raise ConfirmationRequired(missing)
    if not soft:
        return None
    out: dict[str, Any] = {"limits": codes}
    if reason:
        out["reason"] = reason
    return out


__all__ = [
    "Finding",
    "check_dose",
    "check_lab",
    "check_oxygen",
    "check_temperature",
    "check_weight",
    "enforce",
    "library_entry",
    "round_to",
    "shown_dose_mg",
    "shown_volume_ml",
]

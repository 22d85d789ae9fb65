"""CRS & tocilizumab tab: live ASTCT grade, protocol guidance, dose budget and doses.

The form previews the grade with :func:`bedside.rules.crs_grade` as the nurse types
(preview only); "Record CRS assessment" sends the same inputs through
:meth:`Ward.assess_crs`, which grades again and saves. The form starts from the latest
vital signs (values only; the nurse checks and edits them).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QVBoxLayout,
    QWidget,
)

from bedside.errors import BedsideError, InputError
from bedside.record import CrsAssessment, Medication, Vitals
from bedside.rules import DEVICE_LABELS, CrsInput, crs_grade
from bedside.timeutil import format_local
from ui import dialogs, presenters
from ui.dialogs import VASOPRESSORS
from ui.forms import (
    Form,
    InitialsEdit,
    NumberEdit,
    ParseError,
    banner,
    banner_text,
    button,
    label,
    parse_number,
    set_banner,
)
from ui.models import ColumnModel
from ui.tabs import Columns, GuidanceBox, PatientTab, footer, resize_columns, scrolling, table_view

logger = logging.getLogger(__name__)

ANTI_CYTOKINE = {"tocilizumab", "dexamethasone", "methylprednisolone", "anakinra"}


class CrsTab(PatientTab):
    """Assessment form with live grade; tocilizumab budget; steroid doses."""

    title = "CRS & tocilizumab"
    dose_requested = Signal()

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)

        # ---------------------------------------------------------- assessment
        box = QGroupBox("CRS assessment (ASTCT 2019)")
        box.setAccessibleName("CRS assessment")
        bl = QVBoxLayout(box)
        self.source_line = label("", "hint")
        bl.addWidget(self.source_line)
        f = self.form = Form()
        self.temp = f.add(
            "temperature_c",
            "&Temperature (highest):",
            NumberEdit("Highest temperature, degrees Celsius"),
            unit="°C",
        )
        self.hypotension = QCheckBox("Hypotension (no other cause)")
        self.hypotension.setAccessibleName("Hypotension")
        self.bp_line = label("", "hint")
        hw = QWidget()
        hl = QVBoxLayout(hw)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(self.hypotension)
        hl.addWidget(self.bp_line)
        f.add("hypotension", "Blood pressure:", hw)
        pw = QWidget()
        pg = QGridLayout(pw)
        pg.setContentsMargins(0, 0, 0, 0)
        self.pressors: dict[str, QCheckBox] = {}
        for i, name in enumerate(VASOPRESSORS):
            cb = QCheckBox(name.replace("_", " "))
            cb.setAccessibleName(f"Vasopressor {name.replace('_', ' ')}")
            pg.addWidget(cb, i // 2, i % 2)
            self.pressors[name] = cb
        f.add("vasopressors", "Vasopressors:", pw)
        self.device = QComboBox()
        self.device.setAccessibleName("Oxygen device")
        for value, text in DEVICE_LABELS.items():
            self.device.addItem(text, value)
        f.add("oxygen_device", "O&xygen:", self.device)
        self.flow = f.add(
            "oxygen_flow_l_min",
            "Oxygen &flow:",
            NumberEdit("Oxygen flow, litres per minute"),
            unit="L/min",
        )
        self.masked = QCheckBox("Antipyretic / anti-cytokine given")
        self.masked.setAccessibleName("Fever masked by treatment")
        self.masked_line = label("", "hint")
        mw = QWidget()
        ml = QVBoxLayout(mw)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(self.masked)
        ml.addWidget(self.masked_line)
        f.add("fever_masked", "Fever masked:", mw)
        f.finish()
        bl.addWidget(f)
        self.grade_banner = banner("", "info", icon_name="info")
        self.grade_banner.setAccessibleName("Live CRS grade")
        self.by = InitialsEdit("Your initials")
        self.by.setPlaceholderText("your initials")
        self.record_button = button("&Record CRS assessment", role="primary", slot=self.record)
        self.last_line = label("", "hint")
        bl.addWidget(self.last_line)

        self.guidance = GuidanceBox("CRS management")

        # ---------------------------------------------------------- tocilizumab
        tbox = QGroupBox("Tocilizumab")
        tbox.setAccessibleName("Tocilizumab budget")
        tl = QVBoxLayout(tbox)
        self.counts = label("", "big")
        self.counts.setAccessibleName("Tocilizumab doses")
        self.next_line = label("")
        self.next_line.setAccessibleName("Next tocilizumab dose")
        self.why_line = label("", "hint")
        self.window_line = label("", "hint")
        self.history_banner = banner(
            "Dose history INCOMPLETE: doses given elsewhere may be missing; counts are minimums.",
            "warning",
            icon_name="warning",
        )
        self.course_banner = banner("", "danger", icon_name="blocked")
        for w in (
            self.counts,
            self.next_line,
            self.why_line,
            self.window_line,
            self.history_banner,
            self.course_banner,
        ):
            tl.addWidget(w)
        brow = QGridLayout()
        self.give_button = button(
            "&Give tocilizumab… (F4)",
            role="primary",
            name="Give tocilizumab",
            slot=self.dose_requested.emit,
        )
        brow.addWidget(self.give_button, 0, 0, 1, 2)
        brow.addWidget(button("Dose given &elsewhere…", slot=self._prior), 1, 0)
        brow.addWidget(button("Confirm &history…", slot=self._history), 1, 1)
        brow.setColumnStretch(2, 1)
        tl.addLayout(brow)
        self.doses = table_view("Doses given")
        self.dose_model = ColumnModel(
            [
                ("Given", lambda e: format_local(e.effective_at)),
                (
                    "Drug and dose",
                    lambda e: (
                        f"{presenters.DRUG_LABELS.get(e.drug, e.drug)} "
                        f"{e.dose:g} {e.unit} {e.route}"
                        + (
                            f" every {e.every_h:g} h"
                            if e.every_h and e.drug != "tocilizumab"
                            else ""
                        )
                    ),
                ),
                ("By / checked", lambda e: f"{e.given_by} / {e.checked_by or '—'}"),
                ("Notes", lambda e: _dose_notes(e)),
            ],
            key=lambda e: e.id,
            parent=self,
        )
        self.doses.setModel(self.dose_model)
        resize_columns(self.doses, [170, 260, 110])
        self.doses.setMinimumHeight(170)
        tl.addWidget(self.doses)

        sbox = QGroupBox("Steroids and other drugs")
        sl = QVBoxLayout(sbox)
        self.steroid_line = label("")
        self.steroid_line.setAccessibleName("Steroid schedule")
        sl.addWidget(self.steroid_line)
        srow = QGridLayout()
        srow.addWidget(
            button("Give &dexamethasone…", slot=lambda: self._medication("dexamethasone")), 0, 0
        )
        srow.addWidget(
            button(
                "Give &methylprednisolone…", slot=lambda: self._medication("methylprednisolone")
            ),
            0,
            1,
        )
        srow.addWidget(button("Other &drug…", slot=lambda: self._medication("other")), 1, 0)
        srow.setColumnStretch(2, 1)
        sl.addLayout(srow)
        content = Columns(
            [box, self.guidance], [tbox, sbox], single=[box, tbox, self.guidance, sbox]
        )

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(content), 1)
        outer.addWidget(
            footer(
                self.grade_banner, label("Your initials:", wrap=False), self.by, self.record_button
            )
        )

        for w in (self.temp, self.flow):
            w.textChanged.connect(lambda _t: self.preview())
        self.device.currentIndexChanged.connect(lambda _i: self.preview())
        for cb in (self.hypotension, self.masked, *self.pressors.values()):
            cb.toggled.connect(lambda _on: self.preview())

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Start the form from the latest vitals of the new patient."""
        self.form.clear_errors()
        self.by.setText(self.initials())
        if self.pid is None:
            return
        self.prefill()

    def prefill(self) -> None:
        """Copy the latest vital signs into the form (the nurse checks them)."""
        assert self.pid is not None
        events = self.controller.events(self.pid)
        vitals = presenters.latest(events, Vitals)
        for w in (self.temp, self.flow):
            w.clear()
        for cb in (*self.pressors.values(), self.hypotension):
            cb.setChecked(False)
        self.device.setCurrentIndex(0)
        if isinstance(vitals, Vitals):
            if vitals.temperature_c is not None:
                self.temp.setText(f"{vitals.temperature_c:g}")
            idx = self.device.findData(vitals.oxygen_device)
            self.device.setCurrentIndex(max(idx, 0))
            if vitals.oxygen_flow_l_min is not None:
                self.flow.setText(f"{vitals.oxygen_flow_l_min:g}")
            for name in vitals.vasopressors:
                self.pressors[name].setChecked(True)
            dia = vitals.diastolic_mmhg if vitals.diastolic_mmhg is not None else "—"
            bp = (
                f"{vitals.systolic_mmhg}/{dia} mmHg"
                if vitals.systolic_mmhg is not None
                else "not measured"
            )
            self.bp_line.setText(f"Latest BP {bp} at {format_local(vitals.effective_at)}")
            self.source_line.setText(
                f"Filled in from the vital signs charted {format_local(vitals.effective_at)} "
                f"by {vitals.recorded_by}. Check every value before recording."
            )
        else:
            self.bp_line.setText("No blood pressure charted yet")
            self.source_line.setText("No vital signs charted yet: enter the observations.")
        masked_by = self._masking_doses()
        self.masked.setChecked(bool(masked_by))
        if masked_by:
            last = masked_by[-1]
            self.masked_line.setText(
                f"Ticked because {presenters.DRUG_LABELS.get(last.drug, last.drug).lower()} "
                "was given "
                f"{format_local(last.effective_at)}: fever is no longer required for grading "
                "(ASTCT). Untick if that is wrong; tick it for antipyretics too."
            )
        else:
            self.masked_line.setText(
                "Tick if antipyretics, tocilizumab or steroids were given in this CRS episode."
            )
        self.preview()

    def _masking_doses(self) -> list[Medication]:
        """Anti-cytokine/steroid doses since the current CRS episode began (display default)."""
        assert self.pid is not None
        events = self.controller.events(self.pid)
        assessments = sorted(
            (e for e in events if isinstance(e, CrsAssessment)), key=lambda e: e.effective_at
        )
        start: datetime | None = None
        for a in assessments:
            if a.grade >= 1 and start is None:
                start = a.effective_at
            elif a.grade == 0:
                start = None
        if start is None:
            return []
        return sorted(
            (
                e
                for e in events
                if isinstance(e, Medication) and e.drug in ANTI_CYTOKINE and e.effective_at >= start
            ),
            key=lambda e: e.effective_at,
        )

    def inputs(self) -> dict[str, Any]:
        """The assessment inputs as the core expects them (parse errors raise)."""
        data: dict[str, Any] = {
            "temperature_c": parse_number(self.temp.text(), what="temperature_c"),
            "fever_masked": self.masked.isChecked(),
            "hypotension": self.hypotension.isChecked(),
            "vasopressors": [n for n, cb in self.pressors.items() if cb.isChecked()],
            "oxygen_device": self.device.currentData(),
            "oxygen_flow_l_min": parse_number(self.flow.text(), what="oxygen_flow_l_min"),
        }
        return data

    def preview(self) -> None:
        """Grade live as the nurse types (rules preview; nothing is saved)."""
        if self.pid is None:
            return
        self.form.clear_errors()
        protocol = self.controller.protocol_for(self.pid)
        try:
            result = crs_grade(CrsInput.model_validate(self.inputs()), protocol)
        except ParseError as exc:
            self.form.show_error(str(exc))
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        except InputError as exc:
            self.form.show_error(str(exc))
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        except ValueError as exc:  # pydantic validation of the preview input
            from bedside.protocol import format_validation_error

            msg = format_validation_error(exc, what="crs") if hasattr(exc, "errors") else str(exc)  # type: ignore[arg-type]
            self.form.show_error(msg)
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        kind = "ok" if result.grade == 0 else ("warning" if result.grade == 1 else "danger")
        self._grade_text(
            f"CRS GRADE {result.grade} (preview, not yet recorded)\n{result.explanation}", kind
        )
        entry = protocol.management.crs.get(str(result.grade))
        self.guidance.show_guidance(protocol, entry, result.grade, "CRS")

    def _grade_text(self, text: str, kind: str) -> None:
        set_banner(self.grade_banner, text, kind)

    def refresh(self) -> None:
        """Budget, doses and the last assessment."""
        if self.pid is None:
            return
        events = self.controller.events(self.pid)
        last = presenters.latest(events, CrsAssessment)
        self.last_line.setText(
            f"Last recorded: CRS grade {last.grade} at {format_local(last.effective_at)} "
            f"by {last.recorded_by}"
            if isinstance(last, CrsAssessment)
            else "No CRS assessment recorded yet."
        )
        meds = sorted(
            (e for e in events if isinstance(e, Medication)),
            key=lambda e: e.effective_at,
            reverse=True,
        )
        self.dose_model.set_rows(meds)
        self.on_tick()

    def on_tick(self) -> None:
        """Budget text depends on the time."""
        if self.pid is None:
            return
        budget = self.controller.budget(self.pid)
        now = self.controller.now
        if budget is None:
            self.counts.setText("Tocilizumab budget unavailable")
            return
        prefix = "" if budget.history_complete else "≥ "
        self.counts.setText(
            f"{prefix}{budget.doses_last_24h} / {budget.max_per_24h} in the last 24 h   ·   "
            f"{prefix}{budget.total} / {budget.max_total} in the course"
            + (f"   ·   {len(budget.voided)} voided (not counted)" if budget.voided else "")
        )
        self.counts.setToolTip(presenters.voided_text(budget))
        _, nxt = presenters.budget_lines(budget, now)
        self.next_line.setText(nxt[0].upper() + nxt[1:])
        check = budget.check
        if check.allowed and not budget.history_complete:
            self.why_line.setText(
                "The limits would allow a dose now, but the dose history is incomplete: a dose "
                "needs an override (reason and a second nurse) until the history is confirmed."
            )
        elif check.allowed:
            self.why_line.setText("The interval, 24 h and course limits all allow a dose now.")
        else:
            self.why_line.setText("Why not now: " + "; ".join(check.reason_text.values()) + ".")
        self.window_line.setText(
            f"The 24 h window frees at {format_local(check.window_frees_at)} "
            f"({presenters.countdown(check.window_frees_at, now)})."
            if check.window_frees_at
            else ""
        )
        self.window_line.setVisible(bool(check.window_frees_at))
        self.history_banner.setVisible(not budget.history_complete)
        self.course_banner.setVisible(budget.course_complete)
        if budget.course_complete:
            banner_text(self.course_banner).setText(
                f"Course maximum of {budget.max_total} doses reached: no further tocilizumab "
                "can be recorded (hard limit). Escalate to the doctor for other therapy."
            )
        items = [
            i
            for i in self.controller.due_items(self.pid)
            if i.kind in {"dexamethasone_next", "methylprednisolone_next"}
        ]
        if items:
            self.steroid_line.setText(
                "\n".join(
                    f"{presenters.STATE_LABELS[i.state]} — {i.message} "
                    f"({presenters.due_phrase(i.state, i.due_at, now)})"
                    for i in items
                )
            )
        else:
            self.steroid_line.setText("No steroid schedule running.")

    # ------------------------------------------------------------------ actions

    def record(self) -> None:
        """Record the assessment through the core."""
        if self.pid is None:
            return
        self.form.clear_errors()
        try:
            data = self.inputs()
            initials = self.by.value()
            if not initials:
                raise ParseError("recorded_by: enter your initials")
            _, result = self.controller.assess_crs(self.pid, data, recorded_by=initials)
        except ParseError as exc:
            if str(exc).startswith("recorded_by"):
                self.by.setFocus()
                self._grade_text("Not recorded: enter your initials.", "danger")
                return
            self.form.show_error(str(exc))
            return
        except InputError as exc:
            self.form.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        self._grade_text(
            f"Recorded: CRS grade {result.grade}\n{result.explanation}",
            "danger" if result.grade >= 2 else "ok",
        )

    def _prior(self) -> None:
        if self.pid is not None:
            self.run_dialog(
                dialogs.PriorDoseDialog(self.controller, self.pid, self.initials(), self)
            )

    def _history(self) -> None:
        if self.pid is not None:
            self.run_dialog(dialogs.HistoryDialog(self.controller, self.pid, self.initials(), self))

    def _medication(self, drug: str) -> None:
        if self.pid is not None:
            self.run_dialog(
                dialogs.MedicationDialog(
                    self.controller, self.pid, self.initials(), self, drug=drug
                )
            )


def _dose_notes(e: Medication) -> str:
    parts = []
    if e.drug == "tocilizumab" and e.weight_kg_used:
        parts.append(f"weight {e.weight_kg_used:g} kg")
    if e.prior:
        parts.append(f"given elsewhere: {e.prior_source}")
    if e.override is not None:
        parts.append(
            f"OVERRIDE ({', '.join(e.override.limits)}): {e.override.reason} — "
            f"2nd nurse {e.override.second_nurse}"
        )
    if e.drug == "other" and e.drug_name:
        parts.append(e.drug_name)
    return "; ".join(parts)

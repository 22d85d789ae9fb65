"""CRS & tocilizumab tab: live ASTCT grade, protocol guidance, dose budget and doses.

The form previews the grade with :func:`bedside.clinical.rules.crs_grade` as the nurse types
(preview only); "Record CRS assessment" sends the same inputs through
:meth:`Ward.assess_crs`, which grades again and saves. The form starts from the patient's
real state computed by :func:`bedside.clinical.crsform.crs_prefill` (highest temperature since the
last assessment, hypotension/pressors/oxygen carried forward, fever masking from the
record); the recorded grade is shown next to the preview, and a lower grade needs the
nurse's "improved" confirmation.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.crsform import CrsPrefill, crs_prefill, crs_verdict
from bedside.clinical.dosecheck import check_oxygen, check_temperature, enforce
from bedside.clinical.record import CrsAssessment, Medication, Vitals
from bedside.clinical.rules import DEVICE_LABELS, CrsInput, crs_grade
from bedside.common.errors import BedsideError, ConfirmationRequired, InputError
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from bedside.reports.wording import nurse_text
from ui import dialogs
from ui.dialogs import VASOPRESSORS
from ui.forms import (
    ElidedLabel,
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
from ui.tabs import (
    Columns,
    DiscrepancyNotes,
    GuidanceBox,
    PatientTab,
    clean_after_save,
    footer,
    resize_columns,
    scrolling,
    table_view,
)

logger = logging.getLogger(__name__)


class CrsTab(PatientTab):
    """Assessment form with live grade; tocilizumab budget; steroid doses."""

    title = "CRS & tocilizumab"
    ITEM_WIDGETS: ClassVar[dict[str, str]] = {
        "tocilizumab_reassess": "assess_box",
        "crs_escalation": "assess_box",
        "crs_prolonged_grade1": "assess_box",
        "vitals_next": "assess_box",
        "tocilizumab_limit": "toci_box",
        "dexamethasone_next": "steroid_box",
        "methylprednisolone_next": "steroid_box",
    }
    dose_requested = Signal()

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)
        self.prefilled: CrsPrefill | None = None

        # ---------------------------------------------------------- assessment
        box = QGroupBox("CRS assessment (ASTCT 2019)")
        box.setAccessibleName("CRS assessment")
        self.assess_box = box
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
        self.last_line = ElidedLabel("", "section")
        self.last_line.setAccessibleName("Recorded CRS grade")
        self.grading_notes = DiscrepancyNotes("crs_grading")
        bl.addWidget(self.grading_notes)

        self.guidance = GuidanceBox("CRS management")

        # ---------------------------------------------------------- tocilizumab
        tbox = QGroupBox("Tocilizumab")
        tbox.setAccessibleName("Tocilizumab budget")
        self.toci_box = tbox
        tl = QVBoxLayout(tbox)
        self.counts = ElidedLabel("", "section")
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
        for w in (self.window_line, self.history_banner, self.course_banner):
            tl.addWidget(w)
        brow = QGridLayout()
        self.give_button = button(
            "&Give tocilizumab… (F4)",
            role="primary",
            name="Give tocilizumab",
            slot=self.dose_requested.emit,
        )
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
        self.steroid_box = sbox
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

        # Always in view (never scrolls away): the recorded grade, the tocilizumab counts,
        # the next allowed time with its reason, and the Give button.
        self.summary = QFrame()
        self.summary.setProperty("card", True)
        self.summary.setAccessibleName("CRS and tocilizumab summary")
        sg = QGridLayout(self.summary)
        sg.setContentsMargins(8, 4, 8, 4)
        sg.setHorizontalSpacing(12)
        sg.setVerticalSpacing(0)
        sg.addWidget(self.last_line, 0, 0)
        sg.addWidget(self.counts, 1, 0)
        sg.addWidget(self.next_line, 2, 0)
        sg.addWidget(self.give_button, 0, 1, 3, 1, Qt.AlignmentFlag.AlignVCenter)
        sg.addWidget(self.why_line, 3, 0, 1, 2)
        sg.setColumnStretch(0, 1)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.summary)
        outer.addWidget(scrolling(content), 1)
        outer.addWidget(
            footer(
                self.grade_banner, label("Your initials:", wrap=False), self.by, self.record_button
            )
        )

        for edit in (self.temp, self.flow):
            edit.textChanged.connect(lambda _t: self.preview())
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
        """Start from the patient's real state (computed by the core, the nurse checks it)."""
        assert self.pid is not None
        pre = crs_prefill(
            self.controller.record(self.pid),
            self.controller.protocol_for(self.pid),
            self.controller.now,
        )
        self.prefilled = pre
        data = pre.inputs
        for w in (self.temp, self.flow):
            w.clear()
        if data["temperature_c"] is not None:
            self.temp.setText(f"{data['temperature_c']:g}")
        self.hypotension.setChecked(bool(data["hypotension"]))
        for name, cb in self.pressors.items():
            cb.setChecked(name in data["vasopressors"])
        idx = self.device.findData(data["oxygen_device"])
        self.device.setCurrentIndex(max(idx, 0))
        if data["oxygen_flow_l_min"] is not None:
            self.flow.setText(f"{data['oxygen_flow_l_min']:g}")
        notes = pre.notes
        lines = [notes["temperature_c"]]
        lines += [notes[k] for k in ("vasopressors", "oxygen_device") if k in notes]
        lines.append("Check every value before recording.")
        self.source_line.setText("\n".join(lines))
        events = self.controller.events(self.pid)
        vitals = presenters.latest(events, Vitals)
        bp = ""
        if isinstance(vitals, Vitals) and vitals.systolic_mmhg is not None:
            dia = vitals.diastolic_mmhg if vitals.diastolic_mmhg is not None else "—"
            bp = (
                f"Latest BP {vitals.systolic_mmhg}/{dia} mmHg at "
                f"{format_local(vitals.effective_at)}."
            )
        self.bp_line.setText(" ".join(t for t in (notes.get("hypotension", ""), bp) if t) or "—")
        # Masking from the record stays on for the rest of the course (ASTCT).
        self.masked.setChecked(pre.masking.masked)
        self.masked.setEnabled(not pre.masking.masked)
        self.masked_line.setText(
            pre.masking.reason
            if pre.masking.masked
            else "Tick if an antipyretic, tocilizumab or a steroid was given and is not charted."
        )
        self.preview()

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
            data = self.inputs()
            enforce(
                check_temperature(data["temperature_c"], protocol)
                + check_oxygen(data["oxygen_device"], data["oxygen_flow_l_min"], protocol),
                None,
            )
            result = crs_grade(CrsInput.model_validate(data), protocol)
        except ParseError as exc:
            self.form.show_error(str(exc))
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        except InputError as exc:
            self.form.show_error(str(exc))
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        except ValueError as exc:  # pydantic validation of the preview input
            from bedside.clinical.protocol import format_validation_error

            if isinstance(exc, ValidationError):
                msg = format_validation_error(exc, what="crs")
            else:
                msg = str(exc)
            self.form.show_error(msg)
            self._grade_text("Grade: — (fix the field marked in red)", "warning")
            return
        kind, advice = crs_verdict(result)
        pre = self.prefilled
        recorded = (
            f"   ·   recorded: grade {pre.recorded_grade} at {format_local(pre.recorded_at)}"
            if pre is not None and pre.recorded_grade is not None
            else "   ·   no grade recorded yet"
        )
        lower = (
            f"\nLower than the recorded grade {pre.recorded_grade}: recording it needs your "
            "confirmation that the patient has improved."
            if pre is not None
            and pre.recorded_grade is not None
            and result.grade < pre.recorded_grade
            else ""
        )
        self._grade_text(
            f"CRS GRADE {result.grade} (preview, not yet recorded){recorded}\n"
            f"{advice + chr(10) if advice else ''}{result.explanation}{lower}",
            kind,
        )
        entry = protocol.management.crs.get(str(result.grade))
        self.guidance.show_guidance(protocol, entry, result.grade, "CRS")
        self.grading_notes.show_for(protocol)

    def _grade_text(self, text: str, kind: str) -> None:
        set_banner(self.grade_banner, text, kind)

    def refresh(self) -> None:
        """Budget, doses and the last assessment."""
        if self.pid is None:
            return
        events = self.controller.events(self.pid)
        last = presenters.latest(events, CrsAssessment)
        self.last_line.setText(
            f"Recorded: CRS grade {last.grade} · "
            f"{presenters.short_time(last.effective_at, self.controller.now)} · {last.recorded_by}"
            if isinstance(last, CrsAssessment)
            else "No CRS grade recorded yet"
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
        self.counts.setText("Tocilizumab " + presenters.budget_counts(budget, voided=True))
        self.counts.setToolTip(presenters.voided_text(budget))
        nxt = presenters.next_dose_text(budget, now)
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
            self.why_line.setText(
                nurse_text("Why not now: " + "; ".join(check.reason_text.values()) + ".")
            )
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

    @clean_after_save()
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
            pid = self.pid
            was = self.prefilled.recorded_grade if self.prefilled is not None else None
            try:
                now_grade: int | None = crs_grade(
                    CrsInput.model_validate(data), self.controller.protocol_for(pid)
                ).grade
            except (ValueError, BedsideError):  # the core reports the problem below
                now_grade = None
            _, result = dialogs.with_confirmation(
                self,
                "Record the lower grade because the patient has improved?",
                lambda conf: self.controller.assess_crs(
                    pid, data, recorded_by=initials, confirmation=conf
                ),
                yes=(
                    f"Improved: grade {was} → grade {now_grade}"
                    if was is not None and now_grade is not None
                    else "Yes, improved"
                ),
            )
        except ConfirmationRequired as exc:
            self._grade_text(
                "Not recorded: " + "; ".join(f.message for f in exc.findings), "warning"
            )
            return
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
        kind, advice = crs_verdict(result)
        self._grade_text(
            f"Recorded: CRS grade {result.grade}\n"
            f"{advice + chr(10) if advice else ''}{result.explanation}",
            kind,
        )
        self.prefill_after_record()

    def prefill_after_record(self) -> None:
        """Keep the typed values but show the new recorded grade next to the preview."""
        if self.pid is None:
            return
        self.prefilled = crs_prefill(
            self.controller.record(self.pid),
            self.controller.protocol_for(self.pid),
            self.controller.now,
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
            + (f" — ordered by {e.override.prescriber}" if e.override.prescriber else "")
        )
    if e.drug == "other" and e.drug_name:
        parts.append(e.drug_name)
    if e.confirmation is not None:
        why = f": {e.confirmation.reason}" if e.confirmation.reason else ""
        parts.append(
            "confirmed by the nurse ("
            + ", ".join(CONFIRMED_LABELS.get(c, c) for c in e.confirmation.limits)
            + f"){why}"
        )
    return "; ".join(parts)


CONFIRMED_LABELS = {
    "stale_weight": "old weight",
    "weight_soft_range": "unusual weight",
    "weight_change": "weight change",
    "dose_capped": "capped dose",
    "dose_at_max": "maximum dose",
    "dose_soft_limit": "dose outside the usual range",
    "dose_unchecked": "dose not checkable",
}

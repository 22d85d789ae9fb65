"""Every dialog of Bedside, in one module so tests can drive them.

Widgets never call ``QMessageBox`` or ``QDialog.exec`` themselves: they call the
functions here (:func:`inform`, :func:`confirm`, :func:`show_error`...) or build one of
the dialog classes and pass it to :func:`exec_dialog`. Tests monkeypatch
:func:`exec_dialog` (and the message functions) to fill in and accept dialogs without a
nested event loop.

Form dialogs (:class:`FormDialog`) call the controller themselves when the nurse
presses the main button; a rejected input shows its reason next to the field and the
dialog stays open with everything typed still there. A failed save says plainly that
nothing was saved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bedside.errors import (
    BedsideError,
    ConcurrentModificationError,
    InputError,
    LimitError,
    StorageError,
)
from bedside.integrity import PossibleDuplicateError
from bedside.record import CORRECTION_REASONS, EventBase, Medication
from bedside.rules import DEVICE_LABELS
from bedside.service import DosePlan
from bedside.timeutil import format_duration, format_local
from ui import presenters
from ui.controller import DueRow, WardController
from ui.forms import (
    UNSET,
    ChoiceButtons,
    Form,
    InitialsEdit,
    LocalDateTimeEdit,
    NumberEdit,
    ParseError,
    banner,
    button,
    label,
    parse_number,
    repolish,
    set_banner,
)

logger = logging.getLogger(__name__)

VASOPRESSORS = (
    "norepinephrine",
    "epinephrine",
    "phenylephrine",
    "dopamine",
    "vasopressin",
    "angiotensin_ii",
)


# --------------------------------------------------------------------------- choke points


def exec_dialog(dialog: QDialog) -> bool:
    """Run ``dialog`` modally; True when accepted. Tests replace this function."""
    return dialog.exec() == QDialog.DialogCode.Accepted


def _box(
    parent: QWidget | None,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    details: str | None = None,
) -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)
    return box


def inform(parent: QWidget | None, title: str, text: str) -> None:
    """An information message."""
    _box(parent, QMessageBox.Icon.Information, title, text).exec()


def warn(parent: QWidget | None, title: str, text: str) -> None:
    """A warning message."""
    _box(parent, QMessageBox.Icon.Warning, title, text).exec()


def show_error(parent: QWidget | None, title: str, text: str, details: str | None = None) -> None:
    """An error message."""
    _box(parent, QMessageBox.Icon.Critical, title, text, details).exec()


def confirm(parent: QWidget | None, title: str, text: str, *, yes: str = "Yes") -> bool:
    """Ask a yes/no question; True for yes."""
    box = QMessageBox(
        QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent
    )
    yes_btn = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return box.clickedButton() is yes_btn


def show_crash(parent: QWidget | None, details: str) -> None:
    """The one dialog for an unexpected error; the application keeps running."""
    text = (
        "Something unexpected went wrong in Bedside.\n\n"
        "Everything charted before this moment is saved. The last action may NOT have "
        "been saved: check the patient's Timeline before repeating it.\n\n"
        "Bedside keeps running. The error was written to the log (without patient data)."
    )
    show_error(parent, "Unexpected error", text, details)


def show_locked(parent: QWidget | None, text: str) -> None:
    """The data directory is held by another Bedside."""
    warn(parent, "Bedside is already open", text)


def core_error_text(exc: BedsideError) -> str:
    """What the nurse reads for a core error."""
    if isinstance(exc, ConcurrentModificationError):
        return (
            "NOT SAVED: this patient's file was changed by another program since it was "
            "opened. Use File ▸ Reload ward, check the Timeline, then chart again."
        )
    if isinstance(exc, StorageError):
        return f"NOT SAVED: {exc}. Nothing was written; please try again or tell IT."
    return str(exc)


def show_core_error(parent: QWidget | None, exc: BedsideError) -> None:
    """Show a core error (storage errors say plainly that nothing was saved)."""
    title = "Not saved" if isinstance(exc, StorageError) else "Not recorded"
    show_error(parent, title, core_error_text(exc))


# --------------------------------------------------------------------------- base


class FormDialog(QDialog):
    """A dialog around a :class:`Form` whose main button runs :meth:`apply`."""

    def __init__(
        self,
        controller: WardController,
        title: str,
        *,
        ok_text: str = "Save",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setModal(True)
        self.result_value: Any = None
        outer = QVBoxLayout(self)
        self.header = QVBoxLayout()
        outer.addLayout(self.header)
        self.form = Form()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        holder = QWidget()
        self.body = QVBoxLayout(holder)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.addWidget(self.form)
        self.body.addStretch(1)
        scroll.setWidget(holder)
        outer.addWidget(scroll, 1)
        self.buttons = QDialogButtonBox()
        self.ok_button = button(ok_text, role="primary", slot=self.submit)
        self.ok_button.setDefault(True)
        self.cancel_button = button("Cancel", slot=self.reject)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        outer.addWidget(self.buttons)
        self.resize(640, 560)

    def submit(self) -> bool:
        """Validate and apply; True (and accepted) on success."""
        self.form.clear_errors()
        try:
            self.result_value = self.apply()
        except ParseError as exc:
            self.form.show_error(str(exc))
            return False
        except (InputError, LimitError) as exc:
            self.form.show_error(str(exc))
            return False
        except BedsideError as exc:
            self.form.show_error(core_error_text(exc))
            return False
        self.accept()
        return True

    def apply(self) -> Any:
        """Subclasses: read the form and call the controller (raise core errors)."""
        raise NotImplementedError


def _require(form: Form, name: str, value: str, what: str) -> str:
    if not value:
        raise ParseError(f"{name}: enter {what}")
    return value


def _combo(items: list[tuple[str, str]], accessible: str) -> QComboBox:
    box = QComboBox()
    box.setAccessibleName(accessible)
    for value, text in items:
        box.addItem(text, value)
    return box


def _time_row(form: Form, name: str, text: str, when: datetime) -> LocalDateTimeEdit:
    edit = LocalDateTimeEdit(text, when)
    form.add(name, text, edit, unit=f"local time ({edit.zone_text()})", aliases=("effective_at",))
    return edit


# --------------------------------------------------------------------------- patients


class AddPatientDialog(FormDialog):
    """Admit a patient to the ward."""

    def __init__(
        self, controller: WardController, initials: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(controller, "Add patient", ok_text="Add patient", parent=parent)
        f = self.form
        self.name = f.add("name", "Full &name:", QLineEdit())
        self.mrn = f.add("mrn", "&MRN / hospital number:", QLineEdit())
        self.dob = QDateEdit()
        self.dob.setCalendarPopup(True)
        self.dob.setDisplayFormat("dd MMM yyyy")
        self.dob.setDate(QDate(1960, 1, 1))
        self.dob.setAccessibleName("Date of birth")
        f.add("date_of_birth", "Date of &birth:", self.dob)
        self.sex = _combo(
            [("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")],
            "Sex",
        )
        f.add("sex", "&Sex:", self.sex)
        self.product = _combo(list(presenters.PRODUCT_LABELS.items()), "CAR T product")
        f.add("product", "CAR T &product:", self.product)
        self.bed = f.add("bed", "B&ed:", QLineEdit())
        self.weight = NumberEdit("Weight in kilograms")
        f.add(
            "weight_kg",
            "&Weight:",
            self.weight,
            unit="kg",
            hint="measured now; leave empty if not weighed yet",
        )
        self.infused = QCheckBox("Already infused elsewhere (transfer in)")
        self.infused.setAccessibleName("Already infused elsewhere")
        f.add("infused", "Infusion:", self.infused)
        self.infusion_at = LocalDateTimeEdit("Infusion date and time", controller.now)
        f.add(
            "infusion_at",
            "Infused at:",
            self.infusion_at,
            unit=f"local ({self.infusion_at.zone_text()})",
        )
        self.history = ChoiceButtons(
            [(True, "Yes — checked"), (False, "No / not sure")],
            accessible="Full tocilizumab history known",
        )
        f.add(
            "dose_history_complete",
            "Full tocilizumab history known?",
            self.history,
            hint="If not sure, say No: dose counts will be shown as minimums.",
        )
        self.by = f.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        f.finish()
        self.infused.toggled.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        on = self.infused.isChecked()
        self.infusion_at.setEnabled(on)
        self.history.setEnabled(on)

    def apply(self) -> str:
        """Create the patient."""
        f = self.form
        fields: dict[str, Any] = {
            "patient_id": "p" + uuid.uuid4().hex[:12],
            "name": self.name.text().strip(),
            "mrn": self.mrn.text().strip(),
            "date_of_birth": self.dob.date().toPython(),
            "sex": self.sex.currentData(),
            "product": self.product.currentData(),
        }
        bed = self.bed.text().strip()
        if bed:
            fields["bed"] = bed
        weight = parse_number(self.weight.text(), what="weight_kg")
        if weight is not None:
            fields["weight_kg"] = weight
            fields["weight_measured_at"] = self.controller.clock.now()
        if self.infused.isChecked():
            fields["infusion_at"] = self.infusion_at.instant()
            if not self.history.is_set():
                raise ParseError("dose_history_complete: say whether the full history is known")
            fields["dose_history_complete"] = bool(self.history.value())
        initials = _require(f, "recorded_by", self.by.value(), "your initials")
        try:
            return self.controller.add_patient(recorded_by=initials, **fields)
        except PossibleDuplicateError:
            if not confirm(
                self,
                "Same name and date of birth",
                "Another patient on this ward has the same name and date of birth. Check the "
                "MRN and the wristband. Is this a DIFFERENT person?",
                yes="Yes, a different person",
            ):
                raise
            return self.controller.add_patient(
                recorded_by=initials, confirm_not_duplicate=True, **fields
            )


class WeightDialog(FormDialog):
    """Record a new weight (needed when the recorded one is too old for dosing)."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(controller, "Record weight", ok_text="Save weight", parent=parent)
        self.pid = pid
        p = controller.patient(pid)
        if reason:
            self.header.addWidget(banner(reason, "warning", icon_name="warning"))
        self.header.addWidget(
            label(f"Current: {presenters.weight_text(p, controller.now)}", "hint")
        )
        self.weight = NumberEdit("Weight in kilograms")
        self.form.add(
            "weight_kg",
            "&Weight:",
            self.weight,
            unit="kg",
            hint="actual body weight, just measured",
        )
        self.when = _time_row(self.form, "weight_measured_at", "Weighed at:", controller.now)
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(560, 360)

    def apply(self) -> EventBase:
        """Save the weight as a patient update."""
        weight = parse_number(self.weight.text(), what="weight_kg")
        if weight is None:
            raise ParseError("weight_kg: enter the weight in kg")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        when = self.when.instant()
        return self.controller.update_patient(
            self.pid,
            {"weight_kg": weight, "weight_measured_at": when.isoformat()},
            recorded_by=initials,
            effective_at=when,
        )


class InfusionDialog(FormDialog):
    """Record the CAR T infusion (day 0) and the product lot."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Record infusion", ok_text="Record infusion", parent=parent)
        self.pid = pid
        p = controller.patient(pid)
        self.header.addWidget(
            label(
                f"{p.name} · {presenters.product_label(p.product)}. Check the product, the "
                "patient's identity and the lot number on the bag against the order.",
                "hint",
            )
        )
        self.when = _time_row(self.form, "infusion_at", "Infusion &started:", controller.now)
        self.lot = self.form.add("lot_number", "&Lot / batch number:", QLineEdit())
        if p.lot_number:
            self.lot.setText(p.lot_number)
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(600, 360)

    def apply(self) -> EventBase:
        """Save infusion time and lot."""
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        changes: dict[str, Any] = {"infusion_at": self.when.instant().isoformat()}
        lot = self.lot.text().strip()
        if lot:
            changes["lot_number"] = lot
        return self.controller.update_patient(
            self.pid, changes, recorded_by=initials, effective_at=self.when.instant()
        )


class NoteDialog(FormDialog):
    """A free-text nursing note."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Add note", ok_text="Save note", parent=parent)
        self.pid = pid
        self.text = QPlainTextEdit()
        self.text.setAccessibleName("Note text")
        self.text.setTabChangesFocus(True)
        self.form.add("text", "&Note:", self.text)
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(600, 380)

    def apply(self) -> EventBase:
        """Save the note."""
        text = self.text.toPlainText().strip()
        if not text:
            raise ParseError("text: write the note")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        return self.controller.chart(self.pid, "note", recorded_by=initials, text=text)


# --------------------------------------------------------------------------- vitals


class VitalsDialog(FormDialog):
    """Chart a set of vital signs (empty fields are "not measured", never zero)."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Chart vital signs", ok_text="Save vitals", parent=parent)
        self.pid = pid
        p = controller.patient(pid)
        self.header.addWidget(label(f"{p.name} · bed {p.bed or '—'}", "section"))
        f = self.form
        self.temp = f.add(
            "temperature_c",
            "&Temperature:",
            NumberEdit("Temperature in degrees Celsius"),
            unit="°C",
        )
        self.hr = f.add(
            "heart_rate", "&Heart rate:", NumberEdit("Heart rate per minute"), unit="/min"
        )
        self.sbp = f.add(
            "systolic_mmhg", "&Systolic BP:", NumberEdit("Systolic blood pressure"), unit="mmHg"
        )
        self.dbp = f.add(
            "diastolic_mmhg", "&Diastolic BP:", NumberEdit("Diastolic blood pressure"), unit="mmHg"
        )
        self.spo2 = f.add("spo2_pct", "Sp&O₂:", NumberEdit("Oxygen saturation percent"), unit="%")
        self.rr = f.add(
            "respiratory_rate",
            "&Resp. rate:",
            NumberEdit("Respiratory rate per minute"),
            unit="/min",
        )
        self.device = _combo(list(DEVICE_LABELS.items()), "Oxygen device")
        f.add("oxygen_device", "O&xygen:", self.device)
        self.flow = f.add(
            "oxygen_flow_l_min",
            "Oxygen &flow:",
            NumberEdit("Oxygen flow litres per minute"),
            unit="L/min",
        )
        pressors = QWidget()
        grid = QGridLayout(pressors)
        grid.setContentsMargins(0, 0, 0, 0)
        self.pressors: dict[str, QCheckBox] = {}
        for i, name in enumerate(VASOPRESSORS):
            cb = QCheckBox(name.replace("_", " "))
            cb.setAccessibleName(f"Vasopressor {name.replace('_', ' ')}")
            grid.addWidget(cb, i // 3, i % 3)
            self.pressors[name] = cb
        f.add("vasopressors", "Vasopressors running:", pressors)
        self.when = _time_row(f, "effective_at", "Measured at:", controller.now)
        self.by = f.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        f.finish()

    def values(self) -> dict[str, Any]:
        """The vitals typed so far (parse errors raise)."""
        out: dict[str, Any] = {
            "temperature_c": parse_number(self.temp.text(), what="temperature_c"),
            "heart_rate": parse_number(self.hr.text(), what="heart_rate", integer=True),
            "systolic_mmhg": parse_number(self.sbp.text(), what="systolic_mmhg", integer=True),
            "diastolic_mmhg": parse_number(self.dbp.text(), what="diastolic_mmhg", integer=True),
            "spo2_pct": parse_number(self.spo2.text(), what="spo2_pct", integer=True),
            "respiratory_rate": parse_number(self.rr.text(), what="respiratory_rate", integer=True),
            "oxygen_device": self.device.currentData(),
            "oxygen_flow_l_min": parse_number(self.flow.text(), what="oxygen_flow_l_min"),
            "vasopressors": [n for n, cb in self.pressors.items() if cb.isChecked()],
        }
        return out

    def apply(self) -> EventBase:
        """Chart the vitals."""
        vals = self.values()
        measured = [k for k, v in vals.items() if v not in (None, [], "none")]
        if not measured:
            raise ParseError("temperature_c: enter at least one measurement")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        return self.controller.chart(
            self.pid,
            "vitals",
            recorded_by=initials,
            effective_at=self.when.instant(),
            **{k: v for k, v in vals.items() if v is not None},
        )


# --------------------------------------------------------------------------- tocilizumab


class DoseDialog(FormDialog):
    """Give tocilizumab: dose from the recorded weight, every limit checked first."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Give tocilizumab", ok_text="Give dose", parent=parent)
        self.pid = pid
        self.plan: DosePlan | None = None
        self.plan_error: str | None = None
        p = controller.patient(pid)
        self.setMinimumWidth(720)
        self.header.addWidget(label(f"Tocilizumab · {p.name} · bed {p.bed or '—'}", "section"))
        self.weight_banner = banner("", "danger", icon_name="blocked")
        self.weight_button = button("Record new &weight…", slot=self._record_weight)
        self.weight_banner.layout().addWidget(self.weight_button)
        self.header.addWidget(self.weight_banner)

        # Dose box.
        self.dose_box = QGroupBox("Dose")
        self.dose_box.setAccessibleName("Dose calculation")
        dl = QVBoxLayout(self.dose_box)
        self.dose_big = label("", "big")
        self.dose_big.setAccessibleName("Dose")
        self.dose_calc = label("")
        self.dose_calc.setAccessibleName("Dose calculation")
        self.volume = label("")
        self.volume.setAccessibleName("Volume")
        self.weight_line = label("", "hint")
        dl.addWidget(self.dose_big)
        dl.addWidget(self.dose_calc)
        dl.addWidget(self.volume)
        dl.addWidget(self.weight_line)
        self.cap_banner = banner("", "warning", icon_name="warning")
        self.confirm_weight = QCheckBox("")
        self.confirm_weight.setAccessibleName("I have confirmed the weight")
        self.cap_banner.layout().addWidget(self.confirm_weight)
        dl.addWidget(self.cap_banner)
        self.body.insertWidget(0, self.dose_box)

        # Limits box.
        self.limit_box = QGroupBox("Limits")
        ll = QVBoxLayout(self.limit_box)
        self.budget_line = label("")
        self.budget_line.setAccessibleName("Dose budget")
        self.history_banner = banner(
            "Dose history INCOMPLETE (transferred in, or restored from backup): doses given "
            "elsewhere may be missing, so the counts below are minimums. A dose needs an "
            "override with a reason and a second nurse — or confirm the history first.",
            "warning",
            icon_name="warning",
        )
        self.limit_banner = banner("", "warning", icon_name="warning")
        self.hard_banner = banner("", "danger", icon_name="blocked")
        ll.addWidget(self.budget_line)
        ll.addWidget(self.history_banner)
        ll.addWidget(self.limit_banner)
        ll.addWidget(self.hard_banner)
        self.body.insertWidget(1, self.limit_box)

        # Override box (soft limits only).
        self.override_box = QGroupBox("Override (soft limit) — reason and a second nurse")
        ol = QVBoxLayout(self.override_box)
        self.override_form = Form()
        self.reason = QPlainTextEdit()
        self.reason.setAccessibleName("Override reason")
        self.reason.setTabChangesFocus(True)
        self.reason.setFixedHeight(70)
        self.override_form.add("reason", "Reason:", self.reason, aliases=("override",), expand=True)
        self.second = InitialsEdit("Second nurse's initials", "2nd nurse")
        self.override_form.add(
            "second_nurse",
            "Second nurse:",
            self.second,
            hint="The second nurse types their own initials.",
        )
        self.override_form.finish()
        ol.addWidget(self.override_form)
        self.body.insertWidget(2, self.override_box)

        f = self.form
        self.when = _time_row(f, "effective_at", "Given at:", controller.now)
        self.given_by = f.add("given_by", "Given &by:", InitialsEdit("Given by, initials"))
        self.given_by.setText(initials)
        self.checked_by = f.add(
            "checked_by",
            "Checked b&y:",
            InitialsEdit("Checked by, initials of the independent checker"),
            hint="Independent double check (a different nurse).",
        )
        f.add_widget(label("", "hint"))
        f.finish()
        self.when.dateTimeChanged.connect(lambda _dt: self.replan())
        self.confirm_weight.toggled.connect(lambda _on: self._sync_button())
        self.resize(760, 820)
        self.replan()

    # ------------------------------------------------------------------ plan

    def replan(self) -> None:
        """Recompute the plan for the chosen time and update every panel."""
        try:
            self.plan = self.controller.plan_tocilizumab(self.pid, self.when.instant())
            self.plan_error = None
        except InputError as exc:
            self.plan = None
            self.plan_error = str(exc)
        self._show()

    def _show(self) -> None:
        plan = self.plan
        weight_problem = plan is None and self.plan_error is not None
        self.weight_banner.setVisible(weight_problem)
        if weight_problem:
            text = self.plan_error or ""
            if text.startswith("weight_kg: "):
                text = text[len("weight_kg: ") :]
            p = self.controller.patient(self.pid)
            set_banner(
                self.weight_banner,
                f"Cannot calculate the dose: {text}.\nRecorded: "
                f"{presenters.weight_text(p, self.controller.now)}. Weigh the patient now and "
                "record the new weight.",
            )
        for w in (self.dose_box, self.limit_box):
            w.setVisible(plan is not None)
        self.form.setVisible(plan is not None and not plan.hard_block)
        if plan is None:
            self.override_box.setVisible(False)
            self._sync_button()
            return
        d = plan.dose
        self.dose_big.setText(f"{d.dose_mg:g} mg   ·   {d.volume_ml:g} mL")
        self.dose_calc.setText(d.explanation)
        self.volume.setText(
            f"Volume: {d.volume_ml:g} mL of 20 mg/mL concentrate (dilute as per pharmacy)"
        )
        self.weight_line.setText(
            f"Weight used: {plan.weight_kg:g} kg, measured {format_local(plan.weight_measured_at)} "
            f"({format_duration(self.controller.now - plan.weight_measured_at)} ago)"
        )
        self.cap_banner.setVisible(d.capped)
        if d.capped:
            set_banner(
                self.cap_banner,
                f"CAPPED at the {d.max_dose_mg:g} mg maximum. By weight the dose would be "
                f"{d.uncapped_mg:g} mg ({plan.weight_kg:g} kg × {d.mg_per_kg:g} mg/kg). "
                "Confirm the weight before giving (a weight in pounds would be hidden by the cap).",
            )
            self.confirm_weight.setText(f"I have confirmed the weight is {plan.weight_kg:g} kg")
        b = plan.budget
        at = self.when.instant()
        prefix = "" if b.history_complete else "at least "
        if b.next_allowed_at is None:
            next_text = "no further doses"
        elif b.next_allowed_at <= at:
            next_text = "now"
        else:
            next_text = (
                f"{format_local(b.next_allowed_at)} ({presenters.countdown(b.next_allowed_at, at)})"
            )
        frees = (
            f" The 24 h window frees at {format_local(b.check.window_frees_at)}."
            if b.check.window_frees_at
            else ""
        )
        self.budget_line.setText(
            f"This would be dose {prefix}{b.total + 1} of at most {b.max_total} in the course. "
            f"Doses in the 24 h before: {prefix}{b.doses_last_24h} of at most {b.max_per_24h}.\n"
            f"Next dose allowed by the limits: {next_text}.{frees}"
            + (f"\n{presenters.voided_text(b)}" if b.voided else "")
        )
        self.history_banner.setVisible(not b.history_complete)
        soft = [r for r in plan.needs_override if r != "history_incomplete"]
        self.limit_banner.setVisible(bool(soft) and not plan.hard_block)
        if soft:
            reasons = "; ".join(plan.check.reason_text[r] for r in soft)
            set_banner(
                self.limit_banner,
                f"SOFT LIMIT: {reasons}. Giving it now needs a documented reason and a second "
                "nurse's initials.",
            )
        self.hard_banner.setVisible(plan.hard_block)
        if plan.hard_block:
            set_banner(
                self.hard_banner,
                "CANNOT GIVE — " + plan.check.explanation + ". This is a hard limit: Bedside "
                "will not record this dose. Escalate to the doctor.",
            )
        self.override_box.setVisible(bool(plan.needs_override) and not plan.hard_block)
        self._sync_button()

    def _sync_button(self) -> None:
        plan = self.plan
        if plan is None or plan.hard_block:
            self.ok_button.setEnabled(False)
            self.ok_button.setText("Cannot give" if plan is not None else "Give dose")
            return
        self.ok_button.setEnabled(True)
        label_text = f"Give {plan.dose.dose_mg:g} mg ({plan.dose.volume_ml:g} mL)"
        role = "primary"
        if plan.needs_override:
            label_text += " with override"
            role = "danger"
        if self.ok_button.property("role") != role:
            self.ok_button.setProperty("role", role)
            repolish(self.ok_button)
        self.ok_button.setText(label_text)
        self.ok_button.setAccessibleName(label_text)

    def _record_weight(self) -> None:
        dlg = WeightDialog(
            self.controller,
            self.pid,
            self.given_by.value(),
            self,
            reason="The recorded weight cannot be used for dosing: weigh the patient now.",
        )
        if exec_dialog(dlg):
            self.when.set_instant(self.controller.clock.now())
            self.replan()

    # ------------------------------------------------------------------ give

    def submit(self) -> bool:
        """Also clear the override form's errors."""
        self.override_form.clear_errors()
        return super().submit()

    def apply(self) -> EventBase:
        """Record the dose through the core's checks."""
        self.replan()
        plan = self.plan
        if plan is None:
            raise ParseError(f"weight_kg: {self.plan_error or 'no usable weight'}")
        if plan.hard_block:
            raise LimitError("Cannot give: " + plan.check.explanation)
        given_by = _require(self.form, "given_by", self.given_by.value(), "your initials")
        checked_by = _require(
            self.form, "checked_by", self.checked_by.value(), "the checking nurse's initials"
        )
        if plan.dose.capped and not self.confirm_weight.isChecked():
            raise ParseError(
                "weight_confirmed: tick the box to confirm the weight (dose is capped)"
            )
        override = None
        if plan.needs_override:
            reason = self.reason.toPlainText().strip()
            second = self.second.value()
            problems = []
            if not reason:
                problems.append(("reason", "write why the dose is given despite the limit"))
            if not second:
                problems.append(("second_nurse", "the second nurse must type their initials"))
            elif second.upper() == given_by.upper():
                problems.append(("second_nurse", "must be a different nurse from the one giving"))
            if problems:
                for name, text in problems:
                    self.override_form.set_error(name, text)
                raise LimitError(
                    "Needs an override: " + ", ".join(plan.needs_override).replace("_", " ")
                )
            override = {"reason": reason, "second_nurse": second}
        try:
            return self.controller.give_tocilizumab(
                self.pid,
                given_by=given_by,
                checked_by=checked_by,
                effective_at=self.when.instant(),
                weight_confirmed=self.confirm_weight.isChecked(),
                override=override,
            )
        except InputError as exc:
            msg = str(exc)
            if not msg.startswith("override"):
                raise
            self.override_form.show_error(msg)
            raise LimitError("The override was not accepted: see the reason above.") from None


class MedicationDialog(FormDialog):
    """Dexamethasone, methylprednisolone and other drugs, with their ordered interval."""

    DRUGS = (
        ("dexamethasone", "Dexamethasone"),
        ("methylprednisolone", "Methylprednisolone"),
        ("anakinra", "Anakinra"),
        ("levetiracetam", "Levetiracetam"),
        ("other", "Other (name it)"),
    )

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
        drug: str = "dexamethasone",
    ) -> None:
        super().__init__(controller, "Give medication", ok_text="Record dose", parent=parent)
        self.pid = pid
        p = controller.patient(pid)
        self.header.addWidget(label(f"{p.name} · bed {p.bed or '—'}", "section"))
        self.last = label("", "hint")
        self.header.addWidget(self.last)
        f = self.form
        self.drug = _combo(list(self.DRUGS), "Drug")
        f.add("drug", "&Drug:", self.drug)
        self.drug_name = f.add("drug_name", "Drug name:", QLineEdit(), hint="only for Other")
        self.dose = f.add("dose", "D&ose:", NumberEdit("Dose"))
        self.unit = _combo(
            [("mg", "mg"), ("g", "g"), ("mg/kg", "mg/kg"), ("units", "units"), ("mL", "mL")],
            "Dose unit",
        )
        f.add("unit", "&Unit:", self.unit)
        self.route = _combo(
            [("IV", "IV"), ("PO", "PO (oral)"), ("SC", "SC"), ("IM", "IM")], "Route"
        )
        f.add("route", "&Route:", self.route)
        self.every = f.add(
            "every_h",
            "Ordered &every:",
            NumberEdit("Ordered interval in hours"),
            unit="h",
            hint="as prescribed, e.g. 6 or 12; empty for a single dose",
        )
        self.when = _time_row(f, "effective_at", "Given at:", controller.now)
        self.given_by = f.add("given_by", "Given &by:", InitialsEdit("Given by, initials"))
        self.given_by.setText(initials)
        self.checked_by = f.add(
            "checked_by",
            "Checked b&y:",
            InitialsEdit("Checked by, initials"),
            hint="optional second check",
        )
        f.finish()
        idx = self.drug.findData(drug)
        self.drug.setCurrentIndex(max(idx, 0))
        self.drug.currentIndexChanged.connect(lambda _i: self._sync())
        self._sync()
        self.resize(640, 640)

    def _sync(self) -> None:
        drug = self.drug.currentData()
        self.drug_name.setEnabled(drug == "other")
        meds = [
            e
            for e in self.controller.events(self.pid)
            if isinstance(e, Medication) and e.drug == drug
        ]
        if meds:
            last = max(meds, key=lambda e: e.effective_at)
            every = f", ordered every {last.every_h:g} h" if last.every_h else ""
            self.last.setText(
                f"Last {presenters.DRUG_LABELS.get(drug, drug).lower()}: {last.dose:g} {last.unit} "
                f"{last.route} at {format_local(last.effective_at)}{every}"
            )
            if not self.dose.text():
                self.dose.setText(f"{last.dose:g}")
                if last.every_h and not self.every.text():
                    self.every.setText(f"{last.every_h:g}")
        else:
            self.last.setText(f"No {presenters.DRUG_LABELS.get(drug, drug).lower()} recorded yet.")

    def apply(self) -> EventBase:
        """Chart the administration."""
        dose = parse_number(self.dose.text(), what="dose")
        if dose is None:
            raise ParseError("dose: enter the dose")
        given_by = _require(self.form, "given_by", self.given_by.value(), "your initials")
        fields: dict[str, Any] = {
            "drug": self.drug.currentData(),
            "dose": dose,
            "unit": self.unit.currentData(),
            "route": self.route.currentData(),
            "given_by": given_by,
            "effective_at": self.when.instant(),
        }
        every = parse_number(self.every.text(), what="every_h")
        if every is not None:
            fields["every_h"] = every
        if fields["drug"] == "other":
            fields["drug_name"] = self.drug_name.text().strip() or None
        checked = self.checked_by.value()
        if checked:
            fields["checked_by"] = checked
        return self.controller.chart(self.pid, "medication", recorded_by=given_by, **fields)


class PriorDoseDialog(FormDialog):
    """A tocilizumab dose given before the patient reached this workstation."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            controller, "Record a dose given elsewhere", ok_text="Record prior dose", parent=parent
        )
        self.pid = pid
        self.header.addWidget(
            label(
                "Use this for tocilizumab given on another ward or hospital (from the transfer "
                "letter or the MAR). It counts towards every limit.",
                "hint",
            )
        )
        self.when = _time_row(
            self.form, "effective_at", "Given at:", controller.now - timedelta(hours=8)
        )
        self.dose = self.form.add(
            "dose_mg", "&Dose:", NumberEdit("Dose in milligrams"), unit="mg", aliases=("dose",)
        )
        self.source = self.form.add(
            "source",
            "&Source:",
            QLineEdit(),
            hint="e.g. transfer letter, MAR",
            aliases=("prior_source",),
        )
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(620, 400)

    def apply(self) -> EventBase:
        """Record the prior dose."""
        dose = parse_number(self.dose.text(), what="dose_mg")
        if dose is None:
            raise ParseError("dose_mg: enter the dose in mg")
        src = _require(self.form, "source", self.source.text().strip(), "where this comes from")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        return self.controller.record_prior_dose(
            self.pid,
            effective_at=self.when.instant(),
            dose_mg=dose,
            source=src,
            recorded_by=initials,
        )


class HistoryDialog(FormDialog):
    """Confirm (or deny) that the tocilizumab history is complete, against a source."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Confirm dose history", ok_text="Save", parent=parent)
        self.pid = pid
        self.header.addWidget(
            label(
                "Check every tocilizumab dose of this course against an independent source "
                "(MAR, transfer letter, phone call to the sending ward). Record missing doses "
                "with “Dose given elsewhere” first.",
                "hint",
            )
        )
        self.complete = ChoiceButtons(
            [(True, "Complete — every dose is recorded"), (False, "Still incomplete")],
            accessible="Dose history",
        )
        self.form.add("complete", "History:", self.complete)
        self.source = self.form.add("source", "Checked &against:", QLineEdit())
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(640, 380)

    def apply(self) -> EventBase:
        """Record the confirmation."""
        if not self.complete.is_set():
            raise ParseError("complete: choose complete or incomplete")
        src = _require(self.form, "source", self.source.text().strip(), "the source you checked")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        return self.controller.chart(
            self.pid,
            "history_confirmation",
            recorded_by=initials,
            source=src,
            complete=bool(self.complete.value()),
        )


# --------------------------------------------------------------------------- corrections


_FIXED = {"id", "kind", "recorded_at", "recorded_by", "prev_hash", "hash", "origin"}


class CorrectionDialog(FormDialog):
    """Void or amend an earlier entry; the original stays in the record and on screen."""

    def __init__(
        self,
        controller: WardController,
        pid: str,
        event: EventBase,
        initials: str = "",
        parent: QWidget | None = None,
        action: str = "void",
    ) -> None:
        super().__init__(controller, "Correct an entry", ok_text="Save correction", parent=parent)
        self.pid = pid
        self.event = event
        self.header.addWidget(
            label(
                f"{presenters.KIND_LABELS.get(getattr(event, 'kind', ''), '')} charted by "
                f"{event.recorded_by} at {format_local(event.recorded_at)}, effective "
                f"{format_local(event.effective_at)}:",
                "hint",
            )
        )
        orig = label(presenters.summarize(event))
        orig.setAccessibleName("Original entry")
        self.header.addWidget(orig)
        self.header.addWidget(
            label(
                "The original stays in the record and stays visible, marked as corrected.", "hint"
            )
        )
        f = self.form
        self.action = ChoiceButtons(
            [("void", "Void (entered in error)"), ("amend", "Amend values")],
            accessible="Correction",
        )
        f.add("action", "Action:", self.action)
        self.is_dose = isinstance(event, Medication)
        self.reason_code: QComboBox | None = None
        if self.is_dose:
            self.reason_code = _combo(
                [("", "— choose —"), *CORRECTION_REASONS.items()], "Reason for correcting a dose"
            )
            f.add("reason_code", "Why (dose):", self.reason_code, hint="required")
        self.reason = QLineEdit()
        f.add("reason", "&Reason:", self.reason, hint="required", expand=True)
        self.fields: dict[str, QLineEdit] = {}
        self.amend_box = QGroupBox("Amended values (change only what was wrong)")
        grid = Form()
        data = event.model_dump(mode="json")
        for name, value in data.items():
            if name in _FIXED or isinstance(value, (dict, list)):
                continue
            edit = QLineEdit("" if value is None else str(value))
            edit.setAccessibleName(f"Amended {name}")
            grid.add(name, f"{name}:", edit)
            self.fields[name] = edit
        grid.finish()
        self.amend_form = grid
        QVBoxLayout(self.amend_box).addWidget(grid)
        self.body.insertWidget(1, self.amend_box)
        self.by = f.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.second: InitialsEdit | None = None
        if self.is_dose:
            self.second = f.add(
                "second_nurse",
                "Second nurse:",
                InitialsEdit("Second nurse initials"),
                hint="a second nurse checks every dose correction",
            )
        f.finish()
        self.action.changed.connect(self._sync)
        self.action.set_value(action)
        self.resize(720, 640)

    def _sync(self) -> None:
        self.amend_box.setVisible(self.action.value() == "amend")

    def amended(self) -> dict[str, Any]:
        """Fields whose text changed, converted to the original's types."""
        data = self.event.model_dump(mode="json")
        out: dict[str, Any] = {}
        for name, edit in self.fields.items():
            old = data.get(name)
            text = edit.text().strip()
            if text == ("" if old is None else str(old)):
                continue
            if text == "":
                out[name] = None
            elif isinstance(old, bool):
                out[name] = text.lower() in {"true", "yes", "1"}
            elif isinstance(old, int):
                out[name] = parse_number(text, what=name, integer=True)
            elif isinstance(old, float) or (old is None and _looks_numeric(text)):
                out[name] = parse_number(text, what=name)
            else:
                out[name] = text
        return out

    def submit(self) -> bool:
        """Also clear the amendment form's errors."""
        self.amend_form.clear_errors()
        return super().submit()

    def apply(self) -> EventBase:
        """Save the correction."""
        action = self.action.value()
        if action is UNSET:
            raise ParseError("action: choose void or amend")
        reason = _require(self.form, "reason", self.reason.text().strip(), "the reason")
        initials = _require(self.form, "recorded_by", self.by.value(), "your initials")
        amended = None
        if action == "amend":
            amended = self.amended()
            if not amended:
                raise ParseError("action: change at least one value to amend")
        extra: dict[str, Any] = {}
        if self.reason_code is not None and self.second is not None:
            code = self.reason_code.currentData()
            extra["reason_code"] = _require(self.form, "reason_code", code or "", "why")
            extra["second_nurse"] = _require(
                self.form, "second_nurse", self.second.value(), "the second nurse's initials"
            )
        try:
            return self.controller.correct(
                self.pid,
                self.event.id,
                action=action,
                reason=reason,
                recorded_by=initials,
                amended=amended,
                **extra,
            )
        except InputError as exc:
            msg = str(exc)
            if msg.startswith("amendment") or msg.startswith("amended"):
                self.amend_form.show_error(msg)
            raise


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- alerts


class AlertDialog(FormDialog):
    """Acknowledge or snooze an alert (written to the record with your initials)."""

    def __init__(
        self,
        controller: WardController,
        row: DueRow,
        initials: str = "",
        parent: QWidget | None = None,
        mode: str = "acknowledge",
    ) -> None:
        title = "Acknowledge alert" if mode == "acknowledge" else "Snooze alert"
        super().__init__(controller, title, ok_text=title.split()[0], parent=parent)
        self.row = row
        self.mode = mode
        item = row.item
        kind = "danger" if item.state == "overdue" else "warning"
        self.header.addWidget(
            banner(
                f"{presenters.STATE_LABELS[item.state]} — {row.bed} {row.name}\n{item.message}\n"
                f"Due {format_local(item.due_at)}",
                kind,
                icon_name=item.state,
            )
        )
        f = self.form
        if mode == "snooze":
            cap = int(controller.snooze_max_min)
            self.minutes = QSpinBox()
            self.minutes.setRange(1, max(cap, 1))
            self.minutes.setValue(min(10, cap))
            self.minutes.setAccessibleName("Snooze minutes")
            f.add("minutes", "Snooze for:", self.minutes, unit=f"min (at most {cap} min)")
            if not item.snoozable:
                self.header.addWidget(
                    banner(
                        "This is a critical alert: it cannot be snoozed. Act on it, or "
                        "acknowledge it with a reason.",
                        "danger",
                        icon_name="blocked",
                    )
                )
                self.ok_button.setEnabled(False)
        self.reason = QLineEdit()
        needs = item.severity in controller.protocol.monitoring.ack_reason_required_for.severities
        f.add(
            "reason",
            "&Reason:",
            self.reason,
            hint="required for this alert" if needs else "optional",
            expand=True,
        )
        f.add_widget(
            label(
                "Acknowledging silences the alarm for this item and is written to the "
                "patient's record with your initials. The item stays on the list until the "
                "task is done.",
                "hint",
            )
        )
        self.by = f.add(
            "initials", "Your &initials:", InitialsEdit("Your initials"), aliases=("recorded_by",)
        )
        self.by.setText(initials)
        f.finish()
        self.resize(620, 420)

    def apply(self) -> None:
        """Acknowledge or snooze through the core."""
        initials = _require(self.form, "initials", self.by.value(), "your initials")
        reason = self.reason.text().strip() or None
        if self.mode == "snooze":
            self.controller.snooze(self.row.pid, self.row.item.key, initials, self.minutes.value())
        else:
            self.controller.acknowledge(self.row.pid, self.row.item.key, initials, reason=reason)


class ClockDialog(FormDialog):
    """A nurse confirms the computer's time against an independent clock."""

    def __init__(
        self, controller: WardController, initials: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(controller, "Confirm the time", ok_text="The time is right", parent=parent)
        now = controller.clock.now()
        self.header.addWidget(
            banner(
                f"This computer says it is {format_local(now, seconds=True)}.\n"
                "Compare with the ward clock or your phone. If it is wrong, do not confirm: "
                "ask IT to correct it. Until confirmed, dose checks stay restricted.",
                "warning",
                icon_name="warning",
            )
        )
        self.by = self.form.add("initials", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(600, 320)

    def apply(self) -> None:
        """Record the confirmation (lifts the restrictions)."""
        initials = _require(self.form, "initials", self.by.value(), "your initials")
        self.controller.confirm_clock(initials)


# --------------------------------------------------------------------------- misc


class ShortcutsDialog(QDialog):
    """The keyboard shortcuts, for the Help menu."""

    def __init__(self, shortcuts: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(self)
        grid = QGridLayout()
        for i, (keys, what) in enumerate(shortcuts):
            k = QLabel(QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText))
            k.setProperty("role", "section")
            grid.addWidget(k, i, 0)
            grid.addWidget(QLabel(what), i, 1)
        lay.addLayout(grid)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        lay.addWidget(close)


def drive(
    dialog_type: type[QDialog], handler: Callable[[QDialog], bool]
) -> Callable[[QDialog], bool]:
    """Test helper: an :func:`exec_dialog` replacement that runs ``handler`` on matching dialogs."""

    def run(dialog: QDialog) -> bool:
        if isinstance(dialog, dialog_type):
            return handler(dialog)
        raise AssertionError(f"unexpected dialog {type(dialog).__name__}")

    return run


def today() -> date:
    """Local date (used for ages)."""
    return datetime.now().date()


__all__ = [
    "AddPatientDialog",
    "AlertDialog",
    "ClockDialog",
    "CorrectionDialog",
    "DoseDialog",
    "FormDialog",
    "HistoryDialog",
    "InfusionDialog",
    "MedicationDialog",
    "NoteDialog",
    "PriorDoseDialog",
    "ShortcutsDialog",
    "VitalsDialog",
    "WeightDialog",
    "confirm",
    "exec_dialog",
    "inform",
    "show_core_error",
    "show_crash",
    "show_error",
    "show_locked",
    "warn",
]

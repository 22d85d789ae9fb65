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

import itertools
import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QDate, QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.dosecheck import shown_dose_mg, shown_volume_ml
from bedside.clinical.integrity import PossibleDuplicateError
from bedside.clinical.record import CORRECTION_REASONS, EventBase, Medication
from bedside.clinical.rules import DEVICE_LABELS
from bedside.common.errors import (
    BedsideError,
    ConcurrentModificationError,
    ConfirmationRequired,
    InputError,
    LimitError,
    StorageError,
)
from bedside.common.timeutil import format_duration, format_local
from bedside.reports import presenters
from bedside.reports.wording import (
    BAD_PATTERNS,
    ISO_RE,
    SNAKE_RE,
    nurse_text,
    sources_tooltip,
    split_sources,
)
from bedside.ward import restore
from bedside.ward.service import DosePlan
from ui import screens
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
    input_state,
    label,
    parse_number,
    repolish,
    set_banner,
    split_error,
)

logger = logging.getLogger(__name__)

UUID_RE = BAD_PATTERNS["UUID"]

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
    box = QMessageBox(icon, title, nurse_text(text), QMessageBox.StandardButton.Ok, parent)
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


def confirm(
    parent: QWidget | None, title: str, text: str, *, yes: str = "Yes", default_no: bool = False
) -> bool:
    """Ask a yes/no question; True for yes (``default_no``: Enter answers Cancel)."""
    box = QMessageBox(
        QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent
    )
    yes_btn = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    no_btn = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    if default_no:
        box.setDefaultButton(no_btn)
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


def confirm_findings(
    parent: QWidget | None,
    exc: ConfirmationRequired,
    question: str,
    yes: str = "Yes, it is right",
) -> bool:
    """Ask the nurse to confirm the soft limits the core found (drug library, lower grade).

    Like a pump's soft limit, Enter does not confirm: Cancel is the default button.
    """
    text = "\n\n".join(str(getattr(f, "message", f)) for f in exc.findings)
    return confirm(parent, "Check before saving", f"{text}\n\n{question}", yes=yes, default_no=True)


def with_confirmation(
    parent: QWidget | None,
    question: str,
    call: Callable[[dict[str, Any] | None], Any],
    yes: str = "Yes, it is right",
) -> Any:
    """Run ``call(None)``; on a soft limit ask, then run ``call(confirmation)`` once.

    A "no" leaves the dialog open with the core's message next to its field.
    """
    try:
        return call(None)
    except ConfirmationRequired as exc:
        if not confirm_findings(parent, exc, question, yes):
            raise
        return call({"limits": list(exc.needed)})


# --------------------------------------------------------------------------- base


class Problems(BedsideError):
    """Several problems found in one form, each named by its field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{n}: {t}" for n, t in problems))
        self.problems = problems


def ask_discard(parent: QWidget | None) -> bool:
    """Ask before throwing typed data away; True only when the nurse chooses Discard."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Discard what you typed?",
        "Discard what you typed?\n\nNothing from this form has been saved yet.",
        QMessageBox.StandardButton.NoButton,
        parent,
    )
    keep = box.addButton("Keep editing", QMessageBox.ButtonRole.RejectRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    return box.clickedButton() is discard


def _invalidate(layout: QLayout) -> None:
    """Forget cached sizes in ``layout`` and every layout nested in it."""
    layout.invalidate()
    for i in range(layout.count()):
        item = layout.itemAt(i)
        child = item.layout() if item is not None else None
        if child is not None:
            _invalidate(child)


def _is_input(widget: QWidget) -> bool:
    return isinstance(
        widget, (QLineEdit, QPlainTextEdit, QComboBox, QAbstractSpinBox, QAbstractButton)
    )


class FormDialog(QDialog):
    """The one base of every dialog that takes input (tests check none bypasses it).

    It cannot lose what a nurse typed:

    * it opens with the keyboard in the first field that still needs typing;
    * Enter in any field (Shift+Enter for a new line in a text box) presses the main
      button: the entry is saved, or every problem is shown next to its field and the
      dialog stays open with everything still there;
    * the main and Cancel buttons come last in the Tab order; Cancel is never the default;
    * Cancel, Esc or the close box with anything typed asks "Discard what you typed?"
      (default: keep editing);
    * after a save the main window says what was saved, for whom and when;
    * the body scrolls, so the buttons stay on screen on a small or scaled display.
    """

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
        self.setSizeGripEnabled(True)
        self.result_value: Any = None
        self.pid: str | None = None
        self._problems: list[tuple[str, str]] = []
        self._snapshot: list[tuple[QWidget, object]] | None = None
        self._prepared = False
        outer = QVBoxLayout(self)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        inner = QVBoxLayout(holder)
        inner.setContentsMargins(0, 0, 0, 0)
        self.header = QVBoxLayout()
        inner.addLayout(self.header)
        self.form = Form()
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.addWidget(self.form)
        self.body.addStretch(1)
        inner.addLayout(self.body, 1)
        self.scroll_area.setWidget(holder)
        self.holder = holder
        outer.addWidget(self.scroll_area, 1)
        self.buttons = QDialogButtonBox()
        self.ok_button = button(ok_text, role="primary", slot=self.submit)
        self.ok_button.setDefault(True)
        self.cancel_button = button("Cancel", slot=self.reject)
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.setDefault(False)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        outer.addWidget(self.buttons)
        self.resize(640, 560)

    # ------------------------------------------------------------------ opening

    def setVisible(self, visible: bool) -> None:
        """Before the first show: tab order and size for the screen (see :meth:`prepare`)."""
        first = visible and not self._prepared
        if first:
            self.prepare()
        super().setVisible(visible)
        if first:
            focus = self.first_field()
            if focus is not None:
                focus.setFocus(Qt.FocusReason.TabFocusReason)

    def prepare(self) -> None:
        """Order the Tab chain (fields, then buttons), size for the screen, note the start."""
        self._prepared = True
        for btn in self.findChildren(QPushButton):
            if btn is not self.ok_button:
                btn.setAutoDefault(False)
                btn.setDefault(False)
        self.ok_button.setDefault(True)
        chain = [w for w in self.focus_chain() if w not in (self.ok_button, self.cancel_button)]
        chain += [self.ok_button, self.cancel_button]
        for a, b in itertools.pairwise(chain):
            QWidget.setTabOrder(a, b)
        for edit in self.findChildren(QPlainTextEdit):
            edit.installEventFilter(self)
        self.fit_to_screen()
        self._snapshot = self._state()

    def focus_chain(self) -> list[QWidget]:
        """The dialog's widgets that take the keyboard, in Tab order."""
        out: list[QWidget] = []
        w = self.nextInFocusChain()
        seen: set[int] = set()
        while w is not None and w is not self and id(w) not in seen:
            seen.add(id(w))
            if self.isAncestorOf(w) and w.focusPolicy() & Qt.FocusPolicy.TabFocus:
                out.append(w)
            w = w.nextInFocusChain()
        return out

    def input_fields(self) -> list[QWidget]:
        """The input widgets a nurse can reach with Tab now (buttons of the box excluded)."""
        return [
            w
            for w in self.focus_chain()
            if w not in (self.ok_button, self.cancel_button)
            and _is_input(w)
            and w.isVisibleTo(self)
            and w.isEnabled()
        ]

    def first_field(self) -> QWidget | None:
        """The first field still needing input, else the first field."""
        fields = self.input_fields()
        for w in fields:
            if isinstance(w, QLineEdit) and not w.text() and not w.isReadOnly():
                if isinstance(w.parentWidget(), QAbstractSpinBox):
                    continue
                return w
            if isinstance(w, QPlainTextEdit) and not w.toPlainText():
                return w
            group = w.parentWidget()
            if isinstance(group, ChoiceButtons) and not group.is_set():
                return w
        return fields[0] if fields else None

    def fit_to_screen(self) -> None:
        """Never larger than the available screen; tall content scrolls inside."""
        avail = screens.available_geometry(self.parentWidget() or self)
        lay = self.holder.layout()
        assert lay is not None  # set in __init__
        _invalidate(lay)  # not laid out yet before the first show: recompute
        content = lay.sizeHint()
        chrome = self.buttons.sizeHint().height() + 40
        width = min(max(self.width(), content.width() + 40), avail.width() - 24)
        height = min(max(content.height() + chrome, 200), avail.height() - 48)
        self.setMaximumHeight(max(avail.height() - 24, 200))
        self.setMinimumWidth(min(self.minimumWidth(), width))
        self.resize(width, height)
        geo = self.frameGeometry()
        geo.moveCenter(avail.center())
        self.move(max(avail.left(), geo.left()), max(avail.top(), geo.top()))

    # ------------------------------------------------------------------ keys

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter anywhere saves (the main button); Esc asks before discarding."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.press_ok()
            event.accept()
            return
        super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter in a text box saves too; Shift+Enter makes a new line."""
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.press_ok()
            return True
        return super().eventFilter(watched, event)

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab wraps from Cancel back to the first field (and Shift+Tab the other way)."""
        chain = [w for w in self.focus_chain() if w.isVisibleTo(self) and w.isEnabled()]
        focus = QApplication.focusWidget()
        if chain and focus is not None:
            if next and focus is chain[-1]:
                chain[0].setFocus(Qt.FocusReason.TabFocusReason)
                return True
            if not next and focus is chain[0]:
                chain[-1].setFocus(Qt.FocusReason.BacktabFocusReason)
                return True
        return super().focusNextPrevChild(next)

    def press_ok(self) -> None:
        """What Enter does: the main button, when it can be pressed."""
        if self.ok_button.isEnabled() and self.ok_button.isVisible():
            self.ok_button.click()

    # ------------------------------------------------------------------ closing

    def _state(self) -> list[tuple[QWidget, object]]:
        return [(w, st) for w in self.findChildren(QWidget) if (st := input_state(w)) is not None]

    def is_dirty(self) -> bool:
        """Whether anything was typed or chosen since the dialog opened."""
        if self._snapshot is None:
            return False
        return any(input_state(w) != st for w, st in self._snapshot)

    def reject(self) -> None:
        """Cancel, Esc and the close box: ask first when something was typed."""
        try:
            dirty = self.is_dirty()
        except Exception:  # never lose typed data to a bug: ask instead
            logger.exception("could not tell whether the form was changed")
            dirty = True
        if dirty and not ask_discard(self):
            return
        super().reject()

    # ------------------------------------------------------------------ saving

    def problem(self, name: str, text: str) -> None:
        """Note a problem with field ``name`` (shown with the others at the end)."""
        self._problems.append((name, text))

    def need(self, name: str, value: str, what: str) -> str:
        """A required text; an empty one is noted as a problem."""
        if not value:
            self.problem(name, f"enter {what}")
        return value

    def number(
        self, name: str, text: str, *, integer: bool = False, required: str | None = None
    ) -> float | None:
        """A number read from ``text``; unreadable (or missing when required) is noted."""
        try:
            value = parse_number(text, what=name, integer=integer)
        except ParseError as exc:
            self.problem(name, split_error(str(exc))[0][1])
            return None
        if value is None and required:
            self.problem(name, required)
        return value

    def check(self) -> None:
        """Stop before saving when any problem was noted (all of them are shown)."""
        if self._problems:
            raise Problems(list(self._problems))

    def forms(self) -> list[Form]:
        """Every form of the dialog (errors are placed in the one that has the field)."""
        return [self.form, *(f for f in self.findChildren(Form) if f is not self.form)]

    def show_problems(self, problems: list[tuple[str, str]]) -> None:
        """Each problem next to its field (the form line when no field matches)."""
        forms = self.forms()
        for name, text in problems:
            target = next((f for f in forms if f.aliases.get(name, name) in f.errors), self.form)
            target.set_error(name, text)
        for f in forms:
            focus = f.first_invalid()
            if focus is not None:
                focus.setFocus()
                break

    def submit(self) -> bool:
        """Validate and apply; True (and accepted) on success."""
        for f in self.forms():
            f.clear_errors()
        self._problems = []
        try:
            self.result_value = self.apply()
        except Problems as exc:
            self.show_problems(exc.problems)
            return False
        except ParseError as exc:
            self.show_problems(self._problems)
            self.form.show_error(str(exc))
            return False
        except (InputError, LimitError) as exc:
            self.show_problems(self._problems)
            self.form.show_error(str(exc))
            return False
        except BedsideError as exc:
            self.form.show_error(core_error_text(exc))
            return False
        self.announce(self.result_value)
        self._snapshot = None
        self.accept()
        return True

    def apply(self) -> Any:
        """Subclasses: read the fields, save through the controller, return what was saved.

        Collect problems with :meth:`problem`/:meth:`need` and end with :meth:`check`.
        """
        raise NotImplementedError(f"{type(self).__name__} must define apply()")

    def saved_what(self, result: Any) -> str:
        """Subclasses: a few words for what was saved (default: the event's summary)."""
        if isinstance(result, EventBase):
            return presenters.summarize(result).split(";")[0]
        return self.windowTitle()

    def announce(self, result: Any) -> None:
        """Tell the main window what was saved, for whom and when."""
        when = result.effective_at if isinstance(result, EventBase) else self.controller.now
        who = ""
        pid = self.pid or (result if isinstance(result, str) else None)
        if pid is not None and pid in self.controller.patient_ids():
            p = self.controller.patient(pid)
            who = f", {presenters.bed_or_name(p)}"
        at = presenters.short_time(when, self.controller.now)
        text = f"Saved: {self.saved_what(result)}{who}, {at}"
        self.controller.announce(text)


def _require(form: Form, name: str, value: str, what: str) -> str:
    """A required text, raising at once (older form code; :meth:`FormDialog.need` lists
    every problem together instead)."""
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

    def saved_what(self, result: Any) -> str:
        """``new patient Jane Doe``."""
        return f"new patient {self.name.text().strip()}"

    def _sync(self) -> None:
        on = self.infused.isChecked()
        self.infusion_at.setEnabled(on)
        self.history.setEnabled(on)

    def apply(self) -> str:
        """Create the patient."""
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
        weight = self.number("weight_kg", self.weight.text())
        if weight is not None:
            fields["weight_kg"] = weight
            fields["weight_measured_at"] = self.controller.clock.now()
        if self.infused.isChecked():
            fields["infusion_at"] = self.infusion_at.instant()
            if not self.history.is_set():
                self.problem("dose_history_complete", "say whether the full history is known")
            fields["dose_history_complete"] = bool(self.history.value())
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
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
        self.pid: str = pid
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

    def saved_what(self, result: Any) -> str:
        """``weight 72 kg``."""
        return f"weight {self.weight.text().strip()} kg"

    def apply(self) -> EventBase:
        """Save the weight as a patient update."""
        weight = self.number("weight_kg", self.weight.text(), required="enter the weight in kg")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
        when = self.when.instant()
        return with_confirmation(
            self,
            f"Save {weight:g} kg as the patient's weight?",
            lambda conf: self.controller.update_patient(
                self.pid,
                {"weight_kg": weight, "weight_measured_at": when.isoformat()},
                recorded_by=initials,
                effective_at=when,
                confirmation=conf,
            ),
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
        self.pid: str = pid
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

    def saved_what(self, result: Any) -> str:
        """``CAR T infusion``."""
        return "CAR T infusion (day 0)"

    def apply(self) -> EventBase:
        """Save infusion time and lot."""
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
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
        self.pid: str = pid
        self.text = QPlainTextEdit()
        self.text.setAccessibleName("Note text")
        self.text.setTabChangesFocus(True)
        self.form.add("text", "&Note:", self.text)
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.resize(600, 380)

    def saved_what(self, result: Any) -> str:
        """``note``."""
        return "note"

    def apply(self) -> EventBase:
        """Save the note."""
        text = self.text.toPlainText().strip()
        if not text:
            self.problem("text", "write the note")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
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
        self.pid: str = pid
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
        """The vitals typed so far (unreadable numbers are noted as problems)."""
        out: dict[str, Any] = {
            "temperature_c": self.number("temperature_c", self.temp.text()),
            "heart_rate": self.number("heart_rate", self.hr.text(), integer=True),
            "systolic_mmhg": self.number("systolic_mmhg", self.sbp.text(), integer=True),
            "diastolic_mmhg": self.number("diastolic_mmhg", self.dbp.text(), integer=True),
            "spo2_pct": self.number("spo2_pct", self.spo2.text(), integer=True),
            "respiratory_rate": self.number("respiratory_rate", self.rr.text(), integer=True),
            "oxygen_device": self.device.currentData(),
            "oxygen_flow_l_min": self.number("oxygen_flow_l_min", self.flow.text()),
            "vasopressors": [n for n, cb in self.pressors.items() if cb.isChecked()],
        }
        return out

    def saved_what(self, result: Any) -> str:
        """``vital signs (T 37.2 °C, HR 88 /min, …)``."""
        return f"vital signs ({presenters.summarize(result)})"

    def apply(self) -> EventBase:
        """Chart the vitals."""
        vals = self.values()
        measured = [k for k, v in vals.items() if v not in (None, [], "none")]
        if not measured and not self._problems:
            self.problem("temperature_c", "enter at least one measurement")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
        return self.controller.chart(
            self.pid,
            "vitals",
            recorded_by=initials,
            effective_at=self.when.instant(),
            **{k: v for k, v in vals.items() if v is not None},
        )


# --------------------------------------------------------------------------- tocilizumab


class DoseDialog(FormDialog):
    """Give a dose-limited drug (tocilizumab, anakinra, any drug of the protocol's limits).

    The dose comes from the protocol block (mg/kg from the recorded weight, or fixed);
    whether it may be given is the core's decision (``DosePlan.budget``), shown here.
    """

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
        drug: str = "tocilizumab",
    ) -> None:
        limited = controller.protocol_for(pid).dose_limits
        if drug not in limited:
            raise InputError(f"drug: {drug!r} has no dose limits in this patient's protocol")
        self.drug: str = drug
        title = f"Give {limited[drug].label.lower()}"
        super().__init__(controller, title, ok_text="Give dose", parent=parent)
        self.pid: str = pid
        self.plan: DosePlan | None = None
        self.plan_error: str | None = None
        p = controller.patient(pid)
        self.setMinimumWidth(720)
        self.title_label = label(
            f"{limited[drug].label} · {p.name} · bed {p.bed or '—'}", "section"
        )
        self.header.addWidget(self.title_label)
        self.drug_box = _combo([(k, v.label) for k, v in limited.items()], "Drug")
        self.drug_box.setCurrentIndex(max(self.drug_box.findData(drug), 0))
        drug_row = QWidget()
        dr = QGridLayout(drug_row)
        dr.setContentsMargins(0, 0, 0, 0)
        dr.addWidget(label("Drug with dose limits:", wrap=False), 0, 0)
        dr.addWidget(self.drug_box, 0, 1)
        dr.setColumnStretch(2, 1)
        self.header.addWidget(drug_row)
        self.weight_banner = banner("", "danger", icon_name="blocked")
        self.weight_button = button("Record new &weight…", slot=self._record_weight)
        self.weight_banner.row.addWidget(self.weight_button)
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
        self.cap_banner.row.addWidget(self.confirm_weight)
        dl.addWidget(self.cap_banner)
        # A weight older than the protocol allows: a soft stop (give on it with a reason).
        self.stale_banner = banner("", "warning", icon_name="warning")
        self.weight_reason = QLineEdit()
        self.weight_reason.setAccessibleName("Reason for dosing on the last weight")
        self.weight_reason.setPlaceholderText("why the dose is given on the last weight")
        self.stale_row = QWidget()
        sr = QGridLayout(self.stale_row)
        sr.setContentsMargins(0, 0, 0, 0)
        sr.addWidget(label("Reason for using the old weight:", wrap=False), 0, 0)
        sr.addWidget(self.weight_reason, 0, 1)
        sr.addWidget(button("Record new weight…", slot=self._record_weight), 0, 2)
        sr.setColumnStretch(1, 1)
        dl.addWidget(self.stale_banner)
        dl.addWidget(self.stale_row)
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
        # Issue 15: doses given on a workstation out of touch may be missing from the counts.
        sync = controller.sync_lines(pid)
        self.sync_banner = banner("\n".join(sync), "danger", icon_name="warning")
        self.sync_banner.setAccessibleName("Other workstations")
        self.sync_banner.setVisible(bool(sync))
        ll.addWidget(self.sync_banner)
        self.body.insertWidget(1, self.limit_box)

        # Override box (soft limits only).
        self.override_box = QGroupBox(
            "Override (soft limit) — reason, a second nurse and the prescriber's order"
        )
        ol = QVBoxLayout(self.override_box)
        self.override_form = Form()
        self.reason = QPlainTextEdit()
        self.reason.setAccessibleName("Override reason")
        self.reason.setTabChangesFocus(True)
        self.reason.setFixedHeight(70)
        self.override_form.add(
            "reason", "Reason:", self.reason, aliases=("override", "override.reason"), expand=True
        )
        self.second = InitialsEdit("Second nurse's initials", "2nd nurse")
        self.override_form.add(
            "second_nurse",
            "Second nurse:",
            self.second,
            aliases=("override.second_nurse",),
            hint="The second nurse types their own initials.",
        )
        self.prescriber = QLineEdit()
        self.prescriber.setAccessibleName("Prescriber who ordered the dose")
        self.prescriber.setMaxLength(80)
        self.override_form.add(
            "prescriber",
            "Ordered by:",
            self.prescriber,
            aliases=("override.prescriber",),
            hint="Beyond the interval or the doses in 24 h: who ordered it.",
        )
        self.override_form.finish()
        ol.addWidget(self.override_form)
        self.body.insertWidget(2, self.override_box)

        f = self.form
        self.when = _time_row(f, "effective_at", "Given at:", controller.now)
        self.route = _combo(
            [("", "— choose —"), ("IV", "IV"), ("PO", "PO (oral)"), ("SC", "SC"), ("IM", "IM")],
            "Route",
        )
        f.add(
            "route",
            "&Route:",
            self.route,
            hint="set by the protocol when it names one; otherwise the route as ordered",
        )
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
        self.drug_box.currentIndexChanged.connect(lambda _i: self._drug_changed())
        self.when.dateTimeChanged.connect(lambda _dt: self.replan())
        self.confirm_weight.toggled.connect(lambda _on: self._sync_button())
        self.resize(760, 820)
        self.replan()

    # ------------------------------------------------------------------ plan

    def _drug_changed(self) -> None:
        """Another dose-limited drug was chosen: plan it (nothing typed is cleared)."""
        chosen = self.drug_box.currentData()
        if not isinstance(chosen, str) or chosen == self.drug:
            return
        self.drug = chosen
        self.route.setCurrentIndex(0)  # the previous drug's route is not carried over
        limits = self.controller.protocol_for(self.pid).dose_limits[chosen]
        p = self.controller.patient(self.pid)
        self.setWindowTitle(f"Give {limits.label.lower()}")
        self.title_label.setText(f"{limits.label} · {p.name} · bed {p.bed or '—'}")
        self.replan()

    def replan(self) -> None:
        """Recompute the plan for the chosen drug and time and update every panel."""
        try:
            self.plan = self.controller.plan_dose(self.pid, self.drug, self.when.instant())
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
        protocol = self.controller.protocol_for(self.pid)
        limits = protocol.dose_limits[plan.drug]
        mg = shown_dose_mg(d.dose_mg, protocol)
        ml = shown_volume_ml(d.volume_ml, protocol) if d.volume_ml is not None else None
        self.dose_big.setText(f"{mg}   ·   {ml}" if ml else mg)
        calc, keys = split_sources(d.explanation)
        self.dose_calc.setText(nurse_text(calc))
        self.dose_calc.setToolTip(sources_tooltip(keys, protocol.sources))
        conc = limits.concentration_mg_per_ml
        # The volume and concentration are in the calculation line above; this line only
        # says how to prepare it.
        self.volume.setText(
            "Dilute as per pharmacy."
            if conc is not None and ml is not None
            else "No concentration in the protocol: prepare as per pharmacy."
        )
        if plan.weight_kg is not None and plan.weight_measured_at is not None:
            self.weight_line.setText(
                f"Weight used: {plan.weight_kg:g} kg, measured "
                f"{format_local(plan.weight_measured_at)} "
                f"({format_duration(self.controller.now - plan.weight_measured_at)} ago)"
            )
        else:
            self.weight_line.setText("Fixed dose: not calculated from the weight")
        # The protocol's route is shown and fixed; without one the nurse picks the ordered route.
        self.route.setEnabled(plan.route is None)
        if plan.route is not None:
            self.route.setCurrentIndex(max(self.route.findData(plan.route), 0))
        elif self.route.currentData() in (None, ""):
            self.route.setCurrentIndex(0)
        checks = [f for f in plan.confirmations if f.code != "stale_weight"]
        self.cap_banner.setVisible(bool(checks))
        if checks:
            lines = [f.message for f in checks if f.code != "dose_capped"]
            if d.capped and d.max_dose_mg is not None and d.mg_per_kg is not None:
                lines.insert(
                    0,
                    f"CAPPED at the {d.max_dose_mg:g} mg maximum. By weight the dose would be "
                    f"{d.uncapped_mg:g} mg ({plan.weight_kg:g} kg × {d.mg_per_kg:g} mg/kg). "
                    "Confirm the weight before giving (a weight in pounds would be hidden by "
                    "the cap).",
                )
            set_banner(self.cap_banner, "\n".join(lines))
            self.confirm_weight.setText(
                f"I have confirmed the weight is {plan.weight_kg:g} kg"
                if plan.weight_kg is not None
                else "I have checked the dose against the prescription"
            )
        stale = [f for f in plan.confirmations if f.code == "stale_weight"]
        self.stale_banner.setVisible(bool(stale))
        self.stale_row.setVisible(bool(stale))
        if stale:
            set_banner(self.stale_banner, "OLD WEIGHT: " + stale[0].message)
        b = plan.budget
        at = self.when.instant()
        self.budget_line.setText(presenters.dose_limits_text(b, at))
        self.history_banner.setVisible(not b.history_complete)
        soft = [r for r in b.needs_override if r != "history_incomplete"]
        self.limit_banner.setVisible(bool(soft) and not b.hard_block)
        if soft:
            reasons = "; ".join(b.check.reason_text[r] for r in soft)
            set_banner(
                self.limit_banner,
                f"SOFT LIMIT: {reasons}. This is beyond the dose limit in the protocol: "
                "giving it now needs "
                + ("the prescriber's order, " if b.needs_prescriber else "")
                + "a documented reason and a second nurse's initials.",
            )
        self.hard_banner.setVisible(b.hard_block)
        if b.hard_block:
            set_banner(
                self.hard_banner,
                "CANNOT GIVE — " + b.check.explanation + ". This is a hard limit: Bedside "
                "will not record this dose. Escalate to the doctor.",
            )
        self.override_box.setVisible(bool(b.needs_override) and not b.hard_block)
        self._sync_button()

    def _sync_button(self) -> None:
        plan = self.plan
        if plan is None or plan.budget.hard_block:
            self.ok_button.setEnabled(False)
            self.ok_button.setText("Cannot give" if plan is not None else "Give dose")
            return
        self.ok_button.setEnabled(True)
        protocol = self.controller.protocol_for(self.pid)
        label_text = f"Give {shown_dose_mg(plan.dose.dose_mg, protocol)}"
        if plan.dose.volume_ml is not None:
            label_text += f" ({shown_volume_ml(plan.dose.volume_ml, protocol)})"
        role = "primary"
        if plan.budget.needs_override:
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
        """Record the dose through the core's checks (the core decides; this only collects)."""
        self.replan()
        plan = self.plan
        if plan is None:
            raise ParseError(f"weight_kg: {self.plan_error or 'no usable weight'}")
        given_by = self.need("given_by", self.given_by.value(), "your initials")
        checked_by = self.need(
            "checked_by", self.checked_by.value(), "the checking nurse's initials"
        )
        codes = [f.code for f in plan.confirmations]
        limits = [c for c in codes if c != "stale_weight"]
        if limits and not self.confirm_weight.isChecked():
            why = "dose is capped" if "dose_capped" in limits else "see the note above"
            self.problem("weight_confirmed", f"tick the box to confirm the weight ({why})")
        reason = self.weight_reason.text().strip()
        if "stale_weight" in codes:
            if len(reason) < 5:
                self.problem(
                    "weight_reason",
                    "the weight is old — write why the dose is given on it "
                    "(at least 5 characters), or record a new weight",
                )
            limits.append("stale_weight")
        confirmation = (
            {"limits": limits, "reason": reason if "stale_weight" in codes else None}
            if limits
            else None
        )
        route = plan.route or self.route.currentData() or None
        if route is None:
            self.problem("route", "choose the route that was ordered")
        override = None
        if plan.budget.needs_override and not plan.budget.hard_block:
            # The override's rules (reason, a different second nurse, the prescriber) are
            # the core's: DoseBudget.override_for. Its messages land next to these fields.
            override = {
                "reason": self.reason.toPlainText().strip(),
                "second_nurse": self.second.value(),
            }
            prescriber = self.prescriber.text().strip()
            if prescriber:
                override["prescriber"] = prescriber
        self.check()
        try:
            return self.controller.give_dose(
                self.pid,
                plan.drug,
                given_by=given_by,
                checked_by=checked_by,
                effective_at=self.when.instant(),
                override=override,
                confirmation=confirmation,
                route=route,
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
        self.pid: str = pid
        p = controller.patient(pid)
        self.header.addWidget(label(f"{p.name} · bed {p.bed or '—'}", "section"))
        self.last = label("", "hint")
        self.header.addWidget(self.last)
        f = self.form
        # Dose-limited drugs (the protocol's dose_limits) are given in the dose dialog only.
        protocol = controller.protocol_for(pid)
        drugs = [(k, t) for k, t in self.DRUGS if protocol.limited_drug(k) is None]
        limited = ", ".join(v.label for v in protocol.dose_limits.values())
        self.drug = _combo(drugs, "Drug")
        f.add("drug", "&Drug:", self.drug, hint=f"{limited}: use Give dose (F4)")
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
        dose = self.number("dose", self.dose.text(), required="enter the dose")
        given_by = self.need("given_by", self.given_by.value(), "your initials")
        fields: dict[str, Any] = {
            "drug": self.drug.currentData(),
            "dose": dose,
            "unit": self.unit.currentData(),
            "route": self.route.currentData(),
            "given_by": given_by,
            "effective_at": self.when.instant(),
        }
        every = self.number("every_h", self.every.text())
        if every is not None:
            fields["every_h"] = every
        if fields["drug"] == "other":
            fields["drug_name"] = self.drug_name.text().strip() or None
        checked = self.checked_by.value()
        if checked:
            fields["checked_by"] = checked
        self.check()
        return with_confirmation(
            self,
            "Record this dose as prescribed?",
            lambda conf: self.controller.chart(
                self.pid,
                "medication",
                recorded_by=given_by,
                **fields,
                **({"confirmation": conf} if conf else {}),
            ),
        )


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
        self.pid: str = pid
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
        dose = self.number("dose_mg", self.dose.text(), required="enter the dose in mg")
        src = self.need("source", self.source.text().strip(), "where this comes from")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
        assert dose is not None
        return with_confirmation(
            self,
            "Record this dose as given?",
            lambda conf: self.controller.record_prior_dose(
                self.pid,
                effective_at=self.when.instant(),
                dose_mg=dose,
                source=src,
                recorded_by=initials,
                confirmation=conf,
            ),
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
        self.pid: str = pid
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

    def saved_what(self, result: Any) -> str:
        """``dose history complete``."""
        return "dose history " + ("complete" if self.complete.value() else "still incomplete")

    def apply(self) -> EventBase:
        """Record the confirmation."""
        if not self.complete.is_set():
            self.problem("complete", "choose complete or incomplete")
        src = self.need("source", self.source.text().strip(), "the source you checked")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
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
        self.pid: str = pid
        self.original = event
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
            if name in _FIXED or isinstance(value, (dict, list)) or _not_amendable(name, value):
                continue
            edit = QLineEdit("" if value is None else str(value))
            words = presenters.FIELD_LABELS.get(name, name.replace("_", " "))
            edit.setAccessibleName(f"Amended {words}")
            grid.add(name, f"{words[:1].upper()}{words[1:]}:", edit)
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
        data = self.original.model_dump(mode="json")
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

    def saved_what(self, result: Any) -> str:
        """``correction (void)``."""
        return "correction (entry voided)" if self.action.value() == "void" else "correction"

    def apply(self) -> EventBase:
        """Save the correction."""
        action = self.action.value()
        if action is UNSET:
            self.problem("action", "choose void or amend")
        reason = self.need("reason", self.reason.text().strip(), "the reason")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        amended = None
        if action == "amend":
            amended = self.amended()
            if not amended and not self._problems:
                self.problem("action", "change at least one value to amend")
        extra: dict[str, Any] = {}
        if self.reason_code is not None and self.second is not None:
            code = self.reason_code.currentData()
            extra["reason_code"] = self.need("reason_code", code or "", "why")
            extra["second_nurse"] = self.need(
                "second_nurse", self.second.value(), "the second nurse's initials"
            )
        self.check()
        try:
            return self.controller.correct(
                self.pid,
                self.original.id,
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


_DERIVED = {"explanation", "drivers", "hash", "prev_hash"}


def _not_amendable(name: str, value: object) -> bool:
    """Identifiers, instants and derived text are not typed over in a correction.

    (Ids and alert keys mean nothing to a nurse; a time is corrected by voiding and
    charting again at the right time; explanations are recomputed by the rules.)
    """
    if name in _DERIVED or name.endswith(("_id", "_key")) or name in {"key", "target"}:
        return True
    if not isinstance(value, str):
        return False
    # Instants, ids and coded values (``tocilizumab_reassess``) are not typed over.
    return bool(ISO_RE.search(value) or UUID_RE.search(value) or SNAKE_RE.fullmatch(value))


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
        self.pid = row.pid
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
        f.add_widget(label(_ALERT_HELP[mode], "hint"))
        self.by = f.add(
            "initials", "Your &initials:", InitialsEdit("Your initials"), aliases=("recorded_by",)
        )
        self.by.setText(initials)
        f.finish()
        self.resize(620, 420)

    def saved_what(self, result: Any) -> str:
        """``alert acknowledged: …`` or ``alert snoozed 10 min: …``."""
        what = presenters.DUE_KIND_LABELS.get(self.row.item.kind, self.row.item.message)
        if self.mode == "snooze":
            return f"alert snoozed {self.minutes.value()} min ({what})"
        return f"alert acknowledged ({what})"

    def apply(self) -> None:
        """Acknowledge or snooze through the core."""
        initials = self.need("initials", self.by.value(), "your initials")
        reason = self.reason.text().strip() or None
        self.check()
        if self.mode == "snooze":
            self.controller.snooze(
                self.row.pid, self.row.item.key, initials, self.minutes.value(), reason=reason
            )
        else:
            self.controller.acknowledge(self.row.pid, self.row.item.key, initials, reason=reason)


_ALERT_HELP = {
    "acknowledge": "Acknowledging says you have seen this alert: its alarm stops for good and "
    "your initials (and reason) go into the patient's record. The item stays on the list "
    "until the task is done.",
    "snooze": "Snoozing silences this alarm for the minutes you choose; then it sounds again "
    "if the task is still not done. Your initials and reason go into the patient's record and "
    "are shown next to the item.",
}
"""What each mode of :class:`AlertDialog` does, in the nurse's words."""


class DoctorInformedDialog(FormDialog):
    """The doctor was told about the escalation review: name, plan and next review time."""

    def __init__(
        self,
        controller: WardController,
        row: DueRow,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Doctor informed", ok_text="Record", parent=parent)
        self.row = row
        item = row.item
        self.header.addWidget(
            banner(
                f"{presenters.STATE_LABELS[item.state]} — {row.bed} {row.name}\n{item.message}",
                "danger" if item.active else "info",
                icon_name=item.state,
            )
        )
        f = self.form
        self.doctor = QLineEdit()
        f.add("doctor", "&Doctor:", self.doctor, hint="name of the doctor you told", expand=True)
        self.plan = QLineEdit()
        f.add("plan", "&Plan:", self.plan, hint="what the doctor decided", expand=True)
        cap = controller.doctor_review_max_h
        self.review_at = LocalDateTimeEdit(
            "Next review", controller.clock.now() + timedelta(hours=min(4.0, cap))
        )
        f.add(
            "next_review_at",
            "&Next review:",
            self.review_at,
            unit=self.review_at.zone_text(),
            hint=f"at most {cap:g} h from now",
        )
        f.add_widget(
            label(
                "Recording this says the doctor knows and has a plan: the review stops "
                "alarming and is not overdue until the next review time, when it comes back. "
                "It is written to the patient's record with your initials.",
                "hint",
            )
        )
        self.by = f.add("initials", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        f.finish()
        self.resize(640, 420)

    def apply(self) -> None:
        """Record it through the core."""
        doctor = self.need("doctor", self.doctor.text().strip(), "the doctor's name")
        plan = self.need("plan", self.plan.text().strip(), "the plan")
        initials = self.need("initials", self.by.value(), "your initials")
        self.check()
        self.controller.inform_doctor(
            self.row.pid, self.row.item.key, initials, doctor, plan, self.review_at.instant()
        )


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

    def saved_what(self, result: Any) -> str:
        """``time confirmed``."""
        return "computer time confirmed"

    def apply(self) -> None:
        """Record the confirmation (lifts the restrictions)."""
        initials = self.need("initials", self.by.value(), "your initials")
        self.check()
        self.controller.confirm_clock(initials)


# --------------------------------------------------------------------------- restore


class RestoreDialog(FormDialog):
    """Restore a patient set aside ("cannot display") from one of its verified backups.

    Lists every backup (local time with zone, events, verified yes/no; one that does not
    verify cannot be chosen), asks for the nurse's initials and a confirmation naming the
    patient and what may be lost. The core checks everything again and writes nothing on
    refusal; after the restore the board shows the patient with "history incomplete".
    """

    def __init__(
        self,
        controller: WardController,
        pid: str,
        initials: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(controller, "Restore from backup", ok_text="Restore", parent=parent)
        self.pid: str = pid
        problem = controller.failures().get(pid) or "it is not set aside"
        self.header.addWidget(
            banner(
                f"Patient {pid} cannot be displayed and is set aside: {problem}",
                "danger",
                icon_name="blocked",
            )
        )
        try:
            self.choices = controller.list_backups(pid)
        except BedsideError as exc:
            self.choices = []
            self.header.addWidget(label(core_error_text(exc), "hint"))
        usable = [c for c in self.choices if c.verified]
        read_only = controller.read_only_text()
        if read_only:
            self.header.addWidget(
                banner(
                    f"Nothing can be restored here: {read_only}. Restore from a workstation "
                    "that can save to the ward folder, or ask IT.",
                    "warning",
                    icon_name="warning",
                )
            )
        if not usable:
            self.header.addWidget(
                banner(
                    "No verified backup of this patient exists on this workstation: nothing "
                    "can be restored here. Chart on paper and tell the ward manager; the "
                    "damaged file is kept in quarantine.",
                    "warning",
                    icon_name="warning",
                )
            )
        self.backup = QComboBox()
        self.backup.setAccessibleName("Backup to restore")
        for c in self.choices:
            events = restore.events_text(c)
            verified = "verified: yes" if c.verified else "verified: NO — cannot be used"
            when = format_local(c.taken_at) if c.taken_at else "time unknown"
            self.backup.addItem(f"{when} · {events} · {verified}", c.name)
            index = self.backup.count() - 1
            self.backup.setItemData(index, c.problem or c.name, Qt.ItemDataRole.ToolTipRole)
            model = self.backup.model()
            if not c.verified and isinstance(model, QStandardItemModel):  # listed, never chosen
                entry = model.item(index)
                if entry is not None:
                    entry.setEnabled(False)
        if usable:
            self.backup.setCurrentIndex(self.choices.index(usable[0]))
        self.form.add(
            "backup", "&Backup:", self.backup, hint="newest first; time up to which it holds"
        )
        self.loss = label("", "hint")
        self.form.add("loss", "What may be lost:", self.loss, expand=True)
        self.confirm = QCheckBox()
        self.confirm.setAccessibleName("Confirm the restore")
        self.form.add("confirm", "Confirm:", self.confirm, expand=True)
        self.by = self.form.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        self.by.setText(initials)
        self.form.finish()
        self.backup.currentIndexChanged.connect(self._sync)
        self._sync()
        self.ok_button.setEnabled(bool(usable) and not read_only)
        self.resize(720, 480)

    def chosen(self) -> Any:
        """The backup chosen (a :class:`bedside.ward.restore.BackupChoice`), or None."""
        name = self.backup.currentData()
        return next((c for c in self.choices if c.name == name), None)

    def _sync(self) -> None:
        c = self.chosen()
        if c is None:
            self.loss.setText("")
            self.confirm.setText("Nothing to restore")
            return
        when = format_local(c.taken_at) if c.taken_at else "the time of the backup"
        who = f"{c.patient_name} ({self.pid})" if c.patient_name else self.pid
        self.loss.setText(
            f"Anything charted on this workstation for {who} after {when} may be missing, "
            "doses included. The dose history will read “history incomplete” until it is "
            "checked against the MAR. The damaged file is kept in quarantine."
        )
        # Short: a check box does not wrap, so a long text would widen the dialog beyond a
        # scaled ward screen; what may be lost is said in full (wrapped) just above.
        self.confirm.setText(f"Yes, restore {who} to this backup")

    def saved_what(self, result: Any) -> str:
        """``restored from backup (history incomplete)``."""
        return "restored from backup (history incomplete)"

    def apply(self) -> EventBase:
        """Restore the chosen backup through the core (which checks everything again)."""
        c = self.chosen()
        if c is None or not c.verified:
            self.problem("backup", "choose a backup that is verified")
        if not self.confirm.isChecked():
            self.problem("confirm", "tick to confirm that entries after the backup may be lost")
        initials = self.need("recorded_by", self.by.value(), "your initials")
        self.check()
        assert c is not None
        return self.controller.restore_from_backup(self.pid, c.name, recorded_by=initials)


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
    "Problems",
    "RestoreDialog",
    "ShortcutsDialog",
    "VitalsDialog",
    "WeightDialog",
    "ask_discard",
    "confirm",
    "exec_dialog",
    "inform",
    "show_core_error",
    "show_crash",
    "show_error",
    "show_locked",
    "warn",
]

"""Form building blocks: labelled fields with units and the error shown next to the field.

The core rejects bad input with :class:`~bedside.common.errors.InputError` whose message starts
with the field name (``temperature_c: 50 °C is outside ...`` or ``vitals:
temperature_c: Input should be ...``). :meth:`Form.show_error` finds that field and
puts the reason right under it; anything it cannot place goes to the form's own error
line. Parsing here is only about *reading* the text (a number, initials, a time); every
clinical range check is the core's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from PySide6.QtCore import QDateTime, QSize, Qt, QTimeZone, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QButtonGroup,
    QComboBox,
    QDateTimeEdit,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from bedside.common.timeutil import local_zone
from bedside.reports.wording import nurse_text, sources_tooltip, split_sources

logger = logging.getLogger(__name__)

_W = TypeVar("_W", bound=QWidget)


class ParseError(ValueError):
    """Text that cannot be read as the expected kind of value."""


def parse_number(text: str, *, what: str = "value", integer: bool = False) -> float | None:
    """Read a number typed by a nurse (decimal comma accepted); empty means not given."""
    t = text.strip().replace(",", ".").replace(" ", "")
    if not t:
        return None
    try:
        value = float(t)
    except ValueError:
        raise ParseError(f"{what}: “{text.strip()}” is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ParseError(f"{what}: “{text.strip()}” is not a number")
    if integer:
        if value != int(value):
            raise ParseError(f"{what}: enter a whole number (got {text.strip()})")
        return int(value)
    return value


def set_role(widget: QWidget, role: str) -> QWidget:
    """Set the ``role`` property used by the style sheet."""
    widget.setProperty("role", role)
    return widget


def label(text: str, role: str | None = None, *, wrap: bool = True) -> QLabel:
    """A label, optionally with a style role."""
    lab = QLabel(text)
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if role:
        set_role(lab, role)
    return lab


class ElidedLabel(QLabel):
    """One line that shortens itself with "…" when narrow; the full text is its tooltip."""

    def __init__(self, text: str = "", role: str | None = None) -> None:
        super().__init__()
        self._full = ""
        if role:
            set_role(self, role)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        """Keep the full text; show what fits."""
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        """The text before shortening."""
        return self._full

    def text(self) -> str:
        """The full text (what is shown may be shortened: :meth:`shown_text`)."""
        return self._full

    def shown_text(self) -> str:
        """The text as shown, possibly shortened with "…"."""
        return super().text()

    def is_elided(self) -> bool:
        """Whether the shown text is shortened."""
        return super().text() != self._full

    def _elide(self) -> None:
        width = max(self.contentsRect().width(), 12)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        super().setText(shown)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-shorten for the new width."""
        super().resizeEvent(event)
        self._elide()

    def sizeHint(self) -> QSize:
        """As wide as the full text."""
        hint = super().sizeHint()
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 8, hint.height())

    def minimumSizeHint(self) -> QSize:
        """About eight characters wide (a surname stays recognisable)."""
        return QSize(
            self.fontMetrics().horizontalAdvance("Abcdefgh…") + 8, super().sizeHint().height()
        )


def button(
    text: str,
    *,
    name: str | None = None,
    role: str | None = None,
    tooltip: str | None = None,
    slot: Callable[[], Any] | None = None,
) -> QPushButton:
    """A push button with an accessible name (its text without mnemonics by default)."""
    btn = QPushButton(text)
    plain = text.replace("&&", "\0").replace("&", "").replace("\0", "&")
    btn.setAccessibleName(name or plain)
    if tooltip:
        btn.setToolTip(tooltip)
    if role:
        set_role(btn, role)
    if slot is not None:
        btn.clicked.connect(slot)
    btn.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
    return btn


class InitialsEdit(QLineEdit):
    """A short upper-case field for a nurse's initials."""

    def __init__(self, accessible: str, placeholder: str = "initials") -> None:
        super().__init__()
        self.setMaxLength(6)
        self.setPlaceholderText(placeholder)
        self.setAccessibleName(accessible)
        self.setMaximumWidth(120)
        self.textEdited.connect(self._upper)

    def _upper(self, text: str) -> None:
        if text != text.upper():
            pos = self.cursorPosition()
            self.setText(text.upper())
            self.setCursorPosition(pos)

    def value(self) -> str:
        """The initials as typed (stripped)."""
        return self.text().strip()


class NumberEdit(QLineEdit):
    """A free-text number field: empty means "not measured", never zero."""

    def __init__(self, accessible: str, *, placeholder: str = "", width: int = 110) -> None:
        super().__init__()
        self.setAccessibleName(accessible)
        self.setPlaceholderText(placeholder)
        self.setMaximumWidth(width)
        self.setAlignment(Qt.AlignmentFlag.AlignRight)


class LocalDateTimeEdit(QDateTimeEdit):
    """Date and time in the ward's local zone; :meth:`instant` returns aware UTC."""

    def __init__(self, accessible: str, when: datetime | None = None) -> None:
        super().__init__()
        self.setAccessibleName(accessible)
        self.setCalendarPopup(True)
        self.setDisplayFormat("dd MMM yyyy HH:mm")
        self.setTimeZone(QTimeZone.systemTimeZone())
        if when is not None:
            self.set_instant(when)

    def set_instant(self, when: datetime) -> None:
        """Show an aware instant in local time."""
        self.setDateTime(QDateTime.fromSecsSinceEpoch(int(when.timestamp()), QTimeZone.utc()))

    def instant(self) -> datetime:
        """The chosen local time as an aware UTC instant."""
        secs = self.dateTime().toSecsSinceEpoch()
        return datetime.fromtimestamp(secs, tz=UTC)

    def zone_text(self) -> str:
        """The local zone abbreviation for the label next to the field."""
        return datetime.now(local_zone()).strftime("%Z")


class ChoiceButtons(QWidget):
    """Big exclusive toggle buttons (touch friendly); no choice until one is pressed."""

    changed = Signal()

    def __init__(
        self,
        options: Sequence[tuple[Any, str]],
        *,
        accessible: str,
        columns: int = 0,
    ) -> None:
        super().__init__()
        self.setAccessibleName(accessible)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._values: dict[int, Any] = {}
        layout: QGridLayout | QHBoxLayout
        if columns:
            layout = QGridLayout(self)
        else:
            layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for i, (value, text) in enumerate(options):
            btn = QPushButton(text)
            btn.setCheckable(True)
            btn.setAccessibleName(f"{accessible}: {text}")
            btn.setMinimumWidth(56)
            self._group.addButton(btn, i)
            self._values[i] = value
            if isinstance(layout, QGridLayout):
                layout.addWidget(btn, i // columns, i % columns)
            else:
                layout.addWidget(btn)
        if isinstance(layout, QHBoxLayout):
            layout.addStretch(1)
        self._group.idClicked.connect(lambda _i: self.changed.emit())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """A digit chooses the button showing that number and moves on to the next field."""
        text = event.text()
        if text.isdigit():
            for btn in self._group.buttons():
                if btn.text() == text and btn.isEnabled():
                    btn.click()
                    self._focus_next()
                    event.accept()
                    return
        super().keyPressEvent(event)

    def _focus_next(self) -> None:
        widget = self.nextInFocusChain()
        for _ in range(500):
            if widget is None or widget is self.window():
                return
            if (
                not self.isAncestorOf(widget)
                and widget is not self
                and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
                and widget.isVisible()
                and widget.isEnabled()
            ):
                widget.setFocus(Qt.FocusReason.TabFocusReason)
                return
            widget = widget.nextInFocusChain()

    def value(self) -> Any:
        """The chosen value, or :data:`UNSET`."""
        checked = self._group.checkedId()
        return self._values[checked] if checked >= 0 else UNSET

    def is_set(self) -> bool:
        """Whether a choice was made."""
        return self._group.checkedId() >= 0

    def set_value(self, value: Any) -> None:
        """Select the button of ``value`` (UNSET clears)."""
        if value is UNSET:
            self._group.setExclusive(False)
            for b in self._group.buttons():
                b.setChecked(False)
            self._group.setExclusive(True)
        else:
            for i, v in self._values.items():
                if v == value:
                    btn = self._group.button(i)
                    if btn is not None:
                        btn.setChecked(True)
        self.changed.emit()

    def buttons(self) -> list[QAbstractButton]:
        """The toggle buttons."""
        return list(self._group.buttons())


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""No choice made yet (distinct from every value, including 0 and None)."""


class Form(QWidget):
    """A grid of labelled fields, each with an optional unit and an error line below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(10)
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(1, 1)
        self._row = 0
        self.widgets: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.aliases: dict[str, str] = {}
        self.form_error = label("", "error")
        self.form_error.setVisible(False)
        self.form_error.setAccessibleName("Form error")

    def add(
        self,
        name: str,
        text: str,
        widget: _W,
        *,
        unit: str | None = None,
        hint: str | None = None,
        aliases: Iterable[str] = (),
        expand: bool = False,
    ) -> _W:
        """Add a field row; ``name`` is the core's field name (for error placement).

        Returns ``widget`` itself, with its own type, so callers keep a typed handle.
        """
        lab = QLabel(text)
        lab.setBuddy(widget)
        lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if not widget.accessibleName():
            widget.setAccessibleName(text.replace("&", "").rstrip(":"))
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(widget, 1 if expand else 0)
        if unit:
            u = label(unit, "unit", wrap=False)
            row.addWidget(u)
        if hint:
            h = label(hint, "hint")
            row.addWidget(h, 0 if expand else 1)
        elif not expand:
            row.addStretch(1)
        err = label("", "error")
        err.setVisible(False)
        err.setAccessibleName(f"{text.replace('&', '').rstrip(':')} error")
        self._grid.addWidget(lab, self._row, 0)
        self._grid.addLayout(row, self._row, 1)
        self._grid.addWidget(err, self._row + 1, 1)
        self._row += 2
        self.widgets[name] = widget
        self.errors[name] = err
        for a in aliases:
            self.aliases[a] = name
        return widget

    def add_widget(self, widget: QWidget) -> None:
        """A full-width row (a note, a group)."""
        self._grid.addWidget(widget, self._row, 0, 1, 2)
        self._row += 1

    def finish(self) -> None:
        """Put the form-level error line last."""
        self._grid.addWidget(self.form_error, self._row, 0, 1, 2)
        self._row += 1

    # ------------------------------------------------------------------ errors

    def clear_errors(self) -> None:
        """Hide every error."""
        for name, err in self.errors.items():
            err.clear()
            err.setVisible(False)
            w = self.widgets[name]
            if w.property("invalid"):
                w.setProperty("invalid", False)
                repolish(w)
        self.form_error.clear()
        self.form_error.setVisible(False)

    def set_error(self, name: str, message: str) -> None:
        """Show ``message`` under field ``name`` (or on the form line if unknown)."""
        name = self.aliases.get(name, name)
        if name not in self.errors:
            self._form_message(message)
            return
        message = nurse_text(message)
        err = self.errors[name]
        text = err.text()
        err.setText(("⚠ " + message) if not text else f"{text}\n⚠ {message}")
        err.setVisible(True)
        w = self.widgets[name]
        w.setProperty("invalid", True)
        repolish(w)

    def _form_message(self, message: str) -> None:
        message = nurse_text(message)
        text = self.form_error.text()
        self.form_error.setText(("⚠ " + message) if not text else f"{text}\n⚠ {message}")
        self.form_error.setVisible(True)

    def show_error(self, message: str) -> None:
        """Place a core error message next to the field(s) it names."""
        for field, text in split_error(message):
            if field and self.aliases.get(field, field) in self.errors:
                self.set_error(field, text)
                continue
            found = [
                (m.start(), n)
                for n in self.errors
                if (m := re.search(rf"\b{re.escape(n)}\b", text)) is not None
            ]
            if found:
                self.set_error(min(found)[1], _clean(text))
            else:
                self._form_message(message if not field else f"{field}: {text}")
        focus = self.first_invalid()
        if focus is not None:
            focus.setFocus()

    def first_invalid(self) -> QWidget | None:
        """The first field showing an error."""
        for name, err in self.errors.items():
            if not err.isHidden():
                return self.widgets[name]
        return None

    def has_errors(self) -> bool:
        """Any error shown."""
        return not self.form_error.isHidden() or any(not e.isHidden() for e in self.errors.values())


def _clean(text: str) -> str:
    """Drop pydantic's scaffolding from a message meant for a nurse."""
    for junk in ("(top level): ", "Value error, ", " (got dict)"):
        text = text.replace(junk, "")
    return text


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property changed.

    Skipped before the widget's first polish (it will pick the property up then). This
    also keeps QStyle out of start-up: PySide6 builds QStyle's Python enums on first use,
    which costs ~30 ms; :func:`ui.app.warm_up` pays that after the first paint.
    """
    if not widget.testAttribute(Qt.WidgetAttribute.WA_WState_Polished):
        return
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


_WHATS = {
    "crs",
    "icans",
    "lab",
    "eligibility",
    "patient",
    "override",
    "amendment",
    "vitals",
    "note",
    "toxicity",
    "neuro_check",
    "medication",
    "patient_update",
    "history_confirmation",
    "alert",
}


def split_error(message: str) -> list[tuple[str | None, str]]:
    """Split a core error into (field, reason) parts; field None when none is named.

    >>> split_error("crs: temperature_c: too high (got 50)")
    [('temperature_c', 'too high (got 50)')]
    """
    text = message.strip()
    head, sep, rest = text.partition(": ")
    if sep and head in _WHATS and rest:
        text = rest
    parts: list[tuple[str | None, str]] = []
    for chunk in text.split("; "):
        field, sep, reason = chunk.partition(": ")
        if sep and field and " " not in field and len(field) <= 60:
            name = field.split(".")[-1] if "." in field else field
            if name.isdigit() and "." in field:
                name = field.split(".")[0]
            parts.append((name, reason))
        elif parts:
            prev_field, prev = parts[-1]
            parts[-1] = (prev_field, f"{prev}; {chunk}")
        else:
            parts.append((None, chunk))
    return parts


class Banner(QFrame):
    """The frame :func:`banner` builds; ``row`` is its layout (add a button at its end)."""

    def __init__(self) -> None:
        super().__init__()
        self.row = QHBoxLayout(self)


def banner(text: str, kind: str, *, icon_name: str | None = None) -> Banner:
    """A coloured frame with an icon and words (``kind`` picks the style)."""
    from ui.resources import icon

    frame = Banner()
    frame.setProperty("banner", kind)
    lay = frame.row
    lay.setContentsMargins(10, 6, 10, 6)
    if icon_name:
        pic = QLabel()
        pic.setPixmap(icon(icon_name).pixmap(24, 24))
        pic.setAccessibleName(icon_name)
        pic.setObjectName("bannerIcon")
        lay.addWidget(pic)
    lab = label("")
    lab.setObjectName("bannerText")
    lay.addWidget(lab, 1)
    _banner_words(frame, lab, text)
    return frame


def _banner_words(frame: QFrame, lab: QLabel, text: str) -> None:
    """Nurse words in the banner; citation keys go to its tooltip."""
    clean, keys = split_sources(text)
    lab.setText(nurse_text(clean) if clean else "")
    frame.setToolTip(sources_tooltip(keys))


KIND_ICONS = {
    "ok": "acknowledged",
    "warning": "warning",
    "danger": "overdue",
    "info": "info",
    "overdue": "overdue",
}


def set_banner(
    frame: QFrame, text: str, kind: str | None = None, icon_name: str | None = None
) -> None:
    """Change a :func:`banner`'s words, style and icon (icon follows ``kind`` by default)."""
    from ui.resources import icon

    if icon_name is None and kind is not None:
        icon_name = KIND_ICONS.get(kind)
    _banner_words(frame, banner_text(frame), text)
    if kind is not None and frame.property("banner") != kind:
        frame.setProperty("banner", kind)
        repolish(frame)
        for child in frame.findChildren(QLabel):
            repolish(child)
    if icon_name is not None:
        pic = frame.findChild(QLabel, "bannerIcon")
        if pic is not None:
            pic.setPixmap(icon(icon_name).pixmap(24, 24))
            pic.setAccessibleName(icon_name)


def banner_text(frame: QFrame) -> QLabel:
    """The text label of a :func:`banner`."""
    lab = frame.findChild(QLabel, "bannerText")
    assert lab is not None
    return lab


def vbox(*widgets: QWidget, margins: int = 0, spacing: int = 8) -> QVBoxLayout:
    """A vertical layout holding ``widgets``."""
    lay = QVBoxLayout()
    lay.setContentsMargins(margins, margins, margins, margins)
    lay.setSpacing(spacing)
    for w in widgets:
        lay.addWidget(w)
    return lay


def input_state(widget: QWidget) -> object:
    """What a nurse could have changed in ``widget`` (None for non-input widgets)."""
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText()
    if isinstance(widget, QComboBox):
        return widget.currentIndex()
    if isinstance(widget, QAbstractSpinBox):
        return widget.text()
    if isinstance(widget, QLineEdit):
        return widget.text()
    if isinstance(widget, QAbstractButton) and widget.isCheckable():
        return widget.isChecked()
    return None

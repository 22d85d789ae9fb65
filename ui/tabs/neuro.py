"""Neuro tab: ICE item by item, ICANS domains, live grade, baseline and change.

Each ICE item must be scored explicitly — a number, or "Not assessable" (language
barrier, intubated...), which is never the same as 0: the core then grades ICANS from
the other domains. When the items add up to 0 the form asks whether the patient is
arousable (ASTCT: ICE 0 in an unarousable patient is grade 4, otherwise grade 3).
For cilta-cel the daily delayed-neurotoxicity check (handwriting, movement, facial
symmetry, personality) is recorded here too.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.protocol import format_validation_error
from bedside.clinical.record import IceAssessment, NeuroCheck
from bedside.clinical.rules import IcansInput, icans_grade
from bedside.common.errors import BedsideError, InputError
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from bedside.reports.presenters import LEGACY_EXTRA_SKIP
from ui.forms import (
    UNSET,
    ChoiceButtons,
    Form,
    InitialsEdit,
    banner,
    button,
    label,
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

NA = None
"""The value of "not assessable" for an ICE item (the core's None)."""

ICE_ITEMS: tuple[tuple[str, str, int, str], ...] = (
    ("orientation", "Orientation", 4, "year, month, city, hospital — 1 point each"),
    ("naming", "Naming", 3, "name 3 objects (e.g. clock, pen, button) — 1 point each"),
    (
        "commands",
        "Following commands",
        1,
        "e.g. “show me 2 fingers”, “close your eyes and stick out your tongue”",
    ),
    ("writing", "Writing", 1, "writes a standard sentence"),
    ("attention", "Attention", 1, "counts backwards from 100 by 10"),
)


class NeuroTab(PatientTab):
    """ICE/ICANS assessment and the cilta-cel delayed-neurotoxicity check."""

    title = "Neuro (ICE / ICANS)"
    ITEM_WIDGETS: ClassVar[dict[str, str]] = {
        "ice_next": "ice_box",
        "delayed_neurotox_check": "delayed_box",
    }

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)

        ice_box = QGroupBox("ICE score — score every item (F3 jumps here)")
        ice_box.setAccessibleName("ICE assessment")
        self.ice_box = ice_box
        il = QVBoxLayout(ice_box)
        self.form = Form()
        self.items: dict[str, ChoiceButtons] = {}
        for name, text, maximum, hint in ICE_ITEMS:
            options: list[tuple[Any, str]] = [(v, str(v)) for v in range(maximum + 1)]
            options.append((NA, "Not assessable"))
            choice = ChoiceButtons(options, accessible=f"ICE {text}")
            self.form.add(name, f"{text} (0–{maximum}):", choice, hint=hint)
            self.items[name] = choice
            choice.changed.connect(self.preview)
        self.form.finish()
        il.addWidget(self.form)
        self.total = label("", "big")
        self.total.setAccessibleName("ICE total")
        il.addWidget(self.total)
        self.arousal_banner = banner(
            "ICE is 0 — is the patient arousable? Choose the level of consciousness below: "
            "an unarousable patient is ICANS grade 4; an arousable patient who scores 0 "
            "(e.g. global aphasia) is grade 3.",
            "danger",
            icon_name="warning",
        )
        il.addWidget(self.arousal_banner)

        dom_box = QGroupBox("ICANS domains")
        self.dom_box = dom_box
        dl = QVBoxLayout(dom_box)
        self.dform = Form()
        self.consciousness = ChoiceButtons(
            list(presenters.CONSCIOUSNESS_LABELS.items()),
            accessible="Level of consciousness",
            columns=1,
        )
        self.dform.add("consciousness", "Consciousness:", self.consciousness)
        self.seizure = self._combo(presenters.SEIZURE_LABELS, "Seizure")
        self.dform.add("seizure", "Seizure:", self.seizure)
        self.motor = self._combo(presenters.MOTOR_LABELS, "Motor findings")
        self.dform.add("motor", "Motor:", self.motor)
        self.edema = self._combo(
            presenters.EDEMA_LABELS, "Raised intracranial pressure or cerebral oedema"
        )
        self.dform.add(
            "cerebral_edema", "Raised ICP / oedema:", self.edema, hint="imaging/exam by the doctor"
        )
        self.dform.finish()
        dl.addWidget(self.dform)
        self.consciousness.changed.connect(self.preview)
        for c in (self.seizure, self.motor, self.edema):
            c.currentIndexChanged.connect(lambda _i: self.preview())

        right = QVBoxLayout()
        self.grade_banner = banner("", "info", icon_name="info")
        self.grade_banner.setAccessibleName("Live ICANS grade")
        self.baseline_line = label("")
        self.baseline_line.setAccessibleName("Baseline ICE and change")
        right.addWidget(self.baseline_line)
        self.set_baseline = QCheckBox("Record this score as the patient's baseline ICE")
        self.set_baseline.setAccessibleName("Record as baseline ICE")
        right.addWidget(self.set_baseline)
        self.by = InitialsEdit("Your initials")
        self.by.setPlaceholderText("your initials")
        self.record_button = button("&Record ICE / ICANS", role="primary", slot=self.record)
        self.guidance = GuidanceBox("ICANS management")
        right.addWidget(self.guidance)
        self.history = table_view("Previous ICE assessments")
        self.history_model = ColumnModel(
            [
                ("When", lambda e: format_local(e.effective_at)),
                ("ICE", lambda e: "not assessable" if e.ice_score is None else f"{e.ice_score}/10"),
                ("ICANS", lambda e: f"Grade {e.grade}"),
                ("By", lambda e: e.recorded_by),
            ],
            key=lambda e: e.id,
            parent=self,
            tooltip=lambda e: e.explanation,
        )
        self.history.setModel(self.history_model)
        resize_columns(self.history, [170, 120, 90])
        self.history.setMinimumHeight(180)
        right.addWidget(self.history, 1)
        rw = QWidget()
        rw.setLayout(right)

        # Cilta-cel delayed neurotoxicity.
        self.delayed_box = QGroupBox(
            "Daily neurological check (parkinsonism, Guillain-Barré, neuropathy, cranial nerves)"
        )
        self.delayed_box.setAccessibleName("Delayed neurotoxicity check")
        xl = QVBoxLayout(self.delayed_box)
        self.delayed_due = label("", "hint")
        xl.addWidget(self.delayed_due)
        self.xform = Form()
        yn = [(True, "Yes — changed"), (False, "No change")]
        self.hand = ChoiceButtons(yn, accessible="Handwriting changed")
        self.xform.add("handwriting_changed", "Handwriting changed (micrographia)?", self.hand)
        self.movement = ChoiceButtons(yn, accessible="Movement changed")
        self.xform.add("movement_changed", "Movement slowed, tremor, gait change?", self.movement)
        self.face = ChoiceButtons(
            [(True, "Yes — asymmetric"), (False, "Symmetric")], accessible="Facial asymmetry"
        )
        self.xform.add("facial_asymmetry", "Facial asymmetry / droop?", self.face)
        self.person = ChoiceButtons(yn, accessible="Personality changed")
        self.xform.add("personality_changed", "Personality change, flat affect?", self.person)
        self.findings: dict[str, QCheckBox] = {}
        fw = QWidget()
        fl = QGridLayout(fw)
        fl.setContentsMargins(0, 0, 0, 0)
        items = controller.protocol.toxicity.neuro_check_items
        extra = [k for k in items if k not in LEGACY_EXTRA_SKIP]
        for i, key in enumerate(extra):
            cb = QCheckBox(
                items[key].label + (" — CRITICAL" if items[key].severity == "critical" else "")
            )
            cb.setAccessibleName(items[key].label)
            self.findings[key] = cb
            fl.addWidget(cb, i // 2, i % 2)
        self.xform.add(
            "findings",
            "Also present:",
            fw,
            hint="tick every finding present now",
            expand=True,
        )
        self.sample = QLineEdit()
        self.xform.add(
            "handwriting_sample",
            "Handwriting sample:",
            self.sample,
            hint="what the patient wrote / how it looked",
        )
        self.baseline_hand = label("", "hint")
        self.xform.add_widget(self.baseline_hand)
        self.xnote = QLineEdit()
        self.xform.add("note", "Note:", self.xnote)
        self.xform.finish()
        xl.addWidget(self.xform)
        xrow = QHBoxLayout()
        xrow.addWidget(label("Your initials:"))
        self.xby = InitialsEdit("Your initials for the neuro check")
        xrow.addWidget(self.xby)
        xrow.addWidget(button("Record &daily check", role="primary", slot=self.record_check))
        xrow.addStretch(1)
        xl.addLayout(xrow)
        self.xresult = label("", "hint")
        xl.addWidget(self.xresult)
        self.discrepancy_notes = DiscrepancyNotes("toxicities")
        xl.addWidget(self.discrepancy_notes)
        self.discrepancy_notes.show_for(controller.protocol)
        content = Columns(
            [ice_box, dom_box], [rw], [self.delayed_box], single=[ice_box, dom_box, rw]
        )

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(content), 1)
        outer.addWidget(
            footer(
                self.grade_banner, label("Your initials:", wrap=False), self.by, self.record_button
            )
        )

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter in any field records what that part of the tab is for."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            focus = QApplication.focusWidget()
            if focus is not None and self.delayed_box.isAncestorOf(focus):
                self.record_check()
            else:
                self.record()
            event.accept()
            return
        super().keyPressEvent(event)

    @staticmethod
    def _combo(labels: dict[str, str], accessible: str) -> QComboBox:
        box = QComboBox()
        box.setAccessibleName(accessible)
        for value, text in labels.items():
            box.addItem(text, value)
        return box

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Blank form: every item must be scored again."""
        for c in self.items.values():
            c.set_value(UNSET)
        self.consciousness.set_value(UNSET)
        for combo in (self.seizure, self.motor, self.edema):
            combo.setCurrentIndex(0)
        for c in (self.hand, self.movement, self.face, self.person):
            c.set_value(UNSET)
        self.sample.clear()
        self.xnote.clear()
        self.xresult.clear()
        self.set_baseline.setChecked(False)
        self.by.setText(self.initials())
        self.xby.setText(self.initials())
        self.form.clear_errors()
        self.dform.clear_errors()
        self.xform.clear_errors()
        self.preview()

    def focus_first_item(self) -> None:
        """Put the keyboard on the first ICE item (F3)."""
        buttons = self.items["orientation"].buttons()
        if buttons:
            buttons[0].setFocus()

    def item_values(self) -> dict[str, Any]:
        """Chosen ICE items (UNSET for unscored)."""
        return {name: c.value() for name, c in self.items.items()}

    def score(self) -> int | None:
        """The ICE total when every item is a number; None when any is not assessable."""
        values = self.item_values()
        if any(v is UNSET for v in values.values()) or any(v is NA for v in values.values()):
            return None
        return sum(values.values())

    def domains(self) -> dict[str, Any]:
        """The ICANS domain choices."""
        return {
            "consciousness": self.consciousness.value(),
            "seizure": self.seizure.currentData(),
            "motor": self.motor.currentData(),
            "cerebral_edema": self.edema.currentData(),
        }

    def preview(self) -> None:
        """Live ICE total and ICANS grade (rules preview)."""
        if self.pid is None:
            return
        values = self.item_values()
        unscored = [n for n, v in values.items() if v is UNSET]
        not_assessable = [n for n, v in values.items() if v is NA]
        score = self.score()
        if unscored:
            scored = [v for v in values.values() if v not in (UNSET, NA)]
            so_far = f"; {sum(scored)} point(s) from the scored items" if scored else ""
            self.total.setText(f"ICE: — ({len(unscored)} item(s) not scored yet{so_far})")
        elif not_assessable:
            self.total.setText(
                "ICE: NOT ASSESSABLE (" + ", ".join(not_assessable) + ") — not the same as 0"
            )
        else:
            self.total.setText(f"ICE {score}/10")
        self.arousal_banner.setVisible(score == 0)
        self._baseline_text(score)
        domains = self.domains()
        if unscored or domains["consciousness"] is UNSET:
            missing = []
            if unscored:
                missing.append("every ICE item")
            if domains["consciousness"] is UNSET:
                missing.append("the level of consciousness")
            self._grade(
                f"{self.total.text()}\nICANS grade: — (score " + " and ".join(missing) + ")",
                "info",
            )
            self.guidance.show_guidance(self.controller.protocol_for(self.pid), None, 0, "ICANS")
            return
        protocol = self.controller.protocol_for(self.pid)
        try:
            result = icans_grade(
                IcansInput.model_validate({"ice_score": score, **domains}), protocol
            )
        except ValidationError as exc:
            self.dform.show_error(format_validation_error(exc, what="icans"))
            return
        kind = "ok" if result.grade == 0 else ("warning" if result.grade == 1 else "danger")
        self._grade(
            f"{self.total.text()} · ICANS GRADE {result.grade} (preview, not yet recorded)\n"
            f"{result.explanation}",
            kind,
        )
        self.guidance.show_guidance(
            protocol, protocol.management.icans.get(str(result.grade)), result.grade, "ICANS"
        )

    def _grade(self, text: str, kind: str) -> None:
        set_banner(self.grade_banner, text, kind)

    def _baseline_text(self, score: int | None) -> None:
        assert self.pid is not None
        p = self.controller.patient(self.pid)
        if p.baseline_ice is None:
            self.baseline_line.setText(
                "No baseline ICE recorded. Tick below to record this one as the baseline."
            )
            return
        text = f"Baseline ICE {p.baseline_ice}/10."
        if score is not None:
            change = score - p.baseline_ice
            if change < 0:
                text += (
                    f" Now {score}/10: DOWN {abs(change)} from baseline — recheck and tell "
                    "the doctor."
                )
            elif change == 0:
                text += f" Now {score}/10: no change from baseline."
            else:
                text += f" Now {score}/10: {change} above baseline."
        self.baseline_line.setText(text)

    def refresh(self) -> None:
        """History table, baseline, delayed-neurotoxicity section."""
        if self.pid is None:
            return
        events = self.controller.events(self.pid)
        ices = sorted(
            (e for e in events if isinstance(e, IceAssessment)),
            key=lambda e: e.effective_at,
            reverse=True,
        )
        self.history_model.set_rows(ices)
        p = self.controller.patient(self.pid)
        self.set_baseline.setVisible(True)
        self.delayed_box.setVisible(True)  # both products: checks through their window
        self.baseline_hand.setText(
            f"Baseline handwriting: {p.baseline_handwriting}"
            if p.baseline_handwriting
            else "No baseline handwriting sample recorded."
        )
        self.preview()
        self.on_tick()

    def on_tick(self) -> None:
        """Due text of the delayed-neurotoxicity check."""
        if self.pid is None or not self.delayed_box.isVisible():
            return
        items = [
            i for i in self.controller.due_items(self.pid) if i.kind == "delayed_neurotox_check"
        ]
        last = presenters.latest(self.controller.events(self.pid), NeuroCheck)
        parts = []
        if items:
            i = items[0]
            parts.append(
                f"{presenters.STATE_LABELS[i.state]}: "
                f"{presenters.due_phrase(i.state, i.due_at, self.controller.now)}"
            )
        if isinstance(last, NeuroCheck):
            parts.append(
                f"last check {format_local(last.effective_at)} by {last.recorded_by}: "
                f"{presenters.summarize(last)}"
            )
        self.delayed_due.setText(" · ".join(parts) or "No check recorded yet.")

    # ------------------------------------------------------------------ actions

    @clean_after_save("ice_box", "dom_box")
    def record(self) -> None:
        """Record the ICE/ICANS assessment through the core."""
        if self.pid is None:
            return
        self.form.clear_errors()
        self.dform.clear_errors()
        values = self.item_values()
        missing = [n for n, v in values.items() if v is UNSET]
        for name in missing:
            self.form.set_error(name, "score this item, or choose “Not assessable”")
        domains = self.domains()
        if domains["consciousness"] is UNSET:
            self.dform.set_error("consciousness", "choose the level of consciousness")
        if missing or domains["consciousness"] is UNSET:
            first = self.form.first_invalid() or self.dform.first_invalid()
            if first is not None:
                first.setFocus()
            self._grade("Not recorded: complete the fields marked in red.", "danger")
            return
        initials = self.by.value()
        if not initials:
            self._grade("Not recorded: enter your initials.", "danger")
            self.by.setFocus()
            return
        try:
            _, result = self.controller.assess_ice(
                self.pid, values, recorded_by=initials, **domains
            )
            score = self.score()
            if self.set_baseline.isChecked() and score is not None:
                self.controller.update_patient(
                    self.pid, {"baseline_ice": score}, recorded_by=initials
                )
        except InputError as exc:
            self.form.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        self.reset()
        self._grade(
            f"Recorded: ICANS grade {result.grade}\n{result.explanation}",
            "danger" if result.grade >= 2 else "ok",
        )

    @clean_after_save("delayed_box")
    def record_check(self) -> None:
        """Record the daily delayed-neurotoxicity check."""
        if self.pid is None:
            return
        self.xform.clear_errors()
        choices = {
            "handwriting_changed": self.hand,
            "movement_changed": self.movement,
            "facial_asymmetry": self.face,
            "personality_changed": self.person,
        }
        missing = [n for n, c in choices.items() if not c.is_set()]
        for n in missing:
            self.xform.set_error(n, "answer yes or no")
        initials = self.xby.value()
        if not initials:
            self.xresult.setText("⚠ Enter your initials.")
        if missing or not initials:
            return
        fields: dict[str, Any] = {n: bool(c.value()) for n, c in choices.items()}
        found = [k for k, cb in self.findings.items() if cb.isChecked()]
        if found:
            fields["findings"] = found
        if self.sample.text().strip():
            fields["handwriting_sample"] = self.sample.text().strip()
        if self.xnote.text().strip():
            fields["note"] = self.xnote.text().strip()
        try:
            ev = self.controller.chart(self.pid, "neuro_check", recorded_by=initials, **fields)
        except InputError as exc:
            self.xform.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        changed = any(fields[n] for n in choices) or bool(found)
        for c in choices.values():
            c.set_value(UNSET)
        for cb in self.findings.values():
            cb.setChecked(False)
        self.sample.clear()
        self.xnote.clear()
        self.xresult.setText(
            ("⚠ CHANGE RECORDED — tell the doctor now. " if changed else "Recorded: ")
            + presenters.summarize(ev)
        )

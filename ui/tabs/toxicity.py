"""Toxicity tab: labs with their CTCAE grade, trend charts with grade bands, toxicity events.

Lab values may be typed in either unit system (10^9/L or /µL for counts, g/dL or g/L
for haemoglobin); the CTCAE grade is previewed with :func:`bedside.clinical.rules.ctcae_grade`
and recorded by :meth:`Ward.record_lab`. The charts convert to the protocol's canonical
unit with the protocol's own factors.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

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

from bedside.clinical.dosecheck import check_lab, enforce
from bedside.clinical.protocol import format_validation_error
from bedside.clinical.record import ChecklistCheck, Lab, Toxicity, Vitals
from bedside.clinical.rules import CtcaeInput, ctcae_grade
from bedside.common.errors import BedsideError, InputError
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from ui.chart import TrendChart, ctcae_bands
from ui.forms import (
    Form,
    InitialsEdit,
    LocalDateTimeEdit,
    NumberEdit,
    ParseError,
    banner,
    button,
    label,
    parse_number,
    set_banner,
)
from ui.models import ColumnModel
from ui.tabs import (
    Columns,
    DiscrepancyNotes,
    PatientTab,
    clean_after_save,
    resize_columns,
    scrolling,
    table_view,
)

logger = logging.getLogger(__name__)

UNITS = {
    "neutrophils": ["10^9/L", "/uL"],
    "platelets": ["10^9/L", "/uL"],
    "lymphocytes": ["10^9/L", "/uL"],
    "wbc": ["10^9/L", "/uL"],
    "hemoglobin": ["g/dL", "g/L"],
}


class ToxicityTab(PatientTab):
    """Lab entry, four trend charts and the toxicity event list."""

    title = "Toxicity"

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)

        lab_box = QGroupBox("Laboratory result (blood counts CTCAE graded)")
        lab_box.setAccessibleName("Laboratory result")
        self.lab_box = lab_box
        ll = QVBoxLayout(lab_box)
        f = self.lab_form = Form()
        self.test = QComboBox()
        self.test.setAccessibleName("Test")
        self.units = dict(UNITS)
        for key, unit in controller.protocol.toxicity.lab_units.items():
            self.units.setdefault(key, [unit])
        for key in self.units:
            self.test.addItem(presenters.TEST_LABELS.get(key, key), key)
        f.add("test", "&Test:", self.test)
        self.value = f.add("value", "&Value:", NumberEdit("Result value"))
        self.unit = QComboBox()
        self.unit.setAccessibleName("Unit")
        f.add("unit", "&Unit:", self.unit)
        self.lln = f.add(
            "lln",
            "Lab's &LLN:",
            NumberEdit("Lower limit of normal"),
            hint="optional, same unit; protocol default otherwise",
        )
        self.when = LocalDateTimeEdit("Sample taken at", controller.now)
        f.add("effective_at", "Sample taken:", self.when, unit=f"local ({self.when.zone_text()})")
        self.lab_by = f.add("recorded_by", "Your &initials:", InitialsEdit("Your initials"))
        f.finish()
        ll.addWidget(f)
        self.lab_grade = banner("", "info", icon_name="info")
        self.lab_grade.setAccessibleName("CTCAE grade preview")
        ll.addWidget(self.lab_grade)
        ll.addWidget(button("Record &result", role="primary", slot=self.record_lab))

        tox_box = QGroupBox("Infection or other toxicity")
        self.tox_box = tox_box
        tox_box.setAccessibleName("Toxicity event")
        tl = QVBoxLayout(tox_box)
        g = self.tox_form = Form()
        self.category = QComboBox()
        self.category.setAccessibleName("Category")
        for key, text in presenters.TOXICITY_LABELS.items():
            self.category.addItem(text, key)
        g.add("category", "&Category:", self.category)
        self.description = g.add(
            "description", "&Description:", QLineEdit(), hint="e.g. organism, site, treatment"
        )
        self.tox_grade = QComboBox()
        self.tox_grade.setAccessibleName("CTCAE grade")
        self.tox_grade.addItem("not graded", None)
        for i in range(1, 6):
            self.tox_grade.addItem(f"Grade {i}", i)
        g.add("ctcae_grade", "CTCAE grade:", self.tox_grade)
        self.status = QComboBox()
        self.status.setAccessibleName("Status")
        self.status.addItem("Active", "active")
        self.status.addItem("Resolved", "resolved")
        g.add("status", "Status:", self.status)
        self.tox_by = g.add(
            "recorded_by", "Your initials:", InitialsEdit("Your initials for the toxicity")
        )
        g.finish()
        tl.addWidget(g)
        self.tox_result = label("", "hint")
        tl.addWidget(self.tox_result)
        tl.addWidget(button("Record &toxicity", role="primary", slot=self.record_toxicity))

        charts = QWidget()
        cg = QGridLayout(charts)
        cg.setContentsMargins(0, 0, 0, 0)
        self.temp_chart = TrendChart("Temperature", "°C")
        self.anc_chart = TrendChart("Neutrophils (ANC)", "×10⁹/L")
        self.plt_chart = TrendChart("Platelets", "×10⁹/L")
        self.hb_chart = TrendChart("Haemoglobin", "g/dL")
        cg.addWidget(self.temp_chart, 0, 0)
        cg.addWidget(self.anc_chart, 0, 1)
        cg.addWidget(self.plt_chart, 1, 0)
        cg.addWidget(self.hb_chart, 1, 1)

        right = QVBoxLayout()
        right.addWidget(label("Toxicity events (newest first)", "section"))
        self.tox_view = table_view("Toxicity events")
        self.tox_model = ColumnModel(
            [
                ("When", lambda e: format_local(e.effective_at)),
                ("Category", lambda e: presenters.TOXICITY_LABELS.get(e.category, e.category)),
                (
                    "Status",
                    lambda e: e.status + (f", grade {e.ctcae_grade}" if e.ctcae_grade else ""),
                ),
                ("Description", lambda e: e.description),
            ],
            key=lambda e: e.id,
            parent=self,
        )
        self.tox_view.setModel(self.tox_model)
        resize_columns(self.tox_view, [160, 150, 120])
        right.addWidget(self.tox_view)
        right.addWidget(label("Recent laboratory results", "section"))
        self.lab_view = table_view("Laboratory results")
        self.lab_model = ColumnModel(
            [
                ("Taken", lambda e: format_local(e.effective_at)),
                ("Test", lambda e: presenters.TEST_LABELS.get(e.test, e.test)),
                ("Result", lambda e: f"{e.value:g} {presenters.unit_text(e.unit)}"),
                ("CTCAE", lambda e: "—" if e.ctcae_grade is None else f"Grade {e.ctcae_grade}"),
            ],
            key=lambda e: e.id,
            parent=self,
            tooltip=lambda e: e.explanation,
        )
        self.lab_view.setModel(self.lab_model)
        resize_columns(self.lab_view, [160, 160, 170])
        right.addWidget(self.lab_view)
        rw = QWidget()
        rw.setLayout(right)
        care = QGroupBox("Boxed-warning checklist and source notes")
        self.care_box = care
        care.setAccessibleName("Boxed-warning checklist")
        cl = QVBoxLayout(care)
        self.check_boxes: dict[str, QCheckBox] = {}
        for key, item in controller.protocol.toxicity.checklist.items():
            cb = QCheckBox(
                f"{item.text} [{item.source}]" + ("" if item.verified else " — UNVERIFIED")
            )
            cb.setAccessibleName(item.text)
            self.check_boxes[key] = cb
            cl.addWidget(cb)
        crow = QHBoxLayout()
        crow.addWidget(button("Record c&hecklist", slot=self.record_checklist))
        self.check_status = label("", "hint")
        crow.addWidget(self.check_status, 1)
        cl.addLayout(crow)
        self.discrepancy_notes = DiscrepancyNotes("toxicities", "infections", "labs")
        cl.addWidget(self.discrepancy_notes)
        content = Columns(
            [lab_box, tox_box, care],
            [charts, rw],
            single=[charts, lab_box, rw, tox_box, care],
        )

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(content))

        self.test.currentIndexChanged.connect(lambda _i: self._units())
        self.unit.currentIndexChanged.connect(lambda _i: self.preview())
        self.value.textChanged.connect(lambda _t: self.preview())
        self.lln.textChanged.connect(lambda _t: self.preview())
        self._units()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter in a field records the form it belongs to (lab result or toxicity)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            focus = QApplication.focusWidget()
            if focus is not None and self.lab_box.isAncestorOf(focus):
                self.record_lab()
            else:
                self.record_toxicity()
            event.accept()
            return
        super().keyPressEvent(event)

    def _units(self) -> None:
        test = self.test.currentData()
        self.unit.blockSignals(True)
        self.unit.clear()
        for u in self.units[test]:
            self.unit.addItem(presenters.unit_text(u), u)
        self.lln.setEnabled(test in UNITS)
        self.unit.blockSignals(False)
        self.preview()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Clear the forms."""
        self.value.clear()
        self.lln.clear()
        self.description.clear()
        self.lab_by.setText(self.initials())
        self.tox_by.setText(self.initials())
        self.when.set_instant(self.controller.clock.now())
        self.lab_form.clear_errors()
        self.tox_form.clear_errors()
        self.tox_result.clear()
        self._load_checklist()
        self.preview()

    def lab_inputs(self) -> dict[str, Any]:
        """The lab entry as the core expects it (parse errors raise)."""
        data: dict[str, Any] = {
            "test": self.test.currentData(),
            "value": parse_number(self.value.text(), what="value"),
            "unit": self.unit.currentData(),
        }
        lln = parse_number(self.lln.text(), what="lln")
        if lln is not None:
            data["lln"] = lln
        return data

    def preview(self) -> None:
        """Live CTCAE grade of the typed value."""
        if self.pid is None:
            return
        self.lab_form.clear_errors()
        try:
            data = self.lab_inputs()
        except ParseError as exc:
            self.lab_form.show_error(str(exc))
            self._lab_text("CTCAE grade: — (fix the value)", "warning")
            return
        if data["test"] not in UNITS:
            self._lab_text(
                "No CTCAE grade for this test: it feeds the IEC-HS, IgG and tumour-lysis "
                "checks (alerts appear in the timers panel).",
                "info",
            )
            return
        if data["value"] is None:
            self._lab_text("Type the value to see its CTCAE grade.", "info")
            return
        try:
            protocol = self.controller.protocol_for(self.pid)
            enforce(check_lab(data["test"], data["value"], data["unit"], protocol), None)
            res = ctcae_grade(CtcaeInput.model_validate(data), protocol)
        except ValidationError as exc:
            self.lab_form.show_error(format_validation_error(exc, what="lab"))
            self._lab_text("CTCAE grade: — (fix the value)", "warning")
            return
        except InputError as exc:
            self.lab_form.show_error(str(exc))
            self._lab_text("CTCAE grade: — (fix the value)", "warning")
            return
        kind = "ok" if res.grade == 0 else ("warning" if res.grade <= 2 else "danger")
        self._lab_text(f"CTCAE GRADE {res.grade} (preview)\n{res.explanation}", kind)

    def _lab_text(self, text: str, kind: str) -> None:
        set_banner(self.lab_grade, text, kind)

    def refresh(self) -> None:
        """Charts and tables from the effective events."""
        if self.pid is None:
            return
        events = self.controller.events(self.pid)
        protocol = self.controller.protocol_for(self.pid)
        now = self.controller.now
        state = self._checklist_state()
        done = sum(1 for k in protocol.toxicity.checklist if state.get(k))
        self.check_status.setText(
            f"Recorded: {done} of {len(protocol.toxicity.checklist)} confirmed"
            + ("" if done == len(protocol.toxicity.checklist) else " — open items show as due")
        )
        self.discrepancy_notes.show_for(protocol)
        labs = sorted(
            (e for e in events if isinstance(e, Lab)), key=lambda e: e.effective_at, reverse=True
        )
        self.lab_model.set_rows(labs)
        toxes = sorted(
            (e for e in events if isinstance(e, Toxicity)),
            key=lambda e: e.effective_at,
            reverse=True,
        )
        self.tox_model.set_rows(toxes)
        temps = [
            (e.effective_at, e.temperature_c)
            for e in events
            if isinstance(e, Vitals) and e.temperature_c is not None
        ]
        fever = protocol.crs.fever_threshold_c.value
        self.temp_chart.set_data(
            temps,
            threshold=(fever, f"fever {fever:g} °C"),
            now=now,
        )
        for chart, test in (
            (self.anc_chart, "neutrophils"),
            (self.plt_chart, "platelets"),
            (self.hb_chart, "hemoglobin"),
        ):
            spec = protocol.ctcae.tests[test]
            factors = protocol.ctcae.unit_factors[spec.canonical_unit]
            points: list[tuple[datetime, float]] = [
                (e.effective_at, e.value / factors.get(e.unit, 1.0))
                for e in labs
                if e.test == test and e.unit in factors
            ]
            chart.unit = "g/dL" if spec.canonical_unit == "g/dL" else "×10⁹/L"
            chart.set_data(
                points,
                bands=ctcae_bands(spec.default_lln.value, spec.cutoffs),
                y_floor=0.0,
                now=now,
            )

    # ------------------------------------------------------------------ actions

    @clean_after_save("lab_box")
    def record_lab(self) -> None:
        """Record the lab value through the core."""
        if self.pid is None:
            return
        self.lab_form.clear_errors()
        try:
            data = self.lab_inputs()
            if data["value"] is None:
                raise ParseError("value: enter the result")
            initials = self.lab_by.value()
            if not initials:
                raise ParseError("recorded_by: enter your initials")
            ev = self.controller.record_lab(
                self.pid, recorded_by=initials, effective_at=self.when.instant(), **data
            )
        except (ParseError, InputError) as exc:
            self.lab_form.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        self.value.clear()
        grade = getattr(ev, "ctcae_grade", None)
        self._lab_text(
            f"Recorded: {presenters.summarize(ev)}",
            "ok" if not grade else ("warning" if grade <= 2 else "danger"),
        )

    def _checklist_state(self) -> dict[str, bool]:
        state: dict[str, bool] = {}
        if self.pid is None:
            return state
        events = sorted(
            (e for e in self.controller.events(self.pid) if isinstance(e, ChecklistCheck)),
            key=lambda e: e.effective_at,
        )
        for e in events:
            state[e.item] = e.done
        return state

    def _load_checklist(self) -> None:
        """Tick boxes from the record (on opening the patient and after recording only)."""
        state = self._checklist_state()
        for key, cb in self.check_boxes.items():
            cb.setChecked(state.get(key, False))

    @clean_after_save("care_box")
    def record_checklist(self) -> None:
        """Record every checklist item whose tick differs from the record."""
        if self.pid is None:
            return
        initials = self.tox_by.value()
        if not initials:
            self.check_status.setText("⚠ Enter your initials (in the toxicity form) first.")
            return
        state = self._checklist_state()
        changed = [
            (k, cb.isChecked())
            for k, cb in self.check_boxes.items()
            if cb.isChecked() != state.get(k, False)
        ]
        if not changed:
            self.check_status.setText("Nothing changed in the checklist.")
            return
        try:
            for key, done in changed:
                self.controller.chart(
                    self.pid, "checklist", recorded_by=initials, item=key, done=done
                )
        except BedsideError as exc:
            self.report(exc)
            return
        self._load_checklist()
        self.refresh()

    @clean_after_save("tox_box")
    def record_toxicity(self) -> None:
        """Record a toxicity event."""
        if self.pid is None:
            return
        self.tox_form.clear_errors()
        desc = self.description.text().strip()
        initials = self.tox_by.value()
        if not desc:
            self.tox_form.set_error("description", "describe the toxicity")
        if not initials:
            self.tox_form.set_error("recorded_by", "enter your initials")
        if not desc or not initials:
            return
        fields: dict[str, Any] = {
            "category": self.category.currentData(),
            "description": desc,
            "status": self.status.currentData(),
        }
        if self.tox_grade.currentData() is not None:
            fields["ctcae_grade"] = self.tox_grade.currentData()
        try:
            ev = self.controller.chart(self.pid, "toxicity", recorded_by=initials, **fields)
        except InputError as exc:
            self.tox_form.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        self.description.clear()
        self.tox_result.setText("Recorded: " + presenters.summarize(ev))


__all__ = ["QHBoxLayout", "ToxicityTab"]

"""Eligibility tab: the screening checklist for a product and label version, live verdict.

The verdict and each line of the checklist come from :func:`bedside.clinical.rules.eligibility`
(preview); "Save screening" records it through :meth:`Ward.screen_eligibility`. Every
line names its source and says when the rule is not verified.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bedside.clinical.protocol import format_validation_error
from bedside.clinical.record import EligibilityScreen
from bedside.clinical.rules import EligibilityInput, eligibility
from bedside.common.errors import BedsideError, InputError
from bedside.common.timeutil import format_local
from bedside.reports import presenters
from bedside.reports.wording import nurse_text, sources_tooltip
from ui import theme
from ui.forms import Form, InitialsEdit, banner, banner_text, button, label, set_banner
from ui.tabs import Columns, DiscrepancyNotes, PatientTab, clean_after_save, scrolling

logger = logging.getLogger(__name__)

EXPOSURES = (
    ("imid", "Immunomodulatory drug (IMiD: lenalidomide, pomalidomide, thalidomide)"),
    ("pi", "Proteasome inhibitor (PI: bortezomib, carfilzomib, ixazomib)"),
    ("anti_cd38", "Anti-CD38 antibody (daratumumab, isatuximab)"),
    ("bcma", "BCMA-directed therapy (belantamab, teclistamab, elranatamab…)"),
)


class EligibilityTab(PatientTab):
    """Screening form and its verdict."""

    title = "Eligibility"

    def __init__(self, controller: Any, initials: Any, parent: QWidget | None = None) -> None:
        super().__init__(controller, initials, parent)

        box = QGroupBox("Screening")
        bl = QVBoxLayout(box)
        f = self.form = Form()
        self.product = QComboBox()
        self.product.setAccessibleName("Product")
        for key, text in presenters.PRODUCT_LABELS.items():
            self.product.addItem(text, key)
        f.add("product", "&Product:", self.product)
        self.criteria = QComboBox()
        self.criteria.setAccessibleName("Label version")
        protocol = controller.protocol
        for key, crit in protocol.eligibility.criteria.items():
            self.criteria.addItem(crit.title, key)
        self.criteria.setCurrentIndex(
            max(self.criteria.findData(protocol.eligibility.default_criteria), 0)
        )
        f.add("criteria", "&Label version:", self.criteria)
        self.criteria_reason = QLineEdit()
        self.criteria_reason.setAccessibleName("Why a superseded label version is used")
        self.criteria_reason.setMaxLength(500)
        self.criteria_reason.setPlaceholderText("e.g. referred and approved before April 2024")
        f.add(
            "criteria_reason",
            "Why an older label:",
            self.criteria_reason,
            hint="Needed when the label version is SUPERSEDED.",
            expand=True,
        )
        self.lines = QSpinBox()
        self.lines.setRange(0, 30)
        self.lines.setAccessibleName("Prior lines of therapy")
        f.add("prior_lines", "Prior &lines of therapy:", self.lines, unit="lines")
        ew = QWidget()
        el = QVBoxLayout(ew)
        el.setContentsMargins(0, 0, 0, 0)
        self.exposed: dict[str, QCheckBox] = {}
        for key, text in EXPOSURES:
            cb = QCheckBox(text)
            cb.setAccessibleName(f"Exposed to {key}")
            el.addWidget(cb)
            self.exposed[key] = cb
        f.add("exposed_to", "Prior exposure:", ew)
        self.len_refr = QCheckBox("Refractory to lenalidomide")
        f.add("lenalidomide_refractory", "Lenalidomide:", self.len_refr)
        self.ecog = QComboBox()
        self.ecog.setAccessibleName("ECOG performance status")
        self.ecog.addItem("not recorded", None)
        for i in range(6):
            self.ecog.addItem(str(i), i)
        f.add("ecog", "&ECOG:", self.ecog)
        cw = QWidget()
        cl = QVBoxLayout(cw)
        cl.setContentsMargins(0, 0, 0, 0)
        self.infection = QCheckBox("Active infection or inflammatory disorder")
        self.prior_bcma = QCheckBox("Prior BCMA-directed therapy")
        self.cns = QCheckBox("CNS involvement by myeloma")
        self.rapid = QCheckBox("Rapidly progressing disease")
        for cb in (self.infection, self.prior_bcma, self.cns, self.rapid):
            cb.setAccessibleName(cb.text())
            cl.addWidget(cb)
        f.add(
            "cautions",
            "Present now:",
            cw,
            aliases=(
                "active_infection",
                "prior_bcma_therapy",
                "cns_involvement",
                "rapid_progression",
            ),
        )
        f.finish()
        bl.addWidget(f)
        row = QHBoxLayout()
        row.addWidget(label("Your initials:"))
        self.by = InitialsEdit("Your initials")
        row.addWidget(self.by)
        row.addWidget(button("&Save screening", role="primary", slot=self.save))
        row.addStretch(1)
        bl.addLayout(row)
        self.saved_line = label("", "hint")
        bl.addWidget(self.saved_line)

        right = QVBoxLayout()
        self.verdict = banner("", "info", icon_name="info")
        self.verdict.setAccessibleName("Eligibility verdict")
        right.addWidget(self.verdict)
        self.indication = label("", "hint")
        right.addWidget(self.indication)
        self.discrepancy_notes = DiscrepancyNotes("eligibility")
        right.addWidget(self.discrepancy_notes)
        self.checklist = QGroupBox("Checklist")
        self.checklist_text = label("")
        self.checklist_text.setTextFormat(Qt.TextFormat.RichText)
        self.checklist_text.setAccessibleName("Eligibility checklist")
        QVBoxLayout(self.checklist).addWidget(self.checklist_text)
        right.addWidget(self.checklist)
        self.note = label(
            "This screen supports, never replaces, the treating physician's decision and the "
            "current product label. A verdict is only as good as the history entered.",
            "hint",
        )
        right.addWidget(self.note)
        right.addStretch(1)
        rw = QWidget()
        rw.setLayout(right)
        content = Columns([box], [rw])

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(content))

        self.product.currentIndexChanged.connect(lambda _i: self.preview())
        self.criteria.currentIndexChanged.connect(lambda _i: self.preview())
        self.lines.valueChanged.connect(lambda _v: self.preview())
        self.ecog.currentIndexChanged.connect(lambda _i: self.preview())
        for cb in (
            *self.exposed.values(),
            self.len_refr,
            self.infection,
            self.prior_bcma,
            self.cns,
            self.rapid,
        ):
            cb.toggled.connect(lambda _on: self.preview())

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Start from the last saved screening (or blank)."""
        self.form.clear_errors()
        self.by.setText(self.initials())
        if self.pid is None:
            return
        p = self.controller.patient(self.pid)
        last = presenters.latest(self.controller.events(self.pid), EligibilityScreen)
        self.product.setCurrentIndex(max(self.product.findData(p.product), 0))
        if isinstance(last, EligibilityScreen):
            inp = last.inputs
            self.criteria.setCurrentIndex(max(self.criteria.findData(inp.get("criteria")), 0))
            self.product.setCurrentIndex(max(self.product.findData(inp.get("product")), 0))
            self.lines.setValue(int(inp.get("prior_lines", 0)))
            for key, cb in self.exposed.items():
                cb.setChecked(key in inp.get("exposed_to", []))
            self.len_refr.setChecked(bool(inp.get("lenalidomide_refractory")))
            self.ecog.setCurrentIndex(max(self.ecog.findData(inp.get("ecog")), 0))
            self.infection.setChecked(bool(inp.get("active_infection")))
            self.prior_bcma.setChecked(bool(inp.get("prior_bcma_therapy")))
            self.cns.setChecked(bool(inp.get("cns_involvement")))
            self.rapid.setChecked(bool(inp.get("rapid_progression")))
            self.criteria_reason.setText(last.criteria_reason or "")
        else:
            self.criteria_reason.clear()
            self.lines.setValue(0)
            for cb in (
                *self.exposed.values(),
                self.len_refr,
                self.infection,
                self.prior_bcma,
                self.cns,
                self.rapid,
            ):
                cb.setChecked(False)
            self.ecog.setCurrentIndex(0)
        self.preview()

    def inputs(self) -> dict[str, Any]:
        """The screening facts as the core expects them."""
        return {
            "product": self.product.currentData(),
            "criteria": self.criteria.currentData(),
            "prior_lines": self.lines.value(),
            "exposed_to": [k for k, cb in self.exposed.items() if cb.isChecked()],
            "lenalidomide_refractory": self.len_refr.isChecked(),
            "ecog": self.ecog.currentData(),
            "active_infection": self.infection.isChecked(),
            "prior_bcma_therapy": self.prior_bcma.isChecked(),
            "cns_involvement": self.cns.isChecked(),
            "rapid_progression": self.rapid.isChecked(),
        }

    def preview(self) -> None:
        """Live verdict and checklist."""
        if self.pid is None:
            return
        protocol = self.controller.protocol_for(self.pid)
        try:
            result = eligibility(EligibilityInput.model_validate(self.inputs()), protocol)
        except ValidationError as exc:
            self.form.show_error(format_validation_error(exc, what="eligibility"))
            return
        kind = {"eligible": "ok", "review": "warning", "not_eligible": "danger"}[result.status]
        word = {"eligible": "ELIGIBLE", "review": "NEEDS REVIEW", "not_eligible": "NOT ELIGIBLE"}[
            result.status
        ]
        if result.superseded:
            word += " — SUPERSEDED LABEL VERSION"
            kind = "danger" if kind == "danger" else "warning"
        set_banner(self.verdict, f"{word} (preview, not yet saved)\n{result.explanation}", kind)
        self._show_reason(result.superseded)
        self.discrepancy_notes.show_for(protocol)
        crit = protocol.eligibility.criteria[self.criteria.currentData()]
        ind = crit.products[self.product.currentData()]
        self.indication.setText(f"Indication ({crit.title}): {ind.summary}")
        self.indication.setToolTip(sources_tooltip([ind.source], protocol.sources))
        lines = []
        keys: list[str] = []
        for it in result.items:
            keys += [k.strip() for k in it.source.split(",") if k.strip() not in keys]
            if it.kind == "indication":
                mark, color = ("✔ MET", "#1b5e20") if it.met else ("✘ NOT MET", "#b00020")
            else:
                mark, color = "⚠ CAUTION", "#8a4b00"
            ver = "" if it.verified else " — <b>UNVERIFIED rule</b>"
            color = theme.ink(color).name()
            lines.append(
                f'<p style="margin:2px 0"><b style="color:{color}">{mark}</b>: '
                f"{html.escape(nurse_text(it.text))}{ver}</p>"
            )
        self.checklist_text.setText("".join(lines))
        self.checklist_text.setToolTip(sources_tooltip(keys, protocol.sources))

    def _show_reason(self, superseded: bool) -> None:
        # The typed reason is kept when the label is switched back and forth (never discarded).
        self.criteria_reason.setEnabled(superseded)
        self.criteria_reason.setPlaceholderText(
            "e.g. referred and approved before April 2024"
            if superseded
            else "only for a superseded label version"
        )

    def refresh(self) -> None:
        """The last saved screening."""
        if self.pid is None:
            return
        last = presenters.latest(self.controller.events(self.pid), EligibilityScreen)
        if isinstance(last, EligibilityScreen):
            self.saved_line.setText(
                f"Last saved: {last.status.replace('_', ' ')} at {format_local(last.effective_at)} "
                f"by {last.recorded_by}"
            )
        else:
            self.saved_line.setText("No screening saved yet.")

    @clean_after_save()
    def save(self) -> None:
        """Save the screening through the core."""
        if self.pid is None:
            return
        self.form.clear_errors()
        initials = self.by.value()
        if not initials:
            self.form.show_error("recorded_by: enter your initials")
            banner_text(self.verdict).setText("Not saved: enter your initials.")
            self.by.setFocus()
            return
        try:
            _, result = self.controller.screen_eligibility(
                self.pid,
                self.inputs(),
                recorded_by=initials,
                criteria_reason=self.criteria_reason.text().strip() or None
                if self.criteria_reason.isEnabled()
                else None,
            )
        except InputError as exc:
            self.form.show_error(str(exc))
            return
        except BedsideError as exc:
            self.report(exc)
            return
        set_banner(
            self.verdict, f"SAVED: {result.status.replace('_', ' ').upper()}\n{result.explanation}"
        )

"""Episode summary (registry fields) and the SBAR handover document (HTML, Qt-free)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.protocol import load_default_protocol
from bedside.clinical.record import make_event
from bedside.common.clock import FakeClock
from bedside.reports.handover import (
    SECTION_MARK,
    budget_text,
    build_handover,
    build_patient,
    render_html,
    unverified_rules,
)
from bedside.reports.summary import summarize
from bedside.tools.demo import write_demo_ward
from bedside.ward.service import Ward, open_ward

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
FEVER = {"temperature_c": 38.6}
G2 = {"temperature_c": 38.9, "hypotension": True}
G3 = {"temperature_c": 39.0, "vasopressors": ["norepinephrine"]}
AFEBRILE = {"temperature_c": 36.9}
ICE_FULL = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}
ICE_5 = {"orientation": 2, "naming": 2, "commands": 1, "writing": 0, "attention": 0}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ward(tmp_path: Path, clock: FakeClock) -> Iterator[Ward]:
    w = open_ward(tmp_path / "data", clock)
    yield w
    w.close()


def _patient(ward: Ward, clock: FakeClock, pid: str = "p1", **kw: object) -> str:
    fields: dict[str, object] = {
        "patient_id": pid,
        "mrn": f"MRN-{pid}",
        "name": "Test Person",
        "date_of_birth": "1960-05-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": clock.now(),
        "product": "ide-cel",
        "bed": "7",
    }
    fields.update(kw)
    pid = ward.create_patient(recorded_by="AB", **fields)
    ward.chart(pid, "patient_update", recorded_by="AB", changes={"infusion_at": T0.isoformat()})
    return pid


@dataclass
class Course:
    ward: Ward
    clock: FakeClock
    pid: str
    g2_at: datetime
    toci_at: datetime
    dex_ids: list[str]


def _at(clock: FakeClock, when: datetime) -> datetime:
    clock.set(when + 2 * M)
    return when


def _course(ward: Ward, clock: FakeClock) -> Course:
    """CRS G1 -> G2 -> G3 -> G0, then a second G1 episode resolved; ICANS G2 in between."""
    pid = _patient(ward, clock)
    crs = [
        (T0 + 20 * H, FEVER),
        (T0 + 26 * H, G2),
        (T0 + 34 * H, G3),
        (T0 + 60 * H, AFEBRILE),
        (T0 + 100 * H, FEVER),
        (T0 + 110 * H, AFEBRILE),
    ]
    for when, inputs in crs[:2]:
        ward.assess_crs(pid, inputs, recorded_by="AB", effective_at=_at(clock, when))
    toci_at = _at(clock, T0 + 26 * H + 40 * M)
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", effective_at=toci_at)
    ward.assess_crs(pid, G3, recorded_by="AB", effective_at=_at(clock, T0 + 34 * H))
    ward.assess_crs(
        pid,
        AFEBRILE,
        recorded_by="AB",
        effective_at=_at(clock, T0 + 60 * H),
        confirmation={"limits": ["crs_improved"]},
    )
    ward.assess_ice(pid, ICE_FULL, recorded_by="AB", effective_at=_at(clock, T0 + 40 * H))
    ward.assess_ice(pid, ICE_5, recorded_by="AB", effective_at=_at(clock, T0 + 48 * H))
    dex = ward.chart(
        pid,
        "medication",
        recorded_by="AB",
        effective_at=_at(clock, T0 + 49 * H),
        drug="dexamethasone",
        dose=10,
        unit="mg",
        route="IV",
        every_h=6,
        given_by="AB",
        checked_by="CD",
    )
    ward.assess_ice(pid, ICE_FULL, recorded_by="AB", effective_at=_at(clock, T0 + 70 * H))
    ward.assess_crs(pid, FEVER, recorded_by="AB", effective_at=_at(clock, T0 + 100 * H))
    ward.assess_crs(
        pid,
        AFEBRILE,
        recorded_by="AB",
        effective_at=_at(clock, T0 + 110 * H),
        confirmation={"limits": ["crs_improved"]},
    )
    return Course(ward, clock, pid, T0 + 26 * H, toci_at, [dex.id])


def test_registry_fields_of_a_full_course(ward: Ward, clock: FakeClock) -> None:
    c = _course(ward, clock)
    s = summarize(ward.record(c.pid), clock.now())
    assert s.crs.occurred and s.crs.assessments == 6
    assert s.crs.onset_at == T0 + 20 * H
    assert s.crs.onset_day in (0, 1)  # calendar day in the local zone
    assert s.crs.max_grade == 3 and s.crs.max_grade_at == T0 + 34 * H
    assert len(s.crs.episodes) == 2
    assert s.crs.episodes[0].resolved_at == T0 + 60 * H
    assert s.crs.resolved_at == T0 + 110 * H and not s.crs.ongoing
    therapies = {t.drug: t.doses for t in s.crs.therapies}
    assert therapies == {"tocilizumab": 1, "dexamethasone": 1}
    assert s.tocilizumab_total == 1 and s.tocilizumab_history_complete
    assert s.tocilizumab_text() == "1"
    assert s.first_crs_grade2_at == c.g2_at
    assert s.grade2_to_tocilizumab == timedelta(minutes=40)
    # ICANS: grade 2 at ICE 5, resolved at the next full ICE; dexamethasone given while active.
    assert s.icans.max_grade == 2 and s.icans.onset_at == T0 + 48 * H
    assert s.icans.resolved_at == T0 + 70 * H
    assert [t.drug for t in s.icans.therapies] == ["dexamethasone"]
    assert [p.grade for p in s.crs.changes()] == [1, 2, 3, 0, 1, 0]
    assert s.override_count == 0 and s.voided_events == 0


def test_voided_assessment_does_not_count_and_amendments_do(ward: Ward, clock: FakeClock) -> None:
    pid = _patient(ward, clock)
    clock.set(T0 + 10 * H)
    ev, _ = ward.assess_crs(pid, G3, recorded_by="AB")
    ward.correct(pid, ev.id, action="void", reason="wrong patient charted", recorded_by="AB")
    s = summarize(ward.record(pid), clock.now())
    assert not s.crs.occurred and s.crs.max_grade is None
    assert s.voided_events == 1
    ev2, _ = ward.assess_crs(pid, FEVER, recorded_by="AB")
    ward.correct(
        pid,
        ev2.id,
        action="amend",
        reason="grade re-checked",
        recorded_by="AB",
        amended={"grade": 2},
    )
    s = summarize(ward.record(pid), clock.now())
    assert s.crs.max_grade == 2 and s.amended_events == 1


def test_tocilizumab_before_grade2_and_ongoing_episode(ward: Ward, clock: FakeClock) -> None:
    pid = _patient(ward, clock)
    ward.assess_crs(pid, FEVER, recorded_by="AB", effective_at=_at(clock, T0 + 5 * H))
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD", effective_at=_at(clock, T0 + 60 * H))
    ward.assess_crs(pid, G2, recorded_by="AB", effective_at=_at(clock, T0 + 62 * H))
    s = summarize(ward.record(pid), clock.now())
    assert s.crs.ongoing and s.crs.resolved_at is None
    assert s.grade2_to_tocilizumab is None
    assert "before" in s.grade2_to_tocilizumab_note


def test_no_tocilizumab_since_grade2(ward: Ward, clock: FakeClock) -> None:
    pid = _patient(ward, clock)
    ward.assess_crs(pid, G2, recorded_by="AB", effective_at=_at(clock, T0 + 5 * H))
    s = summarize(ward.record(pid), clock.now())
    assert s.grade2_to_tocilizumab is None
    assert s.grade2_to_tocilizumab_note == "no tocilizumab recorded since grade ≥ 2 CRS"


def test_incomplete_history_says_at_least(ward: Ward, clock: FakeClock) -> None:
    pid = ward.create_patient(
        recorded_by="AB",
        patient_id="tx1",
        mrn="MRN-TX1",
        name="Transferred In",
        date_of_birth="1955-02-02",
        sex="male",
        weight_kg=80.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
        infusion_at=T0 - 48 * H,
    )
    ward.record_prior_dose(
        pid, effective_at=T0 - 20 * H, dose_mg=640, source="ICU letter", recorded_by="AB"
    )
    s = summarize(ward.record(pid), clock.now())
    assert not s.tocilizumab_history_complete
    assert s.tocilizumab_text() == "at least 1 (1 given elsewhere) — dose history incomplete"
    ph = build_patient(ward.record(pid), load_default_protocol(), clock.now())
    text = budget_text(ph.budget)
    assert text.startswith("history incomplete")
    html = render_html(build_handover(ward, clock.now(), pid))
    assert "history incomplete" in html
    assert "1/3 in 24 h" not in html and "1/4 in course" not in html


def test_overrides_and_overdue_counts(ward: Ward, clock: FakeClock) -> None:
    pid = _patient(ward, clock)
    clock.set(T0 + 10 * H)
    ward.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(4 * H)
    ward.give_tocilizumab(
        pid,
        given_by="AB",
        checked_by="CD",
        override={
            "reason": "consultant order, refractory shock",
            "second_nurse": "EF",
            "prescriber": "Dr Lee",
        },
    )
    for action in ("raised", "acknowledged"):
        ward.add_event(
            pid,
            make_event(
                "alert",
                effective_at=clock.now(),
                recorded_at=clock.now(),
                recorded_by="AB",
                alert_key=f"{pid}/vitals_next/x",
                alert_kind="vitals_next",
                due_at=clock.now() - H,
                action=action,
            ),
        )

    @dataclass
    class Due:
        state: str
        key: str

    s = summarize(
        ward.record(pid),
        clock.now(),
        due=[Due("overdue", f"{pid}/vitals_next/x"), Due("overdue", "other"), Due("upcoming", "u")],
    )
    assert s.override_count == 1
    assert s.overrides[0].limits == ("min_interval",) and s.overrides[0].second_nurse == "EF"
    assert s.alarms_raised == 1 and s.alarms_acknowledged == 1
    assert s.overdue_now == 2
    assert s.overdue_timer_count == 2  # the raised alarm and the other overdue item, once each


# --------------------------------------------------------------------------- handover


@pytest.fixture(scope="module")
def demo_ward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ward, datetime]]:
    root = tmp_path_factory.mktemp("demo")
    clock = FakeClock(datetime(2026, 3, 12, 14, 0, tzinfo=UTC))
    write_demo_ward(root, clock)
    ward = open_ward(root, clock, read_only=True)
    yield ward, clock.now()
    ward.close()


def test_ward_handover_names_every_patient_and_budget(demo_ward: tuple[Ward, datetime]) -> None:
    ward, now = demo_ward
    doc = build_handover(ward, now)
    assert doc.scope == "ward" and len(doc.patients) == len(ward.records) >= 6
    html = render_html(doc)
    for ph in doc.patients:
        assert ph.patient.name in html
        assert budget_text(ph.budget) in html
    # ward table, one section per patient, the guidance and discharge page
    assert html.count(SECTION_MARK) == len(doc.patients) + 2
    assert doc.protocols == (load_default_protocol().label,)
    assert load_default_protocol().label in html
    # SBAR headings and the due items / open alerts for each patient
    for head in (
        "S — Situation",
        "B — Background",
        "A — Assessment",
        "Due items and open alerts",
        "R — Recommendation",
    ):
        assert html.count(head) == len(doc.patients)
    # Rule paths and the registry summary are only in the optional appendix.
    assert "Episode summary (registry fields)" not in html
    assert "monitoring.vitals_interval" not in html and "rule:" not in html
    with_appendix = render_html(doc, appendix=True)
    assert with_appendix.count(SECTION_MARK) == len(doc.patients) + 3
    assert with_appendix.count("Episode summary (registry fields)") == 1
    assert "monitoring.vitals_interval_h" in with_appendix
    # Dates as in the application, never ISO.
    for ph in doc.patients:
        dob = ph.patient.date_of_birth
        assert f"born {dob:%d %b %Y}" in html and dob.isoformat() not in html


def test_handover_marks_unverified_and_states_in_words(demo_ward: tuple[Ward, datetime]) -> None:
    ward, now = demo_ward
    protocol = load_default_protocol()
    assert any(r.startswith("management.icans.2") for r in unverified_rules(protocol))
    icans = build_handover(ward, now + 2 * H, "demo-04")  # ICANS grade 2, ICE recheck late
    ph = icans.patients[0]
    assert any(g.topic == "ICANS grade 2" and not g.verified for g in ph.guidance)
    html = render_html(icans)
    # on the patient's page and again on the guidance page, before the text
    assert 'ICANS grade 2 <span class="unv">[UNVERIFIED]</span>' in html
    guidance_row = '<td class="k" width="30%">ICANS grade 2</td><td><span class="unv">'
    assert guidance_row + "[UNVERIFIED]</span>" in html
    # overdue items are named in words (black-and-white), never by colour alone
    assert any(d.state == "overdue" for d in ph.due)
    assert "<b>OVERDUE</b>" in html
    colours = set(re.findall(r"(?:color|background-color)\s*:\s*([^;\"]+)", html))
    assert colours <= {"#000", "#e6e6e6"}


def test_handover_escapes_free_text(ward: Ward, clock: FakeClock) -> None:
    pid = _patient(ward, clock)
    ward.chart(pid, "note", recorded_by="AB", text="<script>alert(1)</script> & <b>bold</b>")
    html = render_html(build_handover(ward, clock.now(), pid))
    assert "<script>" not in html and "&lt;script&gt;" in html


HOSTILE = "<script>alert('x')</script> & \"q\" <b>bold</b>"


def test_handover_escapes_a_hostile_name_and_free_text(ward: Ward, clock: FakeClock) -> None:
    """Every value reaches the page as text (template autoescape), in every section."""
    pid = _patient(ward, clock, name=HOSTILE, bed="<b>7", lot_number="L&T<1>")
    ward.chart(pid, "note", recorded_by="AB", text=HOSTILE)
    for doc in (build_handover(ward, clock.now(), pid), build_handover(ward, clock.now())):
        html = render_html(doc, appendix=True)
        assert "<script>" not in html and "<b>bold</b>" not in html and "<b>7" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;" in html
        assert "L&amp;T&lt;1&gt;" in html and "L&T<1>" not in html
        # the name is on the patient's page, in the ward table and in the appendix
        assert html.count("&lt;b&gt;bold&lt;/b&gt;") >= (4 if doc.scope == "ward" else 3)
        # the section marker carries the name for the running header, as JSON only
        marker = html[html.index(SECTION_MARK) :].split("-->", 1)[0]
        assert "<" not in marker[len(SECTION_MARK) :] and "&" not in marker


def test_handover_templates_fail_loudly_on_a_missing_value() -> None:
    """StrictUndefined: a value the template needs and the code did not give is an error."""
    import jinja2

    from bedside.reports.handover import _templates

    with pytest.raises(jinja2.UndefinedError):
        _templates().get_template("sync.html").render({})
    with pytest.raises(jinja2.UndefinedError):
        _templates().get_template("overview.html").render({"sync": (), "failures": ()})


def test_handover_lists_unloadable_files(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "d", clock)
    _patient(w, clock, "ok1")
    w.close()
    (tmp_path / "d" / "patients" / "bad1.json").write_text("{not json", encoding="utf-8")
    ro = open_ward(tmp_path / "d", clock, read_only=True)
    doc = build_handover(ro, clock.now())
    assert [p for p, _ in doc.failures] == ["bad1"]
    assert "not included" in render_html(doc)


def test_handover_command_writes_html_without_qt(tmp_path: Path) -> None:
    root = tmp_path / "w"
    write_demo_ward(root, FakeClock(datetime.now(UTC)))
    out = tmp_path / "handover.html"
    code = (
        "import sys\n"
        "for name in ('PySide6', 'shiboken6', 'ui'):\n"
        "    sys.modules[name] = None\n"
        "from bedside.tools.cli import main\n"
        f"sys.exit(main(['handover', '--data-dir', {str(root)!r}, '--out', {str(out)!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "handover of 7 patient(s)" in proc.stdout
    assert "DEMO Carmen Ruiz" in out.read_text(encoding="utf-8")

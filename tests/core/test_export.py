"""Export: the patient file (json), the flat CSV table and FHIR R4 Bundles (validated).

FHIR validation uses ``fhir.resources.R4B`` (fhir.resources 8 ships R5 at the top
level, ``R4B`` and ``STU3`` as sub-packages; R4B keeps the R4 structure of every
resource exported here).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from bedside.common.clock import FakeClock
from bedside.reports.export import (
    CSV_COLUMNS,
    SUMMARY_COLUMNS,
    csv_rows,
    export_csv_text,
    export_fhir_bundle,
    export_json_bytes,
    export_ward,
)
from bedside.tools.demo import write_demo_ward
from bedside.ward.service import Ward, open_ward

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Ward]]:
    root = tmp_path_factory.mktemp("demo") / "data"
    write_demo_ward(root, FakeClock(NOW))
    ward = open_ward(root, FakeClock(NOW + H), read_only=True)
    yield root, ward
    ward.close()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- json


def test_json_export_is_the_patient_file(demo: tuple[Path, Ward]) -> None:
    root, ward = demo
    # Issue 15: the patient lives in journals; the export is the merged record as a
    # checksummed single file holding exactly the journal's events, in order.
    for pid in ward.records:
        doc = json.loads(export_json_bytes(ward, pid))
        lines = [b for _, b in ward.store.iter_journal_lines(pid) if b["t"] == "event"]
        assert [e["id"] for e in doc["events"]] == [b["event"]["id"] for b in lines]
        assert doc["events"] == [b["event"] for b in lines]
        assert len(list((root / "journals" / pid).glob("*.jsonl"))) == 1


def test_export_runs_read_only_while_the_app_holds_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_demo_ward(root, FakeClock(NOW))
    app = open_ward(root, FakeClock(NOW))  # the running application: holds the writer lock
    try:
        before = {str(p): p.read_bytes() for p in (root / "journals").rglob("*.jsonl")}
        proc = _run(
            "export", "--data-dir", str(root), "--format", "json", "--out", str(tmp_path / "x")
        )
        assert proc.returncode == 0, proc.stderr
        assert app.store.holds_writer_lock()
        assert {str(p): p.read_bytes() for p in (root / "journals").rglob("*.jsonl")} == before
        assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(
            f"{pid}.json" for pid in app.records
        )
        # one patient to a named file
        out = tmp_path / "one.json"
        proc = _run(
            "export",
            "--data-dir",
            str(root),
            "--format",
            "json",
            "--out",
            str(out),
            "--patient",
            "demo-03",
        )
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == (tmp_path / "x" / "demo-03.json").read_bytes()
    finally:
        app.close()


def test_export_refusals(tmp_path: Path, demo: tuple[Path, Ward]) -> None:
    root, _ = demo
    proc = _run("export", "--data-dir", str(tmp_path / "nowhere"), "--format", "csv", "--out", "x")
    assert proc.returncode == 2 and "not a Bedside data directory" in proc.stderr
    assert not (tmp_path / "nowhere").exists()
    proc = _run("export", "--data-dir", str(root), "--format", "csv", "--out", str(root / "out"))
    assert proc.returncode == 2 and "inside the data directory" in proc.stderr
    proc = _run(
        "export",
        "--data-dir",
        str(root),
        "--format",
        "fhir",
        "--out",
        str(tmp_path / "a.json"),
        "--patient",
        "nobody",
    )
    assert proc.returncode == 1 and "no patient with id" in proc.stderr


# --------------------------------------------------------------------------- csv


def _read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_csv_one_row_per_event_with_corrections(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    ward = open_ward(tmp_path / "d", clock)
    try:
        pid = ward.create_patient(
            recorded_by="AB",
            patient_id="c1",
            mrn="M1",
            name="Zoë Ünicode",
            date_of_birth="1950-01-01",
            sex="female",
            weight_kg=60.0,
            weight_measured_at=NOW,
            product="ide-cel",
        )
        v = ward.chart(pid, "vitals", recorded_by="AB", temperature_c=38.2, heart_rate=101)
        n = ward.chart(pid, "note", recorded_by="AB", text='=HYPERLINK("http://x") naïve')
        ward.correct(
            pid,
            v.id,
            action="amend",
            reason="typo in HR",
            recorded_by="AB",
            amended={"heart_rate": 110},
        )
        ward.correct(pid, n.id, action="void", reason="wrong patient", recorded_by="AB")
        record = ward.record(pid)
        export_ward(ward, "csv", tmp_path / "all", NOW)
        data = (tmp_path / "all" / "c1.csv").read_bytes()
    finally:
        ward.close()
    rows = _read_csv(data)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == len(record.events) == 4
    assert [r["status"] for r in rows] == ["amended", "voided", "correction", "correction"]
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["effective_at_utc"].endswith("Z")
    local = datetime.fromisoformat(rows[0]["effective_at_local"])
    assert local.utcoffset() is not None
    assert local == datetime.fromisoformat(rows[0]["effective_at_utc"].replace("Z", "+00:00"))
    assert "heart_rate" in json.loads(rows[0]["details_json"])
    assert rows[1]["description"].startswith("Note: =HYPERLINK")  # formula only inside text
    assert rows[2]["target_id"] == rows[0]["event_id"]
    assert rows[0]["description"].startswith("Vital signs: T 38.2 °C")
    assert export_csv_text(record).count("\r\n") == 5  # header + 4 rows, CRLF for Excel
    assert csv_rows(record)[1]["kind"] == "note"
    summary = _read_csv((tmp_path / "all" / "episode-summary.csv").read_bytes())
    assert list(summary[0]) == list(SUMMARY_COLUMNS)
    assert summary[0]["patient_id"] == "c1" and summary[0]["crs_occurred"] == "not assessed"


def test_csv_formula_cells_are_prefixed() -> None:
    from bedside.reports.export import _csv_text

    text = _csv_text(("a", "b"), [{"a": "=1+1", "b": -5}, {"a": "@SUM(A1)", "b": "ok"}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["a"] == "'=1+1" and rows[0]["b"] == "-5"  # numbers stay numbers
    assert rows[1]["a"] == "'@SUM(A1)"


def test_csv_of_the_demo_ward_and_summary(tmp_path: Path, demo: tuple[Path, Ward]) -> None:
    _, ward = demo
    written = export_ward(ward, "csv", tmp_path, NOW + H)
    assert len(written) == len(ward.records) + 1
    summary = {
        r["patient_id"]: r for r in _read_csv((tmp_path / "episode-summary.csv").read_bytes())
    }
    assert summary["demo-03"]["crs_max_grade"] == "3"
    assert summary["demo-03"]["tocilizumab_doses"] == "3"
    assert summary["demo-03"]["grade2_to_tocilizumab_min"] == "25"
    assert summary["demo-07"]["tocilizumab_history_complete"] == "no"
    assert summary["demo-04"]["icans_max_grade"] == "2"
    for pid, record in ward.records.items():
        assert len(_read_csv((tmp_path / f"{pid}.csv").read_bytes())) == len(record.events)


# --------------------------------------------------------------------------- FHIR


# fhir.resources checks structure, types, cardinality and formats but not the required
# value-set bindings of status codes, so those are checked here (FHIR R4 value sets).
REQUIRED_CODES: dict[tuple[str, str], set[str]] = {
    ("Observation", "status"): {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("MedicationAdministration", "status"): {
        "in-progress",
        "not-done",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "unknown",
    },
    ("Procedure", "status"): {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    },
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}
CONDITION_CLINICAL = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}


def validate_bundle(data: dict[str, Any]) -> Bundle:
    """fhir.resources (R4B) validation plus the required status bindings."""
    bundle = Bundle.model_validate(data)
    assert data["type"] == "collection"
    for entry in data["entry"]:
        res = entry["resource"]
        for (rtype, field), allowed in REQUIRED_CODES.items():
            if res["resourceType"] == rtype:
                assert res[field] in allowed, (rtype, field, res[field])
        if res["resourceType"] == "Condition":
            code = res["clinicalStatus"]["coding"][0]["code"]
            assert code in CONDITION_CLINICAL
            if "abatementDateTime" in res:  # con-4
                assert code in {"inactive", "resolved", "remission"}
    return bundle


def _codes(res: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in res.get("code", {}).get("coding", [])}


def test_every_demo_patient_exports_to_valid_fhir(tmp_path: Path, demo: tuple[Path, Ward]) -> None:
    root, ward = demo
    proc = _run("export", "--data-dir", str(root), "--format", "fhir", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    files = sorted(tmp_path.glob("*.fhir.json"))
    assert len(files) == len(ward.records) >= 6
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        bundle = validate_bundle(data)  # raises on any invalid resource
        assert bundle.type == "collection"
        urls = [e["fullUrl"] for e in data["entry"]]
        assert len(urls) == len(set(urls))
        refs = {
            r["subject"]["reference"]
            for r in (e["resource"] for e in data["entry"])
            if "subject" in r
        }
        assert refs <= set(urls)  # every subject resolves inside the bundle
        kinds = Counter(e["resource"]["resourceType"] for e in data["entry"])
        assert kinds["Patient"] == 1


def test_fhir_content_codes_and_medications(demo: tuple[Path, Ward]) -> None:
    _, ward = demo
    record = ward.record("demo-03")
    bundle = export_fhir_bundle(record, ward.protocol_for(record), NOW + H)
    validate_bundle(bundle)
    res = [e["resource"] for e in bundle["entry"]]
    obs = [r for r in res if r["resourceType"] == "Observation"]
    all_codes = set().union(*(_codes(o) for o in obs))
    loinc = {c for s, c in all_codes if s == "http://loinc.org"}
    assert {"8310-5", "8867-4", "85354-9", "59408-5", "2708-6", "9279-1", "751-8", "777-3"} <= loinc
    bp = next(o for o in obs if ("http://loinc.org", "85354-9") in _codes(o))
    comp_codes = {c["code"]["coding"][0]["code"] for c in bp["component"]}
    assert comp_codes == {"8480-6", "8462-4"}
    crs = [o for o in obs if ("urn:bedside:observation", "crs-grade-astct") in _codes(o)]
    assert sorted(o["valueInteger"] for o in crs) == sorted(
        e.grade for e in record.events if getattr(e, "kind", "") == "crs_assessment"
    )
    ice = [o for o in obs if ("urn:bedside:observation", "ice-score") in _codes(o)]
    assert ice and all(o["valueInteger"] == 10 and len(o["component"]) == 5 for o in ice)
    meds = [r for r in res if r["resourceType"] == "MedicationAdministration"]
    toci = [m for m in meds if m["medicationCodeableConcept"]["text"] == "tocilizumab"]
    assert len(toci) == 3
    m = toci[0]
    assert m["medicationCodeableConcept"]["coding"][0]["code"] == "L04AC07"
    assert m["dosage"]["route"]["coding"][0]["code"] == "47625008"
    assert m["dosage"]["dose"]["code"] == "mg" and m["dosage"]["dose"]["value"] > 0
    functions = [p["function"]["coding"][0]["code"] for p in m["performer"]]
    assert functions == ["performer", "verifier"]
    cond = next(r for r in res if r["resourceType"] == "Condition")
    assert cond["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "D89.833",
        "display": "Cytokine release syndrome, grade 3",
    }
    assert cond["clinicalStatus"]["coding"][0]["code"] == "active"


def test_fhir_override_void_and_prior_dose(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    ward = open_ward(tmp_path / "d", clock)
    try:
        pid = ward.create_patient(
            recorded_by="AB",
            patient_id="f1",
            mrn="M-F1",
            name="Fhir Test",
            date_of_birth="1950-01-01",
            sex="male",
            weight_kg=90.0,
            weight_measured_at=NOW,
            product="cilta-cel",
            infusion_at=NOW - 40 * H,
        )
        ward.record_prior_dose(
            pid, effective_at=NOW - 4 * H, dose_mg=720, source="ICU letter", recorded_by="AB"
        )
        ward.chart(
            pid, "history_confirmation", recorded_by="AB", source="MAR checked", complete=True
        )
        assert ward.plan_tocilizumab(pid).needs_override == ["min_interval"]
        ward.give_tocilizumab(
            pid,
            given_by="AB",
            checked_by="CD",
            weight_confirmed=True,
            override={
                "reason": "consultant order after review",
                "second_nurse": "EF",
                "prescriber": "Dr Vance",
            },
        )
        clock.advance(H)
        lab = ward.record_lab(pid, test="platelets", value=30, unit="10^9/L", recorded_by="AB")
        ward.correct(pid, lab.id, action="void", reason="haemolysed sample", recorded_by="AB")
        ward.chart(
            pid,
            "toxicity",
            recorded_by="AB",
            category="infection",
            description="Line infection",
            ctcae_grade=3,
        )
        record = ward.record(pid)
        bundle = export_fhir_bundle(record, ward.protocol_for(record), clock.now())
    finally:
        ward.close()
    validate_bundle(bundle)
    res = [e["resource"] for e in bundle["entry"]]
    meds = [r for r in res if r["resourceType"] == "MedicationAdministration"]
    prior = next(m for m in meds if any("Given elsewhere" in n["text"] for n in m.get("note", [])))
    assert "ICU letter" in prior["note"][0]["text"]
    overridden = [m for m in meds if any("Limit override" in n["text"] for n in m.get("note", []))]
    assert len(overridden) == 1
    assert "consultant order after review" in overridden[0]["note"][0]["text"]
    assert "ordered by Dr Vance" in overridden[0]["note"][0]["text"]
    roles = {
        p["function"]["coding"][0]["code"]: p["actor"]["display"]
        for p in overridden[0]["performer"]
    }
    assert roles["witness"] == "EF" and roles["prescriber"] == "Dr Vance"
    assert [p["function"]["coding"][0]["code"] for p in overridden[0]["performer"]] == [
        "performer",
        "verifier",
        "witness",
        "prescriber",
    ]
    voided = [
        r for r in res if r["resourceType"] == "Observation" and r["status"] == "entered-in-error"
    ]
    assert len(voided) == 1 and voided[0]["valueQuantity"]["code"] == "10*9/L"
    tox = [
        r
        for r in res
        if r["resourceType"] == "Condition" and r["code"].get("text") == "Line infection"
    ]
    assert tox and tox[0]["severity"]["text"] == "maximum CTCAE grade 3"


def test_fhir_validation_is_real() -> None:
    """A negative control: the validator does reject a broken resource."""

    def bundle(resource: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}

    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    validate_bundle(bundle(obs))
    for broken in (
        {k: v for k, v in obs.items() if k != "code"},  # missing required element
        {**obs, "valueQuantity": {"value": "high"}},  # wrong type
        {**obs, "effectiveDateTime": "yesterday"},  # bad format
        {**obs, "colour": "red"},  # unknown element
    ):
        with pytest.raises(ValidationError):
            validate_bundle(bundle(broken))
    with pytest.raises(AssertionError):
        validate_bundle(bundle({**obs, "status": "bogus"}))  # binding checked here

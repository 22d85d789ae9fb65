"""Import / transfer between workstations: verification, merge by event id, idempotency."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.clinical.doses import dose_budget
from bedside.clinical.record import (
    Note,
    Record,
    chain_genesis,
    new_record,
    record_to_json,
    seal,
)
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError
from bedside.common.jsonio import strict_loads
from bedside.reports.export import export_json_bytes
from bedside.store.storage import CHECKSUM_KEY, encode_envelope
from bedside.tools.demo import write_demo_ward
from bedside.tools.verify import verify_dir
from bedside.ward.service import Ward, open_ward
from bedside.ward.transfer import (
    TransferError,
    event_content,
    import_file,
    parse_patient_bytes,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bedside", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def ward_a(tmp_path: Path, clock: FakeClock) -> Iterator[Ward]:
    w = open_ward(tmp_path / "a", clock)
    yield w
    w.close()


@pytest.fixture
def ward_b(tmp_path: Path, clock: FakeClock) -> Iterator[Ward]:
    w = open_ward(tmp_path / "b", clock)
    yield w
    w.close()


def _patient(ward: Ward, pid: str = "p1", mrn: str = "MRN-1", **kw: object) -> str:
    fields: dict[str, object] = {
        "patient_id": pid,
        "mrn": mrn,
        "name": "Transfer Person",
        "date_of_birth": "1961-01-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": ward.clock.now(),
        "product": "ide-cel",
    }
    fields.update(kw)
    return ward.create_patient(recorded_by="AB", **fields)


def _export(ward: Ward, pid: str, path: Path) -> Path:
    path.write_bytes(export_json_bytes(ward, pid))
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "patients").glob("*.json")}


def _envelope(path: Path) -> dict:  # type: ignore[type-arg]
    doc = strict_loads(path.read_bytes(), source="test")
    doc.pop(CHECKSUM_KEY)
    return doc


# --------------------------------------------------------------------------- done-when


def test_export_all_import_twice_gives_the_original_events(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_demo_ward(src, FakeClock(datetime.now(UTC).replace(microsecond=0)))
    exported = tmp_path / "exported"
    proc = _run("export", "--data-dir", str(src), "--format", "json", "--out", str(exported))
    assert proc.returncode == 0, proc.stderr
    files = sorted(str(p) for p in exported.glob("*.json"))
    assert len(files) >= 6
    dest = tmp_path / "dest"
    first = _run("import", *files, "--data-dir", str(dest))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("new patient added") == len(files)
    after_first = _files(dest)
    second = _run("import", *files, "--data-dir", str(dest))
    assert second.returncode == 0, second.stderr
    assert " 0 event(s) added" in second.stdout and "new patient" not in second.stdout
    assert _files(dest) == after_first  # idempotent to the byte
    ok, lines = verify_dir(dest)
    assert ok, lines
    proc = _run("verify", "--data-dir", str(dest))
    assert proc.returncode == 0, proc.stdout
    original = open_ward(src, FakeClock(NOW), read_only=True)
    copy = open_ward(dest, FakeClock(NOW), read_only=True)
    assert sorted(copy.records) == sorted(original.records)
    for pid, rec in original.records.items():
        mine = copy.records[pid]
        assert [e.id for e in mine.events] == [e.id for e in rec.events]
        assert [event_content(e) for e in mine.events] == [event_content(e) for e in rec.events]
        assert mine.patient == rec.patient
        assert all(e.origin and e.origin.startswith(f"import: {pid}.json") for e in mine.events)


# --------------------------------------------------------------------------- refusals


def _tamper_cases(good: Path, tmp: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    cases: dict[str, bytes] = {}
    doc = json.loads(raw)
    doc["events"][0]["recorded_by"] = "ZZ"  # edited, checksum kept
    cases["checksum"] = json.dumps(doc).encode()
    env = _envelope(good)
    env["events"][0]["recorded_by"] = "ZZ"  # edited, checksum recomputed: the chain catches it
    cases["hash chain"] = encode_envelope(env)
    env = _envelope(good)
    del env["events"][1]  # an event removed, checksum recomputed
    cases["removed"] = encode_envelope(env)
    cases["truncated"] = raw[: len(raw) // 2]
    cases["duplicate"] = raw.replace(b'"app_version"', b'"head": 1, "app_version"', 1)
    cases["bundle"] = json.dumps({"resourceType": "Bundle", "type": "collection"}).encode()
    env = _envelope(good)
    env["schema_version"] = 99
    cases["newer"] = encode_envelope(env)
    cases["nan"] = re.sub(rb'"weight_kg":\s*70\.0', b'"weight_kg": NaN', raw, count=1)
    assert cases["nan"] != raw
    out = {}
    for name, data in cases.items():
        path = tmp / f"{name}.json"
        path.write_bytes(data)
        out[name] = path
    return out


EXPECTED = {
    "checksum": "integrity checksum does not match",
    "hash chain": "hash chain broken",
    "removed": "hash chain broken",
    "truncated": "not a valid Bedside patient file",
    "duplicate": "duplicate key",
    "bundle": "not a valid Bedside patient file.*no schema_version",
    "newer": "newer Bedside",
    "nan": "not a valid Bedside patient file",
}


def test_tampered_or_malformed_files_are_refused(
    tmp_path: Path, ward_a: Ward, ward_b: Ward, clock: FakeClock
) -> None:
    pid = _patient(ward_a)
    ward_a.chart(pid, "note", recorded_by="AB", text="first")
    ward_a.chart(pid, "note", recorded_by="AB", text="second")
    good = _export(ward_a, pid, tmp_path / "good.json")
    before = _files(ward_b.root)
    for name, path in _tamper_cases(good, tmp_path).items():
        with pytest.raises(TransferError, match=EXPECTED[name]) as info:
            import_file(ward_b, path)
        assert "refused" in str(info.value), name
        assert _files(ward_b.root) == before, name
    assert ward_b.records == {}
    proc = _run("import", str(tmp_path / "checksum.json"), "--data-dir", str(tmp_path / "c"))
    assert proc.returncode == 1 and "refused" in proc.stderr
    assert not list((tmp_path / "c" / "patients").glob("*.json"))


def test_import_refused_while_the_app_holds_the_lock(tmp_path: Path, ward_a: Ward) -> None:
    pid = _patient(ward_a)
    good = _export(ward_a, pid, tmp_path / "good.json")
    before = _files(ward_a.root)
    proc = _run("import", str(good), "--data-dir", str(ward_a.root))
    assert proc.returncode == 2
    assert "in use by another Bedside" in proc.stderr and "Nothing was changed" in proc.stderr
    assert _files(ward_a.root) == before


def test_identity_mismatches_are_refused(tmp_path: Path, ward_a: Ward, ward_b: Ward) -> None:
    _patient(ward_a, "p1", "MRN-1")
    _patient(ward_b, "p1", "MRN-OTHER")
    with pytest.raises(TransferError, match="different mrn"):
        import_file(ward_a, _export(ward_b, "p1", tmp_path / "b.json"))
    _patient(ward_b, "p2", "MRN-1", name="Transfer Person Two")  # same MRN, another id
    with pytest.raises(TransferError, match="patient p1 in this ward has the same MRN"):
        import_file(ward_a, _export(ward_b, "p2", tmp_path / "b2.json"))
    _patient(ward_b, "p3", "MRN-3", name="Someone Else")
    _patient(ward_a, "p3", "MRN-3", name="Transfer Person Three")
    with pytest.raises(TransferError, match="different name"):
        import_file(ward_a, _export(ward_b, "p3", tmp_path / "b3.json"))


# --------------------------------------------------------------------------- merging


def test_merge_by_event_id_counts_imported_doses(
    tmp_path: Path, ward_a: Ward, ward_b: Ward, clock: FakeClock
) -> None:
    pid = _patient(ward_a)
    ward_a.chart(pid, "note", recorded_by="AB", text="admitted on A")
    report = import_file(ward_b, _export(ward_a, pid, tmp_path / "a1.json"), label="Ward A")
    assert report.created and report.added == 1
    assert ward_b.records[pid].events[0].origin.startswith("import: Ward A")
    # the patient is treated on B; meanwhile A charts a note
    clock.advance(H)
    dose = ward_b.give_tocilizumab(pid, given_by="XY", checked_by="CD")
    ward_b.chart(pid, "note", recorded_by="XY", text="tocilizumab on B")
    ward_a.chart(pid, "note", recorded_by="AB", text="note on A meanwhile")
    back = _export(ward_b, pid, tmp_path / "b1.json")
    before = dose_budget(ward_a.record(pid), ward_a.protocol_for(ward_a.record(pid)), clock.now())
    report = import_file(ward_a, back, label="Ward B")
    assert (report.created, report.added, report.already_present) == (False, 2, 1)
    assert not report.conflicts
    rec = ward_a.record(pid)
    imported = next(e for e in rec.events if e.id == dose.id)
    assert imported.origin == report.origin and "Ward B" in report.origin
    after = dose_budget(rec, ward_a.protocol_for(rec), clock.now())
    assert (before.total, after.total) == (0, 1)
    assert after.doses_last_24h == 1 and not after.check.allowed  # within 8 h of B's dose
    # again: nothing changes, not even the bytes
    files = _files(ward_a.root)
    again = import_file(ward_a, back)
    assert (again.added, again.already_present, again.changed) == (0, 3, False)
    assert _files(ward_a.root) == files
    # and A's file travels back to B without duplicating anything B already has
    report = import_file(ward_b, _export(ward_a, pid, tmp_path / "a2.json"))
    assert report.added == 1 and report.already_present == 3


def test_conflicting_event_is_reported_and_nothing_overwritten(
    tmp_path: Path, ward_a: Ward, ward_b: Ward, clock: FakeClock
) -> None:
    pid = _patient(ward_a)
    note = ward_a.chart(pid, "note", recorded_by="AB", text="original text")
    import_file(ward_b, _export(ward_a, pid, tmp_path / "a.json"))
    clock.advance(H)
    extra = ward_b.chart(pid, "note", recorded_by="CD", text="new on B")
    # B's file, with the shared note's text changed (a validly re-sealed chain)
    rec_b = ward_b.record(pid)
    events = [
        e.model_copy(update={"text": "EDITED"}) if e.id == note.id else e for e in rec_b.events
    ]
    chain = []
    prev = chain_genesis(rec_b.patient.patient_id)
    for e in events:
        sealed = seal(e, prev)
        chain.append(sealed)
        prev = sealed.hash
    forged: Record = new_record(rec_b.patient, chain, clock.now())
    path = tmp_path / "forged.json"
    path.write_bytes(encode_envelope(record_to_json(forged)))
    parse_patient_bytes(path.read_bytes(), "forged.json")  # a valid file, just different
    report = import_file(ward_a, path)
    assert [(c.event_id, c.fields) for c in report.conflicts] == [(note.id, ("text",))]
    assert report.added == 1
    rec_a = ward_a.record(pid)
    kept = next(e for e in rec_a.events if e.id == note.id)
    assert isinstance(kept, Note) and kept.text == "original text"
    assert any(e.id == extra.id for e in rec_a.events)
    assert "CONFLICT" in "\n".join(report.lines())
    proc = _run("import", str(path), "--data-dir", str(tmp_path / "fresh"))
    assert proc.returncode == 0  # a new ward has nothing to conflict with


def test_doses_given_on_both_workstations_are_flagged(
    tmp_path: Path, ward_a: Ward, ward_b: Ward, clock: FakeClock
) -> None:
    pid = _patient(ward_a)
    import_file(ward_b, _export(ward_a, pid, tmp_path / "a.json"))
    ward_a.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    clock.advance(H)
    ward_b.give_tocilizumab(pid, given_by="XY", checked_by="CD")  # B did not know
    report = import_file(ward_a, _export(ward_b, pid, tmp_path / "b.json"))
    assert report.added == 1
    assert any("less than 8 h apart" in w for w in report.warnings)
    rec = ward_a.record(pid)
    assert dose_budget(rec, ward_a.protocol_for(rec), clock.now()).total == 2


def test_quarantined_local_file_blocks_import(tmp_path: Path, clock: FakeClock) -> None:
    w = open_ward(tmp_path / "q", clock)
    pid = _patient(w)
    good = _export(w, pid, tmp_path / "good.json")
    w.close()
    (tmp_path / "q" / "patients" / f"{pid}.json").write_text("{broken", encoding="utf-8")
    w = open_ward(tmp_path / "q", clock)
    try:
        assert pid in w.failures
        with pytest.raises(TransferError, match="failed to load"):
            import_file(w, good)
    finally:
        w.close()


def test_transfer_error_is_an_input_error() -> None:
    assert issubclass(TransferError, InputError)

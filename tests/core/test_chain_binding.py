"""Issue 12: hash chains bound to their patient, and how older (unbound) chains migrate."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.clinical.record import (
    GENESIS_HASH,
    ForeignChainError,
    chain_binding,
    chain_genesis,
    event_hash,
    record_binding,
    validate_envelope,
)
from bedside.common.clock import FakeClock
from bedside.common.errors import InputError
from bedside.reports.export import export_json_bytes
from bedside.store.journal import encode_line, journal_genesis, parse_journal
from bedside.store.storage import encode_envelope
from bedside.tools.demo import write_demo_ward
from bedside.tools.verify import verify_dir
from bedside.ward.service import Ward, open_ward
from bedside.ward.transfer import (
    ImportHeld,
    TransferError,
    import_file,
    merge_into_ward,
    parse_patient_bytes,
    read_patient_file,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "legacy-v1"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
WS = "4A-PC1"


def _admit(ward: Ward, pid: str = "p1", mrn: str = "MRN-1") -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=mrn,
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=ward.clock.now(),
        product="cilta-cel",
        infusion_at=ward.clock.now() - 48 * H,
        dose_history_complete=True,
    )


def _export_doc(ward: Ward, pid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ward.store.envelope_bytes(pid))
    doc.pop("_sha256", None)
    return doc


def _reseal(doc: dict[str, Any], genesis: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    prev = genesis
    for ev in doc["events"]:
        ev["prev_hash"] = prev
        ev["hash"] = event_hash(ev, prev)
        prev = ev["hash"]
    doc["head"] = {"count": len(doc["events"]), "hash": prev}
    return doc


def _to_older_format(path: Path, pid: str, ws: str = WS) -> None:
    """Rewrite a journal as Bedside wrote it before the binding: line chain and event chain
    from 64 zeros (same bodies otherwise)."""
    j = parse_journal(path.read_bytes(), ws, "j", pid)
    assert not j.problem and j.binding == "bound"
    head, prev_ev, out = GENESIS_HASH, GENESIS_HASH, []
    for body in j.lines:
        if body["t"] == "event":
            ev = {**body["event"], "prev_hash": prev_ev, "hash": ""}
            ev["hash"] = event_hash(ev, prev_ev)
            prev_ev = ev["hash"]
            body = {**body, "event": ev}
        line, head = encode_line(head, body)
        out.append(line)
    path.write_bytes(b"".join(out))


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[Ward]:
    w = open_ward(tmp_path / "w", FakeClock(T0), workstation=WS)
    yield w
    w.close()


# --------------------------------------------------------------------------- binding


def test_genesis_differs_per_patient_and_is_not_the_zero_genesis() -> None:
    a, b = chain_genesis("p1"), chain_genesis("p2")
    assert a != b and GENESIS_HASH not in {a, b}
    assert journal_genesis("p1", WS) not in {
        a,
        journal_genesis("p2", WS),
        journal_genesis("p1", "X"),
    }
    assert chain_binding(a, "p1") == "bound"
    assert chain_binding(GENESIS_HASH, "p1") == "legacy"
    assert chain_binding(a, "p2") == "foreign"


def test_new_records_and_journals_are_born_bound(ward: Ward) -> None:
    pid = _admit(ward)
    ward.chart(pid, "note", recorded_by="AB", text="first")
    rec = ward.record(pid)
    assert rec.events[0].prev_hash == chain_genesis(pid) and record_binding(rec) == "bound"
    data = ward.store.own_journal(pid).read_bytes()
    assert data[data.index(b'"p":"') + 5 :].startswith(journal_genesis(pid, WS).encode())
    assert parse_journal(data, WS, "j", pid).binding == "bound"
    # Read as another patient's journal, or as another workstation's: refused.
    assert "different patient record" in parse_journal(data, WS, "j", "p2").problem
    assert "different patient record" in parse_journal(data, "4A-PC2", "j", pid).problem


def test_a_record_sealed_for_one_patient_does_not_validate_under_another(ward: Ward) -> None:
    pid = _admit(ward)
    ward.chart(pid, "note", recorded_by="AB", text="first")
    exported = export_json_bytes(ward, pid)  # the export envelope (journals merged)
    assert record_binding(parse_patient_bytes(exported, "p1.json")) == "bound"
    doc = _export_doc(ward, pid)
    assert validate_envelope(doc).patient.patient_id == pid
    doc["patient"]["patient_id"] = "p2"
    with pytest.raises(ForeignChainError, match="different patient record"):
        validate_envelope(doc)
    # Re-sealing from p2's genesis makes it valid again: hashes hold no secret.
    assert record_binding(validate_envelope(_reseal(doc, chain_genesis("p2")))) == "bound"


# --------------------------------------------------------------------------- migration


def test_older_format_journal_opens_verifies_and_is_bound_by_its_next_append(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation=WS)
    pid = _admit(w)
    dose = w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    w.chart(pid, "note", recorded_by="AB", text="before")
    ids = [e.id for e in w.record(pid).events]
    w.close()
    path = root / "journals" / pid / f"{WS}.jsonl"
    for older in [path, *sorted((root / "backups" / WS / pid).glob("bk-*.jsonl"))]:
        _to_older_format(older, pid)  # the journal and its backups, as written before
    old = path.read_bytes()

    ok, lines = verify_dir(root)
    assert ok and any("not yet bound (older format): 4A-PC1" in line for line in lines), lines

    clock.advance(H)
    w = open_ward(root, clock, workstation=WS)
    try:
        rec = w.record(pid)
        assert [e.id for e in rec.events] == ids
        assert record_binding(rec) == "bound"  # the merged chain is re-sealed in memory
        assert w.budget(pid).total == 1 and any(e.id == dose.id for e in rec.events)
        assert path.read_bytes() == old  # opening writes nothing
        w.chart(pid, "note", recorded_by="AB", text="after")
    finally:
        w.close()
    data = path.read_bytes()
    assert data.startswith(old)  # append-only: the older lines byte-identical
    j = parse_journal(data, WS, "j", pid)
    assert not j.problem and j.binding == "bound"
    assert [b["t"] for b in j.lines][-2:] == ["bind", "event"]
    ok, lines = verify_dir(root)
    assert ok and any("bound to the patient" in line for line in lines), lines
    assert not any("not yet bound" in line for line in lines)
    again = open_ward(root, clock, workstation=WS, read_only=True)
    assert [e.id for e in again.record(pid).events][:-1] == ids


def test_each_older_journal_of_a_ward_is_bound_by_its_own_writer(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    root = tmp_path / "ward"
    a = open_ward(root, clock, workstation="4A-PC1")
    b = open_ward(root, clock, workstation="4A-PC2")
    pid = _admit(a)
    b.reload()
    b.chart(pid, "note", recorded_by="CD", text="from PC2")
    a.close()
    b.close()
    for ws in ("4A-PC1", "4A-PC2"):
        for path in [
            root / "journals" / pid / f"{ws}.jsonl",
            *sorted((root / "backups" / ws / pid).glob("bk-*.jsonl")),
        ]:
            _to_older_format(path, pid, ws)
    ok, lines = verify_dir(root)
    assert ok and "not yet bound (older format): 4A-PC1, 4A-PC2" in lines[0], lines
    clock.advance(H)
    a = open_ward(root, clock, workstation="4A-PC1")
    try:
        assert len(a.record(pid).events) == 1
        a.chart(pid, "note", recorded_by="AB", text="from PC1")
    finally:
        a.close()
    ok, lines = verify_dir(root)
    assert ok and "not yet bound (older format): 4A-PC2 " in lines[0], lines
    b = open_ward(root, clock, workstation="4A-PC2", read_only=True)
    assert [getattr(e, "text", "") for e in b.record(pid).events] == ["from PC2", "from PC1"]


def test_older_format_journal_with_a_bind_line_for_another_patient_is_refused(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation=WS)
    pid = _admit(w)
    w.close()
    path = root / "journals" / pid / f"{WS}.jsonl"
    _to_older_format(path, pid)
    j = parse_journal(path.read_bytes(), WS, "j", pid)
    line, _ = encode_line(
        j.head,
        {"t": "bind", "patient_id": "p2", "chain": 2, "seq": len(j.lines), "ws": WS},
    )
    path.write_bytes(path.read_bytes() + line)
    assert "different patient record" in parse_journal(path.read_bytes(), WS, "j", pid).problem
    w = open_ward(root, clock, workstation=WS)
    try:
        assert pid not in w.records and "different patient record" in w.failures[pid]
    finally:
        w.close()


def test_golden_single_files_verify_as_older_format_and_migrate_bound(tmp_path: Path) -> None:
    root = tmp_path / "old"
    (root / "patients").mkdir(parents=True)
    for src in GOLDEN.glob("*.json"):
        shutil.copy(src, root / "patients" / src.name)
    ok, lines = verify_dir(root)
    assert ok and len(lines) == 2
    assert all("not yet bound (older format" in line for line in lines), lines
    w = open_ward(root, FakeClock(datetime(2026, 12, 1, tzinfo=UTC)), workstation="pc1")
    try:
        assert sorted(w.records) == ["demo-02", "demo-03"]
        assert all(record_binding(r) == "bound" for r in w.records.values())
    finally:
        w.close()
    ok, lines = verify_dir(root)
    journal_lines = [line for line in lines if "journals/" in line]
    assert ok and len(journal_lines) == 2
    assert all("bound to the patient" in line for line in journal_lines), lines


def test_demo_ward_verify_reports_bound_chains(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    written = write_demo_ward(root, FakeClock(T0))
    assert written
    proc = subprocess.run(
        [sys.executable, "-m", "bedside", "verify", "--data-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok_lines = [line for line in proc.stdout.splitlines() if line.startswith("OK")]
    assert len(ok_lines) == len(written)
    assert all("bound to the patient" in line for line in ok_lines), proc.stdout
    assert "not yet bound" not in proc.stdout


# --------------------------------------------------------------------------- export files


def test_older_format_export_is_held_then_imported_bound_with_a_nurses_initials(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    a = open_ward(tmp_path / "a", clock, workstation="4A-PC1")
    b = open_ward(tmp_path / "b", clock, workstation="4B-PC1")
    try:
        _admit(b, "p7", "MRN-7")
        b.give_tocilizumab("p7", given_by="AB", checked_by="CD")
        doc = _reseal(_export_doc(b, "p7"), GENESIS_HASH)  # as written before the binding
        path = tmp_path / "p7-old.json"
        path.write_bytes(encode_envelope(doc))
        incoming = read_patient_file(path)
        assert record_binding(incoming) == "legacy"
        with pytest.raises(ImportHeld, match="older format, not bound") as held:
            import_file(a, path)
        assert held.value.plan.unbound and "p7" not in a.records
        assert "OLDER FORMAT, NOT BOUND" in held.value.plan.held[0]
        with pytest.raises(InputError):
            merge_into_ward(a, incoming, source=path.name, confirmed_by="x")
        report = merge_into_ward(a, incoming, source=path.name, confirmed_by="ef")
        assert report.created and report.added == len(doc["events"])
        rec = a.record("p7")
        assert record_binding(rec) == "bound" and a.budget("p7").total == 1
        assert all("confirmed by EF" in (e.origin or "") for e in rec.events)
    finally:
        a.close()
        b.close()


def test_export_envelope_graft_is_refused_in_the_nurses_words(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    a = open_ward(tmp_path / "a", clock, workstation="4A-PC1")
    b = open_ward(tmp_path / "b", clock, workstation="4B-PC1")
    try:
        _admit(a, "p2", "MRN-2")
        _admit(b, "p1", "MRN-1")
        b.chart("p1", "note", recorded_by="AB", text="p1's note")
        doc = _export_doc(b, "p1")
        doc["patient"].update({"patient_id": "p2", "mrn": "MRN-2"})
        path = tmp_path / "graft.json"
        path.write_bytes(encode_envelope(doc))  # chain intact, checksum valid
        before = (tmp_path / "a" / "journals" / "p2" / "4A-PC1.jsonl").read_bytes()
        with pytest.raises(TransferError) as refused:
            import_file(a, path)
        text = str(refused.value)
        assert "these events belong to a different patient record" in text
        assert "nothing was imported" in text
        assert (tmp_path / "a" / "journals" / "p2" / "4A-PC1.jsonl").read_bytes() == before
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bedside",
                "import",
                str(path),
                "--data-dir",
                str(tmp_path / "c"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode != 0 and "different patient record" in proc.stderr
    finally:
        a.close()
        b.close()

"""The record cache (issue 14 item 7): a restart checks only what it has not checked before.

Every test compares the cached load with a full load (cache removed) of the same journals,
and every tampering case must end exactly as the full check does.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

import bedside.store.journal as journal
from bedside.clinical.record import record_to_json
from bedside.common.clock import FakeClock
from bedside.store.journalcache import TAIL_MAX, RecordCache
from bedside.ward.service import Ward, open_ward

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every ``parse_journal`` call: (workstation, first byte checked)."""
    calls: list[tuple[str, int]] = []
    real = journal.parse_journal

    def spy(
        data: bytes, workstation: str, source: str, *args: object, **kw: object
    ) -> journal.Journal:
        calls.append((workstation, int(kw.get("start", 0))))  # type: ignore[call-overload]
        return real(data, workstation, source, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(journal, "parse_journal", spy)
    return calls


def _admit(ward: Ward, clock: FakeClock, pid: str = "p1") -> str:
    return ward.create_patient(
        recorded_by="AB",
        patient_id=pid,
        mrn=f"MRN-{pid}",
        name="Test Person",
        date_of_birth="1960-05-01",
        sex="female",
        weight_kg=70.0,
        weight_measured_at=clock.now(),
        product="cilta-cel",
        infusion_at=clock.now() - 48 * H,
        dose_history_complete=True,
    )


def _chart(root: Path, clock: FakeClock, pid: str, n: int, ws: str = "pc1") -> None:
    w = open_ward(root, clock, workstation=ws)
    for i in range(n):
        clock.advance(timedelta(minutes=5))
        w.chart(pid, "note", recorded_by="AB", text=f"note {i}")
    w.close()


def _full_load(root: Path, clock: FakeClock, pid: str, ws: str = "pc1") -> object:
    shutil.rmtree(RecordCache(root, ws).dir, ignore_errors=True)
    w = open_ward(root, clock, workstation=ws)
    try:
        return w.records.get(pid), dict(w.failures)
    finally:
        w.close()


def test_appended_lines_alone_are_checked_and_the_record_equals_a_full_load(
    tmp_path: Path, clock: FakeClock, parsed: list[tuple[str, int]]
) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    w.close()
    open_ward(root, clock, workstation="pc1").close()  # full load: writes the cache
    assert parsed == [("pc1", 0)]
    size = (root / "journals" / pid / "pc1.jsonl").stat().st_size
    for rnd in range(3):  # grows three times: the tail carries the earlier growth
        _chart(root, clock, pid, 2)
        parsed.clear()
        again = open_ward(root, clock, workstation="pc1")
        assert parsed[-1][1] >= size, parsed  # only bytes after the checked prefix
        cached = again.records[pid]
        assert again.budget(pid).total == 1
        again.chart(pid, "note", recorded_by="AB", text=f"after restart {rnd}")  # saves fine
        again.close()
        size = (root / "journals" / pid / "pc1.jsonl").stat().st_size
        record, failures = _full_load(root, clock, pid)
        assert not failures
        assert record is not None
        assert record.events[: len(cached.events)] == cached.events
        assert record.patient == cached.patient and len(record.events) == len(cached.events) + 1
        open_ward(root, clock, workstation="pc1").close()  # rebuild the cache from scratch


def test_a_tampered_appended_line_is_caught_as_by_the_full_check(
    tmp_path: Path, clock: FakeClock
) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.close()
    open_ward(root, clock, workstation="pc1").close()  # cache written
    _chart(root, clock, pid, 2)
    path = root / "journals" / pid / "pc1.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"text":"note 1"', b'"text":"note X"'))
    damaged = open_ward(root, clock, workstation="pc1")
    assert pid in damaged.failures and "checksum" in damaged.failures[pid]
    damaged.close()


def test_a_change_inside_the_checked_prefix_is_never_served_from_the_cache(
    tmp_path: Path, clock: FakeClock, parsed: list[tuple[str, int]]
) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    w.close()
    open_ward(root, clock, workstation="pc1").close()
    _chart(root, clock, pid, 1)
    # Same length, same size: one byte of the checked prefix flipped, lines appended after.
    path = root / "journals" / pid / "pc1.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"sex":"female"', b'"sex":"femalf"', 1))
    parsed.clear()
    damaged = open_ward(root, clock, workstation="pc1")
    assert ("pc1", 0) in parsed  # the whole journal was checked again
    assert pid in damaged.failures and "checksum" in damaged.failures[pid]
    damaged.close()


def test_a_truncated_journal_or_a_new_peer_journal_takes_the_full_path(
    tmp_path: Path, clock: FakeClock, parsed: list[tuple[str, int]]
) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.close()
    _chart(root, clock, pid, 3)
    open_ward(root, clock, workstation="pc1").close()
    # Another workstation writes its own journal: several journals, the merge decides.
    _chart(root, clock, pid, 1, ws="pc2")
    parsed.clear()
    merged = open_ward(root, clock, workstation="pc1")
    assert sorted(parsed) == [("pc1", 0), ("pc2", 0)]
    assert not merged.failures and len(merged.records[pid].events) == 4
    merged.close()
    # The own journal loses its last line (size shrinks): full load, which notices nothing
    # torn but the event is gone from the record (never served from the cache).
    path = root / "journals" / pid / "pc1.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    parsed.clear()
    shorter = open_ward(root, clock, workstation="pc1")
    assert ("pc1", 0) in parsed and len(shorter.records[pid].events) == 3
    shorter.close()


def test_a_torn_last_line_after_the_cache_is_ignored_as_always(
    tmp_path: Path, clock: FakeClock
) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.close()
    _chart(root, clock, pid, 2)
    open_ward(root, clock, workstation="pc1").close()
    path = root / "journals" / pid / "pc1.jsonl"
    with path.open("ab") as f:
        f.write(b'{"h":"00')  # a write that never completed
    torn = open_ward(root, clock, workstation="pc1")
    assert not torn.failures and len(torn.records[pid].events) == 2
    assert torn.store.torn_seen[pid] == ["pc1"]
    torn.chart(pid, "note", recorded_by="AB", text="after the torn line")  # cuts it off
    torn.close()
    record, failures = _full_load(root, clock, pid)
    assert not failures and record is not None and len(record.events) == 3


def test_a_long_tail_is_folded_into_the_entry(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "TAIL_MAX", 3)
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.close()
    open_ward(root, clock, workstation="pc1").close()
    cache = RecordCache(root, "pc1")
    _chart(root, clock, pid, 2)
    open_ward(root, clock, workstation="pc1").close()
    assert (cache.dir / f"{pid}.tail.bin").exists()
    _chart(root, clock, pid, 2)  # 4 events beyond the entry > TAIL_MAX: a new entry
    open_ward(root, clock, workstation="pc1").close()
    assert not (cache.dir / f"{pid}.tail.bin").exists()
    assert TAIL_MAX > 3
    again = open_ward(root, clock, workstation="pc1")
    assert len(again.records[pid].events) == 4
    again.close()


def test_a_tampered_tail_is_ignored(tmp_path: Path, clock: FakeClock) -> None:
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    w.close()
    open_ward(root, clock, workstation="pc1").close()
    _chart(root, clock, pid, 2)
    open_ward(root, clock, workstation="pc1").close()
    tail = RecordCache(root, "pc1").dir / f"{pid}.tail.bin"
    blob = bytearray(tail.read_bytes())
    blob[-3] ^= 1
    tail.write_bytes(bytes(blob))
    again = open_ward(root, clock, workstation="pc1")
    assert not again.failures and len(again.records[pid].events) == 2
    again.close()


def test_a_record_served_from_the_cache_is_the_full_load_field_for_field(
    tmp_path: Path, clock: FakeClock, parsed: list[tuple[str, int]]
) -> None:
    """Events come back from the cache's rows as the same frozen models: same values, same
    set fields, same JSON, still frozen; the field-name sets are shared, never mutated."""
    root = tmp_path / "w"
    w = open_ward(root, clock, workstation="pc1")
    pid = _admit(w, clock)
    clock.advance(H)
    w.chart(
        pid,
        "vitals",
        recorded_by="AB",
        temperature_c=38.4,
        heart_rate=101,
        systolic_mmhg=118,
        diastolic_mmhg=70,
        spo2_pct=96,
        respiratory_rate=20,
    )
    w.chart(pid, "note", recorded_by="AB", text="febrile")
    w.give_tocilizumab(pid, given_by="AB", checked_by="CD")
    noted = w.chart(pid, "note", recorded_by="AB", text="charted in error")
    w.correct(pid, noted.id, action="void", reason="wrong patient", recorded_by="AB")
    w.close()
    full, failures = _full_load(root, clock, pid)  # writes the cache
    assert not failures and full is not None
    parsed.clear()
    again = open_ward(root, clock, workstation="pc1")
    cached = again.records[pid]
    budget = again.budget(pid)
    again.close()
    assert parsed == []  # nothing re-parsed: the whole record came from the cache
    assert record_to_json(cached) == record_to_json(full)  # type: ignore[arg-type]
    assert cached == full
    assert len(cached.events) == len(full.events) == 5  # type: ignore[attr-defined]
    for mine, theirs in zip(cached.events, full.events, strict=True):  # type: ignore[attr-defined]
        assert type(mine) is type(theirs)
        assert mine.model_fields_set == theirs.model_fields_set
        assert mine.model_dump(exclude_unset=True) == theirs.model_dump(exclude_unset=True)
        with pytest.raises(ValidationError):
            mine.recorded_by = "ZZ"  # still frozen
    assert budget.total == 1
    notes = [e for e in cached.events if e.kind == "note"]
    assert notes[0].model_fields_set is notes[1].model_fields_set  # one shared set
    assert cached.patient == full.patient  # type: ignore[attr-defined]

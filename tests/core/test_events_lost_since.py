"""verify's comparison with a backup: vanished and changed events, named without values."""

from __future__ import annotations

from bedside.clinical.record import events_lost_since


def _ev(i: str, kind: str, **fields: object) -> dict[str, object]:
    return {"id": i, "kind": kind, "prev_hash": "p" + i, "hash": "h" + i, **fields}


def test_vanished_and_changed_events_are_named_by_position_and_kind_only() -> None:
    older = [_ev("a", "vitals", t=37.0), _ev("b", "medication", dose=560), _ev("c", "note")]
    now = {"a": _ev("a", "vitals", t=37.0), "c": _ev("c", "note", text="edited")}
    lines = events_lost_since(older, now, "b1.json", "the file")
    assert lines == [
        "1 event(s) in backup b1.json VANISHED from the file (#2 medication)",
        "1 event(s) CHANGED since backup b1.json (#3 note)",
    ]
    assert not any("560" in line or "edited" in line for line in lines)


def test_chain_hashes_and_ignored_fields_are_not_content() -> None:
    older = [_ev("a", "vitals", t=37.0, origin="import x")]
    rechained = {"a": {**_ev("a", "vitals", t=37.0, origin="pc2"), "hash": "other"}}
    assert events_lost_since(older, rechained, "b", "the file") == [
        "1 event(s) CHANGED since backup b (#1 vitals)"
    ]
    ignore = frozenset({"prev_hash", "hash", "origin"})
    assert events_lost_since(older, rechained, "b", "the journals", ignore=ignore) == []
    assert events_lost_since(older, {}, "b", "the journals") == [
        "1 event(s) in backup b VANISHED from the journals (#1 vitals)"
    ]

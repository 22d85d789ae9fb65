"""Corrupt and hostile files (reliability.md AT-07).

Invariant for every input: ``load`` either returns exactly the valid value or raises
``CorruptDataError`` (nothing else, never a crash); the bytes on disk are unchanged; a
byte-identical copy is in ``quarantine/``; saving that patient is then refused. Messages
never contain the patient id or record content.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import CANARY, make_envelope, validate_events

from bedside.common.errors import CorruptDataError, SchemaTooNewError, StorageError
from bedside.common.jsonio import dumps_canonical, strict_loads
from bedside.store.storage import CHECKSUM_KEY, DataDir, QuarantinedError, encode_envelope

SECRET_ID = "SECRETPATIENT42"


def _valid() -> tuple[dict, bytes]:
    envelope = make_envelope(2)
    return envelope, encode_envelope(envelope)


def _corpus() -> list[tuple[str, bytes]]:
    envelope, valid = _valid()
    cases: list[tuple[str, bytes]] = [(f"trunc{i}", valid[:i]) for i in range(len(valid))]
    rng = random.Random(1234)
    for i in range(400):
        data = bytearray(valid)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        cases.append((f"flip{i}", bytes(data)))
    for i in range(50):
        data = bytearray(valid)
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cases.append((f"scramble{i}", bytes(data)))

    def sealed(doc: dict) -> bytes:
        return encode_envelope(doc)

    text = valid.decode()
    cases += [
        ("empty", b""),
        ("nul", b"\x00" * 500),
        ("spaces", b"   \n"),
        ("bom", b"\xef\xbb\xbf" + valid),
        ("utf16", text.encode("utf-16")),
        ("latin1", text.replace(CANARY, CANARY + " é").encode("latin-1")),
        ("top_array", b'[{"schema_version": 1}]\n'),
        ("top_string", b'"hello"\n'),
        ("top_null", b"null\n"),
        ("dup_top", text.replace('"events"', '"schema_version": 1,\n "events"', 1).encode()),
        ("dup_nested", text.replace('"hr_bpm"', '"temp_c": 1, "hr_bpm"', 1).encode()),
        ("nan", text.replace('"weight_kg":71.5', '"weight_kg":NaN').encode()),
        ("inf", text.replace('"weight_kg":71.5', '"weight_kg":Infinity').encode()),
        ("ninf", text.replace('"weight_kg":71.5', '"weight_kg":-Infinity').encode()),
        ("overflow", text.replace('"weight_kg":71.5', '"weight_kg":1e400').encode()),
        ("huge_int", text.replace('"weight_kg":71.5', '"weight_kg":' + "9" * 5000).encode()),
        ("surrogate", text.replace("nurse.b.ramirez", "\\ud800", 1).encode()),
        ("deep", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("trailing_garbage", valid + b"{}"),
        ("no_checksum", dumps_canonical(envelope)),
        ("bad_checksum", text.replace(text.split('"')[3], "0" * 64, 1).encode()),
        ("edited_value", text.replace(CANARY, CANARY.upper(), 1).encode()),
        ("newer_schema", sealed({**envelope, "schema_version": 2})),
        ("schema_zero", sealed({**envelope, "schema_version": 0})),
        ("schema_str", sealed({**envelope, "schema_version": "1"})),
        ("schema_bool", sealed({**envelope, "schema_version": True})),
        ("schema_float", sealed({**envelope, "schema_version": 1.0})),
        ("schema_missing", sealed({k: v for k, v in envelope.items() if k != "schema_version"})),
        ("events_dict", sealed({**envelope, "events": {}})),
        ("events_str", sealed({**envelope, "events": "[]"})),
        ("event_not_obj", sealed({**envelope, "events": [1]})),
        ("event_no_id", sealed({**envelope, "events": [{"ts_utc": "x"}]})),
        ("event_dup_id", sealed({**envelope, "events": envelope["events"] * 2})),
        ("extra_field", sealed({**envelope, "evnets": []})),
        ("patient_null", sealed({**envelope, "patient": None})),
    ]
    return cases


CORPUS = _corpus()


def test_corpus_is_substantial() -> None:
    assert len(CORPUS) > 1000


def test_corpus_never_silently_accepted(tmp_path: Path, datadir: DataDir) -> None:
    envelope, _ = _valid()
    outcomes = {"loaded": 0, "refused": 0}
    for n, (name, data) in enumerate(CORPUS):
        pid = f"zq{n}"
        path = datadir.patients_dir / f"{pid}.json"
        path.write_bytes(data)
        try:
            loaded = datadir.load(pid, validate=validate_events)
        except CorruptDataError as exc:
            outcomes["refused"] += 1
            assert path.read_bytes() == data, f"{name}: original changed"
            copy = exc.quarantine_path
            assert copy is not None and copy.parent == datadir.quarantine_dir, name
            assert copy.read_bytes() == data, f"{name}: quarantine copy differs"
            assert CANARY not in str(exc), f"{name}: message leaks record content"
            assert "zq" not in str(exc), f"{name}: message names the patient id"
            assert datadir.is_quarantined(pid), name
        else:
            outcomes["loaded"] += 1
            assert loaded.raw == envelope, f"{name}: accepted a different value"
            assert loaded.value == envelope, name
    # Sanity: only trivially harmless variants (e.g. the final newline cut off) load.
    assert outcomes["loaded"] <= 5, outcomes
    assert outcomes["refused"] >= len(CORPUS) - 5


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("newer_schema", SchemaTooNewError),
        ("bom", CorruptDataError),
        ("dup_top", CorruptDataError),
        ("nan", CorruptDataError),
        ("empty", CorruptDataError),
        ("top_array", CorruptDataError),
    ],
)
def test_selected_cases_block_saving(datadir: DataDir, name: str, expected: type) -> None:
    data = dict(CORPUS)[name]
    path = datadir.patients_dir / f"{SECRET_ID}.json"
    path.write_bytes(data)
    with pytest.raises(expected) as excinfo:
        datadir.load(SECRET_ID, validate=validate_events)
    assert SECRET_ID not in str(excinfo.value)
    assert "NO verified backup exists" in str(excinfo.value)
    with pytest.raises(QuarantinedError):
        datadir.save(SECRET_ID, make_envelope(1), expected_token=None, validate=validate_events)
    # Even a fresh DataDir (a restart) keeps refusing: the block is on disk.
    again = DataDir(datadir.root, clock=datadir._clock)
    assert again.is_quarantined(SECRET_ID)
    assert path.read_bytes() == data


def test_loading_twice_quarantines_once(datadir: DataDir) -> None:
    (datadir.patients_dir / "p1.json").write_bytes(b"{")
    for _ in range(3):
        with pytest.raises(CorruptDataError):
            datadir.load("p1", validate=validate_events)
    assert len(datadir.quarantined_copies("p1")) == 1


def test_validator_exception_of_any_type_is_corruption(datadir: DataDir) -> None:
    datadir.save("p1", make_envelope(1), expected_token=None, validate=validate_events)

    def exploding(doc: dict) -> None:
        raise ZeroDivisionError("boom")

    with pytest.raises(CorruptDataError, match="ZeroDivisionError"):
        datadir.load("p1", validate=exploding)


# ----------------------------------------------------------------- strict_loads units


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b'{"a": 1e999}', "too large"),
        (b"[]", "must be a JSON object"),
        (b'{"a": "\\udc00"}', "surrogate"),
        (b'{"\\ud800": 1}', "surrogate"),
        (b'{"a": ["\\ud800"]}', "surrogate"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b'{"a": 1', "not valid JSON"),
    ],
)
def test_strict_loads_refusals(data: bytes, fragment: str) -> None:
    with pytest.raises(CorruptDataError) as excinfo:
        strict_loads(data, source="unit")
    assert str(excinfo.value).startswith("unit: ")
    assert fragment in str(excinfo.value)


def test_strict_loads_message_has_no_content() -> None:
    with pytest.raises(CorruptDataError) as excinfo:
        strict_loads(b'{"name": "' + CANARY.encode() + b'", "x": NaN}', source="s")
    assert CANARY not in str(excinfo.value)


def test_dumps_canonical_format() -> None:
    assert dumps_canonical({"b": 1, "a": "é"}) == '{\n "a": "é",\n "b": 1\n}\n'.encode()
    with pytest.raises(ValueError):
        dumps_canonical({"a": float("nan")})


def test_reserved_checksum_key_refused(datadir: DataDir) -> None:
    with pytest.raises(StorageError):
        datadir.save(
            "p1",
            {**make_envelope(0), CHECKSUM_KEY: "x"},
            expected_token=None,
            validate=validate_events,
        )


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=5))
def test_round_trip_is_exact(doc: dict) -> None:
    try:
        data = dumps_canonical(doc)
    except ValueError:
        return  # lone surrogates cannot be written as UTF-8: refused at save time
    assert strict_loads(data, source="rt") == doc
    assert dumps_canonical(strict_loads(data, source="rt")) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_corrupt_data_error(data: bytes) -> None:
    try:
        result = strict_loads(data, source="fuzz")
    except CorruptDataError:
        return
    assert isinstance(result, dict)
    assert result == json.loads(data)


def test_every_crafted_variant_really_differs() -> None:
    """Guard: a text pattern that no longer matches would make a corpus entry a no-op."""
    _, valid = _valid()
    crafted = [(n, d) for n, d in CORPUS if not n.startswith(("trunc", "flip", "scramble"))]
    same = [n for n, d in crafted if d == valid]
    assert not same, same

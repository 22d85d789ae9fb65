"""The protocol file: every number sourced; a malformed protocol never loads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bedside.errors import ProtocolError
from bedside.protocol import DEFAULT_PROTOCOL, Protocol, load_default_protocol, load_protocol

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads(DEFAULT_PROTOCOL.read_text("utf-8"))


def _write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "p.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return path


def _mutated(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return data


_DELETE = object()


def test_default_protocol_loads_with_identity_and_sign_off_fields() -> None:
    p = load_default_protocol()
    assert p.protocol_id and p.version and p.effective_date
    assert p.label == f"{p.protocol_id} v{p.version}"
    assert p.signed_off is False  # shipped unsigned: the UI says so on every screen
    assert p.tocilizumab.mg_per_kg.value == 8
    assert p.tocilizumab.max_dose_mg.value == 800
    assert p.tocilizumab.max_total.enforcement == "hard"
    assert p.ctcae.version == "5.0"
    assert set(p.eligibility.criteria) == {"label-2024", "label-2021"}
    assert {d.id for d in p.discrepancies} >= {"D1", "D2", "D5", "D7"}


def test_every_clinical_number_cites_a_known_source() -> None:
    p = load_default_protocol()

    def walk(obj: Any, path: str) -> list[str]:
        missing = []
        if isinstance(obj, dict):
            if "value" in obj and "source" not in obj:
                missing.append(path)
            for k, v in obj.items():
                missing += walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                missing += walk(v, f"{path}[{i}]")
        return missing

    assert walk(BASE, "protocol") == []
    for key in ("S1", "S2", "S10", "S11", "S12a", "SEED", "LOCAL"):
        assert key in p.sources


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tocilizumab__mg_per_kgg": 8}, "mg_per_kgg"),
        ({"tocilizumab__min_interval__value": -8}, "tocilizumab.min_interval.value"),
        ({"tocilizumab__min_interval__value": 0}, "tocilizumab.min_interval.value"),
        ({"tocilizumab__max_per_24h__value": 5}, "max_per_24h"),
        ({"tocilizumab__max_dose_mg__source": _DELETE}, "tocilizumab.max_dose_mg.source"),
        ({"tocilizumab__max_dose_mg__source": ""}, "tocilizumab.max_dose_mg.source"),
        ({"crs__fever_threshold_c__source": "S99"}, "S99"),
        ({"tocilizumab__mg_per_kg__value": "8"}, "tocilizumab.mg_per_kg.value"),
        ({"monitoring__vitals_interval_h__value": -4}, "monitoring.vitals_interval_h.value"),
        ({"tocilizumab__max_total__enforcement": "maybe"}, "tocilizumab.max_total.enforcement"),
        ({"effective_date": "2026-13-01"}, "effective_date"),
    ],
)
def test_malformed_protocol_names_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol(_write(tmp_path, _mutated(**changes)))
    assert field in str(info.value)
    assert "p.json" in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"format": "bedside-protocol/1", "format": "x"}', "duplicate key"),
        ('{"a": NaN}', "NaN"),
        ("[1, 2]", "JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_unparseable_protocols_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        load_protocol(_write(tmp_path, text))


def test_validate_refuses_a_malformed_protocol_with_exit_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, _mutated(**{"tocilizumab__max_per_24h__value": 9}))
    proc = subprocess.run(
        [sys.executable, "-m", "bedside", "validate", "--protocol", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "max_per_24h" in proc.stderr


def test_protocol_model_is_strict() -> None:
    assert Protocol.model_config.get("extra") == "forbid"
    assert Protocol.model_config.get("strict") is True

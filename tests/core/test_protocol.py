"""The protocol file: every number sourced; a malformed protocol never loads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bedside.clinical.protocol import (
    DEFAULT_PROTOCOL,
    Protocol,
    load_default_protocol,
    load_protocol,
)
from bedside.common.errors import ProtocolError

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
        ({"dose_limits__tocilizumab__mg_per_kgg": 8}, "mg_per_kgg"),
        (
            {"dose_limits__tocilizumab__min_interval__value": -8},
            "dose_limits.tocilizumab.min_interval.value",
        ),
        (
            {"dose_limits__tocilizumab__min_interval__value": 0},
            "dose_limits.tocilizumab.min_interval.value",
        ),
        ({"dose_limits__tocilizumab__max_per_24h__value": 5}, "max_per_24h"),
        (
            {"dose_limits__tocilizumab__max_dose_mg__source": _DELETE},
            "dose_limits.tocilizumab.max_dose_mg.source",
        ),
        (
            {"dose_limits__tocilizumab__max_dose_mg__source": ""},
            "dose_limits.tocilizumab.max_dose_mg.source",
        ),
        ({"crs__fever_threshold_c__source": "S99"}, "S99"),
        (
            {"dose_limits__tocilizumab__mg_per_kg__value": "8"},
            "dose_limits.tocilizumab.mg_per_kg.value",
        ),
        ({"monitoring__vitals_interval_h__value": -4}, "monitoring.vitals_interval_h.value"),
        (
            {"dose_limits__tocilizumab__max_total__enforcement": "maybe"},
            "dose_limits.tocilizumab.max_total.enforcement",
        ),
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
    bad = _write(tmp_path, _mutated(**{"dose_limits__tocilizumab__max_per_24h__value": 9}))
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


# --------------------------------------------------------------------------- clinical content


def _sourced(obj: Any, path: str = "protocol") -> list[tuple[str, str, bool]]:
    """Every (path, source, verified) of the protocol file."""
    out: list[tuple[str, str, bool]] = []
    if isinstance(obj, dict):
        if "source" in obj and "verified" in obj:
            out.append((path, obj["source"], obj["verified"]))
        for k, v in obj.items():
            out.extend(_sourced(v, f"{path}.{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_sourced(v, f"{path}[{i}]"))
    return out


def test_nothing_is_verified_on_seed_or_local_alone() -> None:
    bad = [
        path
        for path, source, verified in _sourced(BASE)
        if verified and {s.strip() for s in source.split(",")} <= {"SEED", "LOCAL"}
    ]
    assert bad == []


def test_sources_table_has_the_reference_keys() -> None:
    p = load_default_protocol()
    assert {"S5", "S9", "S12b", "S14", "S15", "S16", "S17", "S20"} <= set(p.sources)


def test_crs_management_follows_the_current_labels_and_guidelines() -> None:
    crs = load_default_protocol().management.crs
    assert "dexamethasone 20 mg IV every 6 h" in crs["4"].text
    assert "methylprednisolone 1–2 g" in crs["4"].text
    assert "10 mg IV every 6 h (seed)" not in crs["4"].text
    assert "Consider one dose of tocilizumab" in crs["1"].text
    assert "Dexamethasone 10 mg IV every 12–24 h" in crs["2"].text
    for entry in crs.values():
        assert "SEED" not in entry.source
    assert {"D7"} <= set(crs["4"].discrepancies) and "D9" in crs["1"].discrepancies


def test_prolonged_grade1_review_kept_cited_correctly() -> None:
    mon = load_default_protocol().monitoring
    assert mon.crs_prolonged_grade1_h.value == 72
    assert mon.crs_prolonged_grade1_h.source == "SEED" and not mon.crs_prolonged_grade1_h.verified
    assert "S2" not in mon.crs_prolonged_grade1_h.source  # S2 does not say it (issue 11)
    assert "D9" in (mon.crs_prolonged_grade1_h.note or "")


def test_discrepancies_filled_and_shown_where_their_rule_is_used() -> None:
    p = load_default_protocol()
    by_id = {d.id: d for d in p.discrepancies}
    want = {
        "D1": "eligibility",
        "D2": "eligibility",
        "D5": "crs_grading",
        "D6": "crs_grading",
        "D7": "crs_management",
        "D8": "crs_management",
        "D9": "crs_management",
        "D10": "infections",
        "D13": "monitoring",
        "D14": "toxicities",
        "D15": "labs",
        "D16": "labs",
    }
    for d_id, area in want.items():
        assert area in by_id[d_id].shown_in, d_id
    d5 = by_id["D5"]  # the two fields were swapped in the seed protocol
    assert "beyond grade 1" in d5.seed_statement
    assert d5.current_position.startswith("ASTCT 2019: fever ≥ 38 °C is required")
    assert by_id["D15"].source == "S12b"
    assert "44.8" in by_id["D10"].seed_statement and "20–27 %" in by_id["D10"].current_position


def test_post_infusion_figures_per_label_version() -> None:
    mon = load_default_protocol().monitoring
    now = mon.post_infusion[mon.post_infusion_current]
    old = mon.post_infusion["us-rems-2021"]
    assert not now.superseded and old.superseded
    assert now.daily_monitoring_days["cilta-cel"].value == 7
    assert old.daily_monitoring_days["cilta-cel"].value == 10
    assert (now.proximity_days["ide-cel"].value, old.proximity_days["ide-cel"].value) == (14, 28)
    assert (now.driving_days["ide-cel"].value, old.driving_days["ide-cel"].value) == (14, 56)
    assert not now.driving_days["ide-cel"].verified  # 2 weeks is secondary-source only
    assert mon.daily_monitoring_days == now.daily_monitoring_days


def test_unknown_discrepancy_or_current_version_fails_to_load(tmp_path: Path) -> None:
    data = _mutated(monitoring__post_infusion_current="us-label-2030")
    with pytest.raises(ProtocolError, match="post_infusion_current"):
        load_protocol(_write(tmp_path, data))
    data = copy.deepcopy(BASE)
    data["management"]["crs"]["1"]["discrepancies"] = ["D99"]
    with pytest.raises(ProtocolError, match="D99"):
        load_protocol(_write(tmp_path, data))
    data = copy.deepcopy(BASE)
    data["discrepancies"][0]["shown_in"] = []
    with pytest.raises(ProtocolError, match="shown_in"):
        load_protocol(_write(tmp_path, data))


def test_override_policy_is_local() -> None:
    toc = load_default_protocol().tocilizumab
    assert toc.override_policy.requires_prescriber
    assert toc.override_policy.source == "LOCAL" and not toc.override_policy.verified

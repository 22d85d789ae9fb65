"""The shipped validation vectors, run through ``python -m bedside validate``.

The command is the contract of the clinical rules (``design/validation-vectors.md``):
these tests run it as a pharmacist would, in a subprocess, on the files under
``resources/validation/``, and check that it reports malformed case files (exit 2)
and wrong expectations (exit 1) in a way a person can act on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VALIDATION_DIR = REPO / "resources" / "validation"
FORMAT = "bedside-validation/1"
CHECK_OF_FILE = {
    "crs_grade.json": "crs_grade",
    "ice_score.json": "ice_score",
    "icans_grade.json": "icans_grade",
    "ctcae_grade.json": "ctcae_grade",
    "tocilizumab_dose.json": "tocilizumab_dose",
    "tocilizumab_check.json": "tocilizumab_check",
    "eligibility.json": "eligibility",
    "escalations.json": "escalations",
}
CLOSING = re.compile(r"^(\d+) passed, (\d+) failed$")


def run_validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bedside validate ARGS`` from the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bedside", "validate", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def closing_line(stdout: str) -> tuple[int, int]:
    """The ``N passed, M failed`` line that ends a text report."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "validate printed nothing"
    match = CLOSING.match(lines[-1].strip())
    assert match, f"last line is not 'N passed, M failed': {lines[-1]!r}"
    return int(match.group(1)), int(match.group(2))


def shipped_files() -> list[Path]:
    return sorted(VALIDATION_DIR.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def case_counts() -> dict[str, int]:
    return {p.name: len(load(p)["cases"]) for p in shipped_files()}


# --------------------------------------------------------------------------- the files


def test_shipped_files_are_well_formed() -> None:
    files = shipped_files()
    assert {p.name for p in files} >= set(CHECK_OF_FILE) - {"escalations.json"}
    all_ids: list[str] = []
    for path in files:
        data = load(path)
        assert data["format"] == FORMAT, path.name
        assert data["protocol"] is None, path.name
        assert set(data) == {"format", "protocol", "cases"}, path.name
        for case in data["cases"]:
            assert set(case) == {"id", "check", "input", "expect"}, (path.name, case.get("id"))
            assert case["check"] == CHECK_OF_FILE[path.name], (path.name, case["id"])
            assert re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", case["id"]), case["id"]
            assert isinstance(case["input"], dict), case["id"]
            assert case["expect"], case["id"]
            if "error" in case["expect"]:
                assert case["expect"] == {"error": True}, case["id"]
            all_ids.append(case["id"])
    duplicates = sorted({i for i in all_ids if all_ids.count(i) > 1})
    assert not duplicates, duplicates
    assert len(all_ids) >= 150


def test_every_check_has_valid_and_error_cases() -> None:
    for path in shipped_files():
        cases = load(path)["cases"]
        errors = [c for c in cases if c["expect"] == {"error": True}]
        assert errors, f"{path.name} has no error cases"
        assert len(errors) < len(cases), f"{path.name} has only error cases"


# --------------------------------------------------------------------------- the command


def test_shipped_vectors_pass() -> None:
    proc = run_validate()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed, failed = closing_line(proc.stdout)
    assert failed == 0
    assert passed >= 150
    assert passed == sum(case_counts().values())


def test_explicit_files_same_as_default() -> None:
    proc = run_validate(*shipped_files())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert closing_line(proc.stdout) == (sum(case_counts().values()), 0)


def test_json_report_has_per_file_counts() -> None:
    proc = run_validate("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    expected = case_counts()
    assert report["failed"] == 0
    assert report["passed"] == sum(expected.values()) >= 150
    per_file: dict[str, int] = {}
    for row in report["results"]:
        assert {"file", "id", "check", "ok", "expected", "got", "error"} <= set(row)
        assert row["ok"] is True, row
        per_file[Path(row["file"]).name] = per_file.get(Path(row["file"]).name, 0) + 1
    assert per_file == expected


def write_cases(path: Path, cases: list[dict], *, raw: str | None = None) -> Path:
    if raw is not None:
        path.write_text(raw, encoding="utf-8")
    else:
        body = {"format": FORMAT, "protocol": None, "cases": cases}
        path.write_text(json.dumps(body), encoding="utf-8")
    return path


GOOD_ICE = {
    "id": "ice-ok",
    "check": "ice_score",
    "input": {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
    "expect": {"score": 10},
}


@pytest.mark.parametrize(
    ("name", "cases", "raw", "needles"),
    [
        (
            "unknown_check.json",
            [GOOD_ICE, {**GOOD_ICE, "id": "case-with-bad-check", "check": "crs_grades"}],
            None,
            ["case-with-bad-check", "crs_grades"],
        ),
        (
            "missing_id.json",
            [GOOD_ICE, {k: v for k, v in GOOD_ICE.items() if k != "id"}],
            None,
            ["id"],
        ),
        (
            "duplicate_id.json",
            [GOOD_ICE, {**GOOD_ICE, "id": "twice"}, {**GOOD_ICE, "id": "twice"}],
            None,
            ["twice", "duplicate"],
        ),
        ("bad_json.json", [], '{"format": "bedside-validation/1", "cases": [', []),
        (
            "wrong_format.json",
            [],
            json.dumps({"format": "bedside-validation/0", "protocol": None, "cases": [GOOD_ICE]}),
            ["format"],
        ),
        (
            "misspelt_expect.json",
            [{**GOOD_ICE, "id": "expects-scor", "expect": {"scor": 10}}],
            None,
            ["expects-scor", "scor"],
        ),
    ],
)
def test_malformed_file_exits_2(
    tmp_path: Path, name: str, cases: list[dict], raw: str | None, needles: list[str]
) -> None:
    path = write_cases(tmp_path / name, cases, raw=raw)
    proc = run_validate(path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert name in output, output
    for needle in needles:
        assert needle in output, (needle, output)
    assert "Traceback" not in output


def test_malformed_file_stops_a_run_with_good_files(tmp_path: Path) -> None:
    bad = write_cases(tmp_path / "dup.json", [GOOD_ICE, GOOD_ICE])
    proc = run_validate(VALIDATION_DIR / "ice_score.json", bad)
    assert proc.returncode == 2
    assert "dup.json" in proc.stdout + proc.stderr
    assert "ice-ok" in proc.stdout + proc.stderr


def test_wrong_expectation_exits_1_and_names_case_field_values(tmp_path: Path) -> None:
    wrong = [
        GOOD_ICE,
        {**GOOD_ICE, "id": "ice-deliberately-wrong", "expect": {"score": 9}},
        {
            "id": "crs-deliberately-wrong",
            "check": "crs_grade",
            "input": {"temperature_c": 38.5, "oxygen_device": "bipap"},
            "expect": {"grade": 3},
        },
    ]
    path = write_cases(tmp_path / "wrong.json", wrong)
    proc = run_validate(path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert closing_line(proc.stdout) == (1, 2)
    lines = proc.stdout.splitlines()
    ice_line = next(line for line in lines if "ice-deliberately-wrong" in line)
    assert "score" in ice_line
    assert re.search(r"\b9\b", ice_line) and re.search(r"\b10\b", ice_line), ice_line
    crs_line = next(line for line in lines if "crs-deliberately-wrong" in line)
    assert "grade" in crs_line
    assert re.search(r"\b3\b", crs_line) and re.search(r"\b4\b", crs_line), crs_line
    assert not any("ice-ok" in line for line in lines)


def test_error_expectations_are_enforced_both_ways(tmp_path: Path) -> None:
    cases = [
        {  # valid input that expects an error: must fail
            **GOOD_ICE,
            "id": "valid-input-expected-error",
            "expect": {"error": True},
        },
        {  # invalid input that expects a result: must fail
            "id": "invalid-input-expected-result",
            "check": "tocilizumab_dose",
            "input": {"weight_kg": "70"},
            "expect": {"dose_mg": 560},
        },
    ]
    proc = run_validate(write_cases(tmp_path / "errors.json", cases))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert closing_line(proc.stdout) == (0, 2)
    assert "valid-input-expected-error" in proc.stdout
    assert "invalid-input-expected-result" in proc.stdout


def test_wrong_expectation_json_report(tmp_path: Path) -> None:
    path = write_cases(
        tmp_path / "wrong.json", [GOOD_ICE, {**GOOD_ICE, "id": "bad", "expect": {"score": 3}}]
    )
    proc = run_validate(path, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert (report["passed"], report["failed"]) == (1, 1)
    bad = next(r for r in report["results"] if r["id"] == "bad")
    assert bad["ok"] is False
    assert bad["check"] == "ice_score"
    assert bad["expected"] == {"score": 3}
    assert bad["got"]["score"] == 10

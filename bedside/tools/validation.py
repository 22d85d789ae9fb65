"""``python -m bedside validate``: run validation-vector case files against the rules.

The file format and semantics are fixed by ``design/validation-vectors.md``. A case
file is malformed (exit 2) when it is not JSON, has the wrong ``format``, a case lacks
an id or has a duplicate one, names an unknown check, or expects an output field the
check does not produce (a misspelt ``expect`` key must never pass silently).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

import bedside.clinical.rules as rules_module
from bedside.clinical import escalations
from bedside.clinical.protocol import (
    RESOURCES,
    Protocol,
    find_protocol,
    format_validation_error,
    load_default_protocol,
    load_protocol,
)
from bedside.clinical.rules import RULES
from bedside.common.errors import BedsideError, CorruptDataError, InputError, ProtocolError
from bedside.common.jsonio import strict_loads
from bedside.common.timeutil import iso_utc, parse_instant

logger = logging.getLogger(__name__)

FORMAT = "bedside-validation/1"
VALIDATION_DIR = RESOURCES / "validation"
CASE_KEYS = {"id", "check", "input", "expect"}
OPTIONAL_CASE_KEYS = {"note"}


class MalformedCaseFile(BedsideError):
    """A case file cannot be run; the message names the file (and case id)."""


@dataclass(frozen=True)
class Check:
    """A runnable check: validate the input, compute, and list its output fields."""

    run: Callable[[dict[str, Any], Protocol], dict[str, Any]]
    outputs: frozenset[str]
    compare: Callable[[dict[str, Any], dict[str, Any]], list[tuple[str, Any, Any]]] | None = None


@dataclass
class CaseResult:
    """Outcome of one case."""

    file: str
    id: str
    check: str
    ok: bool
    expected: Any = None
    got: Any = None
    error: str | None = None
    mismatches: list[tuple[str, Any, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` report row."""
        return {
            "file": self.file,
            "id": self.id,
            "check": self.check,
            "ok": self.ok,
            "expected": self.expected,
            "got": _jsonable(self.got),
            "error": self.error,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _rule_check(name: str) -> Check:
    model, fn = RULES[name]

    def run(data: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
        try:
            inp = model.model_validate(data)
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, what=name)) from None
        result = fn(inp, protocol)
        return result.model_dump()

    return Check(run=run, outputs=frozenset(_result_fields(name)))


def _result_fields(name: str) -> set[str]:
    fn = RULES[name][1]
    result_type = fn.__annotations__["return"]
    if isinstance(result_type, str):
        result_type = getattr(rules_module, result_type)
    if not (isinstance(result_type, type) and issubclass(result_type, BaseModel)):
        raise TypeError(f"rule {name} has no result model")
    return set(result_type.model_fields)


def _build_checks() -> dict[str, Check]:
    checks = {name: _rule_check(name) for name in RULES}
    # Escalation timers: derived from an event list; `due`/`not_due` compared per the contract.
    checks["escalations"] = Check(
        run=escalations.contract_escalations,
        outputs=escalations.CONTRACT_OUTPUTS,
        compare=escalations.compare_escalations,
    )
    return checks


def _values_equal(expected: Any, got: Any) -> bool:
    if isinstance(got, datetime) or (isinstance(expected, str) and isinstance(got, datetime)):
        try:
            return parse_instant(expected) == got
        except ValueError:
            return False
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, list) and isinstance(got, list):
        return _lists_equal_as_sets(expected, got)
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(
            _values_equal(expected[k], got[k]) for k in expected
        )
    return bool(expected == got)


def _lists_equal_as_sets(expected: list[Any], got: list[Any]) -> bool:
    remaining = list(got)
    for e in expected:
        for i, g in enumerate(remaining):
            if _values_equal(e, g):
                del remaining[i]
                break
        else:
            return False
    if remaining:
        # Duplicates are irrelevant for set comparison: any leftover must equal an expected item.
        return all(any(_values_equal(e, g) for e in expected) for g in remaining)
    return True


def default_compare(expect: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Compare the expected output fields; return (field, expected, got) mismatches."""
    return [
        (key, value, got.get(key))
        for key, value in expect.items()
        if not _values_equal(value, got.get(key))
    ]


def _case_label(path: Path, case_id: object) -> str:
    return f"{path.name}: case {case_id!r}"


def load_case_file(path: Path, checks: dict[str, Check]) -> tuple[dict[str, Any], list[dict]]:
    """Parse and structurally check one case file; raise MalformedCaseFile."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MalformedCaseFile(f"{path}: cannot read ({exc.strerror})") from None
    try:
        # The one strict reader shared with patient files and the protocol: duplicate
        # keys (an "expect" written twice), NaN/Infinity, BOM and bad UTF-8 are refused.
        data: Any = strict_loads(raw, source=path.name)
    except CorruptDataError as exc:
        raise MalformedCaseFile(str(exc)) from None
    if not isinstance(data, dict):
        raise MalformedCaseFile(f"{path.name}: top level must be an object")
    unknown = set(data) - {"format", "protocol", "cases", "description"}
    if unknown:
        raise MalformedCaseFile(f"{path.name}: unknown top-level key(s) {sorted(unknown)}")
    if data.get("format") != FORMAT:
        raise MalformedCaseFile(
            f"{path.name}: format must be {FORMAT!r}, got {data.get('format')!r}"
        )
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise MalformedCaseFile(f"{path.name}: 'cases' must be a non-empty list")
    seen: set[str] = set()
    for index, case in enumerate(cases):
        if not isinstance(case, dict):
            raise MalformedCaseFile(f"{path.name}: case #{index + 1} is not an object")
        cid = case.get("id")
        if not isinstance(cid, str) or not cid:
            raise MalformedCaseFile(f"{path.name}: case #{index + 1} has no 'id'")
        where = _case_label(path, cid)
        if cid in seen:
            raise MalformedCaseFile(f"{where}: duplicate id")
        seen.add(cid)
        extra = set(case) - CASE_KEYS - OPTIONAL_CASE_KEYS
        missing = CASE_KEYS - set(case)
        if missing:
            raise MalformedCaseFile(f"{where}: missing {sorted(missing)}")
        if extra:
            raise MalformedCaseFile(f"{where}: unknown key(s) {sorted(extra)}")
        if case["check"] not in checks:
            raise MalformedCaseFile(
                f"{where}: unknown check {case['check']!r} (known: {', '.join(sorted(checks))})"
            )
        if not isinstance(case["input"], dict):
            raise MalformedCaseFile(f"{where}: 'input' must be an object")
        expect = case["expect"]
        if not isinstance(expect, dict) or not expect:
            raise MalformedCaseFile(f"{where}: 'expect' must be a non-empty object")
        if "error" in expect:
            if expect != {"error": True}:
                raise MalformedCaseFile(
                    f"{where}: 'expect' with 'error' must be exactly {{'error': true}}"
                )
        else:
            bad = set(expect) - checks[case["check"]].outputs
            if bad:
                raise MalformedCaseFile(
                    f"{where}: expect names field(s) {sorted(bad)} that check "
                    f"{case['check']!r} does not produce"
                )
    return data, cases


def run_case(
    path: Path, case: dict[str, Any], protocol: Protocol, checks: dict[str, Check]
) -> CaseResult:
    """Run one (structurally valid) case."""
    check = checks[case["check"]]
    expect = case["expect"]
    res = CaseResult(file=path.name, id=case["id"], check=case["check"], ok=False, expected=expect)
    try:
        got = check.run(case["input"], protocol)
    except (InputError, ValueError) as exc:
        res.error = str(exc)
        res.ok = expect == {"error": True}
        if not res.ok:
            res.mismatches = [("error", None, str(exc))]
        return res
    except Exception as exc:
        logger.exception("rule %s crashed on a validation case", case["check"])
        res.error = f"internal error: {type(exc).__name__}: {exc}"
        res.mismatches = [("error", None, res.error)]
        return res
    res.got = {k: got.get(k) for k in expect} if "error" not in expect else got
    if expect == {"error": True}:
        res.mismatches = [("error", True, "accepted")]
        return res
    compare = check.compare or default_compare
    res.mismatches = compare(expect, got)
    res.ok = not res.mismatches
    return res


@dataclass
class Report:
    """All results of a validate run."""

    results: list[CaseResult]

    @property
    def passed(self) -> int:
        """Number of passing cases."""
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        """Number of failing cases."""
        return len(self.results) - self.passed


def shipped_case_files() -> list[Path]:
    """The validation files shipped with the application."""
    return sorted(VALIDATION_DIR.glob("*.json"))


def run_files(paths: Iterable[Path], protocol_path: Path | None = None) -> Report:
    """Run case files; raise MalformedCaseFile or ProtocolError on an unusable input."""
    checks = _build_checks()
    forced = load_protocol(protocol_path) if protocol_path else None
    loaded = [(p, *load_case_file(p, checks)) for p in paths]
    results: list[CaseResult] = []
    for path, data, cases in loaded:
        if forced is not None:
            protocol = forced
        elif data.get("protocol"):
            if not isinstance(data["protocol"], str):
                raise MalformedCaseFile(f"{path.name}: 'protocol' must be a protocol id or null")
            protocol = find_protocol(data["protocol"])
        else:
            protocol = load_default_protocol()
        results.extend(run_case(path, c, protocol, checks) for c in cases)
    return Report(results)


def _short(value: Any) -> str:
    text = json.dumps(_jsonable(value), ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def main(args: list[str], *, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Entry point of ``validate``; returns the exit status (0, 1 or 2)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bedside validate")
    parser.add_argument("files", nargs="*", type=Path, help="case files (default: shipped cases)")
    parser.add_argument("--protocol", type=Path, help="protocol file to validate against")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    ns = parser.parse_args(args)
    files = ns.files or shipped_case_files()
    if not files:
        err(f"no case files found in {VALIDATION_DIR}")
        return 2
    try:
        report = run_files(files, ns.protocol)
    except (MalformedCaseFile, ProtocolError) as exc:
        err(f"error: {exc}")
        return 2
    if ns.json:
        out(
            json.dumps(
                {
                    "passed": report.passed,
                    "failed": report.failed,
                    "results": [r.as_json() for r in report.results],
                },
                ensure_ascii=False,
                indent=1,
            )
        )
    else:
        for r in report.results:
            for fld, expected, got in r.mismatches:
                out(f"FAIL {r.file} {r.id}: {fld}: expected {_short(expected)}, got {_short(got)}")
        out(f"{report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1

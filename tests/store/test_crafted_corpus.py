"""The crafted-input corpus of issue 12 (see ``crafted_corpus.py``), run case by case.

Every case asserts its expected outcome (refused, held for review, accepted), that a
refused or held input changed no file, and that the ward still opens and derives every
displayable patient afterwards. The last test checks the figures over the whole corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from crafted_corpus import (
    CASES,
    Case,
    Ctx,
    Result,
    event,
    figures,
    local_dose_id,
    make_ctx,
    run_case,
    run_import,
    with_events,
)

from bedside.clinical.record import Correction
from bedside.ward.transfer import ImportHeld, import_file

_results: dict[str, Result] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_input(case: Case, tmp_path: Path) -> None:
    if case.posix_only and os.name != "posix":
        pytest.skip("POSIX special files")
    result = run_case(case, tmp_path)
    _results[case.name] = result
    assert result.outcome == case.expect, case.name
    if case.expect in {"refused", "held"} and not case.sets_up_files:
        assert result.unchanged, f"{case.name}: a refused or held input changed a file"
    assert result.displayed >= 1  # the ward opened and derived its patients


def test_corpus_figures() -> None:
    """Over the whole corpus: every class is present, and the ward opened after each input."""
    results = list(_results.values())
    if len(results) < len([c for c in CASES if not c.posix_only or os.name == "posix"]):
        pytest.skip("run with the whole corpus")
    got = figures(results)
    assert got["tried"] >= 50 and got["ward_opened"] == got["tried"]
    assert got["refused"] > 0 and got["held"] > 0 and got["accepted"] > 0
    classes = {r.case.klass for r in results}
    assert {
        "write validity",
        "untrusted file",
        "import validity",
        "import binding",
        "chain binding",
        "meaning change",
        "duplicate patient",
        "dose void",
        "isolation",
        "tampering",
        "strict case file",
        "data directory",
        "time",
    } <= classes


def test_held_void_applies_only_with_a_nurses_initials(tmp_path: Path) -> None:
    ctx: Ctx = make_ctx(tmp_path)
    try:
        dose = local_dose_id(ctx)
        path = with_events(
            ctx,
            "p1",
            event(
                "correction",
                ctx.clock.now(),
                target_id=dose,
                action="void",
                reason="entered in error",
                amended=None,
            ),
        )
        with pytest.raises(ImportHeld) as held:
            import_file(ctx.a, path)
        plan = held.value.plan
        assert plan.voided_doses and "would be VOIDED" in plan.voided_doses[0]
        assert ctx.a.budget("p1").total == 1
        from bedside.ward.transfer import merge_into_ward, read_patient_file

        with pytest.raises(Exception, match="confirmed_by"):
            merge_into_ward(ctx.a, read_patient_file(path), source="x", confirmed_by="1")
        report = merge_into_ward(ctx.a, read_patient_file(path), source="x", confirmed_by="ef")
        assert "confirmed by EF" in report.origin
        # B's own dose of p1 is merged (same patient on both wards); A's dose is voided.
        budget = ctx.a.budget("p1")
        assert budget.total == 1 and [d.id for d in budget.voided] == [dose]
        void = [e for e in ctx.a.record("p1").events if isinstance(e, Correction)][-1]
        assert void.origin is not None and "confirmed by EF" in void.origin
    finally:
        ctx.close()


def test_cli_import_holds_with_exit_3(tmp_path: Path) -> None:
    import subprocess
    import sys

    ctx = make_ctx(tmp_path)
    path = with_events(ctx, "p1", event("patient_update", ctx.clock.now(), changes={"bed": "12"}))
    ctx.close()
    proc = subprocess.run(
        [sys.executable, "-m", "bedside", "import", str(path), "--data-dir", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "HELD for review" in proc.stderr and "header change: bed → 12" in proc.stderr


def test_fifo_import_does_not_hold_the_lock(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("FIFO")
    ctx = make_ctx(tmp_path)
    try:
        fifo = tmp_path / "pipe.json"
        os.mkfifo(fifo)
        assert run_import(ctx, fifo, timeout_s=5) == "refused"
        ctx.a.chart("p1", "note", recorded_by="AB", text="the ward still saves")
    finally:
        ctx.close()

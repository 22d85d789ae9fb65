"""The one registry of CLI commands (bedside/tools/commands.py) and the handover's injected
PDF writer."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedside.common.clock import FakeClock
from bedside.tools import cli, commands
from bedside.tools.commands import COMMANDS, Command
from bedside.tools.demo import write_demo_ward

NOW = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    write_demo_ward(root, FakeClock(NOW))
    return root


def test_every_command_resolves_and_is_named_once() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names)) == len(commands.NAMES)
    assert {"validate", "demo", "verify", "handover", "export", "import"} <= commands.NAMES
    for c in COMMANDS:
        assert callable(c.load()), c.name
        assert c.summary and c.module == c.target.split(":")[0]
    assert [c.name for c in COMMANDS if c.writes_pdf] == ["handover"]


def test_usage_lists_every_command_of_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for c in COMMANDS:
        assert any(line.split() == [c.name, *c.summary.split()] for line in out.splitlines())
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_a_new_registry_entry_is_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """One entry is all a command needs (cli dispatch, usage, ui routing read the registry)."""
    extra = Command("count", "builtins:len", "count the arguments")
    monkeypatch.setitem(commands.BY_NAME, "count", extra)
    assert cli.main(["count", "a", "b", "c"]) == 3


def test_handover_pdf_needs_the_application_and_writes_nothing(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "ward.pdf"
    assert cli.main(["handover", "--data-dir", str(demo_root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "python -m ui handover" in err and "nothing was written" in err
    assert list(folder.iterdir()) == []


def test_handover_uses_the_injected_pdf_writer(demo_root: Path, tmp_path: Path) -> None:
    got: list[tuple[str, Path]] = []

    def writer(html_text: str, out: Path) -> int:
        got.append((html_text, out))
        out.write_bytes(b"%PDF-1.4 fake")
        return 3

    out = tmp_path / "one.pdf"
    argv = ["handover", "--data-dir", str(demo_root), "--out", str(out), "--patient", "demo-07"]
    assert cli.main(argv, pdf_writer=writer) == 0
    assert len(got) == 1 and got[0][1] == out
    assert "DEMO George Papadakis" in got[0][0] and got[0][0].startswith("<!DOCTYPE html>")
    if os.name == "posix":
        assert out.stat().st_mode & 0o777 == 0o600  # patient data: this user only


def test_handover_reports_a_failing_pdf_writer(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(html_text: str, out: Path) -> int:
        raise OSError("disk full")

    out = tmp_path / "one.pdf"
    argv = ["handover", "--data-dir", str(demo_root), "--out", str(out)]
    assert cli.main(argv, pdf_writer=broken) == 1
    assert "the PDF could not be written: disk full" in capsys.readouterr().err
    assert not out.exists()

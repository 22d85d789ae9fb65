"""The one registry of the sub-commands of ``python -m bedside`` (and of the frozen ``bedside``).

Each :class:`Command` names the function that runs it (``"module:function"``, called with
the command's arguments and returning the exit status) and its line in the usage text.
Modules are imported only when their command runs, so ``validate`` stays light.

Read by :mod:`bedside.tools.cli` (dispatch and usage), by ``ui.app`` (the first arguments the
application routes to the core, so the frozen executable runs them) and by the PyInstaller
spec (hidden imports). A new command is one more line in :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bedside.reports.handover import PdfWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """A sub-command: its name, the function that runs it and its line of the usage text."""

    name: str
    target: str
    """``"module:function"``; the function takes ``argv: list[str]`` and returns an int."""
    summary: str
    writes_pdf: bool = False
    """The function also takes ``pdf_writer=`` (the PDF writer of the program that owns Qt;
    ``None`` from the Qt-free ``python -m bedside``)."""

    @property
    def module(self) -> str:
        """The module that holds the command (imported when the command runs)."""
        return self.target.partition(":")[0]

    def load(self) -> Callable[..., int]:
        """Import the command's module and return its function."""
        module, _, function = self.target.partition(":")
        run: Callable[..., int] = getattr(importlib.import_module(module), function)
        return run

    def run(self, argv: list[str], *, pdf_writer: PdfWriter | None = None) -> int:
        """Run the command with ``argv``; return its exit status."""
        run = self.load()
        extra: dict[str, Any] = {"pdf_writer": pdf_writer} if self.writes_pdf else {}
        return run(argv, **extra)


COMMANDS: tuple[Command, ...] = (
    Command(
        "validate",
        "bedside.tools.cli:validate",
        "run validation-vector case files against the clinical rules",
    ),
    Command("demo", "bedside.tools.demo:main", "write a realistic demo ward into a data directory"),
    Command(
        "verify",
        "bedside.tools.verify:main",
        "check every patient file in a data directory (never modifies files)",
    ),
    Command(
        "handover",
        "bedside.reports.handover:main",
        "write the SBAR handover (PDF, or HTML) for the ward or one patient",
        writes_pdf=True,
    ),
    Command("export", "bedside.reports.export:main", "export patients as json, csv or fhir"),
    Command(
        "import", "bedside.ward.transfer:main", "bring a patient file from another workstation"
    ),
    Command(
        "restore",
        "bedside.ward.restore:main",
        "list a patient's backups, or restore one when its file cannot be loaded",
    ),
)
"""Every sub-command, in the order of the usage text."""

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
NAMES: frozenset[str] = frozenset(BY_NAME)
"""The command names (the first arguments ``ui.app`` routes to :func:`bedside.tools.cli.main`)."""


def usage(prog: str = "python -m bedside") -> str:
    """The usage text, one line per command of the registry."""
    width = max(len(c.name) for c in COMMANDS) + 2
    lines = [f"  {c.name:<{width}} {c.summary}" for c in COMMANDS]
    return (
        f"usage: {prog} <command> [options]\n\ncommands:\n"
        + "\n".join(lines)
        + f"\n\nRun '{prog} <command> --help' for the options of a command.\n"
        "Every command also takes --workstation ID (default: this machine's workstation id).\n"
    )

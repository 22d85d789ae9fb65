"""Dispatch of ``python -m bedside`` sub-commands (no Qt anywhere on these paths)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from bedside import __version__

logger = logging.getLogger(__name__)

USAGE = """usage: python -m bedside <command> [options]

commands:
  validate   run validation-vector case files against the clinical rules
  demo       write a realistic demo ward into a data directory
  verify     check every patient file in a data directory (never modifies files)
  handover   write the SBAR handover (PDF) for the ward or one patient
  export     export patients as json, csv or fhir
  import     bring a patient file from another workstation
  restore    list a patient's backups, or restore one when its file cannot be loaded

Run 'python -m bedside <command> --help' for the options of a command.
Every command also takes --workstation ID (default: this machine's workstation id).
"""


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _commands() -> dict[str, Callable[[list[str]], int]]:
    from bedside import validation
    from bedside.commands import COMMANDS

    commands: dict[str, Callable[[list[str]], int]] = {
        "validate": lambda a: validation.main(a, out=_out, err=_err),
    }
    commands.update(COMMANDS)
    return commands


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args or args[0] in {"-h", "--help"}:
        _out(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        _out(f"bedside {__version__}")
        return 0
    commands = _commands()
    from bedside.errors import InputError
    from bedside.workstation import take_workstation_option

    try:
        args = take_workstation_option(args)  # every command takes --workstation (issue 15)
    except InputError as exc:
        _err(f"error: {exc}")
        return 2
    name, rest = args[0], args[1:]
    if name not in commands:
        _err(f"unknown command {name!r}\n\n{USAGE}")
        return 2
    return commands[name](rest)

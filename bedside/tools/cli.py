"""Dispatch of ``python -m bedside`` sub-commands (no Qt anywhere on these paths)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from bedside import __version__

if TYPE_CHECKING:
    from bedside.reports.handover import PdfWriter

logger = logging.getLogger(__name__)


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def validate(argv: list[str]) -> int:
    """``validate``: the validation vectors, reported on stdout/stderr."""
    from bedside.tools import validation

    return validation.main(argv, out=_out, err=_err)


def main(argv: list[str] | None = None, *, pdf_writer: PdfWriter | None = None) -> int:
    """Run a sub-command of the registry (:mod:`bedside.tools.commands`); return its exit status.

    ``pdf_writer`` is given by the program that owns Qt (the application's entry point);
    without it ``handover`` writes HTML only.
    """
    from bedside.tools.commands import BY_NAME, usage

    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args or args[0] in {"-h", "--help"}:
        _out(usage())
        return 0 if args else 2
    if args[0] == "--version":
        _out(f"bedside {__version__}")
        return 0
    from bedside.common.errors import InputError
    from bedside.store.workstation import take_workstation_option

    try:
        args = take_workstation_option(args)  # every command takes --workstation (issue 15)
    except InputError as exc:
        _err(f"error: {exc}")
        return 2
    name, rest = args[0], args[1:]
    command = BY_NAME.get(name)
    if command is None:
        _err(f"unknown command {name!r}\n\n{usage()}")
        return 2
    return command.run(rest, pdf_writer=pdf_writer)

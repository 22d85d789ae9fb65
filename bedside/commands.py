"""Registry of the record-level sub-commands of ``python -m bedside``.

Each command module exposes ``main(argv: list[str]) -> int``; modules are imported only
when their command runs, so ``validate`` stays light.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

MODULES: dict[str, str] = {
    "demo": "bedside.demo",
    "verify": "bedside.verify",
    "handover": "bedside.handover",
    "export": "bedside.export",
    "import": "bedside.transfer",
    "restore": "bedside.restore",
}
"""Command name -> module exposing ``main(argv) -> int``."""


def _lazy(module: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        main: Callable[[list[str]], int] = importlib.import_module(module).main
        return main(argv)

    return run


COMMANDS: dict[str, Callable[[list[str]], int]] = {name: _lazy(m) for name, m in MODULES.items()}

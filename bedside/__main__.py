"""Command line of the Qt-free core: ``python -m bedside <command>``.

Commands: ``validate`` (rules against case files), ``demo`` (write a demo ward),
``verify`` (check every patient file), ``handover``, ``export``, ``import`` and
``restore`` (a patient from a verified backup).
None of them imports Qt.
"""

from __future__ import annotations

import sys

from bedside.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())

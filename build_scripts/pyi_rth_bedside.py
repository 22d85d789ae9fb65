"""PyInstaller runtime hook: give a console-less (windowed) Bedside usable stdout/stderr.

A windowed executable on Windows starts with ``sys.stdout`` and ``sys.stderr`` set to
``None``; code that writes to them (``sys.stderr.write``, a logging ``StreamHandler``)
would raise. They are pointed at the null device instead; the log file still records
everything (``ui.app.configure_logging``).
"""

import os
import sys

if sys.stdout is None:
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

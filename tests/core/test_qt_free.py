"""The core must import with PySide6 made unimportable (and never import ui)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import bedside

ROOT = Path(__file__).resolve().parents[2]


def _core_modules() -> list[str]:
    names = ["bedside"]
    for info in pkgutil.walk_packages(bedside.__path__, prefix="bedside."):
        names.append(info.name)
    return sorted(names)


def test_every_core_module_imports_without_qt() -> None:
    modules = _core_modules()
    assert len(modules) > 10, modules
    code = (
        "import sys\n"
        "for name in ('PySide6', 'shiboken6', 'ui'):\n"
        "    sys.modules[name] = None\n"
        "import importlib\n"
        f"for m in {modules!r}:\n"
        "    if m == 'bedside.__main__':\n"
        "        continue\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.startswith(('PySide6.', 'shiboken6.', 'ui.')))\n"
        "assert not bad, bad\n"
        "print('ok', len([m for m in sys.modules if m.startswith('bedside')]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_validate_runs_without_qt() -> None:
    code = (
        "import sys, runpy\n"
        "for name in ('PySide6', 'shiboken6', 'ui'):\n"
        "    sys.modules[name] = None\n"
        "sys.argv = ['bedside', 'validate']\n"
        "runpy.run_module('bedside', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].endswith("0 failed")

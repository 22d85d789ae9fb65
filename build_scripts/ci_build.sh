#!/usr/bin/env bash
# CI step: build the one-folder bundle with PyInstaller, then the frozen checks
# (size budget, smoke test offscreen, demo ward, verify, handover PDF, validate).
# Uses the CI venv (.venv, created by .ci/run) unless PYTHON names another interpreter.
# About 15 s for the build and 5 s for the checks on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-.venv/bin/python}"
# PyInstaller must live in the same environment as PySide6 (build.py checks it).
"$PY" -m pip install -q -e '.[build]'
QT_QPA_PLATFORM=offscreen "$PY" build_scripts/build.py

"""Bedside's PySide6 user interface over the Qt-free ``bedside`` core.

The composition root is :func:`ui.app.main`; ``python -m ui`` runs it.
"""

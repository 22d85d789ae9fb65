"""Global exception handling: log (without patient data), show one dialog, keep running.

:func:`install` replaces ``sys.excepthook`` and ``threading.excepthook``. An unexpected
exception is logged with its traceback after every known patient identifier (names,
MRNs, ids, dates of birth of the open ward) has been replaced by ``<patient>``, then
one dialog tells the nurse that everything charted before was saved and that the last
action may not have been. While that dialog is open, further exceptions are only
logged (no cascade of dialogs). Nothing is written to the patient files here: every
save in the core is atomic, so an exception can never leave a half-written record.

Qt's own messages are routed into :mod:`logging` by :func:`install_qt_message_handler`.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar

from PySide6.QtCore import QObject, QtMsgType, Signal, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

logger = logging.getLogger(__name__)

Redactor = Callable[[str], str]


def _identity(text: str) -> str:
    return text


class CrashHandler(QObject):
    """Receives every uncaught exception; shows at most one dialog at a time."""

    crashed = Signal(str)
    """The redacted one-line summary (emitted on the GUI thread)."""

    def __init__(
        self,
        *,
        show_dialog: bool = True,
        redact: Redactor | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.show_dialog = show_dialog
        self.redact: Redactor = redact or _identity
        self.count = 0
        self._dialog_open = False
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self.crashed.connect(self._on_crashed)

    # ------------------------------------------------------------------ hooks

    def install(self) -> None:
        """Become ``sys.excepthook`` and ``threading.excepthook``."""
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        """Restore the previous hooks."""
        sys.excepthook = self._previous_hook
        threading.excepthook = self._previous_thread_hook

    def excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        """Log the exception (redacted) and show the dialog; never raises."""
        if issubclass(exc_type, KeyboardInterrupt):
            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        try:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            text = self.redact(text)
            summary = self.redact(f"{exc_type.__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the hook must never fail
            text = f"{exc_type.__name__} (details could not be formatted)"
            summary = exc_type.__name__
        self.count += 1
        logger.error("unexpected error #%d\n%s", self.count, text)
        # Signals are delivered queued when emitted from another thread.
        self.crashed.emit(summary + "\n\n" + text)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    # ------------------------------------------------------------------ dialog

    def _on_crashed(self, details: str) -> None:
        if not self.show_dialog or self._dialog_open:
            return
        from ui import dialogs

        self._dialog_open = True
        try:
            parent = QApplication.activeWindow()
            dialogs.show_crash(parent, details)
        finally:
            self._dialog_open = False


class _QtLogBridge:
    """Turns Qt messages into log records (kept alive by the module)."""

    LEVELS: ClassVar[dict[QtMsgType, int]] = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def __init__(self) -> None:
        self.log = logging.getLogger("qt")

    BENIGN = ("This plugin does not support",)
    """Messages of the offscreen/minimal platforms that say nothing about Bedside."""

    def __call__(self, mode: QtMsgType, context: object, message: str) -> None:
        level = self.LEVELS.get(mode, logging.WARNING)
        if message.startswith(self.BENIGN):
            level = logging.DEBUG
        self.log.log(level, "%s", message)


_bridge: _QtLogBridge | None = None


def install_qt_message_handler() -> None:
    """Route Qt's messages (qWarning etc.) into :mod:`logging`."""
    global _bridge
    _bridge = _QtLogBridge()
    qInstallMessageHandler(_bridge)


def redactor_for(terms: Callable[[], list[str]]) -> Redactor:
    """A redactor that replaces every current term (e.g. patient names) by ``<patient>``."""

    def redact(text: str) -> str:
        for term in sorted({t for t in terms() if t and len(t) >= 3}, key=len, reverse=True):
            text = text.replace(term, "<patient>")
        return text

    return redact


def fallback_report(exc: BaseException) -> None:
    """Last resort when the GUI cannot start: one line on stderr, no patient data."""
    sys.stderr.write(f"bedside: {type(exc).__name__}: could not start the application\n")

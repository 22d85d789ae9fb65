"""The audible alarm: QtMultimedia when it exists and has an output, else the system beep.

PySide6-Essentials ships no QtMultimedia, so on most installs the alarm falls back to
:meth:`QApplication.beep` and :attr:`Alarm.available` is False; the main window then
shows a permanent "no sound device" warning so nobody relies on hearing it. Every
alarm emits :attr:`Alarm.sounded` (tests listen to it instead of speakers).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtWidgets import QApplication

from ui.resources import alarm_sound

logger = logging.getLogger(__name__)


class Alarm(QObject):
    """Plays the alarm sound; says whether a real sound device is available."""

    sounded = Signal(str)
    """How the alarm sounded: ``"sound"`` (QtMultimedia) or ``"beep"`` (system beep)."""

    def __init__(self, parent: QObject | None = None, *, multimedia: bool = True) -> None:
        super().__init__(parent)
        self.muted = False
        self._effect: Any = None
        self.reason = ""
        if multimedia:
            self._effect, self.reason = _sound_effect(self)
        else:
            self.reason = "sound disabled"
        if self._effect is None:
            logger.warning("no sound device for alarms (%s); using the system beep", self.reason)

    @property
    def available(self) -> bool:
        """True when a real sound device plays the alarm sound."""
        return self._effect is not None

    def play(self) -> str:
        """Sound the alarm once; returns how (``sound``/``beep``/``muted``)."""
        if self.muted:
            self.sounded.emit("muted")
            return "muted"
        if self._effect is not None:
            self._effect.play()
            mode = "sound"
        else:
            QApplication.beep()
            mode = "beep"
        self.sounded.emit(mode)
        return mode


def _sound_effect(parent: QObject) -> tuple[Any, str]:
    """A QSoundEffect on the default output, or (None, why not)."""
    try:
        from PySide6.QtMultimedia import QMediaDevices, QSoundEffect  # type: ignore[import-not-found]
    except ImportError:
        return None, "QtMultimedia is not installed (PySide6-Essentials)"
    if not QMediaDevices.audioOutputs():
        return None, "no audio output device"
    effect = QSoundEffect(parent)
    effect.setSource(QUrl.fromLocalFile(str(alarm_sound())))
    effect.setVolume(1.0)
    return effect, ""

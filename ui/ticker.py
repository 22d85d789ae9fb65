"""The one owner of QTimers in Bedside: a 1 s tick that makes views recompute.

Nothing is counted here. Each tick reads the injected clock and emits the current
instant; whoever listens recomputes what it shows from the record (``due = f(record,
protocol, now)``), so a missed tick, a suspend/resume or a changed clock corrects
itself on the next tick. A wall-clock gap of more than twice the interval between two
ticks is logged as a resume. Tests inject ``timer_factory`` and call :meth:`Ticker.tick`.

:func:`single_shot` is the only other way the application schedules work later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from bedside.common.clock import Clock

logger = logging.getLogger(__name__)

TICK_MS = 1000


class TimerLike(Protocol):
    """What the ticker needs of a timer (QTimer or a test double)."""

    timeout: Any

    def setInterval(self, msec: int) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def qtimer_factory(parent: QObject) -> TimerLike:
    """A real coarse QTimer owned by ``parent``."""
    timer = QTimer(parent)
    timer.setTimerType(Qt.TimerType.CoarseTimer)
    return timer


class Ticker(QObject):
    """Emits :attr:`ticked` with ``clock.now()`` every second (and on re-activation)."""

    ticked = Signal(object)
    """The current instant (aware UTC datetime)."""
    resume_detected = Signal(float)
    """Seconds between the last two ticks, when much longer than the interval."""

    def __init__(
        self,
        clock: Clock,
        parent: QObject | None = None,
        *,
        interval_ms: int = TICK_MS,
        timer_factory: Callable[[QObject], TimerLike] = qtimer_factory,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._interval_ms = interval_ms
        self._last: datetime | None = None
        self._timer = timer_factory(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            app.applicationStateChanged.connect(self._on_state)

    @property
    def clock(self) -> Clock:
        """The injected clock."""
        return self._clock

    def start(self, *, tick_now: bool = True) -> None:
        """Start ticking (and tick once now, unless ``tick_now`` is False)."""
        self._timer.start()
        if tick_now:
            self.tick()

    def stop(self) -> None:
        """Stop ticking."""
        self._timer.stop()

    @Slot()
    def tick(self) -> None:
        """Read the clock and emit :attr:`ticked` (also callable directly by tests)."""
        now = self._clock.now()
        if self._last is not None:
            gap = (now - self._last).total_seconds()
            if gap > 2 * self._interval_ms / 1000:
                logger.info("resume detected: %.0f s since the last tick", gap)
                self.resume_detected.emit(gap)
        self._last = now
        self.ticked.emit(now)

    @Slot(Qt.ApplicationState)
    def _on_state(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            self.tick()


def single_shot(msec: int, receiver: QObject, func: Callable[[], None]) -> None:
    """Run ``func`` once after ``msec`` ms, tied to ``receiver``'s lifetime."""
    QTimer.singleShot(msec, receiver, func)


class _AfterFirstPaint(QObject):
    """Runs ``then`` once: from the event loop after ``widget``'s first paint, or after
    ``fallback_ms`` if it has not painted by then (a window started minimised)."""

    def __init__(self, widget: QWidget, then: Callable[[], None], fallback_ms: int) -> None:
        super().__init__(widget)
        self._widget = widget
        self._then = then
        self._done = False
        widget.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self, self._run)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """On the first paint: schedule ``then`` (the paint itself goes on)."""
        if watched is self._widget and event.type() == QEvent.Type.Paint:
            self._widget.removeEventFilter(self)
            QTimer.singleShot(0, self, self._run)
        return False

    def _run(self) -> None:
        if self._done:
            return
        self._done = True
        self._widget.removeEventFilter(self)
        self._then()


def after_first_paint(
    widget: QWidget, then: Callable[[], None], *, fallback_ms: int = 2000
) -> QObject:
    """Run ``then`` once, just after ``widget`` first paints (start-up work that the first
    paint does not need), or after ``fallback_ms`` at the latest. Returns the watcher."""
    return _AfterFirstPaint(widget, then, fallback_ms)

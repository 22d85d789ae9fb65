"""A small trend chart drawn with QPainter (QtCharts is not part of PySide6-Essentials).

Shows one series of (instant, value) points over time with horizontal bands (e.g. the
CTCAE grade bands, each labelled "G1".."G4" so colour is never the only cue) and an
optional threshold line (e.g. fever at 38 °C). Times on the axis are local with the
zone. The widget's accessible description lists the latest values in words.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from bedside.common.timeutil import format_local, local_zone
from ui import theme

logger = logging.getLogger(__name__)


def _c(day: str, alpha: int = 255) -> QColor:
    """A chart colour in the current theme (View ▸ Night)."""
    out = theme.ink(day)
    out.setAlpha(alpha)
    return out


@dataclass(frozen=True)
class Band:
    """A horizontal band between ``low`` and ``high`` with a short label."""

    low: float
    high: float
    label: str
    color: QColor


BAND_COLORS = [
    QColor(255, 235, 59, 70),  # G1
    QColor(255, 152, 0, 80),  # G2
    QColor(244, 67, 54, 80),  # G3
    QColor(183, 28, 28, 90),  # G4
]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.001:
        if v >= lo - step * 0.001:
            ticks.append(round(v, 10))
        v += step
    return ticks


class TrendChart(QWidget):
    """One labelled series over time, with grade bands and a threshold."""

    def __init__(self, title: str, unit: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.unit = unit
        self.points: list[tuple[datetime, float]] = []
        self.bands: list[Band] = []
        self.threshold: tuple[float, str] | None = None
        self.y_floor: float | None = None
        self.y_min_span = 1.0
        self.now: datetime | None = None
        self.setAccessibleName(f"{title} trend chart")
        self.setMinimumSize(280, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._describe()

    def sizeHint(self) -> QSize:
        """Preferred size."""
        return QSize(420, 220)

    def set_data(
        self,
        points: list[tuple[datetime, float]],
        *,
        bands: list[Band] | None = None,
        threshold: tuple[float, str] | None = None,
        y_floor: float | None = None,
        now: datetime | None = None,
    ) -> None:
        """Replace the series (sorted by time) and repaint."""
        self.points = sorted(points)
        self.bands = bands or []
        self.threshold = threshold
        self.y_floor = y_floor
        self.now = now
        self._describe()
        self.update()

    def _describe(self) -> None:
        if not self.points:
            self.setAccessibleDescription(f"{self.title}: no results recorded")
            self.setToolTip(f"{self.title}: no results recorded")
            return
        last = self.points[-3:]
        text = "; ".join(f"{v:g} {self.unit} at {format_local(t)}" for t, v in reversed(last))
        desc = f"{self.title}, latest first: {text}"
        self.setAccessibleDescription(desc)
        self.setToolTip(desc)

    # ------------------------------------------------------------------ geometry

    def _y_range(self) -> tuple[float, float]:
        values = [v for _, v in self.points]
        if self.threshold:
            values.append(self.threshold[0])
        lo = min(values) if values else 0.0
        hi = max(values) if values else 1.0
        if self.y_floor is not None:
            lo = min(lo, self.y_floor)
        for b in self.bands:
            if b.high <= hi * 1.6 or not values:
                hi = max(hi, b.high)
        span = max(hi - lo, self.y_min_span)
        pad = span * 0.08
        lo2 = lo - pad if self.y_floor is None else max(self.y_floor, lo - pad)
        return lo2, lo + span + pad

    def _x_range(self) -> tuple[datetime, datetime]:
        end = self.now or (self.points[-1][0] if self.points else datetime.now(local_zone()))
        if self.points:
            end = max(end, self.points[-1][0])
            start = min(self.points[0][0], end - timedelta(hours=24))
        else:
            start = end - timedelta(days=1)
        return start, end

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw title, bands, threshold, axes and the series."""
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), _c("#ffffff"))
        base = QFont(self.font())
        fm = QFontMetrics(base)
        title_font = QFont(base)
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(_c("#0d2a45"))
        p.drawText(QRectF(8, 4, self.width() - 16, fm.height() + 4), self.title)
        p.setFont(base)
        left = fm.horizontalAdvance("0000.0") + 14
        right = fm.horizontalAdvance("G4 ") + 10
        top = fm.height() + 12
        bottom = fm.height() * 2 + 10
        plot = QRectF(left, top, max(10, self.width() - left - right), self.height() - top - bottom)
        p.setPen(QPen(_c("#9aa7b4"), 1))
        p.drawRect(plot)
        if not self.points:
            p.setPen(_c("#44505c"))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No results recorded yet")
            p.end()
            return
        lo, hi = self._y_range()
        start, end = self._x_range()
        span_s = max((end - start).total_seconds(), 1.0)

        def xy(t: datetime, v: float) -> QPointF:
            x = plot.left() + (t - start).total_seconds() / span_s * plot.width()
            y = plot.bottom() - (v - lo) / (hi - lo) * plot.height()
            return QPointF(x, y)

        # Bands, each labelled on the right.
        for b in self.bands:
            y1 = xy(start, min(b.high, hi)).y()
            y2 = xy(start, max(b.low, lo)).y()
            if y2 <= plot.top() or y1 >= plot.bottom():
                continue
            rect = QRectF(plot.left(), max(y1, plot.top()), plot.width(), min(y2, plot.bottom()))
            rect.setBottom(min(y2, plot.bottom()))
            p.fillRect(rect, b.color)
            p.setPen(_c("#5d4037"))
            p.drawText(
                QRectF(plot.right() + 3, rect.top(), right, rect.height()),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                b.label,
            )
        # Y ticks.
        p.setPen(_c("#333333"))
        for tv in nice_ticks(lo, hi, 4):
            y = xy(start, tv).y()
            if plot.top() - 1 <= y <= plot.bottom() + 1:
                p.setPen(QPen(_c("#e1e6eb"), 1))
                p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
                p.setPen(_c("#333333"))
                p.drawText(
                    QRectF(0, y - fm.height() / 2, left - 6, fm.height()),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    f"{tv:g}",
                )
        # Unit label under the y axis numbers.
        p.drawText(
            QRectF(0, plot.bottom() + 2, left - 4, fm.height()),
            Qt.AlignmentFlag.AlignRight,
            self.unit,
        )
        # Threshold line.
        if self.threshold is not None:
            tv, tlabel = self.threshold
            y = xy(start, tv).y()
            pen = QPen(_c("#b00020"), 1.5, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(_c("#b00020"))
            p.drawText(QPointF(plot.left() + 4, y - 3), tlabel)
        # X axis labels: start and end (local time with zone).
        p.setPen(_c("#333333"))
        p.drawText(
            QRectF(plot.left(), plot.bottom() + fm.height() + 2, plot.width() / 2, fm.height()),
            Qt.AlignmentFlag.AlignLeft,
            format_local(start),
        )
        p.drawText(
            QRectF(
                plot.center().x(), plot.bottom() + fm.height() + 2, plot.width() / 2, fm.height()
            ),
            Qt.AlignmentFlag.AlignRight,
            format_local(end),
        )
        # Series.
        path = QPainterPath()
        pts = [xy(t, v) for t, v in self.points]
        path.moveTo(pts[0])
        for pt in pts[1:]:
            path.lineTo(pt)
        p.setPen(QPen(_c("#1f4e79"), 2))
        p.drawPath(path)
        p.setBrush(_c("#1f4e79"))
        for pt in pts:
            p.drawEllipse(pt, 3.5, 3.5)
        # Latest value, in words.
        v_last = self.points[-1][1]
        last_pt = pts[-1]
        text = f"{v_last:g} {self.unit}"
        w = fm.horizontalAdvance(text) + 8
        box = QRectF(
            min(last_pt.x() + 6, plot.right() - w),
            max(last_pt.y() - fm.height() - 6, plot.top()),
            w,
            fm.height() + 2,
        )
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(_c("#ffffff", 220))
        p.drawRect(box)
        p.setPen(_c("#0d2a45"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.end()


def ctcae_bands(lln: float, cutoffs: list[float], floor: float = 0.0) -> list[Band]:
    """Grade bands G1..Gn from the protocol's LLN and descending cut-offs."""
    edges = [lln, *cutoffs, floor]
    bands = []
    for i in range(len(edges) - 1):
        bands.append(Band(edges[i + 1], edges[i], f"G{i + 1}", BAND_COLORS[min(i, 3)]))
    return bands

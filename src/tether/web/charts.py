"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched, readable without colour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from tether.services.dashboard import PrecisionPoint
from tether.store.activity import DayCount

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
INK, MUTED, BAND, LINE = "#1b1f24", "#57606a", "#b6d4fe", "#0a4fb3"
SERIES = (("decisions", "#6e7781"), ("executed", "#0a4fb3"), ("reviews", "#1a7f37"))


@dataclass(frozen=True)
class Frame:
    """The plotting area and how values map into it."""

    n: int
    y_low: float
    y_high: float

    @property
    def inner_w(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def inner_h(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def x(self, i: int) -> float:
        if self.n <= 1:
            return LEFT + self.inner_w / 2
        return LEFT + self.inner_w * i / (self.n - 1)

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1.0
        return TOP + self.inner_h * (1 - (value - self.y_low) / span)


def _svg(label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", fill: str = MUTED) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="12" fill="{fill}">'
        f"{escape(text)}</text>"
    )


def _day_labels(frame: Frame, days: Sequence[str]) -> list[str]:
    step = max(1, len(days) // 8)
    return [_text(frame.x(i), HEIGHT - BOTTOM + 16, days[i][5:]) for i in range(0, len(days), step)]


def precision_chart(points: Sequence[PrecisionPoint], thresholds: tuple[float, float]) -> str:
    """Precision per day with its 95% interval as a band, and the rollback and promotion thresholds."""
    shown = [p for p in points if p.precision is not None]
    label = "Precision over time with its 95% interval"
    if not shown:
        return _svg(label, [_text(WIDTH / 2, HEIGHT / 2, "no reviews in this attempt yet")])
    rollback_at, promote_at = thresholds
    lows = [p.low if p.low is not None else p.precision or 0.0 for p in shown]
    floor = min([*lows, rollback_at - 0.02])
    frame = Frame(len(shown), max(0.0, floor - 0.01), 1.0)
    body = _y_axis(frame, [frame.y_low, rollback_at, promote_at, 1.0], "{:.2f}")
    upper = [
        f"{frame.x(i):.1f},{frame.y(p.high if p.high is not None else 1.0):.1f}" for i, p in enumerate(shown)
    ]
    lower = [f"{frame.x(i):.1f},{frame.y(lows[i]):.1f}" for i in range(len(shown))]
    body.append(f'<polygon points="{" ".join(upper + lower[::-1])}" fill="{BAND}" stroke="none"/>')
    for value, name in ((rollback_at, "rollback"), (promote_at, "promotion")):
        y = frame.y(value)
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{MUTED}" '
            f'stroke-dasharray="4 4"/>'
        )
        body.append(_text(WIDTH - RIGHT - 4, y - 4, f"{name} {value:g}", anchor="end"))
    line = " ".join(f"{frame.x(i):.1f},{frame.y(p.precision or 0.0):.1f}" for i, p in enumerate(shown))
    body.append(f'<polyline points="{line}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for i, p in enumerate(shown):
        tip = f"{p.day}: precision {p.precision:.3f} on {p.reviews} reviews"
        body.append(
            f'<circle cx="{frame.x(i):.1f}" cy="{frame.y(p.precision or 0.0):.1f}" r="3" fill="{LINE}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    body += _day_labels(frame, [p.day for p in shown])
    return _svg(label, body)


def _y_axis(frame: Frame, ticks: Sequence[float], fmt: str) -> list[str]:
    base = HEIGHT - BOTTOM
    out = [
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="{INK}"/>',
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" stroke="{INK}"/>',
    ]
    for tick in ticks:
        out.append(_text(LEFT - 6, frame.y(tick) + 4, fmt.format(tick), anchor="end"))
    return out


def activity_chart(days: Sequence[DayCount]) -> str:
    """Decisions, executions and reviews per day as grouped bars, with a legend."""
    label = "Decisions, executions and reviews per day"
    if not days:
        return _svg(label, [_text(WIDTH / 2, HEIGHT / 2, "no decisions in this attempt yet")])
    top = max(max(d.decisions, d.executed, d.reviews) for d in days) or 1
    frame = Frame(len(days), 0.0, float(top))
    body = _y_axis(frame, [0, top / 2, top], "{:.0f}")
    slot = frame.inner_w / len(days)
    bar = max(1.0, slot / 4)
    for i, d in enumerate(days):
        for j, (name, colour) in enumerate(SERIES):
            value = getattr(d, name)
            x = LEFT + slot * i + slot / 8 + j * bar
            y = frame.y(value)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{HEIGHT - BOTTOM - y:.1f}" '
                f'fill="{colour}"><title>{escape(f"{d.day}: {value} {name}")}</title></rect>'
            )
    step = max(1, len(days) // 8)
    for i in range(0, len(days), step):
        body.append(_text(LEFT + slot * (i + 0.5), HEIGHT - BOTTOM + 16, days[i].day[5:]))
    for j, (name, colour) in enumerate(SERIES):
        x = LEFT + 8 + j * 120
        body.append(f'<rect x="{x}" y="{HEIGHT - 12}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, HEIGHT - 3, name, anchor="start", fill=INK))
    return _svg(label, body)

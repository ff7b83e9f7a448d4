"""The evidence waterfall's geometry, shared by the HTML (SVG) and PDF renderers (no drawing here)."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.report.case import Evidence
from explorer.viz.figures import NEGATIVE, POSITIVE, TOTAL


@dataclass(frozen=True)
class Bar:
    """One bar from ``start`` to ``end`` on the value axis; ``colour`` as the Explain tab's chart."""

    label: str
    value: float
    start: float
    end: float
    colour: str
    total: bool = False


def waterfall(evidence: Evidence) -> tuple[tuple[Bar, ...], float, float]:
    """The bars (each term from the running sum, then the logit from 0) and the axis range, which
    always includes 0."""
    bars = []
    running = 0.0
    for term in evidence.terms:
        colour = POSITIVE if term.value >= 0 else NEGATIVE
        bars.append(Bar(term.label, term.value, running, running + term.value, colour))
        running += term.value
    bars.append(Bar("logit", evidence.logit, 0.0, evidence.logit, TOTAL, total=True))
    ends = [0.0, *(b.start for b in bars), *(b.end for b in bars)]
    low, high = min(ends), max(ends)
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    return tuple(bars), low, high


def axis_ticks(low: float, high: float) -> tuple[float, ...]:
    """0 and the two ends of the axis, leaving out an end too close to 0 to print apart."""
    close = 0.08 * (high - low)
    return (0.0, *(v for v in (low, high) if abs(v) > close))


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``"#1b7837"`` → ``(27, 120, 55)``."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)

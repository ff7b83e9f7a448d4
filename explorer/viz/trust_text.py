"""Words for the trust signals: a match's badge, a queue entry's reasons, the metrics table."""

from __future__ import annotations

import math

from explorer.analysis.match_robustness import PERTURBATIONS, RULE, MatchRobustness
from explorer.analysis.metrics.catalogue import METRICS, formatted
from explorer.analysis.metrics.evaluation import ModelMetrics
from explorer.analysis.review_queue import GENERALISES, QueueEntry
from explorer.analysis.review_queue import RULE as QUEUE_RULE

TITLES = {p.name: p.title for p in PERTURBATIONS}

REASON_LIMITS = {  # a signal is named as a reason at or above its limit
    "background": 0.5,
    "instability": 0.5,
    "impurity": 0.4,
    "gap": 1 - GENERALISES,
    "duplicate": 1.0,
}


def percent_change(change: float) -> str:
    return "no longer matches" if math.isinf(change) else f"{change:.0%}"


def badge_line(badge: MatchRobustness) -> str:
    """``robust`` or ``fragile: JPEG quality 75 (−34 %), ...`` in one line."""
    if badge.verdict == "robust":
        worst = max(badge.checks, key=lambda c: c.change)
        return f"robust (largest change {percent_change(worst.change)}, {worst.name})"
    parts = []
    for check in badge.checks:
        if check.fragile:
            moved = f", {check.cells_off} cells off" if check.cells_off > 1 else ""
            parts.append(f"{TITLES[check.name]} ({percent_change(check.change)}{moved})")
    return "fragile: " + "; ".join(parts)


def badge_rule() -> str:
    return RULE[0].upper() + RULE[1:] + "."


def queue_rule() -> str:
    """The review queue's stated score, as a sentence."""
    return QUEUE_RULE[0].upper() + QUEUE_RULE[1:] + "."


def reasons(entry: QueueEntry) -> list[str]:
    """The signals that put a prototype where it is, worst first, as short phrases."""
    s = entry.signals
    found: list[tuple[float, str]] = []
    if entry.does_not_generalise:
        found.append((2.0, f"test matches {1 - s['gap']:.0%} as similar as training ones"))
    elif s["gap"] >= REASON_LIMITS["gap"]:
        found.append((s["gap"], f"test matches {1 - s['gap']:.0%} as similar as training ones"))
    if s["background"] >= REASON_LIMITS["background"]:
        found.append((s["background"], f"{s['background']:.0%} of its activation off the object"))
    if s["instability"] >= REASON_LIMITS["instability"]:
        found.append(
            (s["instability"], f"lands elsewhere under noise on {s['instability']:.0%} of images")
        )
    if s["impurity"] >= REASON_LIMITS["impurity"]:
        found.append((s["impurity"], f"{s['impurity']:.0%} of its top patches from other classes"))
    if s["duplicate"] >= REASON_LIMITS["duplicate"]:
        found.append((1.0, "exact duplicate of a lower-numbered prototype"))
    return [text for _, text in sorted(found, key=lambda f: -f[0])] or ["no signal past its limit"]


def metrics_rows(metrics: ModelMetrics) -> list[tuple[str, str, str, str]]:
    """``(figure, value, better, definition)`` rows of the metrics table."""
    summary = metrics.summary()
    return [
        (m.title, formatted(m, summary[m.name]), m.better, f"{m.definition} ({m.reference})")
        for m in METRICS
    ]


def metrics_markdown(metrics: ModelMetrics) -> str:
    """The metrics as a markdown table with where they were measured."""
    curves = metrics.curves
    lines = [
        f"Measured on the {metrics.split} split of `{metrics.dataset}` ({metrics.num_images} "
        f"images; deletion and insertion on {len(curves.images)} of them, class-stratified, "
        f"{curves.steps} steps; noise seed {metrics.noise_seed}).",
        "",
        "| Figure | Value | Better | Definition |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in metrics_rows(metrics)]
    return "\n".join(lines)

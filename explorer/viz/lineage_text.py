"""Words for a before/after of a retrain (:class:`~explorer.analysis.before_after.BeforeAfter`)."""

from __future__ import annotations

from explorer.analysis.before_after import BeforeAfter

MAX_CHANGED_ROWS = 30


def _pct(value: float) -> str:
    return "—" if value != value else f"{value:.1%}"  # NaN: a class without test images


def _points(before: float, after: float) -> str:
    return f"{(after - before) * 100:+.1f} points"


def _source(source: tuple[int, int, int] | None) -> str:
    return "—" if source is None else f"train {source[0]} at cell ({source[1]}, {source[2]})"


def before_after_markdown(result: BeforeAfter) -> str:
    """The before/after as Markdown: summary, classes, confounds, prototypes, changed predictions."""
    lines = [
        f"## `{result.before}` → `{result.after}`",
        "",
        (
            f"`{result.after}` was retrained from `{result.before}` (its lineage names it)."
            if result.related
            else f"`{result.after}` does not name `{result.before}` as its parent: these are two "
            "models of one data set, compared as they are."
        ),
        "",
        f"Test accuracy on {result.test_images} test images: {_pct(result.accuracy_before)} → "
        f"{_pct(result.accuracy_after)} ({_points(result.accuracy_before, result.accuracy_after)}); "
        f"{len(result.changed)} predictions changed; {result.moved} of {len(result.prototypes)} "
        "prototypes moved to another training patch.",
        "",
        "| class | test images | before | after | change |",
        "|---|---|---|---|---|",
    ]
    for c in result.classes:
        lines.append(
            f"| {c.name} | {c.images} | {_pct(c.before)} | {_pct(c.after)} | "
            f"{_points(c.before, c.after) if c.images else '—'} |"
        )
    lines += ["", "### The labelled concepts: do they still activate the model?", ""]
    if result.confounds:
        lines += [
            "For each labelled prototype's cut-outs (each on its white canvas): the similarity of "
            "the *most* similar prototype to each cut-out (its best cell), mean and largest over the "
            "cut-outs, among the prototypes of the labelled one's class (those a class-specific "
            "retrain forgets with) and among all. For scale: a patch identical to a prototype scores "
            f"log(1/ε) = {result.similarity_scale:.2f}. A forgotten concept should fall in its class; "
            "a remembered one should hold.",
            "",
            "| prototype | label | cut-outs | its class: mean before → after | its class: max "
            "before → after | any class: mean before → after | any class: max before → after |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in result.confounds:
            lines.append(
                f"| P{f.prototype} | {f.verdict} | {f.cut_outs} | "
                f"{f.class_mean_before:.2f} → {f.class_mean_after:.2f} | "
                f"{f.class_max_before:.2f} → {f.class_max_after:.2f} | "
                f"{f.mean_before:.2f} → {f.mean_after:.2f} | {f.max_before:.2f} → {f.max_after:.2f} |"
            )
    else:
        lines.append("No labelled concepts (no prototype of the earlier model is labelled).")
    lines += [
        "",
        "### Prototypes",
        "",
        "| prototype | class | label | source before | source after | own-class weight |",
        "|---|---|---|---|---|---|",
    ]
    for p in result.prototypes:
        moved = "" if p.moved else " (same)"
        lines.append(
            f"| P{p.prototype} | {p.class_name} | {p.label or ''} | {_source(p.source_before)} | "
            f"{_source(p.source_after)}{moved} | {p.weight_before:.2f} → {p.weight_after:.2f} |"
        )
    lines += ["", f"### Predictions that changed ({len(result.changed)})", ""]
    if result.changed:
        lines += ["| test image | true class | before | after |", "|---|---|---|---|"]
        for c in result.changed[:MAX_CHANGED_ROWS]:
            mark = " ✓" if c.after == c.true_class else (" ✗" if c.before == c.true_class else "")
            lines.append(f"| {c.image} | {c.true_class} | {c.before} | {c.after}{mark} |")
        if len(result.changed) > MAX_CHANGED_ROWS:
            lines.append(
                f"\n… and {len(result.changed) - MAX_CHANGED_ROWS} more (all of them in the JSON: "
                f"`python -m explorer before-after --before {result.before} --after "
                f"{result.after}`)."
            )
    else:
        lines.append("None.")
    return "\n".join(lines)

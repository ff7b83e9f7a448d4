"""A case report as ONE self-contained HTML file: images inline as data URIs, the evidence chart as
inline SVG, inline CSS, no scripts and no external references (a Content-Security-Policy forbids
loading anything)."""

from __future__ import annotations

import base64
from html import escape

from explorer.report.case import CaseReport, Picture, number, signed
from explorer.report.chart import axis_ticks, waterfall
from explorer.report.words import (
    EMPHASIS,
    labels_heading_note,
    phi_line,
    title,
    what_if,
)
from explorer.viz.trust_text import badge_rule

PAIR_SIDE = 168  # px: both pictures of a pair fit beside the numbers on an A4 page
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a;
  background: #fff; max-width: 62rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.55rem; margin-bottom: .3rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #2166ac; padding-bottom: .15rem; margin-top: 1.8rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: .95em; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #8c8c8c; padding: .25rem .5rem; vertical-align: top; text-align: left; }
th { background: #e8eef6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.predicted td { font-weight: bold; background: #f3f7fb; }
figure { margin: .5rem 0; }
figcaption { font-size: .9rem; color: #333; max-width: 40rem; }
img { display: block; max-width: 100%; height: auto; }
table.pairs img { max-width: none; }
caption { text-align: left; caption-side: top; padding-bottom: .2rem; }
.note { background: #fff8e1; border-left: 4px solid #b58900; padding: .4rem .7rem; }
.warn { color: #8a1c1c; font-weight: bold; }
svg text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 12px; fill: #1a1a1a; }
footer { margin-top: 2rem; border-top: 1px solid #8c8c8c; font-size: .9rem; color: #333; }
section, figure, tr { break-inside: avoid; page-break-inside: avoid; }
@page { size: A4; margin: 1.4cm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _text(value: object) -> str:
    """Escapes a string for HTML text or an attribute value."""
    return escape(str(value), quote=True)


def _rich(text: str) -> str:
    """Escapes a library sentence and turns its ``*class*`` marks into emphasis."""
    return EMPHASIS.sub(r"<em>\1</em>", _text(text))


def _img(picture: Picture, width: int | None = None) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    shown = width or picture.width
    height = round(picture.height * shown / picture.width)
    return (
        f'<img src="data:image/png;base64,{data}" alt="{_text(picture.alt)}" '
        f'width="{shown}" height="{height}">'
    )


def evidence_svg(case: CaseReport) -> str:
    """The evidence waterfall as inline SVG (a bar per term from the running sum, then the logit)."""
    bars, low, high = waterfall(case.evidence)
    label_w, pad, plot_w, row_h, top = 170, 60, 420, 24, 28
    width = label_w + plot_w + 2 * pad
    height = top + row_h * len(bars) + 30

    def x(value: float) -> float:
        return label_w + pad + (value - low) / (high - low) * plot_w

    name = case.evidence.class_name
    parts = [
        f'<svg role="img" aria-labelledby="evidence-title evidence-desc" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<title id="evidence-title">Evidence for {_text(name)}: contributions sum to the logit'
        "</title>",
        f'<desc id="evidence-desc">{_text(_plain_summary(case))}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="4" y="16" font-weight="bold">Evidence for {_text(name)}: {case.score_name} × '
        "weight per prototype; the bars add up to the logit</text>",
    ]
    zero = x(0.0)
    for i, bar in enumerate(bars):
        y = top + i * row_h
        left, right = sorted((x(bar.start), x(bar.end)))
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row_h * 0.68:.1f}" text-anchor="end">'
            f"{_text(bar.label)}</text>"
        )
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1.0):.1f}" '
            f'height="{row_h - 6}" fill="{bar.colour}"/>'
        )
        value = number(bar.value, 2) if bar.total else signed(bar.value)
        if bar.value >= 0 or bar.total:
            parts.append(
                f'<text x="{right + 4:.1f}" y="{y + row_h * 0.68:.1f}">{_text(value)}</text>'
            )
        else:
            parts.append(
                f'<text x="{left - 4:.1f}" y="{y + row_h * 0.68:.1f}" text-anchor="end">'
                f"{_text(value)}</text>"
            )
        if i + 1 < len(bars) and not bars[i + 1].total:
            parts.append(
                f'<line x1="{x(bar.end):.1f}" y1="{y + row_h - 3}" x2="{x(bar.end):.1f}" '
                f'y2="{y + row_h + 3}" stroke="#555" stroke-width="1"/>'
            )
    axis_y = top + row_h * len(bars)
    parts += [
        f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{axis_y}" stroke="#333" '
        'stroke-width="1" stroke-dasharray="3 2"/>',
        f'<line x1="{label_w + pad}" y1="{axis_y}" x2="{label_w + pad + plot_w}" y2="{axis_y}" '
        'stroke="#333" stroke-width="1"/>',
        f'<text x="{label_w + pad + plot_w / 2}" y="{axis_y + 27}" text-anchor="middle">'
        f"{case.score_name} × weight</text>",
    ]
    for tick in axis_ticks(low, high):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{axis_y + 13}" text-anchor="middle">'
            f"{_text(number(tick, 2))}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _plain_summary(case: CaseReport) -> str:
    return EMPHASIS.sub(r"\1", case.evidence.summary)


def _header(case: CaseReport) -> str:
    rows = [
        ("Model", f"{_text(case.title)} (<code>{_text(case.model_id)}</code>)"),
        ("Content hash", f"<code>{_text(case.content_hash)}</code>"),
        ("Date (UTC)", _text(case.date)),
        ("Source file", _text(case.source_name)),
        ("Attribute set", _text(case.attribute_mode)),
    ]
    meta = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    note = what_if(case)
    extra = f'<p class="note">{_text(note)}</p>' if note else ""
    return f'<header><h1>{_text(title(case))}</h1>\n<dl class="meta">{meta}</dl>{extra}</header>'


def _prediction(case: CaseReport) -> str:
    order = sorted(range(len(case.class_names)), key=lambda c: -case.probabilities[c])
    rows = "\n".join(
        f"<tr{' class=predicted' if c == case.predicted else ''}><td>{_text(case.class_names[c])}"
        f"{' (predicted)' if c == case.predicted else ''}</td>"
        f'<td class="num">{case.probabilities[c]:.4f}</td>'
        f'<td class="num">{_text(number(case.logits[c], 4))}</td></tr>'
        for c in order
    )
    return (
        '<section id="prediction"><h2>Prediction</h2>'
        f"<p>Predicted class: <strong>{_text(case.predicted_class)}</strong>, probability "
        f"<strong>{case.probability:.4f}</strong>.</p>"
        f"<p>{_rich(case.summary)}</p>"
        f"<figure>{_img(case.image)}<figcaption>{_text(case.image.alt)}</figcaption></figure>"
        "<table><caption>Class probabilities (softmax of the logits), most likely first"
        "</caption><thead><tr><th>class</th><th>probability</th><th>logit</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _evidence(case: CaseReport) -> str:
    ev = case.evidence
    rows = "\n".join(
        f"<tr><td>{_text(t.label)}</td><td class=num>{_text(number(t.value, 4))}</td></tr>"
        for t in ev.terms
    )
    return (
        f'<section id="evidence"><h2>Evidence for {_text(ev.class_name)}</h2>'
        f"<figure>{evidence_svg(case)}<figcaption>{_rich(ev.summary)}</figcaption></figure>"
        "<table><caption>The chart's numbers</caption><thead><tr><th>term</th>"
        f"<th>{case.score_name} × weight</th></tr></thead><tbody>{rows}"
        f'<tr class="predicted"><td>sum = logit of {_text(ev.class_name)}</td>'
        f"<td class=num>{_text(number(ev.logit, 4))}</td></tr></tbody></table></section>"
    )


def _pairs(case: CaseReport) -> str:
    rows = []
    for p in case.pairs:
        source = (
            _img(p.source_picture, PAIR_SIDE)
            if p.source_picture is not None
            else "(the model folder has no source images)"
        )
        rows.append(
            f"<tr><td class=num>{p.rank}</td><td>prototype <strong>{p.prototype}</strong><br>"
            f"class {_text(p.prototype_class)}<br>at the {_text(p.where)}"
            f"{'' if p.robustness is None else '<br>' + _text(p.robustness)}</td>"
            f"<td class=num>{_text(number(p.similarity, 4))}</td>"
            f"<td class=num>{_text(number(p.weight, 4))}</td>"
            f"<td class=num>{_text(number(p.contribution, 4))}</td>"
            f"<td>{_img(p.image_picture, PAIR_SIDE)}</td><td>{source}</td></tr>"
        )
    return (
        '<section id="pairs"><h2>This looks like that: the top prototypes</h2>'
        f"<p>Left: the image with the prototype's {case.score_name} map and the box where it "
        "matches best. "
        "Right: the prototype's source training image with the patch it was taken from.</p>"
        f"<p>Robustness: each match is read again after JPEG compression (quality 75), mild noise, "
        f"a shift by one feature cell and noise outside its box; {_text(badge_rule())}</p>"
        '<table class="pairs"><thead><tr><th>rank</th><th>prototype</th>'
        f"<th>{case.score_name}</th>"
        "<th>weight</th><th>contribution</th><th>this image</th><th>that prototype</th></tr>"
        "</thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _attribution(case: CaseReport) -> str:
    a = case.attribution
    if a is None:
        return (
            '<section id="attribution"><h2>Post-hoc attribution</h2>'
            "<p>No attribution was computed for this report.</p></section>"
        )
    return (
        f'<section id="attribution"><h2>Post-hoc attribution: {_text(a.method)}</h2>'
        f"<figure>{_img(a.picture)}<figcaption>{_text(a.note)}</figcaption></figure></section>"
    )


def _attributes(case: CaseReport) -> str:
    blocks = []
    for a in case.attributes:
        rows = "\n".join(
            f"<tr><td>{_text(name)}</td><td class=num>{_text(number(value, 4))}</td></tr>"
            for name, value in a.phi
        )
        rows += "\n".join(
            f"<tr><td>{_text(name)}</td><td>not applicable (grey image or grey-input model)</td></tr>"
            for name in a.not_applicable
        )
        hint = (
            '<p class="warn">Hint: this match ranks the modifications unlike the prototype\'s '
            "usual matches: it may rest on something else than the prototype usually does.</p>"
            if a.disagrees
            else ""
        )
        blocks.append(
            f"<h3>Prototype {a.prototype} (class {_text(a.prototype_class)})</h3>"
            f"<p>{_rich(a.sentence)}</p>{hint}"
            + (f"<p>{_rich(a.global_uncertainty)}</p>" if a.global_uncertainty else "")
            + f"<p>Sorted φ: {_text(phi_line(a.phi))}.</p>"
            "<table><thead><tr><th>modification</th><th>φ</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return (
        '<section id="attributes"><h2>Attribute explanations</h2>'
        f"<p>How much each top match depends on hue, shape, texture, contrast and saturation "
        f"({_text(case.attribute_mode)} modification set).</p>{''.join(blocks)}</section>"
    )


def _labels(case: CaseReport) -> str:
    body = f"<p>{_text(labels_heading_note(case))}</p>"
    if case.labels:
        rows = "\n".join(
            f"<tr><td class=num>{lab.prototype}</td><td><strong>{_text(lab.verdict)}</strong></td>"
            f"<td>{_text(lab.reason or '')}</td><td>{_text(lab.comment)}</td>"
            f"<td>{_text(lab.reviewer)}</td><td>{_text(lab.case or 'general')}</td>"
            f"<td>{_text(lab.time)}</td></tr>"
            for lab in case.labels
        )
        body += (
            "<table><thead><tr><th>prototype</th><th>verdict</th><th>reason</th><th>comment</th>"
            f"<th>reviewer</th><th>case</th><th>time (UTC)</th></tr></thead><tbody>{rows}"
            "</tbody></table>"
        )
    return f'<section id="labels"><h2>Labels</h2>{body}</section>'


def _footer(case: CaseReport) -> str:
    items = "".join(f"<li>{_text(line)}</li>" for line in case.numbers_mean)
    return (
        f"<footer><h2>What the numbers mean</h2><ul>{items}</ul>"
        f"<p>Made by the prototype explanation explorer from model <code>{_text(case.model_id)}"
        f"</code> (content hash <code>{_text(case.content_hash)}</code>) on {_text(case.date)}."
        "</p></footer>"
    )


def render_html(case: CaseReport) -> str:
    """The whole report as one HTML document (UTF-8 text; nothing outside it is referenced)."""
    body = "\n".join(
        [
            _header(case),
            "<main>",
            _prediction(case),
            _evidence(case),
            _pairs(case),
            _attribution(case),
            _attributes(case),
            _labels(case),
            "</main>",
            _footer(case),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title(case))}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )

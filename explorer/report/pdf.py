"""A case report as a PDF (fpdf2): the same content as the HTML report, text and images.

Text is set in DejaVu Sans (shipped with matplotlib) so φ, Φ, ×, − and — print. The document's
metadata carry the case's date, so the bytes are reproducible for a fixed date.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from explorer.report.case import CaseReport, Picture, number, signed
from explorer.report.chart import axis_ticks, hex_rgb, waterfall
from explorer.report.words import (
    labels_heading_note,
    phi_line,
    plain,
    title,
    what_if,
)

FONT = "DejaVu"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
TEXT = (26, 26, 26)
RULE = (33, 102, 172)
GRID = (140, 140, 140)
CHART_ROW = 5.5  # mm per bar
PAIR_SIDE = 55.0  # mm: each picture of a pair
CREATOR = "Prototype explanation explorer (python -m explorer report)"


class _Document(FPDF):
    """A4 portrait, DejaVu Sans, page numbers in the footer."""

    def __init__(self, case: CaseReport) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._case = case
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_text_color(*TEXT)
        self.set_draw_color(*GRID)
        self.set_line_width(0.2)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(90, 90, 90)
        self.cell(
            0, 4, f"{self._case.model_id} · {self._case.content_hash} · {self._case.source_name}"
            f" · page {self.page_no()}/{{nb}}", align="C",
        )  # fmt: skip
        self.set_text_color(*TEXT)

    # --- building blocks ---------------------------------------------------------------------
    def heading(self, text: str, size: float = 13, need: float = 0) -> None:
        """A section heading, on a new page unless it and ``need`` mm of what follows fit."""
        if self.will_page_break(size + 14 + need):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if size >= 13:
            self.set_draw_color(*RULE)
            self.set_line_width(0.5)
            self.line(self.l_margin, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
            self.set_draw_color(*GRID)
            self.set_line_width(0.2)
            self.ln(2)
        self.set_font(FONT, "", 9.5)

    def para(self, text: str, size: float = 9.5, bold: bool = False) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)
        self.set_font(FONT, "", 9.5)

    def picture(self, picture: Picture, x: float, y: float, width: float) -> float:
        """Puts a picture at ``(x, y)``, ``width`` mm wide; returns its height."""
        height = width * picture.height / picture.width
        self.image(io.BytesIO(picture.png), x=x, y=y, w=width, h=height, alt_text=picture.alt)
        return height

    def figure(self, picture: Picture, width: float, caption: str) -> None:
        height = width * picture.height / picture.width
        if self.will_page_break(height + 12):
            self.add_page()
        self.picture(picture, self.l_margin, self.get_y(), width)
        self.set_y(self.get_y() + height + 1.5)
        self.para(caption, size=8.5)

    def rows(
        self,
        header: tuple[str, ...],
        body: list[tuple[str, ...]],
        widths: tuple[float, ...],
        align: tuple[str, ...],
        bold_row: int | None = None,
    ) -> None:
        self.set_font(FONT, "", 9)
        with self.table(
            col_widths=widths, text_align=align, width=sum(widths), align="LEFT",
            line_height=4.6, padding=(0.8, 1.2),
            headings_style=_headings_style(),
        ) as table:  # fmt: skip
            table.row(header)
            for i, cells in enumerate(body):
                table.row(cells, style=FontFace(emphasis="BOLD") if i == bold_row else None)
        self.ln(2)


def _headings_style() -> FontFace:
    return FontFace(family=FONT, emphasis="BOLD", fill_color=(232, 238, 246))


def _header(pdf: _Document, case: CaseReport) -> None:
    pdf.set_font(FONT, "B", 16)
    pdf.multi_cell(0, 8, title(case), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    for key, value in (
        ("Model", f"{case.title} ({case.model_id})"),
        ("Content hash", case.content_hash),
        ("Date (UTC)", case.date),
        ("Source file", case.source_name),
        ("Attribute set", case.attribute_mode),
    ):
        pdf.set_font(FONT, "B", 9.5)
        pdf.cell(32, 5, key)
        pdf.set_font(FONT, "", 9.5)
        pdf.multi_cell(0, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    note = what_if(case)
    if note:
        pdf.ln(1)
        pdf.para(note, bold=True)


def _prediction(pdf: _Document, case: CaseReport) -> None:
    pdf.heading("Prediction")
    pdf.para(
        f"Predicted class: {case.predicted_class}, probability {case.probability:.4f}.", bold=True
    )
    pdf.para(plain(case.summary))
    pdf.figure(case.image, 45, case.image.alt)
    order = sorted(range(len(case.class_names)), key=lambda c: -case.probabilities[c])
    body = [
        (
            case.class_names[c] + (" (predicted)" if c == case.predicted else ""),
            f"{case.probabilities[c]:.4f}",
            number(case.logits[c], 4),
        )
        for c in order
    ]
    pdf.para("Class probabilities (softmax of the logits), most likely first:", size=8.5)
    pdf.rows(("class", "probability", "logit"), body, (70, 30, 30), ("LEFT", "RIGHT", "RIGHT"), 0)


def chart_height(case: CaseReport) -> float:
    return 8 + CHART_ROW * (len(case.evidence.terms) + 1) + 9


def _evidence_chart(pdf: _Document, case: CaseReport) -> None:
    bars, low, high = waterfall(case.evidence)
    label_w, pad, plot_w, row_h = 38.0, 16.0, 110.0, CHART_ROW
    height = chart_height(case)
    if pdf.will_page_break(height):
        pdf.add_page()
    x0, y0 = pdf.l_margin, pdf.get_y()

    def x(value: float) -> float:
        return x0 + label_w + pad + (value - low) / (high - low) * plot_w

    pdf.set_font(FONT, "B", 9)
    pdf.text(x0, y0 + 4, "Similarity × weight per prototype; the bars add up to the logit.")
    pdf.set_font(FONT, "", 8)
    top = y0 + 7
    for i, bar in enumerate(bars):
        y = top + i * row_h
        left, right = sorted((x(bar.start), x(bar.end)))
        width = pdf.get_string_width(bar.label)
        pdf.text(x0 + label_w - 2 - width, y + row_h * 0.7, bar.label)
        pdf.set_fill_color(*hex_rgb(bar.colour))
        pdf.rect(left, y + 0.8, max(right - left, 0.3), row_h - 1.6, style="F")
        value = number(bar.value, 2) if bar.total else signed(bar.value)
        if bar.value >= 0 or bar.total:
            pdf.text(right + 1, y + row_h * 0.7, value)
        else:
            pdf.text(left - 1 - pdf.get_string_width(value), y + row_h * 0.7, value)
    axis_y = top + row_h * len(bars)
    pdf.set_draw_color(60, 60, 60)
    pdf.set_line_width(0.2)
    pdf.set_dash_pattern(dash=0.8, gap=0.6)
    pdf.line(x(0.0), top, x(0.0), axis_y)
    pdf.set_dash_pattern()
    pdf.line(x(low), axis_y, x(high), axis_y)
    for value in axis_ticks(low, high):
        text = number(value, 2)
        pdf.text(x(value) - pdf.get_string_width(text) / 2, axis_y + 3.5, text)
    caption = f"{case.score_name} × weight"
    pdf.text(x((low + high) / 2) - pdf.get_string_width(caption) / 2, axis_y + 7, caption)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*GRID)
    pdf.set_y(y0 + height)


def _evidence(pdf: _Document, case: CaseReport) -> None:
    ev = case.evidence
    pdf.heading(f"Evidence for {ev.class_name}", need=chart_height(case))
    _evidence_chart(pdf, case)
    pdf.para(plain(ev.summary), size=8.5)
    body = [(t.label, number(t.value, 4)) for t in ev.terms]
    body.append((f"sum = logit of {ev.class_name}", number(ev.logit, 4)))
    pdf.rows(
        ("term", f"{case.score_name} × weight"), body, (70, 40), ("LEFT", "RIGHT"), len(body) - 1
    )


def _pairs(pdf: _Document, case: CaseReport) -> None:
    first = case.pairs[0].image_picture if case.pairs else None
    pdf.heading(
        "This looks like that: the top prototypes",
        need=0 if first is None else 30 + PAIR_SIDE * first.height / first.width,
    )
    pdf.para(
        f"Left: the image with the prototype's {case.score_name} map and the box where it matches "
        "best. "
        "Right: the prototype's source training image with the patch it was taken from.",
        size=8.5,
    )
    side = PAIR_SIDE
    for p in case.pairs:
        image_h = side * p.image_picture.height / p.image_picture.width
        if pdf.will_page_break(image_h + 18):
            pdf.add_page()
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(
            0, 5, f"{p.rank}. Prototype {p.prototype} (class {p.prototype_class}), at the {p.where}",
            new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )  # fmt: skip
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(
            0, 4.6,
            f"{case.score_name} {number(p.similarity, 4)} × weight {number(p.weight, 4)} = "
            f"contribution {number(p.contribution, 4)}"
            + ("" if p.robustness is None else f". Robustness: {p.robustness}"),
            new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )  # fmt: skip
        y = pdf.get_y() + 1
        height = pdf.picture(p.image_picture, pdf.l_margin, y, side)
        if p.source_picture is not None:
            height = max(height, pdf.picture(p.source_picture, pdf.l_margin + side + 4, y, side))
        pdf.set_y(y + height + 3)


def _attribution(pdf: _Document, case: CaseReport) -> None:
    a = case.attribution
    if a is None:
        pdf.heading("Post-hoc attribution")
        pdf.para("No attribution was computed for this report.")
        return
    pdf.heading(f"Post-hoc attribution: {a.method}")
    pdf.figure(a.picture, 55, a.note)


def _attributes(pdf: _Document, case: CaseReport) -> None:
    pdf.heading("Attribute explanations")
    pdf.para(
        "How much each top match depends on hue, shape, texture, contrast and saturation "
        f"({case.attribute_mode} modification set).",
        size=8.5,
    )
    for a in case.attributes:
        pdf.heading(f"Prototype {a.prototype} (class {a.prototype_class})", size=10.5)
        pdf.para(plain(a.sentence), size=9)
        if a.global_uncertainty:
            pdf.para(plain(a.global_uncertainty), size=9)
        if a.disagrees:
            pdf.para(
                "Hint: this match ranks the modifications unlike the prototype's usual matches: it "
                "may rest on something else than the prototype usually does.",
                size=9, bold=True,
            )  # fmt: skip
        pdf.para(f"Sorted φ: {phi_line(a.phi)}.", size=9)
        if a.not_applicable:
            pdf.para(
                f"Not applicable (grey image or grey-input model): {', '.join(a.not_applicable)}.",
                size=9,
            )


def _labels(pdf: _Document, case: CaseReport) -> None:
    pdf.heading("Labels")
    pdf.para(labels_heading_note(case), size=9)
    if case.labels:
        body = [
            (str(lab.prototype), lab.verdict, lab.reason or "", lab.comment, lab.reviewer,
             lab.case or "general", lab.time)
            for lab in case.labels
        ]  # fmt: skip
        pdf.rows(
            ("prototype", "verdict", "reason", "comment", "reviewer", "case", "time (UTC)"),
            body, (18, 20, 22, 40, 24, 20, 36), ("RIGHT", *("LEFT",) * 6),
        )  # fmt: skip


def _meaning(pdf: _Document, case: CaseReport) -> None:
    pdf.heading("What the numbers mean")
    for line in case.numbers_mean:
        pdf.para(f"• {line}", size=8.5)
    pdf.para(
        f"Made by the prototype explanation explorer from model {case.model_id} (content hash "
        f"{case.content_hash}) on {case.date}.",
        size=8.5,
    )


def render_pdf(case: CaseReport, compress: bool = True) -> bytes:
    """The whole report as PDF bytes. ``compress=False`` leaves the page streams readable (tests)."""
    pdf = _Document(case)
    pdf.set_compression(compress)
    pdf.set_title(title(case))
    pdf.set_subject(f"Prototype explanation of {case.source_name} by model {case.model_id}")
    pdf.set_keywords(f"ProtoPNet, {case.model_id}, {case.content_hash}")
    pdf.set_creator(CREATOR)
    pdf.set_author(CREATOR)
    pdf.set_lang("en")
    pdf.set_creation_date(datetime.fromisoformat(case.date))
    pdf.alias_nb_pages()
    pdf.add_page()
    _header(pdf, case)
    _prediction(pdf, case)
    _evidence(pdf, case)
    _pairs(pdf, case)
    _attribution(pdf, case)
    _attributes(pdf, case)
    _labels(pdf, case)
    _meaning(pdf, case)
    return bytes(pdf.output())

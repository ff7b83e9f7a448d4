"""Self-contained case reports of one image's explanation: one HTML file and one PDF.

``build_case`` computes everything once (plain data), ``render_html`` / ``render_pdf`` only lay it
out, and ``write_reports`` writes both files atomically.
"""

from __future__ import annotations

from pathlib import Path

from explorer.files import write_atomically
from explorer.report.case import CaseReport, build_case
from explorer.report.html import render_html
from explorer.report.pdf import render_pdf

__all__ = ["CaseReport", "build_case", "render_html", "render_pdf", "write_reports"]


def write_reports(case: CaseReport, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Writes ``<stem>.html`` and ``<stem>.pdf`` into ``out_dir`` (which must exist); returns them.

    Raises:
        OSError: the folder cannot be written.
    """
    out_dir = Path(out_dir)
    html_path, pdf_path = out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"
    html, pdf = render_html(case).encode("utf-8"), render_pdf(case)
    write_atomically(html_path, html)
    write_atomically(pdf_path, pdf)
    return html_path, pdf_path

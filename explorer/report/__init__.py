"""Self-contained case reports of one image's explanation: one HTML file and one PDF.

``build_case`` computes everything once (plain data), ``render_html`` / ``render_pdf`` only lay it
out, and ``write_reports`` writes both files atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from explorer.report.case import CaseReport, build_case
from explorer.report.html import render_html
from explorer.report.pdf import render_pdf

__all__ = ["CaseReport", "build_case", "render_html", "render_pdf", "write_atomic", "write_reports"]


def write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file next to ``path``, then renames it into place, so a reader
    sees the old file or the whole new one, never a part."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from other readers
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_reports(case: CaseReport, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Writes ``<stem>.html`` and ``<stem>.pdf`` into ``out_dir`` (which must exist); returns them.

    Raises:
        OSError: the folder cannot be written.
    """
    out_dir = Path(out_dir)
    html_path, pdf_path = out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"
    html, pdf = render_html(case).encode("utf-8"), render_pdf(case)
    write_atomic(html_path, html)
    write_atomic(pdf_path, pdf)
    return html_path, pdf_path

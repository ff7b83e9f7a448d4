"""Case reports (HTML and PDF) and ``python -m explorer report``, on the shipped models.

The PDF is read back without fpdf2: a small reader below decodes the page text of an uncompressed
PDF through each font's ToUnicode map, so the tests see the words a PDF viewer would show.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import explorer.files as files_module
from explorer.api import Explorer
from explorer.cli import main
from explorer.report import CaseReport, build_case, render_html, render_pdf, write_reports

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- helpers --------------------------------------------------------------------------------------


class _Images(HTMLParser):
    """Every ``<img>``'s attributes, and every tag name, of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs))


def parse_html(text: str) -> _Images:
    parser = _Images()
    parser.feed(text)
    parser.close()
    return parser


def _unescape_literal(raw: bytes) -> bytes:
    """A PDF literal string's bytes (the escapes of PDF 1.7, 7.3.4.2)."""
    out, i = bytearray(), 0
    simple = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while i < len(raw):
        byte = raw[i]
        if byte != 0x5C:  # backslash
            out.append(byte)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif 0x30 <= nxt <= 0x37:
            digits = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4]).group()  # type: ignore[union-attr]
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        else:  # \( \) \\ and a backslash before anything else
            out.append(nxt)
            i += 2
    return bytes(out)


def pdf_text(data: bytes) -> str:
    """The text shown on the pages of an *uncompressed* PDF whose fonts are Type0 with ToUnicode maps
    (what fpdf2 writes for TTF fonts), one line per text-showing operator."""
    objects = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(rb"(\d+) 0 obj\n(.*?)\nendobj", data, re.DOTALL)
    }

    def stream(number: int) -> bytes:
        body = objects[number]
        return body[body.index(b"stream\n") + 7 : body.rindex(b"endstream")]

    def to_unicode(font: int) -> dict[int, str]:
        cmap_ref = re.search(rb"/ToUnicode (\d+) 0 R", objects[font])
        assert cmap_ref, "a font without a ToUnicode map"
        table = {}
        for block in re.findall(
            rb"beginbfchar(.*?)endbfchar", stream(int(cmap_ref.group(1))), re.DOTALL
        ):
            for code, text in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                table[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
        return table

    fonts: dict[bytes, dict[int, str]] = {}
    for body in objects.values():
        for font_dict in re.findall(rb"/Font\s*<<(.*?)>>", body, re.DOTALL):
            for name, number in re.findall(rb"/(F\d+) (\d+) 0 R", font_dict):
                fonts[name] = to_unicode(int(number))
    pages = [n for n, body in objects.items() if re.search(rb"/Type /Page\b(?!s)", body)]
    lines = []
    token = re.compile(
        rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj|\[((?:\\.|[^\\\]])*)\] TJ", re.DOTALL
    )
    for page in sorted(pages):
        contents = re.search(rb"/Contents (\d+) 0 R", objects[page])
        assert contents, "a page without contents"
        current: dict[int, str] = {}
        for match in token.finditer(stream(int(contents.group(1)))):
            if match.group(1):
                current = fonts[match.group(1)]
                continue
            if match.group(2) is not None:
                strings = [match.group(2)]
            else:
                strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", match.group(3))
            codes = b"".join(_unescape_literal(s) for s in strings)
            lines.append(
                "".join(current.get(int.from_bytes(codes[i : i + 2], "big"), "\ufffd")
                        for i in range(0, len(codes), 2))
            )  # fmt: skip
    return "\n".join(lines)


def flat(text: str) -> str:
    """Whitespace collapsed, so words broken over lines still match."""
    return " ".join(text.split())


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer()


@pytest.fixture(scope="module")
def synthetic_image(explorer: Explorer) -> Path:
    return explorer.bundle("synthetic").examples()[0]


@pytest.fixture(scope="module")
def case(explorer: Explorer, synthetic_image: Path) -> CaseReport:
    return build_case(explorer, synthetic_image, "synthetic", top_k=3, now=NOW)


@pytest.fixture(scope="module")
def html_text(case: CaseReport) -> str:
    return render_html(case)


@pytest.fixture(scope="module")
def grey_case(explorer: Explorer) -> CaseReport:
    image = explorer.bundle("fashion_mnist").examples()[0]
    return build_case(explorer, image, "fashion_mnist", top_k=2, attribution="none", now=NOW)


# --- the case -------------------------------------------------------------------------------------


def test_probabilities_and_prediction_agree_with_predict(
    explorer: Explorer, synthetic_image: Path, case: CaseReport
) -> None:
    prediction = explorer.predict(synthetic_image, "synthetic")
    assert sum(case.probabilities) == pytest.approx(1.0, abs=1e-9)
    assert case.predicted == int(np.argmax(case.probabilities)) == prediction.predicted
    assert case.predicted_class == prediction.class_names[prediction.predicted]
    assert case.probabilities == pytest.approx(prediction.probabilities, abs=1e-6)
    assert case.logits == pytest.approx(prediction.logits, abs=1e-5)
    assert case.content_hash == prediction.content_hash
    assert case.date == "2024-05-01T12:30:00+00:00"
    assert case.source_name == synthetic_image.name


def test_evidence_sums_to_the_logit(
    explorer: Explorer, synthetic_image: Path, case: CaseReport
) -> None:
    logit = explorer.predict(synthetic_image, "synthetic").logits[case.predicted]
    evidence = case.evidence
    assert evidence.class_index == case.predicted
    assert len(evidence.contributions) == explorer.bundle("synthetic").spec.num_prototypes
    assert sum(evidence.contributions) == pytest.approx(logit, abs=1e-4)
    assert sum(t.value for t in evidence.terms) == pytest.approx(logit, abs=1e-4)
    assert evidence.logit == pytest.approx(logit, abs=1e-5)
    # the pairs are the largest contributions, and each is similarity × weight
    top = sorted(range(len(evidence.contributions)), key=lambda j: -evidence.contributions[j])[:3]
    assert [p.prototype for p in case.pairs] == top
    for pair in case.pairs:
        assert pair.contribution == pytest.approx(pair.similarity * pair.weight, rel=1e-5)
        assert pair.contribution == pytest.approx(evidence.contributions[pair.prototype], rel=1e-5)
    # the summary names the strongest prototype and the logit
    assert f"prototype {top[0]} (" in evidence.summary
    assert f"{abs(logit):.4f}" in evidence.summary


def test_attributes_are_the_library_match_explanations(
    explorer: Explorer, synthetic_image: Path, case: CaseReport
) -> None:
    assert [a.prototype for a in case.attributes] == [p.prototype for p in case.pairs]
    first = case.attributes[0]
    match = explorer.match_attributes(synthetic_image, first.prototype, "synthetic", "reference")
    assert first.sentence == match.sentence
    assert dict(first.phi) == pytest.approx(dict(zip(match.names, match.local, strict=True)))
    values = [v for _, v in first.phi]
    assert values == sorted(values, reverse=True)
    assert first.not_applicable == ()  # an RGB model on a colour image: hue applies
    assert "hue" in dict(first.phi)
    # how sure the prototype's global explanation is, as the library says it (the shipped one's
    # bootstrap intervals)
    assert first.global_uncertainty == match.global_uncertainty != ""


# --- HTML -----------------------------------------------------------------------------------------


def test_html_names_the_model_the_prediction_and_every_top_prototype(
    case: CaseReport, html_text: str
) -> None:
    assert case.model_id in html_text and case.content_hash in html_text
    assert f"<strong>{case.predicted_class}</strong>" in html_text
    assert case.date in html_text and case.source_name in html_text
    for pair in case.pairs:
        assert f"prototype <strong>{pair.prototype}</strong>" in html_text
        assert f"Prototype {pair.prototype} (class " in html_text  # its attribute explanation
    # the global explanation's uncertainty, in words: the shipped synthetic analyses carry intervals
    assert "95% bootstrap intervals" in html_text and "resamples" in html_text
    assert "sum = logit of" in html_text and "log((d + 1) / (d + 1e-4))" in html_text
    assert "<svg" in html_text  # the evidence chart is drawn inline


def test_html_is_self_contained_and_every_image_has_alt_text(
    case: CaseReport, html_text: str
) -> None:
    parsed = parse_html(html_text)
    # the input, two pictures per pair, the attribution map
    assert len(parsed.images) == 1 + 2 * len(case.pairs) + 1
    for image in parsed.images:
        assert (image.get("alt") or "").strip(), image
        src = image.get("src") or ""
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert html_text.count("<img") == len(parsed.images)
    lowered = html_text.lower()
    for external in ("http://", "https://", 'src="/', "src='/", "url(", "@import", "//cdn"):
        assert external not in lowered, external
    assert not parsed.tags & {"script", "link", "iframe", "object", "embed"}


def test_html_escapes_user_strings(case: CaseReport) -> None:
    hostile = dataclasses.replace(case, source_name='<script>alert("x")</script>.png')
    text = render_html(hostile)
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.png" in text


# --- PDF ------------------------------------------------------------------------------------------


def test_pdf_has_the_same_content_and_is_reproducible(case: CaseReport) -> None:
    data = render_pdf(case)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert data == render_pdf(case)  # fixed date → identical bytes
    assert b"/CreationDate (D:20240501123000" in data
    plain = render_pdf(case, compress=False)
    pages = len(re.findall(rb"/Type /Page\b(?!s)", plain))
    assert pages >= 2
    assert plain.count(b"/Subtype /Image") >= 1 + 2 * len(case.pairs) + 1
    text = flat(pdf_text(plain))
    assert case.model_id in text and case.content_hash in text
    assert f"Predicted class: {case.predicted_class}, probability {case.probability:.4f}" in text
    for pair in case.pairs:
        assert f"Prototype {pair.prototype} (class {pair.prototype_class})" in text
    assert "similarity × weight" in text and "φ" in text  # Unicode survives the TTF font
    assert "log((d + 1) / (d + 1e-4))" in text


def test_grey_model_report_says_hue_and_saturation_do_not_apply(grey_case: CaseReport) -> None:
    assert grey_case.attribution is None
    for attribute in grey_case.attributes:
        assert set(attribute.not_applicable) == {"hue", "saturation"}
        assert not {"hue", "saturation"} & {name for name, _ in attribute.phi}
        assert "not apply to grey images" in attribute.sentence
    html_text = render_html(grey_case)
    assert "<td>hue</td><td>not applicable" in html_text
    assert "<td>saturation</td><td>not applicable" in html_text
    assert "No attribution was computed" in html_text
    text = flat(pdf_text(render_pdf(grey_case, compress=False)))
    assert "hue and saturation do not apply to grey images" in text
    assert "Not applicable (grey image or grey-input model): hue, saturation." in text


# --- labels and the what-if model -------------------------------------------------------------------


def test_labels_show_in_the_report_and_can_leave_prototypes_out(
    tmp_path: Path, synthetic_image: Path, case: CaseReport
) -> None:
    own = Explorer(label_path=tmp_path / "labels.sqlite3")  # never touches the session's labels
    target = case.pairs[0].prototype
    own.label("synthetic", target, "misleading", "Dr. Tester", reason="background",
              comment="rim <glare> & shadow")  # fmt: skip
    labelled = build_case(own, synthetic_image, "synthetic", top_k=3, attribution=None, now=NOW)
    assert [(lab.prototype, lab.verdict, lab.reason) for lab in labelled.labels] == [
        (target, "misleading", "background")
    ]
    text = render_html(labelled)
    assert "rim &lt;glare&gt; &amp; shadow" in text and "<glare>" not in text
    assert "Dr. Tester" in text and "<strong>misleading</strong>" in text
    assert "No reviewer has labelled" in render_html(case)
    pdf = flat(pdf_text(render_pdf(labelled, compress=False)))
    assert "misleading" in pdf and "rim <glare> & shadow" in pdf

    without = build_case(
        own, synthetic_image, "synthetic", top_k=3, attribution=None,
        disabled=own.misleading("synthetic"), now=NOW,
    )  # fmt: skip
    assert without.disabled == (target,)
    assert target not in [p.prototype for p in without.pairs]
    assert without.evidence.contributions[target] == 0.0
    assert sum(without.evidence.contributions) == pytest.approx(
        without.logits[without.predicted], abs=1e-4
    )
    assert without.as_trained == (case.predicted_class, pytest.approx(case.probability))
    assert f"What-if: 1 prototype(s) left out (P{target};" in render_html(without)


# --- files and the command line -------------------------------------------------------------------


def test_write_reports_is_atomic(
    tmp_path: Path, case: CaseReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    html_path, pdf_path = write_reports(case, tmp_path, "case")
    assert html_path == tmp_path / "case.html" and pdf_path == tmp_path / "case.pdf"
    assert html_path.read_text(encoding="utf-8") == render_html(case)
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.html", "case.pdf"]

    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    before = html_path.read_bytes()
    monkeypatch.setattr(files_module.os, "replace", refuse)
    with pytest.raises(OSError):
        write_reports(dataclasses.replace(case, source_name="other.png"), tmp_path, "case")
    assert html_path.read_bytes() == before  # the old report is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.html", "case.pdf"]  # no temp file


def test_cli_reports_good_images_and_names_the_bad_one(tmp_path: Path, explorer: Explorer) -> None:
    examples = explorer.bundle("synthetic").examples()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "cell.png", tmp_path / "b" / "cell.png"  # same stem
    first.write_bytes(examples[0].read_bytes())
    second.write_bytes(examples[-1].read_bytes())
    bad = tmp_path / "notes.png"
    bad.write_text("this is text, not a picture")
    out = tmp_path / "reports"
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "report", str(first), str(bad), str(second),
         "--model", "synthetic", "--out", str(out), "--top-k", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(bad) in errors[0] and "not an image" in errors[0], result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["image"]) for r in records] == [first, second]
    assert sorted(p.name for p in out.iterdir()) == [
        "cell-2.html",
        "cell-2.pdf",
        "cell.html",
        "cell.pdf",
    ]
    for record in records:
        prediction = explorer.predict(record["image"], "synthetic")
        assert record["predicted_class"] == prediction.class_names[prediction.predicted]
        assert record["probability"] == pytest.approx(prediction.confidence, abs=1e-5)
        html_text = Path(record["html"]).read_text(encoding="utf-8")
        assert Path(record["image"]).name in html_text and "synthetic" in html_text
        assert Path(record["pdf"]).read_bytes().startswith(b"%PDF-")


def test_cli_refuses_an_output_path_that_is_not_a_folder(
    tmp_path: Path, synthetic_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    status = main(["report", str(synthetic_image), "--model", "synthetic", "--out", str(blocker)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.strip() == f"error: --out {blocker} exists and is not a folder"
    status = main(["report", str(synthetic_image), "--model", "synthetic",
                   "--out", str(blocker / "below")])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 2 and captured.err.startswith(
        f"error: cannot create the output folder {blocker / 'below'}"
    )

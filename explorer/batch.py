"""Batch explanations: one folder of JSON and PNGs per image, bad files reported and skipped."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from explorer import Explanation, Explorer, ExplorerError
from explorer.images import as_rgb
from explorer.models.checkpoint import write_png
from explorer.viz.heatmaps import ATTRIBUTION_COLORMAP, overlay, shared_scale
from explorer.viz.overlays import enlarge
from explorer.viz.pairs import DISPLAY_SIDE, pair_picture
from explorer.viz.text import explanation_summary, position_words

log = logging.getLogger(__name__)


HIDDEN_REASON = "hidden (its name or a folder's name starts with a dot)"


def collect_paths(
    paths: Iterable[str | Path], exclude: Path | None = None
) -> tuple[list[Path], list[dict[str, str]]]:
    """Files as given; folders replaced by every file inside them (sorted, recursive), whatever
    the suffix: the image loader decides by content, and a file it cannot read is then reported
    with its reason rather than silently left out.

    Hidden files and files in hidden folders of a given folder (``.DS_Store``, ``.git/``), and
    files under ``exclude`` (the output folder), are not taken; they are returned as skipped.

    Returns:
        ``(files, skipped)``, each skipped one as ``{"image": path, "reason": why}``.
    """
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        for found in sorted(p for p in path.rglob("*") if not p.is_dir()):
            if _is_hidden(found.relative_to(path)):
                skipped.append({"image": str(found), "reason": HIDDEN_REASON})
            elif exclude is not None and found.resolve().is_relative_to(exclude.resolve()):
                skipped.append({"image": str(found), "reason": "inside the output folder"})
            else:
                files.append(found)
    return files, skipped


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files :func:`collect_paths` takes from ``paths`` (hidden files left out)."""
    return collect_paths(paths)[0]


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def explanation_record(x: Explanation, files: dict[str, str]) -> dict[str, Any]:
    """The JSON written for one image."""
    acts = x.activations
    names = x.class_names
    size = acts.input_size
    return {
        "model_id": x.model_id,
        "content_hash": x.content_hash,
        "predicted_class": names[acts.predicted],
        "probabilities": {n: float(p) for n, p in zip(names, acts.probabilities, strict=True)},
        "logits": {n: float(v) for n, v in zip(names, acts.logits, strict=True)},
        "explained_class": names[x.target_class],
        "summary": explanation_summary(x),
        "input_size": list(size),
        "top_prototypes": [
            {
                "rank": rank,
                "prototype": p.prototype,
                "prototype_class": names[p.prototype_class],
                "similarity": p.similarity,
                "weight": p.weight,
                "contribution": p.contribution,
                "image_cell": list(p.image_cell),
                "image_box_y0_y1_x0_x1": list(p.image_box),
                "where": position_words(p.image_box, size),
                "source_box_y0_y1_x0_x1": list(p.source_box) if p.source_box else None,
                "robustness": None if p.robustness is None else p.robustness.to_dict(),
            }
            for rank, p in enumerate(x.pairs, start=1)
        ],
        "contributions_to_explained_class": {
            f"P{j}": float(v) for j, v in enumerate(acts.contributions[x.target_class])
        },
        "attribution": None
        if x.attribution is None
        else {
            "method": x.attribution.method,
            "target": f"{x.attribution.target_kind} {x.attribution.target}",
        },
        "files": files,
    }


def explain_to_folder(
    explorer: Explorer,
    image: Path,
    out: Path,
    model_id: str | None,
    top_k: int,
    attribution: str | None,
) -> dict[str, Any]:
    """Explains one image into ``out`` (created); returns the JSON record."""
    x = explorer.explain(image, model_id, top_k=top_k, attribution=attribution)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for rank, pair in enumerate(x.pairs, start=1):
        source = explorer.source_image(pair.prototype, model_id)
        name = f"pair_{rank:02d}_prototype_{pair.prototype}.png"
        write_png(out / name, pair_picture(x, pair, source))
        files[f"pair_{rank}"] = name
    if x.attribution is not None:
        values = x.attribution.values
        vmin, vmax = shared_scale([values], signed=bool(values.min() < 0))
        picture = overlay(
            enlarge(as_rgb(x.pixels), DISPLAY_SIDE),
            values,
            colormap=ATTRIBUTION_COLORMAP if values.min() < 0 else "jet",
            vmin=vmin,
            vmax=vmax,
        )
        write_png(out / "attribution.png", picture)
        files["attribution"] = "attribution.png"
    record = explanation_record(x, files)
    (out / "explanation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def explain_batch(
    explorer: Explorer,
    paths: Iterable[str | Path],
    out: Path,
    model_id: str | None = None,
    top_k: int = 10,
    attribution: str | None = "gradcam",
) -> dict[str, Any]:
    """Explains every image; a file that cannot be explained is reported and skipped.

    Every file given or found in a given folder ends in exactly one list: explained, failed (with
    the reason, e.g. "is an SVG (vector) image") or skipped (hidden files, the output folder).

    Returns:
        ``{"explained": [{"image", "folder", "predicted_class"}], "failed": [{"image", "error"}],
        "skipped": [{"image", "reason"}]}``, also written to ``out/summary.json``.
    """
    explorer.spec(model_id)  # an unknown model fails before any work
    images, skipped = collect_paths(paths, exclude=out)
    summary: dict[str, Any] = {
        "model_id": model_id or explorer.default_model,
        "explained": [],
        "failed": [],
        "skipped": skipped,
    }
    for i, image in enumerate(images):
        folder = out / f"{i:04d}_{image.stem}"
        try:
            record = explain_to_folder(explorer, image, folder, model_id, top_k, attribution)
        except ExplorerError as error:
            log.warning("%s: %s", image, error)
            summary["failed"].append({"image": str(image), "error": str(error)})
            continue
        summary["explained"].append(
            {
                "image": str(image),
                "folder": str(folder),
                "predicted_class": record["predicted_class"],
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

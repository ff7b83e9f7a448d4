"""Nearest patches of every prototype in a split (ProtoPNet's global analysis), as map → combine →
finish.

*Map* (:func:`nearest_map`): one batched forward gives every image's best similarity to every
prototype and where it is, reduced at once to the batch's top-k per prototype. *Combine*
(:func:`nearest_combine`): two partials merge into the top-k of their union — ties go to the lower
image index, a total order, so combining is associative and order-independent (at most one patch
per image, since each image contributes only its best cell). *Finish* (:func:`nearest_finish`): boxes,
the top-k images, the per-image scores in image order. The in-process engine
(:func:`explorer.analysis.passes.run_local`) and the Ray Data engine (:mod:`explorer.engines`) run
the same three functions (:class:`NearestPass` holds the first two).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from explorer.analysis.passes import Partial, PassOutcome, run_local
from explorer.boxes import high_activation_box, upsample_map
from explorer.data.sources import ArraySource, ImageSource
from explorer.models.base import PrototypeModel
from explorer.models.preprocess import to_model_pixels
from explorer.pixel_store import (
    decode_images,
    decode_mosaic,
    encode_images,
    encode_mosaic,
    prefixed,
    unprefixed,
)

DEFAULT_K = 5


@torch.inference_mode()
def nearest_map(
    model: PrototypeModel, x: torch.Tensor, indices: np.ndarray, k: int, keep_all_scores: bool
) -> Partial:
    """The map step: one forward pass over a preprocessed batch, reduced at once to the batch's own
    top-k per prototype (the maps kept only for those entries).

    Returns:
        ``index [P, k']``, ``score [P, k']``, ``cell [P, k', 2]``, ``map [P, k', h, w]`` (``k'`` =
        ``min(k, batch)``), and with ``keep_all_scores`` ``rows [B]`` (the images' indices) and
        ``row_scores [B, P]``; else those two empty.
    """
    output = model(x)
    maps = output.similarity_maps.float().cpu()  # [B, P, h, w]
    flat = maps.flatten(2).argmax(dim=2)  # [B, P]
    width = maps.shape[-1]
    cells = torch.stack([flat // width, flat % width], dim=-1).numpy()
    scores = output.scores.float().cpu().numpy()  # [B, P]
    indices = np.asarray(indices, dtype=np.int64)
    partial = _top(
        index=np.broadcast_to(indices[None, :], scores.T.shape),
        score=scores.T,
        cell=cells.transpose(1, 0, 2),
        maps=maps.numpy().transpose(1, 0, 2, 3),
        k=k,
    )
    num_prototypes = scores.shape[1]
    partial["rows"] = indices if keep_all_scores else np.zeros(0, dtype=np.int64)
    partial["row_scores"] = scores if keep_all_scores else np.zeros((0, num_prototypes), np.float32)
    return partial


def _top(
    index: np.ndarray, score: np.ndarray, cell: np.ndarray, maps: np.ndarray, k: int
) -> Partial:
    """The ``k`` best entries per prototype row by score, ties to the lower image index: a total
    order, so the result does not depend on how the images were split or in which order merged."""
    order = np.lexsort((index, -score), axis=1)[:, :k]  # last key first: score, then index
    rows = np.arange(score.shape[0])[:, None]
    return {
        "index": np.ascontiguousarray(index[rows, order]),
        "score": np.ascontiguousarray(score[rows, order]),
        "cell": np.ascontiguousarray(cell[rows, order]),
        "map": np.ascontiguousarray(maps[rows, order]),
    }


def _maps(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The stored similarity maps as float32, from whichever form :meth:`NearestPatches.to_arrays`
    chose."""
    if "maps_levels" in arrays:
        low, step = arrays["maps_range"]
        return (low + arrays["maps_levels"].astype(np.float64) * step).astype(np.float32)
    return np.asarray(arrays["maps"], dtype=np.float32)


def nearest_combine(a: Partial, b: Partial, k: int) -> Partial:
    """The combine step: two partials of disjoint image sets -> one (associative, commutative)."""
    merged = _top(
        index=np.concatenate([a["index"], b["index"]], axis=1),
        score=np.concatenate([a["score"], b["score"]], axis=1),
        cell=np.concatenate([a["cell"], b["cell"]], axis=1),
        maps=np.concatenate([a["map"], b["map"]], axis=1),
        k=k,
    )
    merged["rows"] = np.concatenate([a["rows"], b["rows"]])
    merged["row_scores"] = np.concatenate([a["row_scores"], b["row_scores"]])
    return merged


@dataclass(frozen=True)
class NearestPass:
    """The nearest-patch pass's map and combine (:mod:`explorer.analysis.passes`).

    Attributes:
        k: patches per prototype.
        keep_all_scores: keep every image's ``[P]`` scores (the test split's what-if analyses).
    """

    k: int = DEFAULT_K
    keep_all_scores: bool = False
    title: str = "nearest patches"
    prepares: bool = False

    def prepare(self, model: PrototypeModel, image: np.ndarray) -> np.ndarray:
        return image  # the network's input is made in one piece per chunk (map)

    def map(self, model: PrototypeModel, images: list[np.ndarray], keys: np.ndarray) -> Partial:
        """One forward pass over the chunk (the engine's chunk is the forward batch)."""
        return nearest_map(model, model.preprocess(images), keys, self.k, self.keep_all_scores)

    def combine(self, a: Partial, b: Partial) -> Partial:
        return nearest_combine(a, b, self.k)


@dataclass(frozen=True)
class NearestPatches:
    """Each prototype's ``k`` nearest patches in one split.

    Attributes:
        split: ``train`` or ``test``.
        images: ``[P, k]`` image indices in the split.
        scores: ``[P, k]`` similarities, descending.
        cells: ``[P, k, 2]`` best cell per entry.
        boxes: ``[P, k, 4]`` 95th-percentile boxes ``(y0, y1, x0, x1)`` in input pixels.
        labels: ``[P, k]`` true class of each image.
        pixels: ``[P, k, H, W, C]`` the images at model-input size (so they show without the data set).
        maps: ``[P, k, h, w]`` the prototype's similarity map on each image.
        all_scores: ``[N, P]`` every image's prototype scores (kept for the test split).
        all_labels: ``[N]`` the split's labels (with ``all_scores``).
        score_images: ``[N]`` which images of the split the rows of ``all_scores`` are (``None``: all
            of them, in order); a folder's shipped analyses may keep a stratified subset.
        split_size: how many images the split has (``None``: ``len(all_labels)``).
        pixels_exact: ``[P, k]`` whether each image is exact; ``False`` where only its box is exact
            and the rest was stored as JPEG to fit a folder's size budget (``None``: all exact).
        engine: which engine ran the pass (``local`` or ``ray``), recorded with the stored result.
    """

    split: str
    images: np.ndarray
    scores: np.ndarray
    cells: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    pixels: np.ndarray
    maps: np.ndarray
    all_scores: np.ndarray
    all_labels: np.ndarray
    score_images: np.ndarray | None = None
    split_size: int | None = None
    pixels_exact: np.ndarray | None = None
    engine: str = "local"

    @property
    def scored_images(self) -> int:
        """How many images the stored per-image scores cover."""
        return len(self.all_labels)

    @property
    def images_in_split(self) -> int:
        return self.split_size if self.split_size is not None else len(self.all_labels)

    def to_arrays(
        self,
        jpeg_quality: int | None = None,
        score_rows: np.ndarray | None = None,
        maps_as: str = "float32",
    ) -> dict[str, np.ndarray]:
        """Plain arrays for a stored analysis (no pickles). Each distinct image is stored once, as
        PNG; with ``jpeg_quality`` images are stored as JPEG where that is smaller, and the box of
        every such image as an exact PNG crop on top. ``score_rows`` keeps only those rows of
        ``all_scores``; ``maps_as`` stores the similarity maps (drawn as heatmaps; the scores,
        cells and boxes are stored apart, exactly) as ``float32``, ``float16`` or ``uint8`` (256
        levels between the smallest and the largest value, as many as a colour map shows)."""
        arrays: dict[str, np.ndarray] = {
            "images": self.images,
            "scores": self.scores,
            "cells": self.cells,
            "boxes": self.boxes,
            "labels": self.labels,
        }
        if maps_as == "uint8":
            low, high = float(self.maps.min()), float(self.maps.max())
            step = (high - low) / 255 or 1.0
            arrays["maps_levels"] = np.round((self.maps - low) / step).astype(np.uint8)
            arrays["maps_range"] = np.array([low, step], dtype=np.float64)
        elif maps_as in ("float16", "float32"):
            arrays["maps"] = np.asarray(self.maps, dtype=maps_as)
        else:
            raise ValueError(f"maps_as must be float32, float16 or uint8, not {maps_as!r}")
        rows = np.arange(len(self.all_labels)) if score_rows is None else np.asarray(score_rows)
        base = (
            self.score_images if self.score_images is not None else np.arange(len(self.all_labels))
        )
        arrays["all_scores"] = np.asarray(self.all_scores, dtype=np.float32)[rows]
        arrays["all_labels"] = np.asarray(self.all_labels)[rows]
        arrays["score_images"] = np.asarray(base, dtype=np.int64)[rows]
        arrays["split_size"] = np.array(self.images_in_split, dtype=np.int64)
        arrays["engine"] = np.array(self.engine)
        flat = self.images.reshape(-1)
        _, first, slot = np.unique(flat, return_index=True, return_inverse=True)
        contexts = self.pixels.reshape(-1, *self.pixels.shape[2:])[first]
        arrays["pixel_slot"] = slot.reshape(self.images.shape).astype(np.int64)
        encoded = encode_mosaic(contexts, jpeg_quality)
        arrays.update(prefixed("mosaic_", encoded))
        lossy = np.full(
            self.images.shape, not bool(encoded["exact"])
        )  # entries whose image is JPEG
        if lossy.any():
            crops = [
                self.pixels[j, r, y0:y1, x0:x1]
                for j, r in zip(*np.nonzero(lossy), strict=True)
                for y0, y1, x0, x1 in [self.boxes[j, r]]
            ]
            arrays.update(prefixed("crop_", encode_images(crops)))
        return arrays

    @classmethod
    def from_arrays(cls, split: str, arrays: dict[str, np.ndarray]) -> NearestPatches:
        if "pixels" in arrays:  # stored before images were encoded
            pixels, exact = arrays["pixels"], None
        else:
            contexts = decode_mosaic(unprefixed("mosaic_", arrays))
            slot = arrays["pixel_slot"]
            pixels = contexts[slot]
            exact = np.full(slot.shape, bool(arrays["mosaic_exact"]))
            crops = unprefixed("crop_", arrays)
            if crops:  # the exact boxes of the entries whose image is JPEG, in row order
                pieces = decode_images(crops)
                for (j, r), piece in zip(
                    zip(*np.nonzero(~exact), strict=True), pieces, strict=True
                ):
                    y0, y1, x0, x1 = arrays["boxes"][j, r]
                    pixels[j, r, y0:y1, x0:x1] = piece
            exact = None if exact.all() else exact
        score_images = arrays.get("score_images")
        all_labels = arrays["all_labels"]
        split_size = int(arrays["split_size"]) if "split_size" in arrays else None
        if score_images is not None and np.array_equal(score_images, np.arange(len(all_labels))):
            score_images = None
        return cls(
            split=split,
            images=arrays["images"],
            scores=arrays["scores"],
            cells=arrays["cells"],
            boxes=arrays["boxes"],
            labels=arrays["labels"],
            pixels=pixels,
            maps=_maps(arrays),
            all_scores=arrays["all_scores"],
            all_labels=all_labels,
            score_images=score_images,
            split_size=split_size if split_size != len(all_labels) else None,
            pixels_exact=exact,
            engine=str(arrays["engine"]) if "engine" in arrays else "local",
        )

    def purity(self, prototype_classes: np.ndarray) -> np.ndarray:
        """``[P]`` share of each prototype's nearest patches that come from its own class."""
        return (self.labels == prototype_classes[:, None]).mean(axis=1)


def nearest_patches(
    model: PrototypeModel,
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    k: int = DEFAULT_K,
    batch_size: int = 128,
    keep_all_scores: bool = False,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> NearestPatches:
    """Finds every prototype's ``k`` nearest patches in a split held in memory, in this process.

    Args:
        model: the network (eval mode).
        images: the split's uint8 images (any size; preprocessed per batch).
        labels: ``[N]`` class indices.
        split: its name, recorded in the result.
        k: patches per prototype (at most one per image).
        batch_size: images per forward pass.
        keep_all_scores: keep ``[N, P]`` scores (for what-if analyses of the test split).
        progress: wraps the batch iterator (e.g. ``tqdm`` or ``gr.Progress().tqdm``).
    """
    source = ArraySource(np.asarray(images), np.asarray(labels))
    step = NearestPass(k, keep_all_scores)
    done = run_local(step, model, source, batch_size, progress)
    return nearest_finish(model, done, source, split, keep_all_scores)


def nearest_finish(
    model: PrototypeModel,
    done: PassOutcome,
    source: ImageSource,
    split: str,
    keep_all_scores: bool,
) -> NearestPatches:
    """The finish step: the top-k images read again from the source, their boxes, and the per-image
    scores in image order; keys mapped onto the split (the images that read, in order).
    """
    partial = done.partial
    num_prototypes = partial["score"].shape[0]
    unique = np.unique(partial["index"])
    images, read, failures = source.read(unique)
    if failures:  # read once already: the file changed during the pass
        raise ValueError(
            f"{source.describe(failures[0][0])} changed during the pass: {failures[0][1]}"
        )
    loaded = dict(zip(read.tolist(), images, strict=True))
    order = np.argsort(partial["rows"], kind="stable")
    all_scores = partial["row_scores"][order]
    readable = done.readable
    if keep_all_scores and not np.array_equal(partial["rows"][order], readable):
        raise ValueError("the pass did not score every image of the split exactly once")
    labels = np.asarray(source.labels)[readable]
    size = model.spec.input_size
    boxes = np.array(
        [[high_activation_box(upsample_map(m, size)) for m in row] for row in partial["map"]],
        dtype=np.int64,
    )
    pixels = np.stack(
        [
            np.stack([to_model_pixels(loaded[int(i)], model.spec) for i in row])
            for row in partial["index"]
        ]
    )
    index = done.split_index(partial["index"])
    return NearestPatches(
        split=split,
        images=index,
        scores=partial["score"],
        cells=partial["cell"],
        boxes=boxes,
        labels=labels[index],
        pixels=pixels,
        maps=partial["map"],
        all_scores=all_scores if keep_all_scores else np.zeros((0, num_prototypes)),
        all_labels=labels if keep_all_scores else np.zeros(0, dtype=np.int64),
        engine=done.engine,
    )

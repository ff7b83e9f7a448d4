"""Cut-outs of labelled prototypes: the image patches a reviewer judged (ProtoPDebug's concepts).

ProtoPDebug (Bontempelli et al., ICLR 2023; public code abonte/protopdebug) shows a reviewer each
prototype's most activated training patches — the 95th-percentile box of its activation on the image —
and keeps the ones judged a confound ("forbidden") or a valid part ("remembered"). Each cut-out is then
pasted, at its own size, centred on a white canvas as large as the model's input
(``extract_confound.prepare_cut_out_image``), which is what its losses and its folders hold.

Here a labelled prototype's cut-outs are its nearest training patches (at most one per training image;
after push the first is its own source) and its push source if it is not among them. Each is cut to
the box of the *peak region* of the prototype's activation on the image
(:func:`explorer.boxes.peak_region_box`): ProtoPDebug's extraction splits the 95th-percentile mask
into its connected regions and a reviewer judges each; a label on a prototype here judges the region
of its peak. (The bounding box of the whole mask can span a marker in a corner *and* the object, and
forgetting it would forget the object too.) Without a stored activation map, the stored box is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from explorer.analysis.nearest import NearestPatches
from explorer.boxes import peak_region_box, upsample_map
from explorer.models.checkpoint import ModelBundle

WHITE = 255


@dataclass(frozen=True)
class CutOut:
    """One patch of a training image that a labelled prototype stands for.

    Attributes:
        prototype: the labelled prototype.
        class_index: its class (the folder ``class_idx_<c>`` of ProtoPDebug's export).
        image_index: the training image the patch comes from.
        box: ``(y0, y1, x0, x1)`` in that image at model-input size (upper bounds exclusive).
        crop: the patch, ``[h, w]`` or ``[h, w, 3]`` uint8.
    """

    prototype: int
    class_index: int
    image_index: int
    box: tuple[int, int, int, int]
    crop: np.ndarray

    def on_canvas(self, size: tuple[int, int]) -> np.ndarray:
        """The crop pasted centred on a white canvas of ``size`` (height, width)."""
        return on_white_canvas(self.crop, size)


def on_white_canvas(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``crop`` (``[h, w]`` or ``[h, w, c]`` uint8) pasted at its own size, centred, on a white canvas
    of ``size`` (height, width); a crop larger than the canvas is cut to it around its centre."""
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    height, width = size
    h, w = crop.shape[:2]
    if h > height or w > width:
        top, left = max(0, (h - height) // 2), max(0, (w - width) // 2)
        crop = crop[top : top + min(h, height), left : left + min(w, width)]
        h, w = crop.shape[:2]
    canvas = np.full((height, width, *crop.shape[2:]), WHITE, dtype=np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    canvas[top : top + h, left : left + w] = crop
    return canvas


class CutOutError(ValueError):
    """A labelled prototype has no patch to cut out (no push source and no nearest patches, an
    empty box, or nearest patches of another model or split)."""


def crop_box(image: np.ndarray, box: Sequence[int], what: str) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` (upper bounds exclusive), clipped to the image.

    Raises:
        CutOutError: the box is empty inside the image, or the image is not uint8.
    """
    y0, y1, x0, x1 = (int(v) for v in box)
    height, width = image.shape[:2]
    y0, x0 = max(y0, 0), max(x0, 0)
    y1, x1 = min(y1, height), min(x1, width)
    if y1 <= y0 or x1 <= x0:
        raise CutOutError(f"{what}: its box {tuple(box)} is empty inside a {height}×{width} image")
    crop = np.asarray(image)[y0:y1, x0:x1]
    if crop.dtype != np.uint8:
        raise CutOutError(f"{what}: expected a uint8 image, found {crop.dtype}")
    return crop


def check_nearest_train(bundle: ModelBundle, nearest_train: NearestPatches | None) -> None:
    """Raises :class:`CutOutError` unless ``nearest_train`` is ``None`` or the training split's
    nearest patches of this model's prototypes."""
    if nearest_train is None:
        return
    split = getattr(nearest_train, "split", "train")
    if split != "train":
        raise CutOutError(f"cut-outs come from the training split, not {split!r}")
    count = bundle.spec.num_prototypes
    if nearest_train.images.shape[0] != count:
        raise CutOutError(
            f"the nearest patches are of {nearest_train.images.shape[0]} prototypes, the model "
            f"has {count}"
        )


def prototype_cut_outs(
    bundle: ModelBundle, prototype: int, nearest_train: NearestPatches | None = None
) -> list[CutOut]:
    """A prototype's cut-outs: its nearest training patches' peak regions, then its push source's box
    if the source is not among them (each training image once; empty top-k slots skipped).

    Raises:
        CutOutError: the prototype has neither a push source nor nearest patches.
    """
    classes = bundle.spec.prototype_classes
    found: list[tuple[int, np.ndarray, Sequence[int]]] = []
    if nearest_train is not None:
        maps = getattr(nearest_train, "maps", None)
        for k in range(nearest_train.images.shape[1]):
            pixels = nearest_train.pixels[prototype, k]
            box = (
                nearest_train.boxes[prototype, k]
                if maps is None
                else peak_region_box(upsample_map(maps[prototype, k], pixels.shape[:2]))
            )
            found.append((int(nearest_train.images[prototype, k]), pixels, box))
    if bundle.projection:
        record = bundle.projection[prototype]
        found.append((int(record.source_index), bundle.source_image(prototype), record.box))
    if not found:
        raise CutOutError(
            f"prototype {prototype} has no push source and no stored nearest training patches, so "
            "it has no patch to cut out (run `python -m explorer analyse` first)"
        )
    cut_outs, seen = [], set()
    for image_index, image, box in found:
        if image_index < 0 or image_index in seen:
            continue  # an empty top-k slot, or the source image again among the nearest
        crop = crop_box(image, box, f"prototype {prototype}, training image {image_index}")
        cut_outs.append(
            CutOut(
                prototype=prototype,
                class_index=int(classes[prototype]),
                image_index=image_index,
                box=tuple(int(v) for v in box),  # type: ignore[arg-type]
                crop=crop,
            )
        )
        seen.add(image_index)
    return cut_outs


def labelled_cut_outs(
    bundle: ModelBundle, prototypes: Iterable[int], nearest_train: NearestPatches | None = None
) -> list[CutOut]:
    """The cut-outs of several prototypes, prototype by prototype (see :func:`prototype_cut_outs`)."""
    check_nearest_train(bundle, nearest_train)
    return [c for j in prototypes for c in prototype_cut_outs(bundle, j, nearest_train)]

"""Purity of a prototype's top-k patches: from its own class, and on the object.

The nearest-patch reading of ProtoPNet's prototypes (Chen et al., NeurIPS 2019, §2.4: a prototype is
shown by the training patches most similar to it); purity as in ProtoPool / ProtoTree-style
evaluations (Nauta et al., "PIP-Net", CVPR 2023, §4 "purity" of a prototype's top-k patches):

* **class purity** = the share of the prototype's ``k`` nearest patches (one per image, ranked by
  similarity, :mod:`explorer.analysis.nearest`) whose image is of the prototype's class;
* **object share** = the share of those ``k`` patches whose 95th-percentile box lies at least
  half on the object (the mask's pixels inside the box / the box's pixels >= 0.5). Only where
  masks exist.
"""

from __future__ import annotations

import numpy as np

ON_OBJECT = 0.5


def class_purity(patch_labels: np.ndarray, prototype_classes: np.ndarray) -> np.ndarray:
    """``[P]`` share of each prototype's top-k patches (``[P, k]`` image labels) from its class."""
    return (np.asarray(patch_labels) == np.asarray(prototype_classes)[:, None]).mean(axis=1)


def box_on_mask(mask: np.ndarray, box: tuple[int, int, int, int] | np.ndarray) -> float:
    """Share of a box's pixels (``y0, y1, x0, x1``, upper bounds exclusive) on a 0/1 mask."""
    y0, y1, x0, x1 = (int(v) for v in box)
    region = np.asarray(mask)[y0:y1, x0:x1]
    return float((region > 0).mean()) if region.size else 0.0


def object_share(
    patch_images: np.ndarray, patch_boxes: np.ndarray, masks: np.ndarray
) -> np.ndarray:
    """``[P]`` share of each prototype's top-k patches whose box is at least half on the object.

    Args:
        patch_images: ``[P, k]`` image indices into ``masks``.
        patch_boxes: ``[P, k, 4]`` ``(y0, y1, x0, x1)`` boxes.
        masks: ``[N, H, W]`` object masks at model-input size.
    """
    images = np.asarray(patch_images)
    on = np.array(
        [
            [
                box_on_mask(masks[images[p, i]], patch_boxes[p, i]) >= ON_OBJECT
                for i in range(images.shape[1])
            ]
            for p in range(images.shape[0])
        ],
        dtype=bool,
    )
    return on.mean(axis=1)

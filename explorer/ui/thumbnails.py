"""Prototype thumbnails: the source patch each prototype was projected onto, enlarged for a gallery."""

from __future__ import annotations

import numpy as np

from explorer import Explorer
from explorer.viz.overlays import enlarge

CROP_SIDE = 96


def prototype_thumbnail(explorer: Explorer, model_id: str, prototype: int) -> np.ndarray | None:
    """The prototype's source patch at least ``CROP_SIDE`` pixels a side; ``None`` when the model
    stores no sources."""
    patch = explorer.source_patch(prototype, model_id)
    return None if patch is None else enlarge(patch, CROP_SIDE)

"""ELPV solar-cell images from the PyPI package ``elpv-dataset`` (data licence CC BY-NC-SA 4.0).

2,624 grey 300x300 electroluminescence images of solar cells, each with a defect probability in
{0, 1/3, 2/3, 1} and a cell type (mono / poly). Our binary task: *defective* if p >= 0.5, else
*functional* (68.7 % of cells are functional). The split is fixed: 25 % test, stratified by the
(binary label, cell type) pair, ``sklearn.model_selection.train_test_split(random_state=0)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.model_selection import train_test_split

from explorer.data.base import ImageSet
from explorer.errors import ExplorerError

CLASS_NAMES = ("functional", "defective")
TEST_FRACTION = 0.25
SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _load_all() -> dict[str, np.ndarray]:
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        raise ExplorerError("ELPV data not installed: pip install elpv-dataset") from None
    images, probabilities, types = load_dataset()
    labels = (probabilities >= 0.5).astype(np.int64)
    mono = types == "mono"
    strata = labels * 2 + mono
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=strata, random_state=SPLIT_SEED
    )
    return {
        "images": images,
        "labels": labels,
        "probability": probabilities,
        "mono": mono,
        "train": np.sort(train_idx),
        "test": np.sort(test_idx),
    }


def load_elpv(split: str) -> ImageSet:
    """Loads the fixed ``train`` (1,968) or ``test`` (656) split; extras hold the original
    defect probability and whether the cell is monocrystalline."""
    data = _load_all()
    idx = data[split]
    return ImageSet(
        images=data["images"][idx],
        labels=data["labels"][idx],
        class_names=CLASS_NAMES,
        name="elpv",
        split=split,
        extras={"probability": data["probability"][idx], "mono": data["mono"][idx]},
    )

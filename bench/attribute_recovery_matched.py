"""Known-answer recovery with the *matched* configuration found in the session of 2026-11-29.

Not the explorer's default yet (see README, known-answer benchmark): modifications hue 90°, a fine
sine warp (amplitude 0.5, period 1 feature cell), texture σ 0.5 cell, contrast 0.6, saturation 0.7,
all from the disentangled family; and a *share-rank* reading — each prototype's positive Φ as shares
of its total, then ranked across the model's prototypes per modification. Chosen on one model (seed 0)
and checked on a model it was not chosen on (seed 1):

    python -m explorer train --preset synthetic --push-on-object --seed 1 --out /tmp/synthetic-s1
    python -m bench.attribute_recovery_matched /tmp/synthetic-s1 [--split train|test]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from explorer.analysis.attribute_sets import cell_size
from explorer.analysis.attributes import global_attributes
from explorer.analysis.modifications import ATTRIBUTES, Modification
from explorer.api import Explorer
from explorer.data.synthetic import DEFINING_ATTRIBUTE


def matched_set(cell: float) -> tuple[Modification, ...]:
    """The matched modifications, in :data:`ATTRIBUTES` order."""
    return (
        Modification("hue", 90, "disentangled"),
        Modification(
            "shape", 0.5, "disentangled", params=(("cell_size", cell), ("period_cells", 1.0))
        ),
        Modification("texture", 0.5, "disentangled", params=(("cell_size", cell),)),
        Modification("contrast", 0.6, "disentangled"),
        Modification("saturation", 0.7, "disentangled"),
    )


def share_rank(phi: np.ndarray) -> np.ndarray:
    """Per modification, the rank across prototypes of each prototype's share of its positive Φ."""
    positive = np.clip(phi, 0, None)
    share = positive / np.maximum(positive.sum(axis=1, keepdims=True), 1e-12)
    return share.argsort(axis=0).argsort(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_folder", help="a synthetic-attribute model folder")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    model_id = explorer.add_model_folder(args.model_folder).model_id
    bundle = explorer.bundle(model_id)
    data = explorer.dataset(model_id, args.split)
    mods = matched_set(cell_size(bundle.model, data.images.shape[1:]))
    phi = global_attributes(bundle.model, data.images, mods, args.split).phi
    names = bundle.spec.class_names
    defining = [DEFINING_ATTRIBUTE[names[c]] for c in bundle.model.prototype_classes]
    standardised = (phi - phi.mean(0)) / np.maximum(phi.std(0), 1e-12)
    for reading, values in (
        ("raw", phi),
        ("relative (z)", standardised),
        ("share rank", share_rank(phi)),
    ):
        top = [ATTRIBUTES[i] for i in values.argmax(axis=1)]
        per = {
            a: np.mean([t == a for t, d in zip(top, defining, strict=True) if d == a])
            for a in ATTRIBUTES
        }
        overall = np.mean([t == d for t, d in zip(top, defining, strict=True) if d is not None])
        print(
            f"{reading:<13} overall {overall:4.0%}  "
            + "  ".join(f"{a} {v:4.0%}" for a, v in per.items())
        )
    auc = {
        a: roc_auc_score([d == a for d in defining], phi[:, i]) for i, a in enumerate(ATTRIBUTES)
    }
    print("AUC of Φ_m: " + ", ".join(f"{a} {v:.2f}" for a, v in auc.items()))


if __name__ == "__main__":
    main()

"""bench/known_answer_premise.py: the counterfactual ground truth Φ* is the explanation's own
arithmetic (best cell of the original, similarity-weighted mean) applied to the generator's exact
twins, and its faithfulness figures have answers on paper."""

from __future__ import annotations

import numpy as np
import torch

from bench.known_answer_premise import Counterfactual, faithfulness, measure, weighted
from explorer import Explorer
from explorer.data.synthetic import load_synthetic
from tests.conftest import shipped_folder


def test_weighted_mean_leaves_out_the_images_not_kept() -> None:
    phi = np.array([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]])
    s = np.array([[1.0, 1.0], [3.0, 1.0], [5.0, 5.0]])
    keep = np.array([True, True, False])
    assert np.allclose(weighted(phi, s, keep), [(1 + 9) / 4, (2 + 4) / 2])


def test_faithfulness_on_paper() -> None:
    truth = np.array([[5.0, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    same = faithfulness(truth * 2 + 1, truth)
    assert same["top-1 agrees"] == 1.0 and np.isclose(same["Spearman"], 1.0)
    reversed_ = faithfulness(-truth, truth)
    assert reversed_["top-1 agrees"] == 0.0 and np.isclose(reversed_["Spearman"], -1.0)


def test_counterfactual_phi_is_the_drop_at_the_originals_best_cell() -> None:
    explorer = Explorer(model_dirs=())
    folder = str(shipped_folder("synthetic"))
    result = measure(explorer, folder, "test", per_class=1)
    model = explorer.bundle(explorer.add_model_folder(folder).model_id).model
    plain = load_synthetic("test", n_per_class=1)
    assert result["images"] == len(plain) == 6
    with torch.inference_mode():
        maps = model(model.preprocess(list(plain.images))).similarity_maps.flatten(2)
        best = maps.argmax(dim=2, keepdim=True)
        s = maps.gather(2, best).squeeze(2).double().numpy()
        for m, attribute in enumerate(("hue", "shape", "texture", "contrast", "saturation")):
            twins = load_synthetic("test", n_per_class=1, flip=[attribute])
            moved = model(model.preprocess(list(twins.images))).similarity_maps.flatten(2)
            drop = s - moved.gather(2, best).squeeze(2).double().numpy()
            expected = weighted(drop, s, twins.extras["exact"])
            assert np.allclose(result["truth"][:, m], expected, atol=1e-4)
    twin = Counterfactual("saturation", plain.images, twins.images).apply(plain.images[3])
    assert np.array_equal(twin, twins.images[3])

"""What-if accuracy from stored scores, checked against the really modified model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.redundancy import (
    cluster_prototypes,
    prototype_distances,
    prune_plan,
    pruned_weight,
)
from explorer.analysis.whatif import (
    disabled_weight,
    merged_weight,
    modified_last_layer,
    what_if,
)
from explorer.models.checkpoint import load_model


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """The trained tiny model, its preprocessed test images, their scores and labels."""
    folder, (_, test_set, _) = tiny_run
    bundle = load_model(folder)
    model = bundle.model
    x = model.preprocess(test_set.images)
    with torch.inference_mode():
        output = model(x)
    scores = output.scores.numpy()  # [N, P]
    return bundle, x, scores, np.asarray(test_set.labels)


def weight_of(model) -> np.ndarray:
    return model.last_layer.weight.detach().numpy().copy()


def model_answer(model, x: torch.Tensor, new_weight: np.ndarray) -> np.ndarray:
    """``[N]`` predictions of a real forward pass with the modified last layer."""
    with modified_last_layer(model, new_weight), torch.inference_mode():
        return model(x).logits.argmax(dim=1).numpy()


def test_what_if_equals_the_really_modified_model_for_random_subsets(tiny) -> None:
    bundle, x, scores, labels = tiny
    model = bundle.model
    weight = weight_of(model)
    num = weight.shape[1]
    rng = np.random.default_rng(0)
    subsets = [[], list(range(num))]
    subsets += [rng.choice(num, rng.integers(1, num), replace=False).tolist() for _ in range(12)]
    with torch.inference_mode():
        baseline = model(x).logits.argmax(dim=1).numpy()
    for subset in subsets:
        new = disabled_weight(weight, subset)
        answer = what_if(scores, labels, weight, new)
        predictions = model_answer(model, x, new)
        np.testing.assert_array_equal(answer.predictions, predictions, err_msg=str(subset))
        assert answer.accuracy == (predictions == labels).mean()
        assert answer.baseline_accuracy == (baseline == labels).mean()
        assert answer.changed_predictions == int((predictions != baseline).sum())
    assert torch.equal(model.last_layer.weight, torch.from_numpy(weight))  # restored


def test_what_if_equals_the_really_modified_model_when_merging_a_cluster(tiny) -> None:
    bundle, x, scores, labels = tiny
    model = bundle.model
    weight = weight_of(model)
    distances = prototype_distances(model.prototype_vectors.detach(), test_scores=scores)
    # a loose threshold, so this small model surely has clusters to merge
    clusters = cluster_prototypes(distances, 0.6, prototype_classes=model.prototype_classes)
    assert clusters
    for cluster in clusters:
        keep, *others = cluster.members
        new = merged_weight(weight, keep, others)
        answer = what_if(scores, labels, weight, new)
        predictions = model_answer(model, x, new)
        np.testing.assert_array_equal(answer.predictions, predictions)
        assert answer.accuracy == (predictions == labels).mean()
    whole = pruned_weight(weight, prune_plan(clusters, weight, every_cluster=True))
    predictions = model_answer(model, x, whole)
    assert what_if(scores, labels, weight, whole).accuracy == (predictions == labels).mean()


def test_the_context_manager_restores_the_weight_after_an_exception(random_model) -> None:
    parameter = random_model.last_layer.weight
    original = parameter.detach().clone()
    zeros = np.zeros(tuple(parameter.shape))
    with (
        pytest.raises(RuntimeError, match="boom"),
        modified_last_layer(random_model, zeros) as model,
    ):
        assert model is random_model
        assert random_model.last_layer.weight is parameter  # same Parameter, changed in place
        assert not parameter.detach().any()
        raise RuntimeError("boom")
    assert torch.equal(parameter, original)
    with (
        pytest.raises(ValueError, match="shape"),
        modified_last_layer(random_model, np.zeros((2, 2))),
    ):
        pass
    assert torch.equal(parameter, original)


def test_merging_duplicates_keeps_the_logits(random_model) -> None:
    model = random_model
    with torch.no_grad():
        model.prototype_vectors[3] = model.prototype_vectors[2]  # both of class 1
    x = torch.rand(10, 3, 16, 16)
    with torch.inference_mode():
        before = model(x)
    scores = before.scores.numpy()
    np.testing.assert_array_equal(scores[:, 2], scores[:, 3])
    weight = weight_of(model)
    new = merged_weight(weight, 2, [3])
    with modified_last_layer(model, new), torch.inference_mode():
        after = model(x).logits
    torch.testing.assert_close(after, before.logits, rtol=0, atol=1e-5)
    labels = before.logits.argmax(dim=1).numpy()
    answer = what_if(scores, labels, weight, new)
    assert answer.changed_predictions == 0
    assert answer.accuracy == answer.baseline_accuracy == 1.0
    s64 = scores.astype(np.float64)
    np.testing.assert_allclose(
        s64 @ new.T.astype(np.float64), s64 @ weight.T.astype(np.float64), rtol=1e-12
    )


def test_disabled_and_merged_weights() -> None:
    weight = np.arange(12, dtype=np.float64).reshape(3, 4)  # [C=3, P=4]
    off = disabled_weight(weight, [1, 3, 1])
    np.testing.assert_array_equal(off[:, [1, 3]], 0)
    np.testing.assert_array_equal(off[:, [0, 2]], weight[:, [0, 2]])
    np.testing.assert_array_equal(disabled_weight(weight, []), weight)
    merged = merged_weight(weight, 0, [2, 0, 3, 3])  # keep itself and repeats are ignored
    np.testing.assert_array_equal(merged[:, 0], weight[:, [0, 2, 3]].sum(axis=1))
    np.testing.assert_array_equal(merged[:, [2, 3]], 0)
    np.testing.assert_array_equal(merged[:, 1], weight[:, 1])
    assert weight[0, 2] == 2  # the input is not modified
    np.testing.assert_array_equal(disabled_weight(torch.from_numpy(weight), [0])[:, 0], 0)


def test_per_class_accuracy_and_a_class_without_images() -> None:
    scores = np.eye(3)[[0, 1, 1, 0]]  # [N=4, P=3]
    weight = np.eye(3)  # prototype j votes for class j
    labels = np.array([0, 1, 0, 0])
    answer = what_if(scores, labels, weight, disabled_weight(weight, [1]))
    np.testing.assert_array_equal(answer.predictions, [0, 0, 0, 0])  # ties go to the first class
    assert answer.baseline_accuracy == answer.accuracy == 0.75  # baseline [0, 1, 1, 0]
    assert answer.accuracy_change == 0
    np.testing.assert_array_equal(answer.baseline_per_class[:2], [2 / 3, 1.0])
    np.testing.assert_array_equal(answer.per_class_accuracy[:2], [1.0, 0.0])
    assert np.isnan(answer.per_class_accuracy[2])
    assert answer.changed_predictions == 2


def test_bad_inputs_raise_value_errors() -> None:
    weight = np.ones((3, 4))
    scores = np.ones((5, 4))
    labels = np.zeros(5, dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        disabled_weight(weight, [4])
    with pytest.raises(ValueError, match="out of range"):
        disabled_weight(weight, [-1])
    with pytest.raises(ValueError, match="integers"):
        disabled_weight(weight, [1.5])
    with pytest.raises(ValueError, match="out of range"):
        merged_weight(weight, 7, [0])
    with pytest.raises(ValueError, match=r"\[C, P\]"):
        disabled_weight(np.ones(4), [0])
    with pytest.raises(ValueError, match="new_weight"):
        what_if(scores, labels, weight, np.ones((3, 5)))
    with pytest.raises(ValueError, match="scores"):
        what_if(np.ones((5, 3)), labels, weight, weight)
    with pytest.raises(ValueError, match="labels"):
        what_if(scores, labels[:4], weight, weight)
    with pytest.raises(ValueError, match="labels must lie"):
        what_if(scores, labels + 3, weight, weight)
    with pytest.raises(ValueError, match="no images"):
        what_if(np.ones((0, 4)), labels[:0], weight, weight)
    with pytest.raises(ValueError, match="NaN"):
        what_if(np.full((5, 4), np.nan), labels, weight, weight)
    with pytest.raises(ValueError, match="NaN"):
        what_if(scores, labels, weight, np.full((3, 4), np.inf))

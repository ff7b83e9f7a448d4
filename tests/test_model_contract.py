"""The PrototypeModel contract, one suite for every family and flavour.

Each case is a loaded model folder (``ModelBundle``): ours (a random small model saved and loaded, and a
shipped model with real weights) and every flavour of imported checkpoint. Every analysis may rely on
what this suite checks, and on nothing else.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.activations import model_activations
from explorer.analysis.attributes import local_attributes
from explorer.analysis.explanation import explain_image
from explorer.analysis.modifications import Modification
from explorer.analysis.nearest import nearest_patches
from explorer.analysis.redundancy import redundancy_report
from explorer.analysis.whatif import modified_last_layer
from explorer.models.base import (
    CAPABILITIES,
    PROTOTYPE_VECTORS,
    MissingCapabilityError,
    PrototypeModel,
    has,
    require,
)
from explorer.models.checkpoint import ModelBundle, load_model, save_model
from explorer.models.importers import import_checkpoint
from explorer.models.pipnet import PIPNet
from explorer.models.protopnet import ProtoPNet
from explorer.viz.figures import evidence_terms
from tests.conftest import shipped_folder, tiny_spec
from tests.original_protopnet import KINDS, make_original

SCORE_NAMES = ("similarity", "presence")

# ours, and every flavour of checkpoint made the way other tools make them, imported
FAMILIES = (
    "ours_random", "ours_shipped_synthetic", *(f"imported_{kind}" for kind in KINDS),
    "pipnet_random", "pipnet_random_with_bias",
)  # fmt: skip


def _pipnet_random(folder: Path, bias: bool) -> Path:
    torch.manual_seed(0)
    base = tiny_spec(
        backbone="small_cnn", channels=3, classes=3, per_class=1, dim=6, size=16,
        options={"widths": [4, 8], "pools": 2},
    )  # fmt: skip
    architecture = replace(
        base.architecture, family="pipnet", bias=bias, add_on_layout=("conv:6",),
        prototype_classes=(0, 0, 1, 1, 2, 2),
    )  # fmt: skip
    model = PIPNet(replace(base, architecture=architecture)).eval()
    if bias:
        with torch.no_grad():
            model.classification.bias.copy_(torch.tensor([0.5, 0.0, 1.5]))
    save_model(model, folder)
    return folder


def _ours_random(folder: Path) -> Path:
    torch.manual_seed(0)
    spec = tiny_spec(
        backbone="small_cnn", channels=3, classes=3, per_class=2, dim=8, size=16,
        options={"widths": [4, 8], "pools": 2},
    )  # fmt: skip
    save_model(ProtoPNet(spec).eval(), folder)
    return folder


def _folder(family: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if family == "ours_random":
        return _ours_random(tmp_path_factory.mktemp("ours"))
    if family == "ours_shipped_synthetic":
        return shipped_folder("synthetic")
    if family.startswith("pipnet_random"):
        return _pipnet_random(tmp_path_factory.mktemp("pipnet"), bias=family.endswith("bias"))
    kind = family.removeprefix("imported_")
    scratch = tmp_path_factory.mktemp(kind)
    checkpoint, _, options = make_original(kind, scratch / "checkpoint")
    out = scratch / "model"
    import_checkpoint(checkpoint, out, **options)
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    return load_model(_folder(request.param, tmp_path_factory))


def _images(bundle: ModelBundle, count: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    height, width = bundle.spec.input_size
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _forward(bundle: ModelBundle, images: list[np.ndarray]):
    model = bundle.model
    with torch.inference_mode():
        return model(model.preprocess(images))


def test_satisfies_the_protocol(bundle: ModelBundle) -> None:
    model = bundle.model
    assert isinstance(model, PrototypeModel)
    assert model.num_classes == bundle.spec.num_classes == len(bundle.spec.class_names)
    assert model.num_prototypes == bundle.spec.num_prototypes
    assert set(model.capabilities) <= set(CAPABILITIES)
    assert model.score_name in SCORE_NAMES


def test_preprocess_gives_the_specified_batch(bundle: ModelBundle) -> None:
    x = bundle.model.preprocess(_images(bundle, 2))
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (2, bundle.spec.channels, *bundle.spec.input_size)


def test_forward_shapes_and_scores_are_the_maps_maxima(bundle: ModelBundle) -> None:
    out = _forward(bundle, _images(bundle))
    num, classes, protos = 3, bundle.model.num_classes, bundle.model.num_prototypes
    assert tuple(out.logits.shape) == (num, classes)
    assert tuple(out.scores.shape) == (num, protos)
    assert out.similarity_maps.shape[:2] == (num, protos)
    maxima = out.similarity_maps.flatten(2).amax(dim=2)
    threshold = bundle.model.presence_threshold
    if threshold is not None:  # below it a score is exactly zero (PIP-Net's presence)
        maxima = torch.where(maxima < threshold, torch.zeros_like(maxima), maxima)
    torch.testing.assert_close(out.scores, maxima, atol=1e-5, rtol=1e-5)


def test_logits_are_scores_times_class_weights_plus_bias(bundle: ModelBundle) -> None:
    model = bundle.model
    out = _forward(bundle, _images(bundle))
    expected = out.scores.double() @ model.class_weights.detach().double().t()
    if model.class_bias is not None:
        expected = expected + model.class_bias.detach().double()
    torch.testing.assert_close(out.logits.double(), expected, atol=1e-4, rtol=1e-5)
    assert tuple(model.class_weights.shape) == (model.num_classes, model.num_prototypes)


def test_contributions_sum_to_the_logit(bundle: ModelBundle) -> None:
    model = bundle.model
    out = _forward(bundle, _images(bundle, 1))
    acts = model_activations(model, out, bundle.spec.input_size)
    bias = 0.0 if model.class_bias is None else model.class_bias.detach().numpy()
    np.testing.assert_allclose(acts.contributions.sum(axis=1) + bias, acts.logits, atol=1e-4)
    # the chart's terms (the largest, the rest as one, the bias where there is one) end at the logit
    for c in range(model.num_classes):
        assert sum(evidence_terms(acts, c, top=3)[1]) == pytest.approx(acts.logits[c], abs=1e-4)
    assert acts.score_name == model.score_name in SCORE_NAMES


def test_prototype_classes_match_the_class_identity(bundle: ModelBundle) -> None:
    model = bundle.model
    classes = np.asarray(model.prototype_classes)
    identity = model.prototype_class_identity.cpu().numpy()
    assert classes.shape == (model.num_prototypes,)
    assert identity.shape == (model.num_prototypes, model.num_classes)
    assert ((classes >= 0) & (classes < model.num_classes)).all()
    np.testing.assert_array_equal(identity.argmax(axis=1), classes)
    np.testing.assert_array_equal(identity.sum(axis=1), np.ones(model.num_prototypes))
    assert tuple(classes) == bundle.spec.prototype_classes


def test_class_weights_edited_in_place_change_the_model_and_are_restored(
    bundle: ModelBundle,
) -> None:
    model = bundle.model
    images = _images(bundle, 2)
    before = _forward(bundle, images).logits.clone()
    with modified_last_layer(model, np.zeros(tuple(model.class_weights.shape))):
        zeroed = _forward(bundle, images).logits
        bias = (
            torch.zeros_like(zeroed)
            if model.class_bias is None
            else model.class_bias.expand_as(zeroed)
        )
        torch.testing.assert_close(zeroed, bias)
    torch.testing.assert_close(_forward(bundle, images).logits, before)


def test_cell_boxes_tile_the_input(bundle: ModelBundle) -> None:
    model = bundle.model
    grid = tuple(_forward(bundle, _images(bundle, 1)).similarity_maps.shape[-2:])
    height, width = bundle.spec.input_size
    cover = np.zeros((height, width), dtype=int)
    for row in range(grid[0]):
        for col in range(grid[1]):
            y0, y1, x0, x1 = model.cell_box((row, col), grid)
            assert 0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width
            cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    with pytest.raises(ValueError, match="outside"):
        model.cell_box(grid, grid)


def test_capabilities_are_declared_and_checked(bundle: ModelBundle) -> None:
    model = bundle.model
    for capability in CAPABILITIES.values():
        if has(model, capability):
            require(model, capability)
        else:
            with pytest.raises(MissingCapabilityError, match=capability.name.replace("_", " ")):
                require(model, capability)
    if has(model, PROTOTYPE_VECTORS):
        assert model.prototype_vectors.shape[0] == model.num_prototypes


def test_feature_layer_is_part_of_the_model(bundle: ModelBundle) -> None:
    assert any(m is bundle.model.feature_layer for m in bundle.model.modules())


def test_explanation_with_gradcam_runs_on_the_contract(bundle: ModelBundle) -> None:
    image = _images(bundle, 1)[0]
    explanation = explain_image(bundle, image, top_k=3, attribution="gradcam")
    assert len(explanation.pairs) == 3
    assert explanation.attribution is not None
    assert np.isfinite(explanation.attribution.values).all()


def test_a_null_modification_gives_zero_importance(bundle: ModelBundle) -> None:
    null = Modification("contrast", 1.0, "reference")  # factor 1: the image itself
    local = local_attributes(bundle.model, _images(bundle, 1)[0], [null])
    assert np.array_equal(local.phi, np.zeros_like(local.phi))


def test_nearest_patches_and_redundancy_run_on_the_contract(bundle: ModelBundle) -> None:
    images = np.stack(_images(bundle, 6, seed=1))
    labels = np.arange(6) % bundle.spec.num_classes
    nearest = nearest_patches(bundle.model, images, labels, "test", k=2, keep_all_scores=True)
    assert nearest.images.shape == (bundle.model.num_prototypes, 2)
    report = redundancy_report(bundle, nearest)
    assert report.distances.combined.shape == (bundle.model.num_prototypes,) * 2
    assert (report.distances.latent is not None) == has(bundle.model, PROTOTYPE_VECTORS)


def test_save_and_load_round_trip_keeps_the_outputs(bundle: ModelBundle, tmp_path: Path) -> None:
    images = _images(bundle, 2)
    folder = tmp_path / "copy"
    save_model(bundle.model, folder, bundle.projection)
    copy = load_model(folder)
    torch.testing.assert_close(_forward(copy, images).logits, _forward(bundle, images).logits)


def test_metrics_and_badges_run_on_the_contract(bundle: ModelBundle) -> None:
    from explorer.analysis.metrics.evaluation import evaluate
    from explorer.data.base import ImageSet

    images = np.stack(_images(bundle, 6, seed=2))
    height, width = images.shape[1:3]
    labels = np.arange(6) % bundle.spec.num_classes
    masks = np.zeros((6, height, width), dtype=np.uint8)
    masks[:, : height // 2] = 1
    keypoints = np.tile(
        np.array([[width / 4, height / 4], [3 * width / 4, 3 * height / 4]]), (6, 1, 1)
    )
    data = ImageSet(
        images, labels, bundle.spec.class_names, "random", "test",
        {"mask": masks, "keypoints": keypoints.astype(np.float32)}, ("a", "b"),
    )  # fmt: skip
    nearest = nearest_patches(bundle.model, images, labels, "test", k=2)
    metrics = evaluate(bundle.model, data, nearest, faithfulness_images=3, steps=4)
    summary = metrics.summary()
    assert summary["consistency"] is not None and 0 <= summary["consistency"] <= 100
    assert all(v is None or np.isfinite(v) for v in summary.values())
    assert metrics.curves.deletion.shape == (3, 5)
    explanation = explain_image(bundle, images[0], top_k=2, attribution=None)
    assert all(p.robustness is not None for p in explanation.pairs)
    assert {p.robustness.verdict for p in explanation.pairs} <= {"robust", "fragile"}

"""Attributions via captum: Grad-CAM against a direct autograd computation, occlusion against a
hand-weighted model's known answer, hooks and other side effects undone, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer.analysis.attributions import (
    METHODS,
    AttributionMap,
    _no_leaked_hooks,
    attribute,
    default_occlusion_window,
)
from explorer.models.protopnet import ProtoPNet
from explorer.viz.heatmaps import colourise, overlay
from tests.conftest import tiny_spec

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_full_backward_hooks",
)


@pytest.fixture
def cnn_model() -> ProtoPNet:
    """2 classes x 2 prototypes on a one-stage small CNN: 16 px input → 8x8 feature map."""
    torch.manual_seed(0)
    spec = tiny_spec(
        backbone="small_cnn", channels=3, classes=2, per_class=2, dim=4, size=16,
        options={"widths": [4], "pools": 1},
    )  # fmt: skip
    return ProtoPNet(spec).eval()


@pytest.fixture
def image() -> torch.Tensor:
    return torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))


HOT = (5, 5)  # the one input cell that matters in the hand-weighted model


def hand_model() -> tuple[ProtoPNet, torch.Tensor]:
    """Identity backbone, add-on ``sigmoid(relu(x))`` per channel (no mixing, zero biases).

    The input is −10 everywhere (add-on output 0.5, the same as the zero baseline's) except the hot
    cell, which is +10 (add-on output ≈ 1). Prototype 0 = (1, 1) matches the hot cell only; prototype
    1 = (0, 0) is nearest to the 0.5 cells, where the ReLU has zero gradient.
    """
    model = ProtoPNet(tiny_spec(backbone="identity", channels=2, classes=2, per_class=1, dim=2))
    with torch.no_grad():
        for conv in (model.add_on[0], model.add_on[2]):
            conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            conv.bias.zero_()
        model.prototype_vectors.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(2, 2, 1, 1))
    x = torch.full((1, 2, 8, 8), -10.0)
    x[0, :, HOT[0], HOT[1]] = 10.0
    return model.eval(), x


def direct_gradcam(model: ProtoPNet, x: torch.Tensor, kind: str, index: int) -> np.ndarray:
    """Grad-CAM by hand with autograd, upsampled as captum's interpolate (F.interpolate's default
    ``align_corners=None``, i.e. False for bilinear)."""
    features = model.feature_layer(x)  # [1, K, h, w]
    out = model.head(model.add_on(features))
    target = (out.logits if kind == "class" else out.scores)[0, index]
    (grads,) = torch.autograd.grad(target, features)  # [1, K, h, w]
    weights = grads.mean(dim=(2, 3), keepdim=True)  # [1, K, 1, 1]
    cam = torch.relu((weights * features).sum(dim=1, keepdim=True))  # [1, 1, h, w]
    up = nn.functional.interpolate(cam, x.shape[2:], mode="bilinear", align_corners=False)
    return up[0, 0].detach().numpy()


def hook_entries(model: nn.Module) -> list[tuple[str, str]]:
    return [
        (name, attr)
        for name, module in model.named_modules()
        for attr in HOOK_DICTS
        if getattr(module, attr, None)
    ]


# --- Grad-CAM equals the direct computation ------------------------------------------------------
@pytest.mark.parametrize("kind", ["prototype", "class"])
def test_gradcam_equals_direct_gradient_computation(
    cnn_model: ProtoPNet, image: torch.Tensor, kind: str
) -> None:
    count = 4 if kind == "prototype" else 2
    nonzero = 0
    for index in range(count):
        target = {"prototype": index} if kind == "prototype" else {"class_index": index}
        result = attribute(cnn_model, image, "gradcam", **target)
        expected = direct_gradcam(cnn_model, image, kind, index)
        assert result.values.shape == (16, 16) and result.values.dtype == np.float32
        np.testing.assert_allclose(result.values, expected, atol=1e-5, rtol=0)
        assert result.all_zero == (not expected.any())
        nonzero += int(expected.max() > 1e-4)
    assert nonzero > 0, "the check needs at least one non-zero map"


# --- each method ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("target", [{"class_index": 1}, {"prototype": 2}])
def test_each_method_gives_a_finite_float32_map_at_input_size(
    cnn_model: ProtoPNet, image: torch.Tensor, method: str, target: dict[str, int]
) -> None:
    result = attribute(cnn_model, image, method, ig_steps=8, occlusion_window=4, **target)
    assert isinstance(result, AttributionMap)
    assert result.method == method
    assert result.target_kind == ("class" if "class_index" in target else "prototype")
    assert result.target == next(iter(target.values()))
    assert result.values.shape == (16, 16) and result.values.dtype == np.float32
    assert np.isfinite(result.values).all()
    assert result.all_zero == (not result.values.any())
    if method == "gradcam":
        assert (result.values >= 0).all()


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_smoothgrad_differs_from_plain_and_is_reproducible(
    cnn_model: ProtoPNet, image: torch.Tensor, method: str
) -> None:
    options = {"class_index": 0, "ig_steps": 4, "smoothgrad_samples": 4}
    plain = attribute(cnn_model, image, method, **options)
    rng = torch.get_rng_state()
    smooth = attribute(cnn_model, image, method, smoothgrad=True, **options)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is untouched
    again = attribute(cnn_model, image, method, smoothgrad=True, **options)
    assert smooth.method == method + "+smoothgrad"
    assert smooth.values.shape == (16, 16) and smooth.values.dtype == np.float32
    assert np.isfinite(smooth.values).all() and smooth.values.any()
    assert not np.allclose(smooth.values, plain.values)
    np.testing.assert_array_equal(smooth.values, again.values)


def test_smoothgrad_occlusion_runs(cnn_model: ProtoPNet, image: torch.Tensor) -> None:
    result = attribute(
        cnn_model, image, "occlusion", prototype=0, smoothgrad=True, smoothgrad_samples=2,
        occlusion_window=8,
    )  # fmt: skip
    assert result.method == "occlusion+smoothgrad" and result.values.shape == (16, 16)
    assert np.isfinite(result.values).all()


def test_integrated_gradients_completeness(cnn_model: ProtoPNet, image: torch.Tensor) -> None:
    """IG's attributions add up to f(x) − f(baseline), approximately (summed over channels)."""
    result = attribute(cnn_model, image, "integrated_gradients", class_index=1, ig_steps=32)
    with torch.no_grad():
        gap = cnn_model(image).logits[0, 1] - cnn_model(torch.zeros_like(image)).logits[0, 1]
    assert float(result.values.sum()) == pytest.approx(float(gap), rel=0.05, abs=0.02)


# --- known answers on a hand-weighted model ------------------------------------------------------
def test_occlusion_known_answer_on_hand_weighted_model() -> None:
    model, x = hand_model()
    with torch.no_grad():
        before = model(x).scores[0, 0]
        occluded = x.clone()
        occluded[0, :, HOT[0], HOT[1]] = 0.0
        drop = float(before - model(occluded).scores[0, 0])
    assert drop > 1.0
    result = attribute(model, x, "occlusion", prototype=0)  # window 2, stride 1 on 8 px
    values = result.values
    # windows are 2x2 with stride 1: a pixel's value is the mean drop over the windows covering it,
    # and only windows covering the hot cell change the output.
    expected = np.zeros((8, 8), dtype=np.float64)
    expected[4:7, 4:7] = drop * np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    outside = expected == 0
    assert (values[outside] == 0).all()  # exactly zero where occlusion cannot change the output
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-6)
    # prototype 1 is nearest to the cells that occlusion leaves as they are: nothing matters
    assert attribute(model, x, "occlusion", prototype=1).all_zero


def test_all_zero_gradcam_map_is_flagged_and_colourises() -> None:
    model, x = hand_model()
    result = attribute(model, x, "gradcam", prototype=1)  # its cells sit where the ReLU is flat
    assert result.all_zero and not result.values.any()
    assert np.isfinite(result.values).all()
    for colormap in ("jet", "rdbu", "cividis"):
        colours = colourise(result.values, colormap)
        assert colours.dtype == np.uint8 and colours.shape == (8, 8, 3)
        grey = np.full((32, 32), 100, dtype=np.uint8)
        blended = overlay(grey, result.values, colormap)
        assert blended.dtype == np.uint8 and blended.shape == (32, 32, 3)


# --- side effects --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_no_hooks_remain_after_a_forward_that_raises(
    cnn_model: ProtoPNet, image: torch.Tensor, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_head(features: torch.Tensor) -> None:
        raise RuntimeError("head exploded")

    monkeypatch.setattr(cnn_model, "head", broken_head)
    with pytest.raises(RuntimeError, match="head exploded"):
        attribute(cnn_model, image, method, prototype=0)
    assert hook_entries(cnn_model) == []
    with pytest.raises(RuntimeError, match="head exploded"):
        attribute(cnn_model, image, method, prototype=0, smoothgrad=True, smoothgrad_samples=2)
    assert hook_entries(cnn_model) == []


@pytest.mark.parametrize("method", METHODS)
def test_no_hooks_remain_after_a_normal_call(
    cnn_model: ProtoPNet, image: torch.Tensor, method: str
) -> None:
    attribute(cnn_model, image, method, class_index=0, ig_steps=4, occlusion_window=8)
    assert hook_entries(cnn_model) == []


def test_hook_guard_removes_new_hooks_only() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model.feature_layer = model[0]  # type: ignore[assignment]  # the guard walks the feature layer too
    own = model[0].register_forward_hook(lambda *_: None)
    with pytest.raises(RuntimeError), _no_leaked_hooks(model):  # type: ignore[arg-type]
        model[0].register_forward_hook(lambda *_: None)
        model[1].register_full_backward_hook(lambda *_: None)
        model[1].register_forward_pre_hook(lambda *_: None)
        raise RuntimeError("boom")
    assert list(model[0]._forward_hooks) == [own.id]
    assert not model[1]._forward_pre_hooks and not model[1]._backward_hooks


def test_model_modes_input_and_parameters_are_left_as_found(
    cnn_model: ProtoPNet, image: torch.Tensor
) -> None:
    cnn_model.train()
    cnn_model.add_on.eval()  # a mixed state must come back as it was
    flags = {name: m.training for name, m in cnn_model.named_modules()}
    requires = {name: p.requires_grad for name, p in cnn_model.named_parameters()}
    cnn_model.last_layer.weight.requires_grad_(False)
    requires["last_layer.weight"] = False
    original = image.clone()
    for method in METHODS:
        attribute(cnn_model, image, method, prototype=1, ig_steps=4, occlusion_window=8)
    assert {name: m.training for name, m in cnn_model.named_modules()} == flags
    assert {name: p.requires_grad for name, p in cnn_model.named_parameters()} == requires
    assert all(p.grad is None for p in cnn_model.parameters())
    assert torch.equal(image, original) and not image.requires_grad


def test_eval_mode_is_used_during_the_call(cnn_model: ProtoPNet, image: torch.Tensor) -> None:
    expected = attribute(cnn_model, image, "gradcam", class_index=0).values
    cnn_model.train()  # batch-norm in train mode would give a different map
    np.testing.assert_array_equal(
        attribute(cnn_model, image, "gradcam", class_index=0).values, expected
    )
    assert cnn_model.training


def test_works_inside_inference_mode(cnn_model: ProtoPNet) -> None:
    with torch.inference_mode():
        x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
        assert x.is_inference()
        for method in METHODS:
            result = attribute(cnn_model, x, method, class_index=1, ig_steps=4, occlusion_window=8)
            assert np.isfinite(result.values).all()
    with torch.no_grad():
        assert attribute(cnn_model, x, "gradcam", prototype=0).values.shape == (16, 16)


# --- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gradcam"}, "exactly one target"),
        ({"method": "gradcam", "class_index": 0, "prototype": 0}, "exactly one target"),
        ({"method": "saliency", "class_index": 0}, "unknown attribution method 'saliency'"),
        ({"method": "gradcam", "class_index": 2}, "class index 2 is out of range.*2 classes"),
        ({"method": "gradcam", "class_index": -1}, "class index -1 is out of range"),
        ({"method": "occlusion", "prototype": 4}, "prototype index 4 is out of range.*4 prototypes"),
        ({"method": "gradcam", "prototype": 1.5}, "prototype index must be an int"),
        ({"method": "occlusion", "class_index": 0, "occlusion_window": 17}, "occlusion_window"),
        ({"method": "integrated_gradients", "class_index": 0, "ig_steps": 0}, "ig_steps"),
        ({"method": "gradcam", "class_index": 0, "smoothgrad": True, "smoothgrad_samples": 0}, "smoothgrad_samples"),
    ],
)  # fmt: skip
def test_invalid_arguments_raise_value_error(
    cnn_model: ProtoPNet, image: torch.Tensor, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        attribute(cnn_model, image, **kwargs)


def test_input_must_be_one_image(cnn_model: ProtoPNet, image: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\[1, C, H, W\]"):
        attribute(cnn_model, image[0], "gradcam", class_index=0)
    with pytest.raises(ValueError, match=r"\[1, C, H, W\]"):
        attribute(cnn_model, image.repeat(2, 1, 1, 1), "gradcam", class_index=0)


def test_default_occlusion_window() -> None:
    assert default_occlusion_window(28, 28) == 4
    assert default_occlusion_window(224, 224) == 28
    assert default_occlusion_window(8, 8) == 2
    assert default_occlusion_window(2, 40) == 2
    assert default_occlusion_window(1, 1) == 1


# --- replicas lent again -------------------------------------------------------------------------
def test_a_replica_is_lent_again_clean_and_goes_with_its_model(
    cnn_model: ProtoPNet, image: torch.Tensor
) -> None:
    import gc
    import weakref

    from explorer.analysis import attributions

    first = attribute(cnn_model, image, "gradcam", class_index=0).values
    kept = list(attributions._replicas[cnn_model])
    assert len(kept) == 1 and kept[0] is not cnn_model and hook_entries(kept[0]) == []
    for method in METHODS:  # every method on the lent replica: clean again after each
        attribute(cnn_model, image, method, prototype=1, ig_steps=4, occlusion_window=8)
    assert attributions._replicas[cnn_model] == kept and hook_entries(kept[0]) == []
    np.testing.assert_array_equal(
        attribute(cnn_model, image, "gradcam", class_index=0).values, first
    )
    with torch.no_grad():  # parameters replaced: the kept replica would see the old ones
        cnn_model.last_layer.weight = nn.Parameter(-cnn_model.last_layer.weight.clone())
    flipped = attribute(cnn_model, image, "gradcam", class_index=0).values
    assert not np.array_equal(flipped, first)
    np.testing.assert_array_equal(flipped, direct_gradcam(cnn_model, image, "class", 0))

    # the kept replicas do not keep their model alive (a model evicted from the loaded ones goes)
    spec = tiny_spec(
        backbone="small_cnn", channels=3, classes=2, per_class=2, dim=4, size=16,
        options={"widths": [4], "pools": 1},
    )  # fmt: skip
    evicted = ProtoPNet(spec).eval()
    attribute(evicted, image, "gradcam", class_index=0)
    assert len(attributions._replicas[evicted]) == 1
    gone = weakref.ref(evicted)
    del evicted
    gc.collect()
    assert gone() is None

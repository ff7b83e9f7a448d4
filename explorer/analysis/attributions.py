"""Post-hoc attributions for one image, computed with captum (never by hand).

Three methods (docs/method.md §2):

* ``"gradcam"``: :class:`captum.attr.LayerGradCam` on the model's ``feature_layer`` with
  ``relu_attributions=True``, upsampled to the input size with
  :meth:`captum.attr.LayerAttribution.interpolate` (``"bilinear"``, i.e. ``align_corners=False``);
* ``"occlusion"``: :class:`captum.attr.Occlusion` with a square window spanning all channels, baseline 0
  (the normalised mean);
* ``"integrated_gradients"``: :class:`captum.attr.IntegratedGradients` from a zero baseline (the
  normalised mean), summed over channels.

The target is either a class logit (``model(x).logits``) or a prototype score (``model(x).scores``).
Grad-CAM explains the backbone's evidence post hoc; the prototype similarity maps are the model's own
reasoning, so callers show the two as different kinds of explanation.

Any method may be wrapped in :class:`captum.attr.NoiseTunnel` (SmoothGrad); with Grad-CAM the tunnel averages
the per-sample (already ReLU'd) layer maps before upsampling. The noise is drawn from a fixed seed inside
a forked RNG, so the same image gives the same map and the global RNG is left untouched.

Side effects are undone: the model's train/eval flags are restored, the caller's tensor is never
modified (captum sets ``requires_grad`` on its inputs, so it works on a clone), parameters keep their
``requires_grad`` and get no ``.grad`` (captum uses ``torch.autograd.grad``), and every hook captum
registers is removed even when the forward pass raises. Thread-safe: captum's hooks go on a private
replica of the module tree that shares the model's parameters, so concurrent calls (and other threads'
forward passes through the same model) never see them.
"""

from __future__ import annotations

import copy
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from explorer.models.base import PrototypeModel

if TYPE_CHECKING:  # captum is imported where it is used: it takes a second to import
    from captum.attr import Attribution

__all__ = ["METHODS", "AttributionMap", "attribute", "default_occlusion_window"]

logger = logging.getLogger(__name__)

REPLICAS_KEPT = 2  # per model: as many as explanations run at once on the 2-core machines we target
_replicas: weakref.WeakKeyDictionary[nn.Module, list[nn.Module]] = weakref.WeakKeyDictionary()
_replicas_lock = threading.Lock()

METHODS: tuple[str, ...] = ("gradcam", "occlusion", "integrated_gradients")
TARGET_KINDS: tuple[str, ...] = ("class", "prototype")
SMOOTHGRAD_SUFFIX = "+smoothgrad"
SMOOTHGRAD_SEED = 0
IG_INTERNAL_BATCH_SIZE = 8
OCCLUSION_PERTURBATIONS_PER_EVAL = 16

# Every per-module hook dictionary of torch.nn.Module (those absent in a torch version are skipped).
_HOOK_DICTS: tuple[str, ...] = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_full_backward_hooks",
    "_full_backward_pre_hooks",
)


@dataclass(frozen=True)
class AttributionMap:
    """One attribution map for one image.

    Attributes:
        method: one of :data:`METHODS`, with ``"+smoothgrad"`` appended when NoiseTunnel was used.
        target_kind: ``"class"`` or ``"prototype"``.
        target: the class index or prototype index explained.
        values: float32 ``[H, W]`` at the model-input size, signed (Grad-CAM: non-negative, after
            ReLU as captum's ``relu_attributions=True``).
        all_zero: True when every value is 0 (e.g. Grad-CAM on a dead target): callers show a note and
            never divide by the maximum.
    """

    method: str
    target_kind: str
    target: int
    values: np.ndarray
    all_zero: bool

    @property
    def zero_reason(self) -> str:
        """Why a map of this method can be zero everywhere, one sentence (for the note beside it)."""
        return zero_map_reason(self.method)


def zero_map_reason(method: str) -> str:
    """Why a map of ``method`` (an :attr:`AttributionMap.method`) can be zero everywhere, in one
    sentence for the note beside it."""
    if method.partition("+")[0] == "gradcam":
        return (
            "The map is zero everywhere: Grad-CAM keeps only the positive part of its "
            "gradient-weighted feature sum, and here that sum is zero or negative at every cell (as "
            "when the evidence passes a softmax over channels, as in PIP-Net), or the target does "
            "not depend on the image."
        )
    return "The map is zero everywhere (the target does not depend on this image)."


def default_occlusion_window(height: int, width: int) -> int:
    """About 1/8 of the shorter input side, at least 2 px, at most the side (28 → 4, 224 → 28)."""
    side = min(height, width)
    return min(side, max(2, int(side / 8 + 0.5)))


def attribute(
    model: PrototypeModel,
    x: torch.Tensor,
    method: str,
    *,
    class_index: int | None = None,
    prototype: int | None = None,
    smoothgrad: bool = False,
    smoothgrad_samples: int = 8,
    smoothgrad_stdev: float = 0.15,
    occlusion_window: int | None = None,
    ig_steps: int = 32,
) -> AttributionMap:
    """Attributes a class logit or a prototype score of one image to its input pixels.

    Safe to call under ``torch.inference_mode()`` or ``torch.no_grad()``: the work runs with
    inference mode off and gradients on, on a clone of ``x`` (a tensor created in inference mode
    cannot take part in autograd, but a clone made outside inference mode can).

    Args:
        model: a prototype model (an ``nn.Module``); it is switched to eval mode for the call and its
            train/eval flags are restored afterwards.
        x: one preprocessed image ``[1, C, H, W]``; it is not modified.
        method: one of :data:`METHODS`.
        class_index: explain this class's logit (give exactly one of ``class_index`` / ``prototype``).
        prototype: explain this prototype's score.
        smoothgrad: average the method over noisy copies of ``x`` (captum's NoiseTunnel, SmoothGrad).
        smoothgrad_samples: number of noisy copies.
        smoothgrad_stdev: noise standard deviation in normalised-input units.
        occlusion_window: occlusion window side in pixels (default :func:`default_occlusion_window`);
            the stride is half the window.
        ig_steps: Integrated Gradients' number of steps.

    Returns:
        The map, float32 ``[H, W]`` at the input size.

    Raises:
        ValueError: unknown method, not exactly one target, a target index out of range, a badly
            shaped ``x``, or an invalid option.
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}"
        )
    target_kind, target = _check_target(model, class_index, prototype)
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one preprocessed image of shape [1, C, H, W], got {shape}")
    height, width = int(x.shape[2]), int(x.shape[3])
    window = _check_options(
        method, height, width, smoothgrad, smoothgrad_samples, smoothgrad_stdev, occlusion_window,
        ig_steps,
    )  # fmt: skip
    name = method + (SMOOTHGRAD_SUFFIX if smoothgrad else "")
    logger.debug("attributing %s %d with %s on input %s", target_kind, target, name, tuple(x.shape))

    request = _Request(
        method, target_kind, target, name, window, smoothgrad, smoothgrad_samples,
        float(smoothgrad_stdev), ig_steps,
    )  # fmt: skip
    with _private_replica(model) as replica:
        return _attribute_on(replica, x, request)


@dataclass(frozen=True)
class _Request:
    """One attribution's checked arguments (:func:`attribute`'s, ``window`` resolved and ``name``
    the map's method label)."""

    method: str
    target_kind: str
    target: int
    name: str
    window: int | None
    smoothgrad: bool
    smoothgrad_samples: int
    smoothgrad_stdev: float
    ig_steps: int


def _attribute_on(model: PrototypeModel, x: torch.Tensor, request: _Request) -> AttributionMap:
    """:func:`attribute` on a model (a replica) that this call alone uses; arguments checked."""
    method, target_kind, target = request.method, request.target_kind, request.target
    height, width = int(x.shape[2]), int(x.shape[3])

    def forward_fn(inputs: torch.Tensor) -> torch.Tensor:
        out = model(inputs)
        return out.logits if target_kind == "class" else out.scores  # [B, C] or [B, P]

    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        _eval_mode(model),
        _no_leaked_hooks(model),
    ):
        # A clone made outside inference mode is a normal tensor even if x is an inference tensor.
        inputs = x.detach().clone()  # [1, C, H, W]
        algorithm, kwargs = _algorithm(
            model, forward_fn, method, target, int(inputs.shape[1]), request.window,
            request.ig_steps,
        )  # fmt: skip
        if request.smoothgrad:
            from captum.attr import NoiseTunnel

            tunnel = NoiseTunnel(algorithm)
            with _seeded_rng(inputs.device):
                attr = tunnel.attribute(
                    inputs,
                    nt_type="smoothgrad",
                    nt_samples=request.smoothgrad_samples,
                    nt_samples_batch_size=1 if method == "occlusion" else None,
                    stdevs=request.smoothgrad_stdev,
                    **kwargs,
                )
        else:
            attr = algorithm.attribute(inputs, **kwargs)
        values = _to_input_map(attr, method, height, width)  # [H, W] float32
    return AttributionMap(
        method=request.name,
        target_kind=target_kind,
        target=target,
        values=values,
        all_zero=not bool(np.any(values)),
    )


# --- argument checks -----------------------------------------------------------------------------
def _check_target(
    model: PrototypeModel, class_index: int | None, prototype: int | None
) -> tuple[str, int]:
    """Returns ``(target_kind, target)`` or raises ``ValueError``."""
    if (class_index is None) == (prototype is None):
        raise ValueError(
            "give exactly one target: class_index=... (a class logit) or prototype=... "
            f"(a prototype score); got class_index={class_index!r}, prototype={prototype!r}"
        )
    num_classes, num_prototypes = (int(n) for n in model.class_weights.shape)  # [C, P]
    kind, index, count = (
        ("class", class_index, num_classes)
        if class_index is not None
        else ("prototype", prototype, num_prototypes)
    )
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"{kind} index must be an int, got {type(index).__name__}")
    if not 0 <= int(index) < count:
        plural = "classes" if kind == "class" else "prototypes"
        raise ValueError(
            f"{kind} index {int(index)} is out of range: the model has {count} {plural} "
            f"(0 to {count - 1})"
        )
    return kind, int(index)


def _check_options(
    method: str,
    height: int,
    width: int,
    smoothgrad: bool,
    smoothgrad_samples: int,
    smoothgrad_stdev: float,
    occlusion_window: int | None,
    ig_steps: int,
) -> int:
    """Validates the method options; returns the occlusion window side in pixels."""
    if smoothgrad and smoothgrad_samples < 1:
        raise ValueError(f"smoothgrad_samples must be at least 1, got {smoothgrad_samples}")
    if smoothgrad and not smoothgrad_stdev >= 0:
        raise ValueError(f"smoothgrad_stdev must be non-negative, got {smoothgrad_stdev}")
    if method == "integrated_gradients" and ig_steps < 1:
        raise ValueError(f"ig_steps must be at least 1, got {ig_steps}")
    window = (
        default_occlusion_window(height, width) if occlusion_window is None else occlusion_window
    )
    if method == "occlusion" and not 1 <= window <= min(height, width):
        raise ValueError(
            f"occlusion_window must be between 1 and {min(height, width)} px for a "
            f"{height}x{width} input, got {window}"
        )
    return window


# --- captum --------------------------------------------------------------------------------------
def _algorithm(
    model: PrototypeModel,
    forward_fn: Callable[[torch.Tensor], torch.Tensor],
    method: str,
    target: int,
    channels: int,
    window: int,
    ig_steps: int,
) -> tuple[Attribution, dict[str, Any]]:
    """The captum attribution object for ``method`` and the keyword arguments of its ``attribute``."""
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion

    if method == "gradcam":
        return LayerGradCam(forward_fn, model.feature_layer), {
            "target": target,
            "relu_attributions": True,
        }
    if method == "occlusion":
        return Occlusion(forward_fn), {
            "target": target,
            "sliding_window_shapes": (channels, window, window),
            "strides": (channels, max(1, window // 2), max(1, window // 2)),
            "baselines": 0.0,
            "perturbations_per_eval": OCCLUSION_PERTURBATIONS_PER_EVAL,
        }
    return IntegratedGradients(forward_fn), {
        "target": target,
        "baselines": 0.0,
        "n_steps": ig_steps,
        "internal_batch_size": IG_INTERNAL_BATCH_SIZE,
    }


def _to_input_map(attr: torch.Tensor, method: str, height: int, width: int) -> np.ndarray:
    """captum's output → float32 ``[H, W]`` at the input size.

    Grad-CAM ``[1, 1, h, w]`` is upsampled bilinearly. Integrated Gradients ``[1, C, H, W]`` is summed
    over channels (per-channel attributions add up). Occlusion ``[1, C, H, W]`` holds the same value in
    every channel (the windows span all channels), so it takes the channel mean: the change of the
    target when the pixel's windows are occluded, in the target's own units, whatever ``C`` is.
    """
    if method == "gradcam":
        from captum.attr import LayerAttribution

        attr = LayerAttribution.interpolate(attr, (height, width), interpolate_mode="bilinear")
        values = attr[0, 0]  # [H, W]
    elif method == "occlusion":
        values = attr[0].mean(dim=0)  # [H, W]
    else:
        values = attr[0].sum(dim=0)  # [H, W]
    return np.ascontiguousarray(values.detach().float().cpu().numpy(), dtype=np.float32)


# --- side effects --------------------------------------------------------------------------------
@contextmanager
def _private_replica(model: PrototypeModel) -> Iterator[PrototypeModel]:
    """A copy of the model's module tree that shares its parameters and buffers (no tensor copied),
    this call's own for the duration of the block.

    captum registers forward hooks on the layer it explains; on a model shared by a web server's
    threads, such a hook also fires for every other thread's forward pass and captures that thread's
    tensors ("The differentiated Tensor ... appears to not have been used in the graph"). On a
    replica the hooks and train/eval flags are this call's own. Copying the tree costs 25 ms and
    some 3,000 Python objects for the EfficientNet-lite (a fifth of an explanation, and the objects
    make the garbage collector's full passes come sooner), so up to :data:`REPLICAS_KEPT` replicas
    per model are kept and lent again: a replica is handed back only after a block that ended
    normally (its hooks removed and flags restored by :func:`_no_leaked_hooks` and
    :func:`_eval_mode`), one whose model's tensors were replaced since is not lent again, and the
    kept ones go with their model.
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    with _replicas_lock:
        free = _replicas.get(model)
        replica = free.pop() if free else None
    if replica is not None and not _shares_tensors(replica, model):
        replica = None  # the model's parameters were replaced since: a new replica
    if replica is None:
        shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
        replica = copy.deepcopy(model, shared)
    yield replica
    with _replicas_lock:  # not reached when the block raised: that replica is dropped
        free = _replicas.setdefault(model, [])
        if len(free) < REPLICAS_KEPT:
            free.append(replica)


def _shares_tensors(replica: nn.Module, model: nn.Module) -> bool:
    """Whether ``replica`` still holds the very parameter and buffer tensors of ``model``."""
    ours = (*replica.parameters(), *replica.buffers())
    theirs = (*model.parameters(), *model.buffers())
    return len(ours) == len(theirs) and all(a is b for a, b in zip(ours, theirs, strict=True))


def _modules(model: PrototypeModel) -> list[nn.Module]:
    """Every module of the model, and of its feature layer (in case it is not a registered child)."""
    seen: dict[int, nn.Module] = {}
    for root in (model, model.feature_layer):
        if isinstance(root, nn.Module):
            for module in root.modules():
                seen.setdefault(id(module), module)
    return list(seen.values())


@contextmanager
def _eval_mode(model: PrototypeModel) -> Iterator[None]:
    """Puts the model in eval mode and restores every module's own train/eval flag afterwards."""
    modules = _modules(model)
    flags = [module.training for module in modules]
    try:
        if isinstance(model, nn.Module):
            model.eval()
        model.feature_layer.eval()
        yield
    finally:
        for module, flag in zip(modules, flags, strict=True):
            module.training = flag


@contextmanager
def _no_leaked_hooks(model: PrototypeModel) -> Iterator[None]:
    """Removes every module hook added inside the block, even if the block raises.

    captum 0.9 removes its layer hooks in ``finally`` itself; this is a guard against any method (or
    future captum version) that does not.
    """
    modules = _modules(model)
    before = [
        {name: set(getattr(m, name).keys()) for name in _HOOK_DICTS if hasattr(m, name)}
        for m in modules
    ]
    full_backward = [getattr(m, "_is_full_backward_hook", None) for m in modules]
    try:
        yield
    finally:
        leaked = 0
        for module, keys, full in zip(modules, before, full_backward, strict=True):
            for name, old in keys.items():
                hooks = getattr(module, name)
                for key in [k for k in hooks if k not in old]:
                    del hooks[key]
                    leaked += 1
            if hasattr(module, "_is_full_backward_hook"):
                module._is_full_backward_hook = full
        if leaked:
            logger.warning("removed %d hook entries left on the model by an attribution", leaked)


@contextmanager
def _seeded_rng(device: torch.device) -> Iterator[None]:
    """A fixed seed for SmoothGrad's noise, inside a forked RNG (the global RNG state is restored)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(SMOOTHGRAD_SEED)
        yield

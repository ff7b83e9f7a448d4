"""A second device on a machine without one, for the device tests.

Tensors "on" :data:`EMULATED` are :class:`OnDevice` wrappers around CPU tensors whose ``device`` says
``meta``: every operation runs the real CPU kernel on the wrapped data (so results are the CPU's, bit
for bit), and the rules a CUDA device imposes are enforced on the way:

* an operation mixing a tensor on the device with a CPU tensor of one or more dimensions raises
  PyTorch's "Expected all tensors to be on the same device" (a 0-dimensional CPU tensor is allowed,
  as CUDA allows it; so are ``copy_`` across devices and CPU index tensors);
* ``.numpy()`` (and so ``np.asarray``) of a tensor on the device fails, as for a CUDA tensor;
* ``.to(EMULATED)`` / ``.cpu()`` / factory functions with ``device=EMULATED`` move between the two.

``meta`` is used as the device's name because it is a device type that is not the CPU and that torch
never initialises a driver for (a wrapper that says ``cuda`` makes autograd ask the CUDA driver for
streams, and the process aborts). Nothing in the explorer names ``meta``: a tensor reaches it only
through the model's device, which is what the tests check.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

EMULATED = torch.device("meta")

aten = torch.ops.aten
CROSS_DEVICE = {aten.copy_.default, aten._to_copy.default}
"""Operations that may take tensors of both devices (as on CUDA)."""
CPU_INDICES = {aten.index.Tensor, aten.index_put_.default, aten._index_put_impl_.default}
"""Operations whose index tensors may stay on the CPU (as on CUDA)."""


class OnDevice(torch.Tensor):
    """A CPU tensor that lives on :data:`EMULATED` as far as everyone else can tell."""

    inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor) -> OnDevice:
        return torch.Tensor._make_wrapper_subclass(  # type: ignore[attr-defined]
            cls, inner.shape, strides=inner.stride(), storage_offset=inner.storage_offset(),
            dtype=inner.dtype, layout=inner.layout, device=EMULATED,
            requires_grad=inner.requires_grad,
        )  # fmt: skip

    def __init__(self, inner: torch.Tensor) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"OnDevice({self.inner!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


def _on_emulated(device: Any) -> bool:
    return device is not None and torch.device(device).type == EMULATED.type


def _run(func: Any, args: tuple, kwargs: dict) -> Any:
    flat, _ = tree_flatten((args, kwargs))
    on_device = [a for a in flat if isinstance(a, OnDevice)]
    if on_device and func not in CROSS_DEVICE:
        positional = flat if func not in CPU_INDICES else flat[:1]
        for value in positional:
            if type(value) is torch.Tensor and value.dim() > 0:
                raise RuntimeError(
                    "Expected all tensors to be on the same device, but found at least two "
                    f"devices, {EMULATED} and cpu! (in {func})"
                )
    wrap = bool(on_device)
    if "device" in kwargs and kwargs["device"] is not None:
        wrap = _on_emulated(kwargs["device"])
        kwargs = {**kwargs, "device": torch.device("cpu")}
    if func is aten.copy_.default:
        wrap = isinstance(args[0], OnDevice)  # the destination decides
    moves = wrap != bool(on_device) and func is not aten.copy_.default  # a transfer: a new tensor
    wrappers = {id(a.inner): a for a in on_device}
    plain = {id(a) for a in flat if type(a) is torch.Tensor}
    args, kwargs = tree_map(lambda a: a.inner if isinstance(a, OnDevice) else a, (args, kwargs))
    out = func(*args, **kwargs)

    def rewrap(value: Any) -> Any:
        if type(value) is not torch.Tensor:
            return value
        if moves and (id(value) in wrappers or id(value) in plain):
            value = value.clone()  # `.to(other device)` never aliases its input
        if not wrap:
            return value
        if id(value) in wrappers:  # an in-place operation (or a no-op `to`) returns its argument
            return wrappers[id(value)]
        return OnDevice(value)

    return tree_map(rewrap, out)


class _Mode(TorchDispatchMode):
    """Factory functions and transfers that name :data:`EMULATED` (the wrapper sees the rest)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


def _from_data(original: Any) -> Any:
    """``torch.tensor`` / ``torch.as_tensor`` that put their result on the emulated device when
    asked (their C++ moves the new tensor past the dispatch mode, into a real, data-less ``meta``
    tensor)."""

    def make(*args: Any, device: Any = None, **kwargs: Any) -> torch.Tensor:
        if _on_emulated(device):
            return OnDevice(original(*args, **kwargs))
        return original(*args, device=device, **kwargs)

    return make


@contextmanager
def emulated_device() -> Iterator[torch.device]:
    """While active (in this thread and every thread started meanwhile), :data:`EMULATED` behaves
    as a second device; yields it."""
    original_run = threading.Thread.run
    originals = {"tensor": torch.tensor, "as_tensor": torch.as_tensor}

    def run_with_device(thread: threading.Thread) -> None:
        with _Mode():
            original_run(thread)

    threading.Thread.run = run_with_device  # type: ignore[method-assign]
    for name, original in originals.items():
        setattr(torch, name, _from_data(original))
    try:
        with _Mode():
            yield EMULATED
    finally:
        threading.Thread.run = original_run  # type: ignore[method-assign]
        for name, original in originals.items():
            setattr(torch, name, original)


def on_emulated(tensor: torch.Tensor) -> bool:
    """Whether a tensor lives on the emulated device."""
    return isinstance(tensor, OnDevice)

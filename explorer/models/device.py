"""Where the networks run: one device choice (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) for the app,
every CLI command and :class:`~explorer.Explorer`.

``auto`` (the default) is the first CUDA GPU when torch sees one, else the CPU, without a warning
either way. Asking for ``cuda`` where there is none is one :class:`DeviceError` naming what torch
sees, never a silent fall-back to the CPU (a user who asked for the GPU and got the CPU would wait an
hour for a pass the GPU does in minutes).

The model, its batches and captum run on the device; everything the explorer returns is numpy on the
CPU (``.cpu()`` before ``.numpy()``). The CPU path is the same code as before the choice existed: moving a CPU
tensor to the CPU returns the tensor itself.

On a GPU, float32 stays float32: TensorFloat-32 (10-bit mantissas in convolutions and matrix
products, cuDNN's default for convolutions) is turned off (:func:`exact_float32`), and there is no
mixed precision: explanations must not change with the hardware beyond float32 rounding. The
prototype layer's distances are computed in float64 on the GPU as on the CPU.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from explorer.errors import ExplorerError

AUTO = "auto"
CHOICES = ("auto", "cpu", "cuda", "cuda:N")
"""What ``--device`` and ``Explorer(device=...)`` accept (``N``: a GPU index)."""


class DeviceError(ExplorerError, ValueError):
    """A device was asked for that this machine does not have, or is not a device at all."""


def _cuda_count() -> int:
    """How many CUDA GPUs torch sees (0 on a CPU-only build or without a driver, quietly)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(choice: str | torch.device | None = AUTO) -> torch.device:
    """The device for ``choice`` (``None`` is ``auto``).

    Raises:
        DeviceError: ``choice`` is not one of :data:`CHOICES`, or names a GPU this machine lacks.
    """
    if isinstance(choice, torch.device):
        choice = str(choice)
    text = (choice or AUTO).strip().lower()
    if text == AUTO:
        if not _cuda_count():
            return torch.device("cpu")
        text = "cuda:0"
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(
            f"device '{choice}' is not one of {', '.join(CHOICES)} (N: a GPU index from 0)"
        )
    count, number = _cuda_count(), int(index or 0)
    if count == 0:
        raise DeviceError(
            f"device '{choice}' was asked for, but torch sees no CUDA GPU here ({_why_no_cuda()}); "
            "use --device cpu, or auto to take a GPU only where there is one"
        )
    if number >= count:
        raise DeviceError(
            f"device '{choice}' was asked for, but this machine has {count} CUDA GPU"
            f"{'s' if count > 1 else ''} (cuda:0..cuda:{count - 1})"
        )
    exact_float32()
    return torch.device("cuda", number)


def exact_float32() -> None:
    """Full float32 in cuDNN's convolutions and CUDA's matrix products (no TensorFloat-32)."""
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    torch.backends.cuda.matmul.fp32_precision = "ieee"


def _why_no_cuda() -> str:
    built = torch.version.cuda
    if built is None:
        return f"torch {torch.__version__} is a CPU-only build"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and not hidden.strip():
        return "CUDA_VISIBLE_DEVICES is empty"
    return f"torch {torch.__version__} is built for CUDA {built}, but no GPU or driver answers"


def describe_device(device: torch.device) -> str:
    """The device in words for logs and records: ``cpu (2 cores)``, ``cuda:0 (NVIDIA H100 ...)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} cores)"


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters live on (CPU for a model without any)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (timings of asynchronous CUDA kernels); nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Engines that run a global pass (map → combine → finish, :mod:`explorer.analysis.passes`) over a
data set, by name:

* ``local`` — in this process, batch after batch (the default);
* ``ray`` — on Ray Data (:mod:`explorer.engines.ray_engine`): actors that each load the model folder
  once map blocks of images to partials (per-prototype aggregates), the driver combines them. Ray is an
  optional extra (``pip install -r requirements-scale.txt``).

Both run the same map and combine functions, and the combine is associative and order-independent,
so both give the same result (``tests/test_engines.py``); the pass's finish is the same function
after either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from explorer.analysis.passes import GlobalPass, PassOutcome, run_local
from explorer.data.sources import ImageSource
from explorer.models.base import PrototypeModel
from explorer.models.device import model_device


def _local(
    step: GlobalPass,
    model: PrototypeModel,
    folder: str | Path,
    source: ImageSource,
    batch_size: int,
    progress: Callable[[Iterable], Iterable],
    workers: int | None,
    address: str | None,
) -> PassOutcome:
    return run_local(step, model, source, batch_size, progress)


def _ray(
    step: GlobalPass,
    model: PrototypeModel,
    folder: str | Path,
    source: ImageSource,
    batch_size: int,
    progress: Callable[[Iterable], Iterable],
    workers: int | None,
    address: str | None,
) -> PassOutcome:
    from explorer.engines.ray_engine import ray_run  # imports Ray only when asked for

    return ray_run(
        step, folder, source, batch_size=batch_size, workers=workers, address=address,
        progress=progress, device=model_device(model).type,
    )  # fmt: skip


ENGINES: dict[str, Callable[..., PassOutcome]] = {"local": _local, "ray": _ray}


def run_pass(
    engine: str,
    step: GlobalPass,
    model: PrototypeModel,
    folder: str | Path,
    source: ImageSource,
    *,
    batch_size: int,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    workers: int | None = None,
    address: str | None = None,
) -> PassOutcome:
    """Runs a pass's map and combine on ``engine`` (``model`` is the loaded model of ``folder``; the
    local engine uses it, a distributed one has its workers load the folder).

    Raises:
        ValueError: an unknown engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return ENGINES[engine](step, model, folder, source, batch_size, progress, workers, address)


__all__ = ["ENGINES", "run_pass"]

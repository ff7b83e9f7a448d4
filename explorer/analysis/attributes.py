"""Why does a patch match a prototype? Attribute importance after Nauta et al. (2021).

Each image is changed in one visual characteristic at a time (hue, shape, texture, contrast, saturation,
see :mod:`explorer.analysis.modifications`) and the prototype's similarity is read again **at the cell
where the prototype best matches the original image** (not re-minimised on the modified image):

* local importance ``φ_m(p, x) = s(p, x) − s(p, mod_m(x))`` (log-similarity units; negative: the change
  made the patch *more* similar);
* global importance over a split ``Φ_m(p) = Σ_x φ_m(p, x)·s(p, x) / Σ_x s(p, x)`` over all its images;
* generalisation: Welch's t-test of train vs test ``Φ_m`` over prototypes, per modification (as the
  paper), plus a per-prototype verdict of ours (:func:`generalises`).

Two readings of ``Φ`` are offered: the *reference* reading (raw ``Φ``, as the paper) and a *relative*
reading of ours (:func:`relative`: each prototype's ``Φ`` as shares of its total, then each
modification's share ranked across the model's prototypes as a percentile; see
:data:`WHY_RAW_FAVOURS_CONTRAST`). Every sentence this module writes names the reading it uses.

A split is processed as *map over batches* (:func:`attribute_batch`: one forward pass over the originals
and all their modified versions) → *combine* (:class:`AttributePass`: weighted sums added) → *finish*
(:func:`global_attributes_finish`), like :mod:`explorer.analysis.nearest`, in process or on Ray Data
(:mod:`explorer.analysis.passes`).

Exactness (ours, documented): a modified version whose preprocessed input is bitwise equal to its
original's (an identity modification; hue or saturation on a grey image) is not forwarded again, its
similarities are the original's, so its ``φ`` is exactly 0 whatever the numerical kernels do with batch
position. Every other version is forwarded in the same batch as its original.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from explorer.analysis.bootstrap import (
    CONFIDENCE,
    REPLICATES,
    bootstrap_sums,
    percentile_interval,
    reading_interval,
    replicate_phi,
    top_two_overlap,
)
from explorer.analysis.passes import Partial, PassOutcome, run_local
from explorer.analysis.version_store import VersionStore, fingerprint
from explorer.data.sources import ArraySource
from explorer.images import as_rgb
from explorer.models.base import PrototypeModel
from explorer.models.device import model_device
from explorer.models.preprocess import preprocess

log = logging.getLogger(__name__)

GREY_INAPPLICABLE: tuple[str, ...] = ("hue", "saturation")
"""Modifications that do nothing to a grey image (or to what a grey-input model sees)."""

REFERENCE_READING = "reference reading: raw Φ, as the paper"
RELATIVE_READING = "relative reading: percentile of Φ's share among this model's prototypes"
LOCAL_REFERENCE_READING = "reference reading: raw φ, as the paper"
LOCAL_RELATIVE_READING = "relative reading: percentile of φ's share among this image's prototypes"

UNUSUAL_PERCENTILE = 80.0
"""A relative value (percentile) at or above this is called *unusually* high."""

WHY_RAW_FAVOURS_CONTRAST = (
    "Raw Φ values of different modifications are not comparable: at the reference settings the "
    "contrast change (blending toward grey at 0.45) also scales chroma by 0.45, more than the "
    "saturation change's 0.7, and removes about 80 % of fine-texture energy, where the NL-means "
    "denoising removes about 10 %. It is simply a larger change, so contrast has the largest raw Φ "
    "for most prototypes (70–90 % in our synthetic measurement) whatever attribute defines their "
    "class; the relative reading compares each prototype with the model's other prototypes instead."
)


@runtime_checkable
class ImageModification(Protocol):
    """Anything that changes one visual characteristic of an image.

    Attributes:
        name: the characteristic (``hue``, ``shape``, ``texture``, ``contrast``, ``saturation``, ...).
    """

    @property
    def name(self) -> str: ...

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Returns the modified uint8 ``[H, W, 3]`` image (same shape, deterministic)."""
        ...


# --- helpers ------------------------------------------------------------------------------------------


def image_is_grey(image: np.ndarray) -> bool:
    """True for a 2-D image or one whose channels are all equal (R = G = B everywhere)."""
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return True
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


def model_sees_grey(model: PrototypeModel) -> bool:
    """True when the model converts its input to grey (or has a single input channel)."""
    return bool(model.spec.grey_input or model.spec.channels == 1)


def _not_applicable(names: Sequence[str], grey: bool) -> tuple[str, ...]:
    return tuple(n for n in names if n in GREY_INAPPLICABLE) if grey else ()


def _names(modifications: Sequence[ImageModification]) -> tuple[str, ...]:
    names = tuple(str(m.name) for m in modifications)
    if not names:
        raise ValueError("at least one modification is needed")
    return names


def _add_time(timings: dict[str, float] | None, key: str, seconds: float) -> None:
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + seconds


def weighted_mean(phi: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Nauta et al.'s similarity-weighted mean over images, ``Σ_x φ·s / Σ_x s``.

    Args:
        phi: ``[N, P, M]`` (or ``[N, M]``) local importances of ``N`` images.
        s: ``[N, P]`` (or ``[N]``) the similarities ``s(p, x)`` that weight them (positive).

    Returns:
        float64 ``[P, M]`` (or ``[M]``).
    """
    phi = np.asarray(phi, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if phi.shape[:-1] != s.shape:
        raise ValueError(f"phi {phi.shape} and s {s.shape} do not match")
    return (phi * s[..., None]).sum(axis=0) / s.sum(axis=0)[..., None]


# --- map: one batch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchAttributes:
    """The map step's result for one batch of images (plain arrays).

    Attributes:
        first: index of the batch's first image in the split.
        phi: float64 ``[B, P, M]`` local importances.
        similarity: float32 ``[B, P]`` ``s(p, x)`` of the originals.
        cells: int64 ``[B, P, 2]`` ``(row, col)`` of each prototype's best cell on the original.
        grey: bool ``[B]`` images with R = G = B.
        forwarded: images sent through the network (``B`` originals + the versions that differ).
    """

    first: int
    phi: np.ndarray
    similarity: np.ndarray
    cells: np.ndarray
    grey: np.ndarray
    forwarded: int


def _rows_in_layout(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[rows]`` with ``x``'s strides (preprocess's channels-last layout). Indexing (and viewing,
    which normalises the stride of a size-1 channel dimension) returns NCHW strides, and for
    one-channel inputs ``.contiguous(memory_format=channels_last)`` keeps them (both layouts are
    "contiguous" when C = 1), which sends grey models down a ~30 % slower convolution path; so
    ``x`` must come straight from preprocess, not through a view."""
    if len(rows) == len(x):
        return x
    out = torch.empty_strided((len(rows), *x.shape[1:]), x.stride(), dtype=x.dtype)
    return out.copy_(x[rows])


@dataclass(frozen=True)
class ImageVersions:
    """One image and its modified versions, ready for the network (the prepare stage's output).

    Attributes:
        versions: ``1 + M`` uint8 RGB images, the original first.
        grey: whether the image is grey (R = G = B).
    """

    versions: tuple[np.ndarray, ...]
    grey: bool


def image_versions(image: np.ndarray, modifications: Sequence[ImageModification]) -> ImageVersions:
    """The modify stage for one image: the original as RGB (a grey image repeated) and each
    modification of it, at native resolution.

    Raises:
        ValueError: a modification returned something other than a uint8 image of the same shape.
    """
    rgb = as_rgb(image)
    versions = [rgb]
    for modification in modifications:
        modified = np.asarray(modification.apply(rgb))
        if modified.shape != rgb.shape or modified.dtype != np.uint8:
            raise ValueError(
                f"modification {modification.name!r} returned {modified.dtype} "
                f"{modified.shape}, expected uint8 {rgb.shape}"
            )
        versions.append(modified)
    return ImageVersions(tuple(versions), image_is_grey(rgb))


@torch.inference_mode()
def attribute_batch(
    model: PrototypeModel,
    images: Sequence[np.ndarray] | np.ndarray,
    modifications: Sequence[ImageModification],
    first: int = 0,
    timings: dict[str, float] | None = None,
    reuse_unchanged: bool = True,
    forward_rows: int | None = None,
) -> BatchAttributes:
    """The map step: every image, all its modified versions, one preprocess and one forward pass.

    Args:
        model: the network (put in eval mode).
        images: ``B`` uint8 RGB ``[H, W, 3]`` or grey ``[H, W]`` images at native resolution.
        modifications: ``M`` modifications, applied to the native-resolution RGB image before
            ``model.preprocess`` (grey images are repeated to RGB first, for the original too).
        first: index of the first image in its split (recorded).
        timings: if given, seconds are added under ``modify`` and ``forward`` (preprocess + forward).
        reuse_unchanged: do not forward a version whose preprocessed input equals its original's bitwise;
            its similarities are the original's (``φ = 0`` exactly). ``False`` forwards every version (the
            result can then depend on the kernels' treatment of batch position, in the last bits).
        forward_rows: images per forward pass (default: all of the batch's versions in one).

    Returns:
        The batch's local importances, similarities and cells.
    """
    if len(images) == 0:
        raise ValueError("the batch has no images")
    _names(modifications)
    start = time.perf_counter()
    prepared = [image_versions(image, modifications) for image in images]
    _add_time(timings, "modify", time.perf_counter() - start)
    return forward_versions(model, prepared, first, timings, reuse_unchanged, forward_rows)


@torch.inference_mode()
def forward_versions(
    model: PrototypeModel,
    prepared: Sequence[ImageVersions],
    first: int = 0,
    timings: dict[str, float] | None = None,
    reuse_unchanged: bool = True,
    forward_rows: int | None = None,
) -> BatchAttributes:
    """The network stage of :func:`attribute_batch` on images already modified (:func:`image_versions`):
    one preprocess, the changed versions forwarded beside their originals, ``φ`` read at each
    original's best cell."""
    model.eval()
    num = len(prepared)
    if num == 0:
        raise ValueError("the batch has no images")
    versions_per_image = len(prepared[0].versions)
    if any(len(p.versions) != versions_per_image for p in prepared):
        raise ValueError("every image needs the same modifications")
    grey = np.array([p.grey for p in prepared], dtype=bool)

    start = time.perf_counter()
    # on the CPU (only the rows sent travel to the device); originals at multiples of 1+M
    x = preprocess([v for p in prepared for v in p.versions], model.spec)
    if reuse_unchanged:
        grouped = x.view(num, versions_per_image, *x.shape[1:])  # [B, 1+M, C, H, W]
        changed = (grouped[:, 1:] != grouped[:, :1]).flatten(2).any(dim=2)  # [B, M]
    else:
        changed = torch.ones(num, versions_per_image - 1, dtype=torch.bool)
    send = torch.cat([torch.ones(num, 1, dtype=torch.bool), changed], dim=1)  # [B, 1+M]
    rows = send.flatten().nonzero().squeeze(1)  # [K] positions in the flattened [B·(1+M)]
    device = model_device(model)
    step = forward_rows or len(rows)
    similarity_maps = torch.cat(
        [
            model(_rows_in_layout(x, rows[at : at + step]).to(device)).similarity_maps.cpu()
            for at in range(0, len(rows), step)
        ]
    )  # [K, P, h, w]
    _add_time(timings, "forward", time.perf_counter() - start)

    maps = similarity_maps.flatten(2)  # [K, P, h·w]
    width = similarity_maps.shape[-1]
    image_of_row = torch.div(rows, versions_per_image, rounding_mode="floor")  # [K]
    is_original = rows % versions_per_image == 0  # [K]
    flat_cells = maps[is_original].argmax(dim=2)  # [B, P] best cell of each original
    read = maps.gather(2, flat_cells[image_of_row].unsqueeze(2)).squeeze(2)  # [K, P]
    similarity = read[is_original]  # [B, P]
    # every version starts as its original (φ = 0), the forwarded ones are then filled in
    versions_read = similarity.unsqueeze(1).repeat(1, versions_per_image, 1)  # [B, 1+M, P]
    versions_read.view(-1, similarity.shape[1])[rows] = read
    phi = similarity.double().unsqueeze(1) - versions_read[:, 1:].double()  # [B, M, P]
    cells = torch.stack([flat_cells // width, flat_cells % width], dim=-1)  # [B, P, 2]
    return BatchAttributes(
        first=first,
        phi=phi.permute(0, 2, 1).contiguous().numpy(),
        similarity=similarity.numpy(),
        cells=cells.numpy().astype(np.int64),
        grey=grey,
        forwarded=len(rows),
    )


# --- local --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalAttributes:
    """Why each prototype matches one image (Nauta et al.'s local explanation).

    Attributes:
        modifications: the modifications' names, ``M``.
        phi: float64 ``[P, M]`` ``s(p, x) − s(p, mod_m(x))``, both read at the cell where ``p`` best
            matches the original image.
        similarity: ``[P]`` ``s(p, x)``.
        cells: ``[P, 2]`` ``(row, col)`` of that cell.
        not_applicable: modifications that cannot change what the model sees (hue and saturation on a
            grey image or for a grey-input model); their ``φ`` is ≈ 0 by construction, not "unimportant".
    """

    modifications: tuple[str, ...]
    phi: np.ndarray
    similarity: np.ndarray
    cells: np.ndarray
    not_applicable: tuple[str, ...]

    @property
    def applicable(self) -> np.ndarray:
        """``[M]`` bool, False for the not-applicable modifications."""
        return np.array([n not in self.not_applicable for n in self.modifications])


def local_attributes_batch(
    model: PrototypeModel,
    images: Sequence[np.ndarray] | np.ndarray,
    modifications: Sequence[ImageModification],
    timings: dict[str, float] | None = None,
) -> list[LocalAttributes]:
    """Local explanations of several images from one batched forward pass (all prototypes at once).

    Args:
        model: the network.
        images: uint8 RGB ``[H, W, 3]`` or grey ``[H, W]`` images at native resolution.
        modifications: objects with ``.name`` and ``.apply(rgb) -> rgb``.
        timings: optional, see :func:`attribute_batch`.

    Returns:
        One :class:`LocalAttributes` per image.
    """
    names = _names(modifications)
    batch = attribute_batch(model, images, modifications, timings=timings)
    sees_grey = model_sees_grey(model)
    return [
        LocalAttributes(
            modifications=names,
            phi=batch.phi[b],
            similarity=batch.similarity[b],
            cells=batch.cells[b],
            not_applicable=_not_applicable(names, sees_grey or bool(batch.grey[b])),
        )
        for b in range(len(images))
    ]


def local_attributes(
    model: PrototypeModel, rgb: np.ndarray, modifications: Sequence[ImageModification]
) -> LocalAttributes:
    """The local explanation of one image; see :func:`local_attributes_batch`."""
    return local_attributes_batch(model, [rgb], modifications)[0]


# --- reduce and global --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributePass:
    """The global attribute explanation's map and combine (:mod:`explorer.analysis.passes`): per batch
    the running ``Σ_x φ·s`` and ``Σ_x s`` per prototype, and with ``replicates`` the same sums for every
    bootstrap resample (:mod:`explorer.analysis.bootstrap`, each image's counts seeded by its key, so
    the result does not depend on batches or their order); combine adds them (float64).

    The modifications are its prepare stage (in a worker thread, ahead of the network), the forward
    and the sums its map.

    Attributes:
        modifications: the ``M`` modifications.
        replicates: bootstrap resamples (0: none).
        forward_rows: images per forward pass (default: a chunk's versions in one).
        timings: if a dict, seconds are added under ``modify`` (in the prepare thread) and
            ``forward`` (in-process passes).
        store: where modified versions are kept by content (:mod:`explorer.analysis.version_store`):
            an image already modified by this set in an earlier pass is read, not modified again.
    """

    modifications: tuple[ImageModification, ...]
    replicates: int = REPLICATES
    forward_rows: int | None = None
    timings: dict[str, float] | None = None
    store: VersionStore | None = None
    title: str = "attribute explanation"
    prepares: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fingerprint", fingerprint(self.modifications))

    def prepare(self, model: PrototypeModel, image: np.ndarray) -> ImageVersions:
        start = time.perf_counter()
        versions = self._versions(image)
        _add_time(self.timings, "modify", time.perf_counter() - start)
        return versions

    def _versions(self, image: np.ndarray) -> ImageVersions:
        """The image's versions: from the store when it has them, else made (and stored)."""
        if self.store is None:
            return image_versions(image, self.modifications)
        key = self.store.key(np.asarray(image), self._fingerprint)
        stored = self.store.get(key)
        if stored is not None and len(stored) == 1 + len(self.modifications):
            return ImageVersions(stored, image_is_grey(stored[0]))
        made = image_versions(image, self.modifications)
        self.store.put(key, made.versions)
        return made

    def map(
        self, model: PrototypeModel, prepared: list[ImageVersions], keys: np.ndarray
    ) -> Partial:
        batch = forward_versions(
            model, prepared, timings=self.timings, forward_rows=self.forward_rows
        )
        return self._sums(batch, keys)

    def _sums(self, batch: BatchAttributes, keys: np.ndarray) -> Partial:
        s = batch.similarity.astype(np.float64)  # [B, P]
        partial = {
            "weighted": (batch.phi * s[:, :, None]).sum(axis=0),  # [P, M]
            "weight": s.sum(axis=0),  # [P]
            "images": np.array(len(s), dtype=np.int64),
            "grey_images": np.array(int(batch.grey.sum()), dtype=np.int64),
            "forwarded": np.array(batch.forwarded, dtype=np.int64),
        }
        if self.replicates:
            partial["boot_weighted"], partial["boot_weight"] = bootstrap_sums(
                batch.phi, s, keys, self.replicates
            )
        return partial

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {name: a[name] + b[name] for name in a}


@dataclass(frozen=True)
class GlobalAttributes:
    """Every prototype's global explanation over one split.

    Attributes:
        modifications: the modifications' names, ``M``.
        split: ``train`` or ``test``.
        phi: float64 ``[P, M]`` ``Φ_m(p) = Σ_x φ_m(p, x)·s(p, x) / Σ_x s(p, x)`` over all images.
        weight_sum: ``[P]`` ``Σ_x s(p, x)``.
        images: number of images of the split.
        not_applicable: modifications that cannot apply (grey-input model, or every image grey).
    """

    modifications: tuple[str, ...]
    split: str
    phi: np.ndarray
    weight_sum: np.ndarray
    images: int
    not_applicable: tuple[str, ...] = ()
    phi_interval: tuple[np.ndarray, np.ndarray] | None = None
    relative_interval: tuple[np.ndarray, np.ndarray] | None = None
    replicates: int = 0
    confidence: float = CONFIDENCE

    @property
    def has_intervals(self) -> bool:
        """Whether bootstrap intervals were computed with this explanation (one stored before they
        existed has none)."""
        return self.phi_interval is not None and self.relative_interval is not None

    @property
    def applicable(self) -> np.ndarray:
        """``[M]`` bool, False for the not-applicable modifications."""
        return np.array([n not in self.not_applicable for n in self.modifications])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for :class:`explorer.cache.AnalysisCache` (no pickles)."""
        return {
            "modifications": np.array(self.modifications, dtype=str),
            "phi": self.phi,
            "weight_sum": self.weight_sum,
            "images": np.array(self.images, dtype=np.int64),
            "not_applicable": np.array(self.not_applicable, dtype=str),
            **self._interval_arrays(),
        }

    def _interval_arrays(self) -> dict[str, np.ndarray]:
        if self.phi_interval is None or self.relative_interval is None:
            return {}
        return {
            "phi_low": self.phi_interval[0],
            "phi_high": self.phi_interval[1],
            "relative_low": self.relative_interval[0],
            "relative_high": self.relative_interval[1],
            "replicates": np.array(self.replicates, dtype=np.int64),
            "confidence": np.array(self.confidence, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, split: str, arrays: dict[str, np.ndarray]) -> GlobalAttributes:
        return cls(
            modifications=tuple(str(n) for n in arrays["modifications"]),
            split=split,
            phi=np.asarray(arrays["phi"], dtype=np.float64),
            weight_sum=np.asarray(arrays["weight_sum"], dtype=np.float64),
            images=int(arrays["images"]),
            not_applicable=tuple(str(n) for n in arrays.get("not_applicable", ())),
            **_intervals_from(arrays),
        )


def _intervals_from(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    """The stored bootstrap intervals of :meth:`GlobalAttributes.from_arrays` (none in a result
    stored before they existed)."""
    if "phi_low" not in arrays:
        return {}
    pair = lambda name: (  # noqa: E731
        np.asarray(arrays[f"{name}_low"], dtype=np.float64),
        np.asarray(arrays[f"{name}_high"], dtype=np.float64),
    )
    return {
        "phi_interval": pair("phi"),
        "relative_interval": pair("relative"),
        "replicates": int(arrays["replicates"]),
        "confidence": float(arrays["confidence"]),
    }


def global_attributes(
    model: PrototypeModel,
    images: Sequence[np.ndarray] | np.ndarray,
    modifications: Sequence[ImageModification],
    split: str,
    batch_size: int = 32,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    timings: dict[str, float] | None = None,
    replicates: int = REPLICATES,
) -> GlobalAttributes:
    """Every prototype's global explanation over all images of a split held in memory, in this
    process, as map over batches → combine → finish (:class:`AttributePass`).

    Each image is modified once per modification; the original and its changed versions (at most
    ``1 + M`` images) go through one forward pass together. The same pass keeps ``replicates``
    bootstrap resamples of the images (:mod:`explorer.analysis.bootstrap`), from which ``Φ`` and its
    relative reading get their intervals (``replicates=0``: none).

    Args:
        model: the network.
        images: the split's uint8 images at native resolution.
        modifications: objects with ``.name`` and ``.apply(rgb) -> rgb``.
        split: its name, recorded in the result.
        batch_size: original images per forward pass (the pass holds up to ``batch_size·(1 + M)``).
        progress: wraps the batch iterator (e.g. ``tqdm`` or ``gr.Progress().tqdm``).
        timings: if a dict, seconds spent are added under ``modify`` and ``forward``.

    Raises:
        ValueError: the split has no images, or ``batch_size`` < 1.
    """
    _names(modifications)
    if len(images) == 0:
        raise ValueError(f"the {split} split has no images")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    step = AttributePass(tuple(modifications), replicates, timings=timings)
    source = ArraySource(np.asarray(images), np.zeros(len(images), dtype=np.int64))
    done = run_local(step, model, source, batch_size, progress)
    return global_attributes_finish(model, done, modifications, split)


def global_attributes_finish(
    model: PrototypeModel,
    done: PassOutcome,
    modifications: Sequence[ImageModification],
    split: str,
) -> GlobalAttributes:
    """The finish step: ``Φ`` from the combined sums, and its bootstrap intervals."""
    names = _names(modifications)
    sums = done.partial
    images, grey_images = int(sums["images"]), int(sums["grey_images"])
    log.info(
        "global attributes of %d %s images: %d forward images (%d modifications)",
        images,
        split,
        int(sums["forwarded"]),
        len(names),
    )
    grey = model_sees_grey(model) or grey_images == images
    intervals: dict[str, object] = {}
    if "boot_weight" in sums:
        resampled = replicate_phi(sums["boot_weighted"], sums["boot_weight"])  # [R, P, M]
        intervals = {
            "phi_interval": percentile_interval(resampled),
            "relative_interval": reading_interval(resampled, relative),
            "replicates": len(sums["boot_weight"]),
        }
    return GlobalAttributes(
        modifications=names,
        split=split,
        phi=sums["weighted"] / sums["weight"][:, None],
        weight_sum=sums["weight"],
        images=images,
        not_applicable=_not_applicable(names, grey),
        **intervals,
    )


# --- generalisation -----------------------------------------------------------------------------------


def _check_same(train: GlobalAttributes, test: GlobalAttributes) -> None:
    if train.modifications != test.modifications or train.phi.shape != test.phi.shape:
        raise ValueError("train and test explanations use different modifications or models")


def welch_by_modification(
    train: GlobalAttributes, test: GlobalAttributes
) -> dict[str, tuple[float, float]]:
    """The paper's generalisation check: per modification, Welch's t-test of train vs test ``Φ_m``.

    ``scipy.stats.ttest_ind(Φ_train[:, m], Φ_test[:, m], equal_var=False)`` over the prototypes. Where
    both columns have zero variance (e.g. a not-applicable modification), scipy's statistic is undefined;
    we return ``(0.0, 1.0)`` for equal means and ``(±inf, 0.0)`` otherwise.

    Returns:
        ``{name: (t, p)}``; a small ``p`` means the distribution of ``Φ_m`` differs between the splits.
    """
    from scipy import stats  # scipy.stats takes a second to import: only when used

    _check_same(train, test)
    result: dict[str, tuple[float, float]] = {}
    for m, name in enumerate(train.modifications):
        a, b = train.phi[:, m], test.phi[:, m]
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            diff = float(a.mean() - b.mean())
            result[name] = (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
            continue
        t, p = stats.ttest_ind(a, b, equal_var=False)
        result[name] = (float(t), float(p))
    return result


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ, NaN when either vector is constant or shorter than 2."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def generalises(
    train: GlobalAttributes,
    test: GlobalAttributes,
    min_correlation: float = 0.5,
    require_same_top: bool = True,
) -> np.ndarray:
    """Our per-prototype verdict: does the prototype's explanation on train hold on test?

    Rule (ours): over the applicable modifications, a prototype generalises when the Spearman rank
    correlation of its train and test ``Φ`` vectors is ≥ ``min_correlation`` **and** (with
    ``require_same_top``) both splits rank the same modification first. A user reads the ranking, so the
    ranking is what must carry over; the raw scale of ``Φ`` may shift between splits. When either vector
    is constant (ρ undefined) the prototype generalises only if the two vectors are equal (``allclose``).

    Returns:
        ``[P]`` bool.
    """
    _check_same(train, test)
    keep = train.applicable & test.applicable
    a, b = train.phi[:, keep], test.phi[:, keep]
    verdict = np.zeros(len(a), dtype=bool)
    for p in range(len(a)):
        rho = spearman(a[p], b[p])
        if np.isnan(rho):
            verdict[p] = bool(np.allclose(a[p], b[p]))
            continue
        same_top = int(np.argmax(a[p])) == int(np.argmax(b[p]))
        verdict[p] = rho >= min_correlation and (same_top or not require_same_top)
    return verdict


def local_disagrees(
    local_phi: np.ndarray,
    global_phi: np.ndarray,
    threshold: float = 0.0,
    applicable: np.ndarray | None = None,
) -> bool:
    """Flags a match whose local explanation disagrees with its prototype's global one.

    Rule (ours): the Spearman rank correlation of the local ``φ`` and global ``Φ`` over the applicable
    modifications is below ``threshold`` (default 0: the two rankings are more reversed than alike; a
    fully reversed ranking has ρ = −1). Not flagged when ρ is undefined (either vector constant, or
    fewer than two applicable modifications).

    Args:
        local_phi: ``[M]`` the match's ``φ``.
        global_phi: ``[M]`` the prototype's ``Φ``.
        threshold: flag when ρ < threshold.
        applicable: ``[M]`` bool mask; not-applicable modifications are left out.
    """
    local_phi = np.asarray(local_phi, dtype=np.float64)
    global_phi = np.asarray(global_phi, dtype=np.float64)
    if applicable is not None:
        keep = np.asarray(applicable, dtype=bool)
        local_phi, global_phi = local_phi[keep], global_phi[keep]
    rho = spearman(local_phi, global_phi)
    return bool(not np.isnan(rho) and rho < threshold)


# --- readings -----------------------------------------------------------------------------------------


def shares(phi: np.ndarray) -> np.ndarray:
    """Each prototype's positive ``Φ`` as shares of its total: its *profile*, not its sensitivity.

    Args:
        phi: ``[P, M]`` (global ``Φ`` or local ``φ``).

    Returns:
        float64 ``[P, M]``, rows summing to 1 (a row with no positive value is all zeros). Negative
        values (the change made the match stronger) count as 0.
    """
    positive = np.clip(np.asarray(phi, dtype=np.float64), 0.0, None)
    total = positive.sum(axis=1, keepdims=True)
    return np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)


def relative(phi: np.ndarray) -> np.ndarray:
    """The relative reading: per modification, each prototype's percentile among the model's prototypes
    by its *share* of ``Φ`` (:func:`shares`).

    ``100`` means: no other prototype gives this modification a larger part of its response;
    ``50`` is the median. The share removes how sensitive a prototype is overall (some prototypes
    react strongly to every change, which would otherwise put them on top of every column), and
    the percentile across prototypes removes how large each modification is (why raw ``Φ`` favours
    contrast, :data:`WHY_RAW_FAVOURS_CONTRAST`). Ties get their average rank. Measured on the
    synthetic known-answer benchmark, this reading names the class-defining attribute first far
    more often than raw ``Φ`` or a plain z-score of ``Φ`` (docs/method.md §8).

    Args:
        phi: ``[P, M]``.

    Returns:
        float64 ``[P, M]`` in ``[0, 100]``; a single prototype, or a column where all prototypes have
        the same share, gives 50.
    """
    share = shares(phi)
    count = share.shape[0]
    if count < 2:
        return np.full_like(share, 50.0)
    from scipy import stats

    ranks = stats.rankdata(share, axis=0)  # 1..P, ties averaged
    return (ranks - 1.0) / (count - 1.0) * 100.0


def zscores(phi: np.ndarray) -> np.ndarray:
    """Each modification's ``Φ`` z-scored across prototypes (the plain standardisation; the known-answer
    benchmark compares it with :func:`relative`).

    Args:
        phi: ``[P, M]``.

    Returns:
        float64 ``[P, M]``; a column with zero spread gives zeros.
    """
    phi = np.asarray(phi, dtype=np.float64)
    out = np.zeros_like(phi)
    spread = np.ptp(phi, axis=0) > 0  # [M]
    if spread.any():
        cols = phi[:, spread]
        out[:, spread] = (cols - cols.mean(axis=0)) / cols.std(axis=0)
    return out


def ranking(values: np.ndarray, names: Sequence[str]) -> list[tuple[str, float]]:
    """``(name, value)`` pairs sorted by value, descending (ties keep the given order)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) != len(names):
        raise ValueError(f"{len(values)} values for {len(names)} names")
    order = np.argsort(-values, kind="stable")
    return [(names[i], float(values[i])) for i in order]


def most_common_top(
    phi_global: np.ndarray,
    names: Sequence[str],
    not_applicable: Sequence[str] = (),
    min_share: float = 0.5,
) -> str | None:
    """The modification with the largest raw ``Φ`` for the most prototypes.

    Returns:
        Its name if it is the top of at least ``min_share`` of the prototypes, else ``None``.
    """
    phi = np.asarray(phi_global, dtype=np.float64)
    keep = np.array([n not in not_applicable for n in names])
    if not keep.any() or len(phi) == 0:
        return None
    kept = [n for n, k in zip(names, keep, strict=True) if k]
    tops = np.argmax(phi[:, keep], axis=1)
    counts = np.bincount(tops, minlength=len(kept))
    best = int(np.argmax(counts))
    return kept[best] if counts[best] / len(phi) >= min_share else None


# --- text ---------------------------------------------------------------------------------------------


def _number(value: float, decimals: int) -> str:
    """``value`` with a typographic minus (a value that rounds to zero shows no sign)."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _not_applicable_clause(not_applicable: Sequence[str]) -> str:
    verb = "does" if len(not_applicable) == 1 else "do"
    return f"{_join(list(not_applicable))} {verb} not apply to grey images"


def sorted_values(values: np.ndarray, names: Sequence[str], decimals: int = 4) -> str:
    """The paper's list, sorted descending: ``"Hue 2.2473, Shape 1.0077, ..."``."""
    return ", ".join(
        f"{name[:1].upper()}{name[1:]} {_number(value, decimals)}"
        for name, value in ranking(values, names)
    )


def _negatives_sentence(
    values: np.ndarray, names: Sequence[str], keep: np.ndarray, decimals: int, symbol: str
) -> str:
    negative = [(n, v) for n, v, k in zip(names, values, keep, strict=True) if k and v < 0]
    if not negative:
        return ""
    what = _join([n for n, _ in negative])
    noun = "change" if len(negative) == 1 else "changes"
    numbers = ", ".join(f"{symbol} = {_number(v, decimals)}" for _, v in negative)
    return (
        f" The {what} {noun} made the match *stronger* ({numbers}): the modified image looked more "
        "like the prototype."
    )


def _relative_clause(rel: np.ndarray, names: Sequence[str], keep: np.ndarray, others: str) -> str:
    rel_kept = np.where(keep, rel, -np.inf)
    top = int(np.argmax(rel_kept))
    if rel_kept[top] >= UNUSUAL_PERCENTILE:
        return (
            f"relative to {others} it is unusually sensitive to {names[top]} "
            f"({_percentile(float(rel[top]))})"
        )
    return (
        f"relative to {others} no modification stands out "
        f"(all below the {_ordinal(UNUSUAL_PERCENTILE)} percentile)"
    )


def _ordinal(value: float) -> str:
    number = round(value)
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _percentile(value: float) -> str:
    return f"{_ordinal(value)} percentile"


def prototype_sentence(
    prototype: int,
    class_name: str,
    raw: np.ndarray,
    rel: np.ndarray,
    names: Sequence[str],
    not_applicable: Sequence[str] = (),
    common_top: str | None = None,
    decimals: int = 4,
) -> str:
    """One prototype's global explanation in words, in both readings.

    Args:
        prototype: its index.
        class_name: its class.
        raw: ``[M]`` the prototype's ``Φ`` (reference reading).
        rel: ``[M]`` the same row of :func:`relative` (relative reading).
        names: the modifications' names.
        not_applicable: modifications that do not apply (left out of both rankings).
        common_top: the raw top modification of most prototypes (:func:`most_common_top`), or None.
        decimals: digits of the raw values.
    """
    raw = np.asarray(raw, dtype=np.float64)
    rel = np.asarray(rel, dtype=np.float64)
    keep = np.array([n not in not_applicable for n in names])
    head = f"Prototype {prototype} (class *{class_name}*)"
    if not keep.any():
        text = f"{head}: no modification applies; {_not_applicable_clause(not_applicable)}."
        return text
    raw_kept = np.where(keep, raw, -np.inf)
    top = int(np.argmax(raw_kept))
    if raw[top] > 0:
        text = f"{head} responds most to {names[top]} ({_number(float(raw[top]), decimals)})"
        if common_top is not None:
            if names[top] == common_top:
                text += " — as most prototypes do"
            else:
                text += f" — unlike most prototypes, which respond most to {common_top}"
    else:
        text = (
            f"{head} is not weakened by any modification "
            f"(largest Φ {names[top]} {_number(float(raw[top]), decimals)})"
        )
    text += f" ({REFERENCE_READING}); "
    text += _relative_clause(rel, names, keep, "the other prototypes")
    text += f" ({RELATIVE_READING})."
    text += _negatives_sentence(raw, names, keep, decimals, "Φ")
    present = [n for n in names if n in not_applicable]
    if present:
        text += f" Not applicable: {_not_applicable_clause(present)}."
    return text


def uncertainty_sentence(result: GlobalAttributes, prototype: int, decimals: int = 4) -> str:
    """How sure one prototype's global explanation is: its two largest attributes in both readings
    with their bootstrap intervals, and "cannot tell" where the two intervals overlap; or that the
    stored explanation has no intervals."""
    if not result.has_intervals:
        return (
            "No uncertainty intervals: this stored explanation was made before they were computed "
            "(`python -m explorer analyse` computes it again with them)."
        )
    assert result.phi_interval is not None and result.relative_interval is not None
    keep = result.applicable
    names = result.modifications
    head = (
        f"Uncertainty ({result.confidence:.0%} bootstrap intervals over the {result.images} "
        f"{result.split} images, {result.replicates} resamples):"
    )
    rel = relative(result.phi)
    clauses = []
    for label, values, (low, high), show in (
        ("Φ", result.phi, result.phi_interval, lambda v: _number(v, decimals)),
        ("relative", rel, result.relative_interval, lambda v: f"{v:.0f}"),
    ):
        row = np.where(keep, values[prototype], -np.inf)
        if keep.sum() < 2:
            continue
        first, second = (int(j) for j in np.argsort(-row, kind="stable")[:2])
        lo, hi = low[prototype], high[prototype]
        pair = ", ".join(
            f"{names[j]} {show(float(values[prototype, j]))} [{show(float(lo[j]))}, "
            f"{show(float(hi[j]))}]"
            for j in (first, second)
        )
        if top_two_overlap(row, np.where(keep, lo, -np.inf), np.where(keep, hi, -np.inf)):
            verdict = f"cannot tell {names[first]} from {names[second]}: their intervals overlap"
        else:
            verdict = f"{names[first]} is ahead of {names[second]} beyond their intervals"
        clauses.append(f"{label} {pair} — {verdict}")
    if not clauses:
        return f"{head} fewer than two modifications apply."
    return f"{head} " + "; ".join(clauses) + "."


def match_sentence(
    prototype: int,
    class_name: str,
    phi: np.ndarray,
    names: Sequence[str],
    not_applicable: Sequence[str] = (),
    rel: np.ndarray | None = None,
    global_phi: np.ndarray | None = None,
    disagreement_threshold: float = 0.0,
    decimals: int = 4,
) -> str:
    """One match (a prototype on one image) explained in words, from its local ``φ``.

    Args:
        prototype: its index.
        class_name: its class.
        phi: ``[M]`` the match's local ``φ`` (reference reading).
        names: the modifications' names.
        not_applicable: modifications that do not apply (left out).
        rel: optional ``[M]`` relative reading: the prototype's row of ``relative(local.phi)`` (each
            modification's share of ``φ`` as a percentile among this image's prototypes).
        global_phi: optional ``[M]`` the prototype's global ``Φ``; the sentence then says whether this
            match agrees with it (:func:`local_disagrees`).
        disagreement_threshold: see :func:`local_disagrees`.
        decimals: digits of the values.
    """
    phi = np.asarray(phi, dtype=np.float64)
    keep = np.array([n not in not_applicable for n in names])
    head = f"In this image, the match of prototype {prototype} (class *{class_name}*)"
    if not keep.any():
        return f"{head}: no modification applies; {_not_applicable_clause(not_applicable)}."
    phi_kept = np.where(keep, phi, -np.inf)
    top = int(np.argmax(phi_kept))
    if phi[top] > 0:
        text = f"{head} depends most on {names[top]} (φ = {_number(float(phi[top]), decimals)})"
    else:
        text = (
            f"{head} is not weakened by any modification "
            f"(largest φ {names[top]} {_number(float(phi[top]), decimals)})"
        )
    text += f" ({LOCAL_REFERENCE_READING})"
    if rel is not None:
        clause = _relative_clause(np.asarray(rel, dtype=np.float64), names, keep, "the others")
        text += f"; {clause} ({LOCAL_RELATIVE_READING})"
    text += "."
    text += _negatives_sentence(phi, names, keep, decimals, "φ")
    if global_phi is not None:
        global_phi = np.asarray(global_phi, dtype=np.float64)
        global_top = names[int(np.argmax(np.where(keep, global_phi, -np.inf)))]
        if local_disagrees(phi, global_phi, disagreement_threshold, keep):
            text += (
                " This match disagrees with the prototype's global explanation (which ranks "
                f"{global_top} first, {REFERENCE_READING}): it may be misleading."
            )
        else:
            text += (
                " This agrees with the prototype's global explanation (which ranks "
                f"{global_top} first, {REFERENCE_READING})."
            )
    present = [n for n in names if n in not_applicable]
    if present:
        text += f" Not applicable: {_not_applicable_clause(present)}."
    return text

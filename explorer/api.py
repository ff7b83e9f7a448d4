"""The facade the UI and the CLI call: a registry of model folders, cached loading, prediction."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.activations import ImageActivations, image_activations
from explorer.analysis.attribute_report import (
    MatchAttributes,
    PrototypeAttributes,
    dose_curves,
    match_attributes,
    prototype_attributes,
)
from explorer.analysis.attribute_sets import (
    MODES,
    attributes_cache_name,
    cell_size,
    feature_grid,
    modification_set,
)
from explorer.analysis.attributes import (
    GlobalAttributes,
    LocalAttributes,
    global_attributes,
    local_attributes,
)
from explorer.analysis.explanation import Explanation, explain_image
from explorer.analysis.nearest import NearestPatches, nearest_patches
from explorer.analysis.prototypes import PrototypeView, prototype_view
from explorer.analysis.redundancy import (
    DEFAULT_THRESHOLD,
    RedundancyReport,
    pruned_weight,
    redundancy_report,
)
from explorer.analysis.whatif import WhatIf, disabled_weight, what_if
from explorer.cache import AnalysisCache, default_cache_dir
from explorer.data import ImageSet, load_split
from explorer.errors import CheckpointError, ExplorerError, UnknownModelError
from explorer.images import load_image
from explorer.labels.store import LabelError, LabelEvent, LabelStore
from explorer.models.checkpoint import SPEC_FILE, ModelBundle, load_model
from explorer.models.preprocess import forward_batch_size
from explorer.spec import ModelSpec
from explorer.types import Prediction, PrototypeEvidence

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "elpv"
MAX_LOADED_MODELS = 4
SPLITS = ("train", "test")


@dataclass(frozen=True)
class ModelInfo:
    """What the model selector and the model card show without loading weights."""

    model_id: str
    title: str
    folder: Path
    class_names: tuple[str, ...]
    num_prototypes: int
    accuracy: dict[str, float]
    licence: str

    @classmethod
    def from_spec(cls, spec: ModelSpec, folder: Path) -> ModelInfo:
        return cls(
            model_id=spec.model_id,
            title=spec.title,
            folder=folder,
            class_names=spec.class_names,
            num_prototypes=spec.num_prototypes,
            accuracy=dict(spec.accuracy),
            licence=spec.licence,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "title": self.title,
            "folder": str(self.folder),
            "classes": list(self.class_names),
            "prototypes": self.num_prototypes,
            "accuracy": self.accuracy,
            "licence": self.licence,
        }


class Explorer:
    """Finds model folders, loads them on demand (a small LRU cache), and answers questions about them.

    Thread-safe: several UI users may share one Explorer; models are read-only after loading.
    """

    def __init__(
        self,
        model_dirs: Sequence[str | Path] = (WEIGHTS_DIR,),
        default_model: str | None = None,
        max_loaded: int = MAX_LOADED_MODELS,
        cache_root: Path | None = None,
        label_path: Path | None = None,
    ) -> None:
        self._folders: dict[str, Path] = {}
        for root in model_dirs:
            root = Path(root)
            if (root / SPEC_FILE).is_file():
                self._register(root)
            elif root.is_dir():
                for folder in sorted(p for p in root.iterdir() if (p / SPEC_FILE).is_file()):
                    self._register(folder)
        self._loaded: OrderedDict[str, ModelBundle] = OrderedDict()
        self._max_loaded = max_loaded
        self._lock = threading.Lock()
        self._analysis_lock = threading.Lock()
        self._grids: dict[str, tuple[int, int]] = {}
        self._label_path = label_path
        self._labels: LabelStore | None = None
        self.cache_root = cache_root or default_cache_dir()
        if default_model and default_model not in self._folders:
            known = ", ".join(self._folders) or "none"
            raise UnknownModelError(f"unknown model '{default_model}' (available: {known})")
        self.default_model = default_model or (
            DEFAULT_MODEL if DEFAULT_MODEL in self._folders else next(iter(self._folders), "")
        )

    def _register(self, folder: Path) -> ModelInfo:
        spec = ModelSpec.load(folder / SPEC_FILE)
        self._folders[spec.model_id] = folder
        return ModelInfo.from_spec(spec, folder)

    def add_model_folder(self, folder: str | Path) -> ModelInfo:
        """Registers (and validates by loading) a user's model folder; returns its info."""
        folder = Path(folder).expanduser().resolve()
        bundle = load_model(folder)
        info = self._register(folder)
        with self._lock:
            self._loaded.pop(info.model_id, None)
            self._loaded[info.model_id] = bundle
        return info

    def models(self) -> list[ModelInfo]:
        """Every registered model, the default first."""
        infos = [
            ModelInfo.from_spec(ModelSpec.load(f / SPEC_FILE), f) for f in self._folders.values()
        ]
        return sorted(infos, key=lambda i: (i.model_id != self.default_model, i.model_id))

    def model_ids(self) -> list[str]:
        return [info.model_id for info in self.models()]

    def bundle(self, model_id: str | None = None) -> ModelBundle:
        """The loaded model folder for ``model_id`` (the default model when ``None``)."""
        model_id = model_id or self.default_model
        if model_id not in self._folders:
            known = ", ".join(self._folders) or "none"
            raise UnknownModelError(f"unknown model '{model_id}' (available: {known})")
        with self._lock:
            if model_id in self._loaded:
                self._loaded.move_to_end(model_id)
                return self._loaded[model_id]
            bundle = load_model(self._folders[model_id])
            if bundle.spec.model_id != model_id:
                raise CheckpointError(
                    f"{model_id}: spec.json changed since the model was registered"
                )
            self._loaded[model_id] = bundle
            while len(self._loaded) > self._max_loaded:
                self._loaded.popitem(last=False)
            return bundle

    def dataset(self, model_id: str | None, split: str) -> ImageSet:
        """The split a model was trained and tested on (needed only by data-wide analyses).

        Raises:
            ExplorerError: the data set is not installed here, with how to get it.
        """
        bundle = self.bundle(model_id)
        name = bundle.spec.dataset.get("name")
        if not name:
            raise ExplorerError(f"{bundle.spec.model_id}: spec.json does not name its data set")
        try:
            return load_split(name, split)
        except ExplorerError as error:
            raise ExplorerError(
                f"this analysis of '{bundle.spec.model_id}' needs its {split} split: {error}"
            ) from None
        except ValueError as error:
            raise ExplorerError(f"{bundle.spec.model_id}: {error}") from None

    def cache(self, model_id: str | None) -> AnalysisCache:
        return AnalysisCache(self.bundle(model_id).content_hash, self.cache_root)

    def has_nearest(self, model_id: str | None = None, split: str = "test") -> bool:
        """Whether the nearest patches of a split are already stored (loads nothing heavy)."""
        return self.cache(model_id).path(f"nearest_{split}").is_file()

    def nearest(
        self,
        model_id: str | None = None,
        split: str = "test",
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> NearestPatches:
        """Every prototype's nearest patches in a split: from the cache, or computed (one batched
        pass over the split, ``progress`` wrapping its batches) and stored. The test split also keeps
        every image's prototype scores."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")

        def compute() -> NearestPatches:
            data = self.dataset(model_id, split)
            return nearest_patches(
                self.bundle(model_id).model,
                data.images,
                data.labels,
                split,
                keep_all_scores=split == "test",
                batch_size=forward_batch_size(self.bundle(model_id).spec),
                progress=progress,
            )

        return self._stored(
            model_id, f"nearest_{split}", compute, lambda a: NearestPatches.from_arrays(split, a)
        )

    def _stored(
        self,
        model_id: str | None,
        name: str,
        compute: Callable[[], Any],
        load: Callable[[dict[str, np.ndarray]], Any],
    ) -> Any:
        """A per-model result from the cache, or computed once (one analysis at a time) and stored."""
        cache = self.cache(model_id)
        with self._analysis_lock:
            arrays = cache.load(name)
            if arrays is not None:
                return load(arrays)
            result = compute()
            cache.save(name, result.to_arrays())
            return result

    def local_attributes(
        self, image: Any, model_id: str | None = None, mode: str = "reference"
    ) -> LocalAttributes:
        """Why every prototype matches one image: φ per modification (one batched forward)."""
        bundle = self.bundle(model_id)
        rgb = load_image(image)
        mods = modification_set(bundle.model, mode, rgb.shape, self._grid(bundle))
        return local_attributes(bundle.model, rgb, mods)

    def has_global_attributes(self, model_id: str | None, split: str, mode: str) -> bool:
        return self.cache(model_id).path(attributes_cache_name(mode, split)).is_file()

    def global_attributes(
        self,
        model_id: str | None = None,
        split: str = "train",
        mode: str = "reference",
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> GlobalAttributes:
        """Every prototype's global Φ over a split: from the cache, or computed (each image modified
        once per modification, all versions forwarded in batches) and stored."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")

        def compute() -> GlobalAttributes:
            bundle = self.bundle(model_id)
            data = self.dataset(model_id, split)
            mods = modification_set(bundle.model, mode, data.images.shape[1:], self._grid(bundle))
            per_pass = max(1, forward_batch_size(bundle.spec) // (1 + len(mods)))
            return global_attributes(
                bundle.model, data.images, mods, split, batch_size=per_pass, progress=progress
            )

        return self._stored(
            model_id,
            attributes_cache_name(mode, split),
            compute,
            lambda a: GlobalAttributes.from_arrays(split, a),
        )

    def stored_global_attributes(
        self, model_id: str | None, mode: str = "reference"
    ) -> GlobalAttributes | None:
        """The stored global explanation to compare matches with: train split preferred, else test,
        else None (nothing is computed)."""
        return next(
            (
                self.global_attributes(model_id, split, mode)
                for split in SPLITS
                if self.has_global_attributes(model_id, split, mode)
            ),
            None,
        )

    def match_attributes(
        self, image: Any, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> MatchAttributes:
        """Why one prototype matches one image, beside its stored global explanation (train split
        preferred, else test; none if neither is stored yet)."""
        bundle = self.bundle(model_id)
        if not 0 <= prototype < bundle.spec.num_prototypes:
            raise ValueError(
                f"prototype {prototype} is out of range (0..{bundle.spec.num_prototypes - 1})"
            )
        local = self.local_attributes(image, model_id, mode)
        stored = self.stored_global_attributes(model_id, mode)
        class_name = bundle.spec.class_names[bundle.model.prototype_classes[prototype]]
        return match_attributes(local, prototype, class_name, stored)

    def prototype_attributes(
        self, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> PrototypeAttributes:
        """One prototype's global explanation on the stored splits (compute them first with
        :meth:`global_attributes` or ``python -m explorer analyse``)."""
        bundle = self.bundle(model_id)
        splits = {
            split: self.global_attributes(model_id, split, mode)
            for split in SPLITS
            if self.has_global_attributes(model_id, split, mode)
        }
        if not splits:
            raise ExplorerError(
                f"no global attribute explanation of '{bundle.spec.model_id}' ({mode} set) is stored: "
                "compute it (needs the model's data set) or run python -m explorer analyse"
            )
        class_name = bundle.spec.class_names[bundle.model.prototype_classes[prototype]]
        return prototype_attributes(prototype, class_name, splits.get("train"), splits.get("test"))

    def dose_curves(
        self, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> dict[str, tuple[tuple[float, ...], np.ndarray]]:
        """φ of a prototype on its own source image at several strengths of each attribute."""
        bundle = self.bundle(model_id)
        source = bundle.source_image(prototype)
        return dose_curves(
            bundle.model,
            source,
            prototype,
            mode,
            cell_size(bundle.model, source.shape, self._grid(bundle)),
        )

    def _grid(self, bundle: ModelBundle) -> tuple[int, int]:
        key = bundle.content_hash
        if key not in self._grids:
            self._grids[key] = feature_grid(bundle.model)
        return self._grids[key]

    # --- labels -------------------------------------------------------------------------------
    @property
    def labels(self) -> LabelStore:
        """The label store (opened on first use at ``label_path``, ``$EXPLORER_LABELS_DB`` or the
        default under ``~/.local/share``)."""
        if self._labels is None:
            self._labels = LabelStore(self._label_path)
        return self._labels

    def label(
        self,
        model_id: str | None,
        prototype: int,
        verdict: str,
        reviewer: str,
        reason: str | None = None,
        comment: str = "",
        case: str | None = None,
    ) -> LabelEvent:
        """Records a reviewer's judgement of a prototype (appended; the latest is current)."""
        bundle = self.bundle(model_id)
        if not 0 <= int(prototype) < bundle.spec.num_prototypes:
            raise LabelError(
                f"prototype {prototype} is out of range (0..{bundle.spec.num_prototypes - 1})",
                field="prototype",
            )
        return self.labels.add(
            bundle.content_hash, bundle.spec.model_id, int(prototype), verdict, reviewer,
            reason=reason, comment=comment, case=case,
        )  # fmt: skip

    def undo_label(
        self, model_id: str | None, prototype: int, reviewer: str, case: str | None = None
    ) -> LabelEvent | None:
        """Reverses the current label of a prototype (appends a reversal; returns None if none)."""
        return self.labels.undo(self.bundle(model_id).content_hash, int(prototype), reviewer, case)

    def current_labels(
        self, model_id: str | None = None, verdict: str | None = None, reviewer: str | None = None
    ) -> list[LabelEvent]:
        """Current labels of one model (every model when ``model_id`` is None)."""
        model_hash = None if model_id is None else self.bundle(model_id).content_hash
        return self.labels.current(model_hash, verdict=verdict, reviewer=reviewer)

    def label_history(self, model_id: str | None, prototype: int | None = None) -> list[LabelEvent]:
        return self.labels.history(self.bundle(model_id).content_hash, prototype)

    def review_progress(self, model_id: str | None = None) -> tuple[int, int]:
        """``(reviewed, total)`` prototypes of a model with a current general label."""
        bundle = self.bundle(model_id)
        return self.labels.progress(bundle.content_hash, bundle.spec.num_prototypes)

    def misleading(self, model_id: str | None = None) -> set[int]:
        """Prototypes whose current general label is *misleading* (the what-if model disables them)."""
        return self.labels.disabled(self.bundle(model_id).content_hash)

    def redundancy(
        self,
        model_id: str | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        linkage: str = "average",
        weights: dict[str, float] | None = None,
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> RedundancyReport:
        """Redundancy clusters of a model's prototypes and the pruned what-if accuracy. Views: latent,
        behavioural (the test split's scores are computed and stored first if missing) and, when a
        global attribute explanation is stored (disentangled preferred, train before test),
        explanatory."""
        bundle = self.bundle(model_id)
        nearest = self.nearest(model_id, "test", progress)
        stored = [
            (split, mode)
            for mode in ("disentangled", "reference")
            for split in SPLITS
            if self.has_global_attributes(model_id, split, mode)
        ]
        attributes = self.global_attributes(model_id, *stored[0]) if stored else None
        return redundancy_report(bundle, nearest, attributes, threshold, weights, linkage)

    def what_if(
        self,
        model_id: str | None = None,
        disabled: Iterable[int] = (),
        merges: dict[int, list[int]] | None = None,
    ) -> WhatIf:
        """Test accuracy with some prototypes disabled (their last-layer columns zeroed) and/or
        merged (kept prototype → those added into it), from the stored test-split scores."""
        bundle = self.bundle(model_id)
        nearest = self.nearest(model_id, "test")
        weight = bundle.model.last_layer_weight.detach().numpy().astype(np.float64)
        new_weight = pruned_weight(weight, merges or {})
        new_weight = disabled_weight(new_weight, list(disabled))
        return what_if(nearest.all_scores, nearest.all_labels, weight, new_weight)

    def activations(self, rgb: np.ndarray, model_id: str | None = None) -> ImageActivations:
        """Every prototype's activation on one RGB uint8 image (see :func:`load_image`)."""
        bundle = self.bundle(model_id)
        model = bundle.model
        with torch.inference_mode():
            output = model(model.preprocess([rgb]))
        return image_activations(
            output,
            model.last_layer_weight.detach().numpy(),
            model.prototype_classes,
            bundle.spec.input_size,
        )

    def explain(self, image: Any, model_id: str | None = None, **options: Any) -> Explanation:
        """A full explanation of one image; ``options`` as :func:`explain_image` (``top_k``,
        ``ranked_by``, ``class_index``, ``attribution``, ``attribution_prototype``, ``smoothgrad``).

        Raises:
            BadImageError: the image cannot be used. ValueError: an option is out of range.
        """
        return explain_image(self.bundle(model_id), load_image(image), **options)

    def prototype(self, prototype: int, model_id: str | None = None) -> PrototypeView:
        """One prototype's view, with whatever nearest patches are already stored (none computed)."""
        nearest = {
            split: self.nearest(model_id, split)
            for split in SPLITS
            if self.has_nearest(model_id, split)
        }
        return prototype_view(self.bundle(model_id), prototype, nearest)

    def predict(self, image: Any, model_id: str | None = None, top_k: int = 10) -> Prediction:
        """Classifies one image and lists the prototypes that add most to the predicted class.

        Args:
            image: a path, bytes, PIL image or numpy array (see :func:`explorer.images.load_image`).
            model_id: which model (default model when ``None``).
            top_k: how many prototypes to list, by contribution to the predicted class.

        Raises:
            BadImageError: the image cannot be used. UnknownModelError / CheckpointError: the model.
        """
        bundle = self.bundle(model_id)
        acts = self.activations(load_image(image), model_id)
        predicted = acts.predicted
        weight = bundle.model.last_layer_weight.detach().numpy()
        evidence = tuple(
            PrototypeEvidence(
                prototype=int(j),
                prototype_class=bundle.spec.class_names[acts.prototype_classes[j]],
                similarity=float(acts.scores[j]),
                weight=float(weight[predicted, j]),
                contribution=float(acts.contributions[predicted, j]),
                cell=acts.best_cell(j),
            )
            for j in acts.top(top_k, by="contribution")
        )
        return Prediction(
            model_id=bundle.spec.model_id,
            content_hash=bundle.content_hash,
            class_names=bundle.spec.class_names,
            probabilities=tuple(float(p) for p in acts.probabilities),
            logits=tuple(float(v) for v in acts.logits),
            predicted=predicted,
            top_prototypes=evidence,
        )

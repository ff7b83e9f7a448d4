"""The facade the UI and the CLI call: a registry of model folders, cached loading, and every question
the app asks of a model (prediction, explanations, analyses, labels, training).

The UI, the CLI, the reports and the batch explanations reach the library only through
:class:`Explorer` and the result types re-exported by :mod:`explorer`; import-linter contracts in
``pyproject.toml`` hold them to that. Each public method resolves its model once (``model_id`` or the
default model) and passes the loaded :class:`~explorer.models.checkpoint.ModelBundle` down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from explorer.analysis.activations import ImageActivations, model_activations
from explorer.analysis.attribute_sets import (
    MODES,
    attributes_cache_name,
    cell_size,
    feature_grid,
    modification_set,
)
from explorer.analysis.attributes import (
    AttributePass,
    GlobalAttributes,
    LocalAttributes,
    global_attributes_finish,
    local_attributes,
)
from explorer.analysis.nearest import NearestPass, NearestPatches, nearest_finish, nearest_patches
from explorer.analysis.packing import AnalysisRun, pack_results
from explorer.analysis.passes import NETWORK_THREADS
from explorer.analysis.prototypes import PrototypeView, ShownSource, prototype_view, shown_source
from explorer.analysis.redundancy import (
    DEFAULT_THRESHOLD,
    Cluster,
    RedundancyReport,
    exact_duplicates,
    prune_plan,
    pruned_weight,
    redundancy_report,
)
from explorer.analysis.version_store import VersionStore
from explorer.analysis.whatif import WhatIf, disabled_weight, what_if
from explorer.cache import AnalysisCache, default_cache_dir, default_models_dir
from explorer.data import ImageSet, load_split, split_source
from explorer.data.sources import ImageSource
from explorer.engines import ENGINES, run_pass
from explorer.errors import CheckpointError, ExplorerError, UnknownModelError
from explorer.folder_analyses import (
    ANALYSES_DIR,
    SIZE_SHARE_LIMIT,
    analyses_share,
    folder_bytes,
    write_folder_analyses,
)
from explorer.images import load_image
from explorer.jobs import Jobs, JobStatus
from explorer.models.base import CAPABILITIES, not_applicable_line
from explorer.models.batch_size import measured_forward_batch
from explorer.models.card import model_card_markdown
from explorer.models.checkpoint import SPEC_FILE, ModelBundle, example_class, load_model, read_png
from explorer.models.device import AUTO, describe_device, resolve_device
from explorer.models.preprocess import forward_batch_size
from explorer.result_store import ResultStore, StoredResult
from explorer.spec import ModelSpec
from explorer.types import Prediction, PrototypeEvidence
from explorer.validation import prototype_index, whole_number

if TYPE_CHECKING:
    # annotations only: these modules are imported by the methods that use them
    from explorer.analysis.attribute_report import MatchAttributes, PrototypeAttributes
    from explorer.analysis.before_after import BeforeAfter
    from explorer.analysis.cut_outs import CutOut
    from explorer.analysis.explanation import Explanation
    from explorer.analysis.metrics.evaluation import ModelMetrics
    from explorer.analysis.model_comparison import ModelFigures
    from explorer.analysis.review_queue import ReviewQueue
    from explorer.analysis.scoring_sheet import ScoringSheet
    from explorer.labels.store import LabelEvent, LabelImport, LabelStore
    from explorer.models.importers import ImportReport

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "elpv"
MAX_LOADED_MODELS = 4
REMEMBERED_DOSE_CURVES = 256  # prototypes' dose-response curves kept in memory (a few kB each)
VERSIONS_DIR = "versions"  # under the cache root: modified images by content (version_store)
SPLITS = ("train", "test")
ATTRIBUTE_MODES = MODES
LABEL_FORMATS = ("json", "csv")
RETRAIN_VERDICTS = ("misleading", "valid")  # forgotten, remembered
RETRAIN_NICENESS = 10  # a background retrain yields the CPU to the app's requests
DEFAULT_BACKBONE = "efficientnet_lite0"


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

    @property
    def test_accuracy(self) -> float | None:
        """The final test accuracy: after the last training stage, or measured at import."""
        return self.accuracy.get("after_last_layer", self.accuracy.get("test"))

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


def _recorded_cut_outs(
    recorded: dict[str, list[dict[str, Any]]], train: ImageSet, parent: ModelBundle
) -> dict[int, list[CutOut]]:
    """The cut-outs a retrain recorded (training image and box), cut again from the training split
    at model-input size; by labelled prototype."""
    from explorer.analysis.cut_outs import CutOut, crop_box
    from explorer.models.preprocess import to_model_pixels

    out: dict[int, list[CutOut]] = {}
    for record in [*recorded.get("forbidden", []), *recorded.get("remembered", [])]:
        j, index, box = int(record["prototype"]), int(record["image_index"]), record["box"]
        pixels = to_model_pixels(train.images[index], parent.spec)
        crop = crop_box(pixels, box, f"prototype {j}, training image {index}")
        cut = CutOut(j, int(record["class_index"]), index, tuple(int(v) for v in box), crop)
        out.setdefault(j, []).append(cut)
    return out


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")


def _check_prototype(bundle: ModelBundle, prototype: object) -> int:
    """``prototype`` as an int, or an InputError (a ValueError) naming the model's range: every
    method taking a prototype number checks it here (2.5 is refused, never read as 2)."""
    return prototype_index(prototype, bundle.spec.num_prototypes)


def _explain_options(bundle: ModelBundle, options: dict[str, Any]) -> dict[str, Any]:
    """:meth:`Explorer.explain`'s numeric options checked against the model (the rest are checked
    where they are used)."""
    checked = dict(options)
    if "top_k" in checked:
        checked["top_k"] = whole_number(checked["top_k"], "top_k", minimum=1)
    if checked.get("class_index") is not None:
        checked["class_index"] = whole_number(
            checked["class_index"], "class index", minimum=0, maximum=bundle.spec.num_classes - 1
        )
    if checked.get("attribution_prototype") is not None:
        checked["attribution_prototype"] = _check_prototype(
            bundle, checked["attribution_prototype"]
        )
    return checked


MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""What ``train --model-id`` accepts (the id names the folder by default and appears in labels)."""


def _check_model_id(model_id: str | None) -> None:
    """Raises :class:`ExplorerError` unless ``model_id`` is ``None`` or matches :data:`MODEL_ID`."""
    if model_id is not None and not MODEL_ID.fullmatch(model_id):
        raise ExplorerError(
            f"the model id {model_id!r} is not usable: 1 to 64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )


def _debug_config(settings: dict[str, Any]) -> Any:
    """The :class:`~explorer.train.debug.DebugConfig` of ``settings`` (``None`` values: the
    defaults).

    Raises:
        ExplorerError: an unknown setting, or one out of its range.
    """
    from explorer.train.debug import DebugConfig

    unknown = sorted(set(settings) - set(DebugConfig.field_names()))
    if unknown:
        raise ExplorerError(
            f"unknown retrain settings: {', '.join(unknown)} (known: "
            f"{', '.join(DebugConfig.field_names())})"
        )
    try:
        return DebugConfig(**{k: v for k, v in settings.items() if v is not None})
    except ValueError as error:
        raise ExplorerError(str(error)) from None


def _train_config(
    preset: str | None,
    data: str | Path | None,
    model_id: str | None,
    backbone: str,
    input_size: int | None,
    overrides: dict[str, Any],
    data_seed: int | None = None,
) -> Any:
    """The training configuration of a shipped preset, or of an ImageFolder with its defaults."""
    from explorer.data import GENERATED, with_data_seed
    from explorer.train.config import PRESETS, TrainConfig
    from explorer.train.pipnet_trainer import PIPNET_PRESETS, PROTOPNET_ONLY

    if preset in PIPNET_PRESETS:
        given = sorted(k for k, v in overrides.items() if v is not None and k in PROTOPNET_ONLY)
        if given:
            raise ExplorerError(
                f"the PIP-Net preset '{preset}' has no {', '.join(given)} (ProtoPNet's stages); "
                "its stages are pretraining, last layer and joint training"
            )
        overrides = {k: v for k, v in overrides.items() if k not in PROTOPNET_ONLY}
    presets = {**PRESETS, **PIPNET_PRESETS}

    _check_model_id(model_id)
    if preset:
        if preset not in presets:
            raise ExplorerError(f"unknown preset '{preset}' (presets: {', '.join(presets)})")
        config = presets[preset]
        if data_seed is not None:
            if config.dataset not in GENERATED:
                raise ExplorerError(
                    f"--data-seed needs a generated data set ({', '.join(GENERATED)}); the "
                    f"'{preset}' preset trains on {config.dataset}"
                )
            if isinstance(data_seed, bool) or not isinstance(data_seed, int) or data_seed < 0:
                raise ExplorerError(f"the data seed must be a whole number >= 0, not {data_seed!r}")
            config = config.with_overrides(dataset=with_data_seed(config.dataset, data_seed))
        if model_id is not None:
            config = config.with_overrides(model_id=model_id)
    elif data:
        size = input_size or 224
        root = Path(data).resolve()  # spec.json names the folder wherever the model is used from
        config = TrainConfig(
            model_id=model_id or root.name,
            dataset=str(root),
            backbone=backbone,
            pretrained=backbone == DEFAULT_BACKBONE,
            input_size=(size, size),
            channels=3,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
        )
    else:
        raise ExplorerError(
            "give --preset NAME or --data IMAGEFOLDER (with train/ and test/ inside)"
        )
    if data_seed is not None and not preset:
        raise ExplorerError(
            "--data-seed is for the generated presets (synthetic, blobs), not --data"
        )
    return config.with_overrides(**overrides)


class Explorer:
    """Finds model folders, loads them on demand (a small LRU cache), and answers questions about them.

    Thread-safe: several UI users may share one Explorer; models are read-only after loading.
    """

    def __init__(
        self,
        model_dirs: str | Path | Sequence[str | Path] = (WEIGHTS_DIR,),
        default_model: str | None = None,
        max_loaded: int = MAX_LOADED_MODELS,
        cache_root: str | Path | None = None,
        label_path: str | Path | None = None,
        models_out: str | Path | None = None,
        device: str | torch.device | None = AUTO,
    ) -> None:
        """Registers the model folders in ``model_dirs`` (each a model folder or a folder of them;
        one path alone is one folder); paths may be ``str`` or ``Path``.

        ``device`` is where the networks run (``auto``: the first CUDA GPU when there is one, else
        the CPU; ``cpu``; ``cuda``; ``cuda:N``): models are loaded onto it, training, global passes
        and explanations run there, and every result is returned on the CPU as before.

        A model folder inside a folder of folders whose ``spec.json`` cannot be read is skipped with
        a warning (see :attr:`skipped_folders`); a model folder named directly must be readable.

        Raises:
            DeviceError: ``device`` is not a device, or names a GPU this machine lacks.
            CheckpointError: a model folder named directly has a bad ``spec.json``.
            UnknownModelError: ``default_model`` is not among the registered models.

        ``models_out`` is where background retrains (:meth:`start_retrain`) write their model
        folders (default :func:`~explorer.cache.default_models_dir`).
        """
        self.device = resolve_device(device)
        """Where the networks run (see :mod:`explorer.models.device`)."""
        self._folders: dict[str, Path] = {}
        self._loaded: OrderedDict[str, ModelBundle] = OrderedDict()
        self._max_loaded = max_loaded
        self._lock = threading.Lock()  # the registry and the loaded models
        self._grids: dict[str, tuple[int, int]] = {}  # guarded by self._lock
        # (content hash, prototype, mode) → dose curves, oldest first; guarded by self._lock
        self._doses: OrderedDict[tuple[str, int, str], dict[str, Any]] = OrderedDict()
        self._label_path = None if label_path is None else Path(label_path)
        self._labels: LabelStore | None = None
        self._jobs: Jobs | None = None
        self.models_out = Path(models_out) if models_out is not None else default_models_dir()
        """Where background retrains write their model folders."""
        self.skipped_folders: dict[Path, str] = {}
        if isinstance(model_dirs, str | os.PathLike):
            model_dirs = (model_dirs,)
        for root in map(Path, model_dirs):
            if (root / SPEC_FILE).is_file():
                self._register(root)
            elif root.is_dir():
                for folder in sorted(p for p in root.iterdir() if (p / SPEC_FILE).is_file()):
                    self._register_or_skip(folder)
        self.cache_root = Path(cache_root) if cache_root is not None else default_cache_dir()
        # modified images by content, for the attribute passes (any model, any split)
        self._versions = VersionStore(str(self.cache_root / VERSIONS_DIR))
        self._results = ResultStore(self.cache_root)
        if default_model and default_model not in self._folders:
            known = ", ".join(self._folders) or "none"
            raise UnknownModelError(
                f"unknown model '{default_model}' (available: {known}){self._skipped_note()}"
            )
        self.default_model = default_model or (
            DEFAULT_MODEL if DEFAULT_MODEL in self._folders else next(iter(self._folders), "")
        )

    # --- the registry ------------------------------------------------------------------------
    def _register(self, folder: Path) -> ModelInfo:
        """Adds (or replaces) a folder under its spec's model id; a model loaded from an earlier
        folder of that id is forgotten."""
        spec = ModelSpec.load(folder / SPEC_FILE)
        with self._lock:
            earlier = self._folders.get(spec.model_id)
            if earlier is not None and earlier != folder:
                log.warning(
                    "model id '%s' of %s replaces the one of %s (give one of them another id)",
                    spec.model_id, folder, earlier,
                )  # fmt: skip
            self._folders[spec.model_id] = folder
            self._loaded.pop(spec.model_id, None)
        return ModelInfo.from_spec(spec, folder)

    def _register_or_skip(self, folder: Path) -> None:
        """Registers one folder of a folder of folders; one that cannot be read is logged and
        remembered in :attr:`skipped_folders` instead, so the others are still served."""
        try:
            self._register(folder)
        except ExplorerError as error:
            log.warning("skipped model folder %s: %s", folder, error)
            self.skipped_folders[folder] = str(error)

    def _skipped_note(self) -> str:
        if not self.skipped_folders:
            return ""
        return "; skipped: " + "; ".join(
            f"{folder} ({reason})" for folder, reason in self.skipped_folders.items()
        )

    def _folder(self, model_id: str | None) -> tuple[str, Path]:
        """The model id (the default model for ``None``) and its folder.

        Raises:
            UnknownModelError: no registered model has that id.
        """
        model_id = model_id or self.default_model
        if model_id not in self._folders:
            known = ", ".join(self._folders) or "none"
            raise UnknownModelError(f"unknown model '{model_id}' (available: {known})")
        return model_id, self._folders[model_id]

    def device_in_words(self) -> str:
        """Where the networks run, for people: ``cpu (2 cores)``, ``cuda:0 (NVIDIA H100 ...)``."""
        return describe_device(self.device)

    def forward_batch(self, model_id: str | None = None) -> int:
        """Images per forward pass in this Explorer's data-wide passes (nearest patches, scores,
        metrics): the CPU's input-volume rule on the CPU, measured once per model and GPU on a GPU
        (remembered in the cache; the CPU's rule does not transfer)."""
        return self._forward_batch(self.bundle(model_id))

    def _forward_batch(self, bundle: ModelBundle) -> int:
        if self.device.type == "cpu":
            return forward_batch_size(bundle.spec)
        return measured_forward_batch(bundle.model, bundle.content_hash, self.cache_root)

    def add_model_folder(self, folder: str | Path) -> ModelInfo:
        """Registers (and validates by loading) a user's model folder; returns its info."""
        folder = Path(folder).expanduser().resolve()
        bundle = load_model(folder, self.device)
        info = self._register(folder)
        with self._lock:
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

    def model_info(self, model_id: str | None = None) -> ModelInfo:
        """What the registry knows of one model, read from its ``spec.json`` (weights not loaded).

        Raises:
            UnknownModelError: no registered model has that id.
        """
        _, folder = self._folder(model_id)
        return ModelInfo.from_spec(ModelSpec.load(folder / SPEC_FILE), folder)

    def bundle(self, model_id: str | None = None) -> ModelBundle:
        """The loaded model folder for ``model_id`` (the default model when ``None``).

        For the library and the tests; the UI and the CLI ask the facade's own questions instead.
        """
        model_id, folder = self._folder(model_id)
        with self._lock:
            if model_id in self._loaded:
                self._loaded.move_to_end(model_id)
                return self._loaded[model_id]
            bundle = load_model(folder, self.device)
            if bundle.spec.model_id != model_id:
                raise CheckpointError(
                    f"{model_id}: spec.json changed since the model was registered"
                )
            self._loaded[model_id] = bundle
            while len(self._loaded) > self._max_loaded:
                self._loaded.popitem(last=False)
            return bundle

    # --- what a model is ---------------------------------------------------------------------
    def spec(self, model_id: str | None = None) -> ModelSpec:
        """The specification of the loaded model (classes, input size, architecture, accuracy).

        Raises:
            UnknownModelError: no such model. CheckpointError: its folder cannot be loaded.
        """
        return self.bundle(model_id).spec

    def class_names(self, model_id: str | None = None) -> tuple[str, ...]:
        """The model's class names, in the order of its logits."""
        return self.spec(model_id).class_names

    def num_prototypes(self, model_id: str | None = None) -> int:
        return self.spec(model_id).num_prototypes

    def not_applicable(self, model_id: str | None, capability: str) -> str | None:
        """One line for a view that needs ``capability`` (``prototype_vectors``, ``push``,
        ``distances``) when the model's family lacks it (``None`` when it applies): what is not
        shown, why, and what is shown instead.

        Raises:
            ValueError: an unknown capability.
        """
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; one of {sorted(CAPABILITIES)}")
        return not_applicable_line(self.bundle(model_id).model, CAPABILITIES[capability])

    def compare_models(self, model_ids: Sequence[str]) -> list[ModelFigures]:
        """Models of one data set side by side (accuracy, prototypes used, evidence per decision,
        redundancy found), from each one's last layer and stored test-split scores.

        Raises:
            ExplorerError: fewer than two models, models of different data sets, or a model whose
                test-split scores are not stored and whose data is missing.
        """
        from explorer.analysis.model_comparison import ModelFigures, evidence_per_decision

        if len(model_ids) < 2:
            raise ExplorerError(f"compare at least two models ({len(model_ids)} given)")
        datasets = {self.spec(m).dataset.get("name") for m in model_ids}
        if len(datasets) != 1:
            raise ExplorerError(
                f"the models are of different data sets ({', '.join(sorted(map(str, datasets)))}): "
                "compare models of one data set"
            )
        columns = []
        for model_id in model_ids:
            bundle = self.bundle(model_id)
            model = bundle.model
            test = self._nearest(bundle, "test")
            weights = model.class_weights.detach().double().cpu().numpy()
            bias = (
                None
                if model.class_bias is None
                else model.class_bias.detach().double().cpu().numpy()
            )
            scores = test.all_scores.astype(np.float64)
            adding, needed, predicted = evidence_per_decision(scores, weights, bias)
            report = self.redundancy(model_id)
            columns.append(
                ModelFigures(
                    model_id=bundle.spec.model_id,
                    family=model.family,
                    recorded_accuracy=bundle.spec.accuracy.get("after_last_layer"),
                    accuracy=float((predicted == test.all_labels).mean()),
                    images=len(test.all_labels),
                    prototypes=model.num_prototypes,
                    used=int(np.any(weights != 0, axis=0).sum()),
                    nonzero_weights=float(np.count_nonzero(weights) / weights.size),
                    adding=adding,
                    needed=needed,
                    clusters=len(report.clusters),
                    removable=sum(len(v) for v in report.plan.values()),
                    pruned_accuracy=None if report.pruned is None else report.pruned.accuracy,
                )
            )
        return columns

    @staticmethod
    def comparison_markdown(columns: Sequence[ModelFigures]) -> str:
        """:meth:`compare_models`'s figures as a Markdown table, one column per model."""
        from explorer.analysis.model_comparison import comparison_markdown

        return comparison_markdown(list(columns))

    def scoring_sheet(self, model_id: str | None = None) -> ScoringSheet:
        """The last layer as a scoring sheet: per class, the prototypes with a non-zero weight,
        largest first, and the bias (PIP-Net's global explanation; dense for a ProtoPNet)."""
        bundle = self.bundle(model_id)
        from explorer.analysis.scoring_sheet import scoring_sheet

        return scoring_sheet(bundle.model, bundle.spec.model_id, bundle.spec.class_names)

    def score_name(self, model_id: str | None = None) -> str:
        """What the model's prototype scores are called: ``similarity`` (ProtoPNet) or
        ``presence`` (PIP-Net)."""
        return self.bundle(model_id).model.score_name

    def prototype_classes(self, model_id: str | None = None) -> np.ndarray:
        """``[P]`` the class index each prototype belongs to (a copy)."""
        return np.asarray(self.bundle(model_id).model.prototype_classes).copy()

    def prototype_labels(self, model_id: str | None = None) -> tuple[str, ...]:
        """``P<j> · <class name>`` for every prototype: how the app names prototypes."""
        bundle = self.bundle(model_id)
        names = bundle.spec.class_names
        return tuple(
            f"P{j} · {names[int(c)]}" for j, c in enumerate(bundle.model.prototype_classes)
        )

    def content_hash(self, model_id: str | None = None) -> str:
        """16 hex digits identifying the model's weights and architecture (caches and labels key
        on it)."""
        return self.bundle(model_id).content_hash

    def model_card(self, model_id: str | None = None) -> str:
        """The model's card in Markdown: what it is, its data and licence, measured accuracy."""
        return model_card_markdown(self.spec(model_id))

    def examples(self, model_id: str | None = None) -> list[tuple[np.ndarray, str]]:
        """The model's bundled example test images (RGB uint8, sorted by file name), each with its
        true class name."""
        bundle = self.bundle(model_id)
        names = bundle.spec.class_names
        return [
            (read_png(path), names[example_class(path, len(names))]) for path in bundle.examples()
        ]

    def example_image(self, index: int, model_id: str | None = None) -> np.ndarray:
        """One bundled example image (RGB uint8), by its position in :meth:`examples`.

        Raises:
            ValueError: there is no example at ``index``.
        """
        return read_png(self.example_path(index, model_id))

    def example_path(self, index: int, model_id: str | None = None) -> Path:
        """The file of one bundled example image (a PNG in the model folder; read it, never write).

        Raises:
            ValueError: there is no example at ``index`` (or it is not a whole number).
        """
        paths = self.bundle(model_id).examples()
        number = whole_number(index, "example", floats=False)  # numpy integers too, not booleans
        if not 0 <= number < len(paths):
            raise ValueError(f"example {index!r} does not exist (the model has {len(paths)})")
        return paths[number]

    def has_sources(self, model_id: str | None = None) -> bool:
        """Whether the model's prototypes can be pictured: a pushed model stores its source images;
        a model without push (PIP-Net) is pictured by its nearest training patches once they are
        stored (shipped with the folder or computed)."""
        bundle = self.bundle(model_id)
        return bool(bundle.projection) or self._is_stored(bundle, "nearest_train")

    def source_image(self, prototype: int, model_id: str | None = None) -> np.ndarray | None:
        """The training image that stands for a prototype (RGB uint8, model-input size): its push
        source, or its nearest training image for a model without push; ``None`` when neither is
        stored.

        Raises:
            ValueError: ``prototype`` is out of range.
        """
        shown = self._shown_source(self.bundle(model_id), prototype)
        return None if shown is None else shown.image

    def _shown_source(self, bundle: ModelBundle, prototype: int) -> ShownSource | None:
        prototype = _check_prototype(bundle, prototype)
        if bundle.projection:
            return shown_source(bundle, prototype, None)
        if not self._is_stored(bundle, "nearest_train"):
            return None
        return shown_source(bundle, prototype, self._nearest(bundle, "train"))

    def source_patch(self, prototype: int, model_id: str | None = None) -> np.ndarray | None:
        """The patch that stands for a prototype (the box of :meth:`source_image`, RGB uint8);
        ``None`` when no source is stored.

        Raises:
            ValueError: ``prototype`` is out of range.
        """
        shown = self._shown_source(self.bundle(model_id), prototype)
        from explorer.viz.pairs import crop

        return None if shown is None else crop(shown.image, shown.record.box)

    def dataset(self, model_id: str | None, split: str) -> ImageSet:
        """The split a model was trained and tested on (needed only by data-wide analyses).

        Raises:
            ExplorerError: the data set is not installed here, with how to get it.
        """
        return self._dataset(self.bundle(model_id), split)

    def _source(self, bundle: ModelBundle, split: str) -> ImageSource:
        """Where the global passes read a split: an ImageFolder file by file, a named data set
        from memory."""
        return self._read_split(bundle, split, split_source)

    def _dataset(self, bundle: ModelBundle, split: str) -> ImageSet:
        return self._read_split(bundle, split, load_split)

    def _read_split(self, bundle: ModelBundle, split: str, read: Callable[..., Any]) -> Any:
        """``read(name, split, input size)`` of the model's data set, its errors in one line
        naming the model."""
        name = bundle.spec.dataset.get("name")
        if not name:
            raise ExplorerError(f"{bundle.spec.model_id}: spec.json does not name its data set")
        try:
            return read(name, split, bundle.spec.input_size)
        except ExplorerError as error:
            raise ExplorerError(
                f"this analysis of '{bundle.spec.model_id}' needs its {split} split: {error}"
            ) from None
        except ValueError as error:
            raise ExplorerError(f"{bundle.spec.model_id}: {error}") from None

    # --- stored analyses ---------------------------------------------------------------------
    def cache(self, model_id: str | None) -> AnalysisCache:
        return self._cache(self.bundle(model_id))

    def _cache(self, bundle: ModelBundle) -> AnalysisCache:
        return AnalysisCache(bundle.content_hash, self.cache_root)

    def _stored(
        self,
        bundle: ModelBundle,
        name: str,
        compute: Callable[[], Any],
        load: Callable[[dict[str, np.ndarray]], Any],
        use_shipped: bool = True,
    ) -> Any:
        """A per-model result: from the user's cache, else shipped in the model folder, else
        computed once and cached. Reads never wait for a computation (see
        :mod:`explorer.result_store`)."""
        return self._results.get(
            bundle.folder, bundle.content_hash, name, compute, load, use_shipped
        )

    def _is_stored(self, bundle: ModelBundle, name: str) -> bool:
        return self._results.has(bundle.folder, bundle.content_hash, name)

    def _stored_path(self, bundle: ModelBundle, name: str) -> Path:
        """The file the result of ``name`` is read from (the user's cache first, then the folder's
        shipped one); the cache file it would be computed into when neither exists."""
        status = self._results.status(bundle.folder, bundle.content_hash, name)
        return status.path if status.path is not None else self._cache(bundle).path(name)

    def nearest_path(self, model_id: str | None = None, split: str = "test") -> Path:
        """Where the nearest patches of a split are (or will be) stored."""
        return self._stored_path(self.bundle(model_id), f"nearest_{split}")

    def has_nearest(self, model_id: str | None = None, split: str = "test") -> bool:
        """Whether the nearest patches of a split are already stored (loads nothing heavy)."""
        return self._is_stored(self.bundle(model_id), f"nearest_{split}")

    def nearest(
        self,
        model_id: str | None = None,
        split: str = "test",
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> NearestPatches:
        """Every prototype's nearest patches in a split: from the cache, or computed (one batched
        pass over the split, ``progress`` wrapping its batches) and stored. The test split also keeps
        every image's prototype scores."""
        return self._nearest(self.bundle(model_id), split, progress)

    def _nearest(
        self,
        bundle: ModelBundle,
        split: str,
        progress: Callable[[Iterable], Iterable] = lambda it: it,
        use_shipped: bool = True,
        engine: str = "local",
        workers: int | None = None,
        address: str | None = None,
    ) -> NearestPatches:
        _check_split(split)
        _check_engine(engine)

        def compute() -> NearestPatches:
            source = self._source(bundle, split)
            batch = self._forward_batch(bundle)
            keep = split == "test"
            step = NearestPass(keep_all_scores=keep)
            done = run_pass(
                engine, step, bundle.model, bundle.folder, source, batch_size=batch,
                progress=progress, workers=workers, address=address,
            )  # fmt: skip
            return nearest_finish(bundle.model, done, source, split, keep)

        return self._stored(
            bundle,
            f"nearest_{split}",
            compute,
            lambda a: NearestPatches.from_arrays(split, a),
            use_shipped,
        )

    def _stored_nearest(self, bundle: ModelBundle) -> dict[str, NearestPatches]:
        """The nearest patches of every split that is stored (none computed)."""
        return {
            split: self._nearest(bundle, split)
            for split in SPLITS
            if self._is_stored(bundle, f"nearest_{split}")
        }

    # --- what is stored, and shipping it with the model ---------------------------------------
    @staticmethod
    def analysis_names() -> list[tuple[str, str]]:
        """``(name, title)`` of every data-wide analysis a model can store, in the order the model
        card lists them (the redundancy report is computed from these in well under a second)."""
        names = [
            ("nearest_train", "Nearest patches, train split"),
            ("nearest_test", "Nearest patches and per-image scores, test split"),
        ]
        for mode in MODES:
            for split in SPLITS:
                names.append(
                    (
                        attributes_cache_name(mode, split),
                        f"Attribute explanation ({mode} set), {split} split",
                    )
                )
        return names

    def stored_analyses(self, model_id: str | None = None) -> list[StoredResult]:
        """Where each analysis of :meth:`analysis_names` is stored: ``shipped`` (in the model folder's
        ``analyses/``), ``cache`` (the user's cache) or not computed (``where`` is ``None``), and
        since when. Reads no result."""
        bundle = self.bundle(model_id)
        return [
            self._results.status(bundle.folder, bundle.content_hash, name)
            for name, _ in self.analysis_names()
        ]

    def shipped_analyses_note(self, model_id: str | None = None) -> str:
        """How the model folder's shipped analyses were packed (what is exact), or why they are not
        used (stale, unreadable); empty when the folder ships none."""
        bundle = self.bundle(model_id)
        shipped = self._results.shipped(bundle.folder, bundle.content_hash)
        if shipped.problem:
            return f"The folder's shipped analyses are not used: {shipped.problem}."
        return shipped.note

    def analyse(
        self,
        model_id: str | None = None,
        splits: Sequence[str] = SPLITS,
        modes: Sequence[str] = MODES,
        into_folder: bool = False,
        progress: Callable[[str], Callable[[Iterable], Iterable]] | None = None,
        size_share: float | None = SIZE_SHARE_LIMIT,
        engine: str = "local",
        workers: int | None = None,
        address: str | None = None,
    ) -> AnalysisRun:
        """Computes a model's data-wide analyses into the user's cache (results already cached are
        read): nearest patches per split (the test split with every image's scores) and global
        attribute explanations per set and split. Shipped analyses are not used here: these are
        always exact and complete, and once cached they are the ones every view reads.

        Args:
            splits, modes: which splits and attribute sets (``modes=()``: no attribute explanations).
            into_folder: also write them into the model folder's ``analyses/``, packed to at most a
                quarter of the folder (see :mod:`explorer.analysis.packing`).
            progress: ``progress(description)`` → a wrapper of each pass's batches (e.g. tqdm).
            size_share: the share of the folder ``analyses/`` may take (``None``: no limit, every
                result exact). When nothing fits, the smallest packing is written and
                ``run.packing.fits`` is false.
            engine: ``local`` (in this process) or ``ray`` (the nearest-patch and attribute passes
                on Ray Data, :mod:`explorer.engines.ray_engine`).
            workers: the ray engine's actors (default: every CPU). address: a Ray cluster to join
                (``auto``, ``ray://host:10001``; default: a local Ray for the pass).

        Raises:
            ExplorerError: the model's data set is needed and not installed.
        """
        bundle = self.bundle(model_id)
        for split in splits:
            _check_split(split)
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        wrap = progress or (lambda description: lambda it: it)
        results: dict[str, Any] = {}
        nearest: dict[str, NearestPatches] = {}
        attributes: dict[tuple[str, str], GlobalAttributes] = {}
        for split in splits:
            nearest[split] = results[f"nearest_{split}"] = self._nearest(
                bundle,
                split,
                wrap(f"nearest patches ({split})"),
                use_shipped=False,
                engine=engine,
                workers=workers,
                address=address,
            )
            for mode in modes:
                attributes[mode, split] = results[attributes_cache_name(mode, split)] = (
                    self._global_attributes(
                        bundle,
                        split,
                        mode,
                        wrap(f"attributes {mode} ({split})"),
                        False,
                        engine=engine,
                        workers=workers,
                        address=address,
                    )
                )
        run = AnalysisRun(bundle.spec.model_id, results, nearest, attributes)
        if not into_folder:
            return run
        titles = dict(self.analysis_names())
        if size_share is not None and not 0 < size_share < 1:
            raise ValueError(f"size_share must be between 0 and 1, not {size_share}")
        others = folder_bytes(bundle.folder) - folder_bytes(bundle.folder / ANALYSES_DIR)
        budget = 2**62 if size_share is None else int(others * size_share / (1 - size_share))
        packed, packing = pack_results(
            {name: (titles[name], result) for name, result in results.items()}, budget
        )
        write_folder_analyses(bundle.folder, bundle.content_hash, packed, note=packing.describe())
        self._results.forget_folder(bundle.folder)
        return dataclasses.replace(
            run,
            folder=bundle.folder,
            packing=packing,
            folder_share=analyses_share(bundle.folder),
        )

    # --- attribute explanations --------------------------------------------------------------
    def local_attributes(
        self, image: Any, model_id: str | None = None, mode: str = "reference"
    ) -> LocalAttributes:
        """Why every prototype matches one image: φ per modification (one batched forward)."""
        return self._local_attributes(self.bundle(model_id), load_image(image), mode)

    def _local_attributes(self, bundle: ModelBundle, rgb: np.ndarray, mode: str) -> LocalAttributes:
        mods = modification_set(bundle.model, mode, rgb.shape, self._grid(bundle))
        return local_attributes(bundle.model, rgb, mods)

    def global_attributes_path(self, model_id: str | None, split: str, mode: str) -> Path:
        """Where a split's global attribute explanation (one modification set) is stored."""
        return self._stored_path(self.bundle(model_id), attributes_cache_name(mode, split))

    def has_global_attributes(self, model_id: str | None, split: str, mode: str) -> bool:
        return self._has_global_attributes(self.bundle(model_id), split, mode)

    def _has_global_attributes(self, bundle: ModelBundle, split: str, mode: str) -> bool:
        return self._is_stored(bundle, attributes_cache_name(mode, split))

    def global_attributes(
        self,
        model_id: str | None = None,
        split: str = "train",
        mode: str = "reference",
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> GlobalAttributes:
        """Every prototype's global Φ over a split: from the cache, or computed (each image modified
        once per modification, all versions forwarded in batches) and stored."""
        return self._global_attributes(self.bundle(model_id), split, mode, progress)

    def _global_attributes(
        self,
        bundle: ModelBundle,
        split: str,
        mode: str,
        progress: Callable[[Iterable], Iterable] = lambda it: it,
        use_shipped: bool = True,
        engine: str = "local",
        workers: int | None = None,
        address: str | None = None,
    ) -> GlobalAttributes:
        _check_split(split)
        _check_engine(engine)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")

        def compute() -> GlobalAttributes:
            source = self._source(bundle, split)
            mods = modification_set(bundle.model, mode, source.image_shape, self._grid(bundle))
            # images per forward measured on this machine (remembered); the next chunk of images is
            # modified while the network runs on this one
            rows = measured_forward_batch(
                bundle.model, bundle.content_hash, self.cache_root, threads=NETWORK_THREADS
            )
            per_pass = max(1, rows // (1 + len(mods)))
            step = AttributePass(mods, forward_rows=rows, store=self._versions)
            done = run_pass(
                engine, step, bundle.model, bundle.folder, source, batch_size=per_pass,
                progress=progress, workers=workers, address=address,
            )  # fmt: skip
            return global_attributes_finish(bundle.model, done, mods, split)

        return self._stored(
            bundle,
            attributes_cache_name(mode, split),
            compute,
            lambda a: GlobalAttributes.from_arrays(split, a),
            use_shipped,
        )

    def stored_global_attributes(
        self, model_id: str | None, mode: str = "reference"
    ) -> GlobalAttributes | None:
        """The stored global explanation to compare matches with: train split preferred, else test,
        else None (nothing is computed)."""
        return self._stored_global_attributes(self.bundle(model_id), mode)

    def _stored_global_attributes(self, bundle: ModelBundle, mode: str) -> GlobalAttributes | None:
        return next(
            (
                self._global_attributes(bundle, split, mode)
                for split in SPLITS
                if self._has_global_attributes(bundle, split, mode)
            ),
            None,
        )

    def match_attributes(
        self, image: Any, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> MatchAttributes:
        """Why one prototype matches one image, beside its stored global explanation (train split
        preferred, else test; none if neither is stored yet)."""
        (match,) = self.match_attributes_many(image, [prototype], model_id, mode)
        return match

    def match_attributes_many(
        self,
        image: Any,
        prototypes: Sequence[int],
        model_id: str | None = None,
        mode: str = "reference",
    ) -> list[MatchAttributes]:
        """:meth:`match_attributes` for several prototypes, the image's local explanation (every
        prototype in one batched forward) computed once for all of them.

        Raises:
            ValueError: a prototype is out of range. BadImageError: the image cannot be used.
        """
        bundle = self.bundle(model_id)
        chosen = [_check_prototype(bundle, j) for j in prototypes]
        local = self._local_attributes(bundle, load_image(image), mode)
        stored = self._stored_global_attributes(bundle, mode)
        names = bundle.spec.class_names
        classes = bundle.model.prototype_classes
        from explorer.analysis.attribute_report import match_attributes

        return [match_attributes(local, j, names[classes[j]], stored) for j in chosen]

    def prototype_attributes(
        self, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> PrototypeAttributes:
        """One prototype's global explanation on the stored splits (compute them first with
        :meth:`global_attributes` or ``python -m explorer analyse``)."""
        bundle = self.bundle(model_id)
        prototype = _check_prototype(bundle, prototype)
        splits = {
            split: self._global_attributes(bundle, split, mode)
            for split in SPLITS
            if self._has_global_attributes(bundle, split, mode)
        }
        if not splits:
            raise ExplorerError(
                f"no global attribute explanation of '{bundle.spec.model_id}' ({mode} set) is stored: "
                "compute it (needs the model's data set) or run python -m explorer analyse"
            )
        class_name = bundle.spec.class_names[bundle.model.prototype_classes[prototype]]
        from explorer.analysis.attribute_report import prototype_attributes

        return prototype_attributes(prototype, class_name, splits.get("train"), splits.get("test"))

    def dose_curves(
        self, prototype: int, model_id: str | None = None, mode: str = "reference"
    ) -> dict[str, tuple[tuple[float, ...], np.ndarray]]:
        """φ of a prototype on its own source image at several strengths of each attribute.

        Computed once per model, prototype and set, then remembered (the Prototypes tab shows them
        for every prototype opened, and for prototype 0 on every page load); a fresh copy each call.
        """
        bundle = self.bundle(model_id)
        prototype = _check_prototype(bundle, prototype)
        key = (bundle.content_hash, prototype, mode)
        with self._lock:
            known = self._doses.get(key)
            if known is not None:
                self._doses.move_to_end(key)
        if known is None:
            shown = self._shown_source(bundle, prototype)
            if shown is None:
                raise ExplorerError(
                    f"{bundle.spec.model_id} stores no source for prototype {prototype} (no push): "
                    "compute its nearest training patches first (`python -m explorer analyse`)"
                )
            source = shown.image
            from explorer.analysis.attribute_report import dose_curves

            known = dose_curves(  # outside the lock: forwards of the modified source image
                bundle.model, source, prototype, mode,
                cell_size(bundle.model, source.shape, self._grid(bundle)),
            )  # fmt: skip
            with self._lock:
                self._doses[key] = known
                while len(self._doses) > REMEMBERED_DOSE_CURVES:
                    self._doses.popitem(last=False)
        return {name: (strengths, values.copy()) for name, (strengths, values) in known.items()}

    def _grid(self, bundle: ModelBundle) -> tuple[int, int]:
        """The model's feature grid (one forward of a blank image, remembered per model)."""
        key = bundle.content_hash
        with self._lock:
            known = self._grids.get(key)
        if known is None:
            known = feature_grid(bundle.model)  # outside the lock: a forward pass
            with self._lock:
                known = self._grids.setdefault(key, known)
        return known

    # --- labels -------------------------------------------------------------------------------
    @property
    def labels(self) -> LabelStore:
        """The label store (opened on first use at ``label_path``, ``$EXPLORER_LABELS_DB`` or the
        default under ``~/.local/share``)."""
        if self._labels is None:
            from explorer.labels.store import LabelStore

            self._labels = LabelStore(self._label_path)
        return self._labels

    @property
    def labels_path(self) -> Path:
        """The SQLite file the labels are stored in."""
        return self.labels.path

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
        return self.labels.add(
            bundle.content_hash, bundle.spec.model_id, _check_prototype(bundle, prototype), verdict,
            reviewer,
            reason=reason, comment=comment, case=case,
        )  # fmt: skip

    def undo_label(
        self, model_id: str | None, prototype: int, reviewer: str, case: str | None = None
    ) -> LabelEvent | None:
        """Reverses the current label of a prototype (appends a reversal; returns None if none)."""
        bundle = self.bundle(model_id)
        return self.labels.undo(
            bundle.content_hash, _check_prototype(bundle, prototype), reviewer, case
        )

    def current_labels(
        self, model_id: str | None = None, verdict: str | None = None, reviewer: str | None = None
    ) -> list[LabelEvent]:
        """Current labels of one model (every model when ``model_id`` is None)."""
        return self.labels.current(self._label_scope(model_id), verdict=verdict, reviewer=reviewer)

    def _label_scope(self, model_id: str | None) -> str | None:
        """The content hash labels of ``model_id`` are kept under; ``None`` (every model) for None."""
        return None if model_id is None else self.bundle(model_id).content_hash

    def label_history(self, model_id: str | None, prototype: int | None = None) -> list[LabelEvent]:
        """Every label event of a model (of one prototype, when given), oldest first; events kept
        as provenance only are included."""
        bundle = self.bundle(model_id)
        if prototype is not None:
            prototype = _check_prototype(bundle, prototype)
        return self.labels.history(bundle.content_hash, prototype)

    def review_progress(self, model_id: str | None = None) -> tuple[int, int]:
        """``(reviewed, total)`` prototypes of a model with a current general label."""
        bundle = self.bundle(model_id)
        return self.labels.progress(bundle.content_hash, bundle.spec.num_prototypes)

    def misleading(self, model_id: str | None = None) -> set[int]:
        """Prototypes whose current general label is *misleading* (the what-if model disables them);
        labels of prototype numbers the model does not have (an imported file may hold any) are
        left out."""
        bundle = self.bundle(model_id)
        count = bundle.spec.num_prototypes
        return {j for j in self.labels.disabled(bundle.content_hash) if j < count}

    def export_labels(
        self,
        path: str | Path,
        model_id: str | None = None,
        format: str = "json",
        history: bool = True,
    ) -> int:
        """Writes labels to a file (replaced atomically) that :meth:`import_labels` reads back.

        Args:
            path: the file to write.
            model_id: only this model's labels; ``None``: every model's.
            format: ``json`` (one document) or ``csv`` (one row per event, with a header).
            history: every event (labels and reversals, oldest first), or only the current labels.

        Returns:
            The number of events written.
        """
        if format not in LABEL_FORMATS:
            raise ValueError(f"format must be one of {LABEL_FORMATS}, not {format!r}")
        scope = self._label_scope(model_id)
        from explorer.labels import exchange

        if format == "json":
            return exchange.export_json(self.labels, path, scope, history=history)
        write = exchange.export_history_csv if history else exchange.export_current_csv
        return write(self.labels, path, scope)

    def import_labels(self, path: str | Path, imported_by: str | None = None) -> LabelImport:
        """Adds the events of a JSON or CSV label export (by the file's suffix) to the store;
        events already present are skipped.

        Args:
            path: the export.
            imported_by: the signed-in user who imports (the app passes its login). Events naming
                another reviewer are then kept as provenance only: in the history, never anyone's
                current label, never disabled by the what-if. ``None`` (no login: the CLI, an app
                without ``--auth``) imports every event as it was.

        Returns:
            How many events were added (``added``) and how many of them are provenance only.

        Raises:
            LabelError: the file is not a valid export, or dates an event in the future (nothing is
                imported).
        """
        from explorer.labels import exchange

        return exchange.import_file(self.labels, path, imported_by)

    def export_protopdebug(self, folder: str | Path, model_id: str | None = None) -> dict[str, int]:
        """Writes ProtoPDebug's concept folders from a model's current general labels: misleading
        prototypes as forbidden, valid ones as remembered, each with its source patch and, when the
        training split's nearest patches are stored, those too.

        Returns:
            Prototypes and PNG files written per folder (see
            :func:`explorer.labels.exchange.export_protopdebug`).

        Raises:
            LabelError: the model stores no prototype sources.
        """
        bundle = self.bundle(model_id)
        stored = self._stored_nearest(bundle)
        from explorer.labels import exchange

        return exchange.export_protopdebug(self.labels, bundle, folder, stored.get("train"))

    # --- redundancy and what-if -------------------------------------------------------------
    # --- trust signals ---------------------------------------------------------------------------
    def evaluate(
        self,
        model_id: str | None = None,
        data: str | None = None,
        split: str = "test",
        faithfulness_images: int | None = None,
        progress: Callable[[Iterable], Iterable] = lambda it: it,
        into_folder: bool = False,
    ) -> ModelMetrics:
        """Every metric of a model's prototypes (:mod:`explorer.analysis.metrics`) on a split of its
        own data set (stored once computed, as ``metrics_<split>``) or of ``data`` (a data set name
        or an ImageFolder path with the annotations of :mod:`explorer.data.annotations`; computed
        each time).

        Args:
            faithfulness_images: images read for deletion/insertion (stratified by class; 0: all;
                default :data:`~explorer.analysis.metrics.evaluation.FAITHFULNESS_IMAGES`).
            into_folder: also write them into the model folder's ``analyses/`` (shipped with it;
                only for the model's own data and the default image count).

        Raises:
            ExplorerError: the data set cannot be loaded. ValueError: a bad split or image count.
        """
        from explorer.analysis.metrics.evaluation import FAITHFULNESS_IMAGES, ModelMetrics, evaluate

        _check_split(split)
        count = FAITHFULNESS_IMAGES if faithfulness_images is None else faithfulness_images
        count = whole_number(count, "faithfulness_images", minimum=0)
        bundle = self.bundle(model_id)

        def compute(dataset: ImageSet, nearest: NearestPatches) -> ModelMetrics:
            return evaluate(
                bundle.model, dataset, nearest, faithfulness_images=count,
                batch_size=self._forward_batch(bundle), progress=progress,
            )  # fmt: skip

        if data is not None:
            dataset = self._other_data(bundle, data, split)
            nearest = nearest_patches(
                bundle.model, dataset.images, dataset.labels, split,
                batch_size=self._forward_batch(bundle),
            )  # fmt: skip
            return compute(dataset, nearest)
        if faithfulness_images is not None and count != FAITHFULNESS_IMAGES:
            if into_folder:
                raise ValueError("only the default deletion/insertion image count is shipped")
            return compute(self._dataset(bundle, split), self._nearest(bundle, split, progress))
        name = f"metrics_{split}"
        metrics = self._stored(
            bundle,
            name,
            lambda: compute(self._dataset(bundle, split), self._nearest(bundle, split, progress)),
            ModelMetrics.from_arrays,
        )
        if into_folder:
            title = f"Prototype metrics, {split} split"
            note = self._results.shipped(bundle.folder, bundle.content_hash).note
            write_folder_analyses(
                bundle.folder, bundle.content_hash, {name: (title, metrics.to_arrays())}, note=note
            )
        return metrics

    def has_metrics(self, model_id: str | None = None, split: str = "test") -> bool:
        """Whether the metrics of a split are stored (nothing computed)."""
        return self._is_stored(self.bundle(model_id), f"metrics_{split}")

    @staticmethod
    def _other_data(bundle: ModelBundle, data: str, split: str) -> ImageSet:
        try:
            dataset = load_split(str(data), split, bundle.spec.input_size)
        except (ValueError, OSError) as error:
            raise ExplorerError(f"--data {data}: {error}") from None
        ours, theirs = bundle.spec.class_names, dataset.class_names
        if set(theirs) != set(ours) or len(theirs) != len(ours):
            raise ExplorerError(
                f"--data {data}: its classes ({', '.join(theirs)}) are not the model "
                f"'{bundle.spec.model_id}''s ({', '.join(ours)})"
            )
        if tuple(theirs) == tuple(ours):
            return dataset
        to_ours = np.array([ours.index(name) for name in theirs])  # same names, another order
        return dataclasses.replace(dataset, labels=to_ours[dataset.labels], class_names=tuple(ours))

    def review_queue(
        self,
        model_id: str | None = None,
        include_reviewed: bool = False,
        progress: Callable[[Iterable], Iterable] = lambda it: it,
    ) -> ReviewQueue:
        """Every prototype not yet reviewed, worst first, by the stated score of
        :mod:`explorer.analysis.review_queue` (the test split's metrics, the nearest patches of both
        splits and the exact duplicates; each computed once and stored). Prototypes no class weighs
        are left out (listed in ``unused``)."""
        from explorer.analysis.review_queue import (
            ReviewQueue,
            generalisation_ratio,
            review_queue,
            signal_table,
        )

        bundle = self.bundle(model_id)
        metrics = self.evaluate(model_id, progress=progress)
        train = self._nearest(bundle, "train", progress)
        test = self._nearest(bundle, "test", progress)
        vectors = getattr(bundle.model, "prototype_vectors", None)
        groups = exact_duplicates(bundle.projection or (), vectors)
        table = signal_table(
            num_prototypes=bundle.spec.num_prototypes,
            background_share=metrics.background_share,
            stability=metrics.stability,
            class_purity=metrics.class_purity,
            ratio=generalisation_ratio(train.scores, test.scores),
            duplicates=groups,
        )
        weights = bundle.model.class_weights.detach().cpu().numpy()
        unused = tuple(int(j) for j in np.flatnonzero(~np.any(weights != 0, axis=0)))
        reviewed_now = self.labels.reviewed(bundle.content_hash, bundle.spec.num_prototypes)
        done = (set() if include_reviewed else reviewed_now) | set(unused)
        return ReviewQueue(
            entries=tuple(review_queue(table, done)),
            reviewed=len(reviewed_now),
            total=bundle.spec.num_prototypes,
            unused=unused,
        )

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
        nearest = self._nearest(bundle, "test", progress)
        stored = [
            (split, mode)
            for mode in ("disentangled", "reference")
            for split in SPLITS
            if self._has_global_attributes(bundle, split, mode)
        ]
        attributes = self._global_attributes(bundle, *stored[0]) if stored else None
        return redundancy_report(bundle, nearest, attributes, threshold, weights, linkage)

    def prune_plan(
        self, clusters: Iterable[Cluster], model_id: str | None = None
    ) -> dict[int, list[int]]:
        """Every given cluster pruned to one prototype, whatever its suggestion: the member with the
        largest weight to its own class is kept, the others are merged into it.

        Returns:
            kept prototype → the prototypes merged into it (pass it to :meth:`what_if` as ``merges``).

        Raises:
            ValueError: a member is out of range, or a prototype is in two clusters.
        """
        return prune_plan(clusters, self._weight(self.bundle(model_id)), every_cluster=True)

    @staticmethod
    def _weight(bundle: ModelBundle) -> np.ndarray:
        """``[C, P]`` the last-layer weight in float64."""
        return bundle.model.last_layer_weight.detach().cpu().numpy().astype(np.float64)

    def what_if(
        self,
        model_id: str | None = None,
        disabled: Iterable[int] = (),
        merges: dict[int, list[int]] | None = None,
    ) -> WhatIf:
        """Test accuracy with some prototypes disabled (their last-layer columns zeroed) and/or
        merged (kept prototype → those added into it), from the stored test-split scores."""
        bundle = self.bundle(model_id)
        disabled = [_check_prototype(bundle, j) for j in disabled]
        nearest = self._nearest(bundle, "test")
        weight = self._weight(bundle)
        new_weight = pruned_weight(weight, merges or {})
        new_weight = disabled_weight(new_weight, disabled)
        return what_if(
            nearest.all_scores, nearest.all_labels, weight, new_weight, nearest.split_size
        )

    # --- one image ---------------------------------------------------------------------------
    def activations(self, rgb: np.ndarray, model_id: str | None = None) -> ImageActivations:
        """Every prototype's activation on one RGB uint8 image (see :func:`load_image`)."""
        return self._activations(self.bundle(model_id), rgb)

    @staticmethod
    def _activations(bundle: ModelBundle, rgb: np.ndarray) -> ImageActivations:
        model = bundle.model
        with torch.inference_mode():
            output = model(model.preprocess([rgb]))
        return model_activations(model, output, bundle.spec.input_size)

    def explain(self, image: Any, model_id: str | None = None, **options: Any) -> Explanation:
        """A full explanation of one image; ``options`` as :func:`explain_image` (``top_k``,
        ``ranked_by``, ``class_index``, ``attribution``, ``attribution_prototype``, ``smoothgrad``).

        Raises:
            BadImageError: the image cannot be used. ValueError: an option is out of range
                (``top_k``, ``class_index`` and ``attribution_prototype`` must be whole numbers).
        """
        bundle = self.bundle(model_id)
        from explorer.analysis.explanation import explain_image

        explanation = explain_image(bundle, load_image(image), **_explain_options(bundle, options))
        return self._with_shown_boxes(bundle, explanation)

    def _with_shown_boxes(self, bundle: ModelBundle, explanation: Explanation) -> Explanation:
        """A model without push sources: each pair's ``source_box`` is the box of the nearest
        training patch that stands for its prototype (when stored; else it stays ``None``)."""
        if bundle.projection or not self._is_stored(bundle, "nearest_train"):
            return explanation
        boxes = self._nearest(bundle, "train").boxes
        pairs = tuple(
            dataclasses.replace(pair, source_box=tuple(int(v) for v in boxes[pair.prototype, 0]))
            for pair in explanation.pairs
        )
        return dataclasses.replace(explanation, pairs=pairs)

    def with_attribution(
        self,
        explanation: Explanation,
        method: str = "gradcam",
        target: str = "class",
        *,
        class_index: int | None = None,
        prototype: int | None = None,
        smoothgrad: bool = False,
    ) -> Explanation:
        """``explanation`` with another post-hoc attribution: only the map is computed (from the
        pixels the model saw, stored in the explanation), nothing else again; the explanation itself
        when its attribution already is the one asked for (Grad-CAM of the explained class, by
        default).

        Args:
            explanation: from :meth:`explain` (any options, ``attribution=None`` included).
            method: ``gradcam``, ``occlusion`` or ``integrated_gradients``.
            target: ``class`` (a class logit) or ``prototype`` (a prototype's score).
            class_index: the class of a ``class`` target (the explained class when ``None``).
            prototype: the prototype of a ``prototype`` target (the strongest pair's when ``None``).
            smoothgrad: average the map over noisy copies (SmoothGrad).

        Raises:
            UnknownModelError: the explanation's model is no longer registered. ValueError: an
                option is out of range, or the model folder changed since the explanation was made.
        """
        bundle = self.bundle(explanation.model_id)
        checked = _explain_options(
            bundle, {"class_index": class_index, "attribution_prototype": prototype}
        )
        from explorer.analysis.explanation import with_attribution

        return with_attribution(
            bundle, explanation, method, target, checked["class_index"],
            checked["attribution_prototype"], smoothgrad,
        )  # fmt: skip

    def prototype(self, prototype: int, model_id: str | None = None) -> PrototypeView:
        """One prototype's view, with whatever nearest patches are already stored (none computed)."""
        bundle = self.bundle(model_id)
        prototype = _check_prototype(bundle, prototype)
        return prototype_view(bundle, prototype, self._stored_nearest(bundle))

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
        acts = self._activations(bundle, load_image(image))
        predicted = acts.predicted
        weight = bundle.model.last_layer_weight.detach().cpu().numpy()
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
            nothing_present=acts.nothing_present,
        )

    # --- training ----------------------------------------------------------------------------
    def train(
        self,
        out: str | Path | None = None,
        *,
        preset: str | None = None,
        data: str | Path | None = None,
        model_id: str | None = None,
        backbone: str = DEFAULT_BACKBONE,
        input_size: int | None = None,
        data_seed: int | None = None,
        **overrides: Any,
    ) -> ModelInfo:
        """Trains a ProtoPNet, writes its model folder and registers it here.

        Args:
            out: the model folder to write (default ``weights/<model id>`` under the current folder).
            preset: a shipped model's configuration (``fashion_mnist``, ``synthetic``, ``elpv``),
                known-answer B's (``blobs``), or a PIP-Net's (``synthetic_pipnet``).
            data: instead of a preset, an ImageFolder root with ``train/<class>/`` and
                ``test/<class>/``.
            model_id: the new model's id (default: the preset's, or the data folder's name); it
                also names the folder when ``out`` is not given.
            backbone: the backbone with ``data`` (``efficientnet_lite0``, pretrained, or ``small_cnn``).
            input_size: the square input side with ``data`` (default 224).
            data_seed: with a generated preset (``synthetic``, ``blobs``), which draw of its data set
                (default 0; recorded in the spec as ``dataset@seed``).
            **overrides: configuration fields to change (``seed``, ``warm_epochs``,
                ``joint_epochs``, ``last_epochs``, ``prototypes_per_class``, ``push_on_object``);
                ``None`` keeps the configuration's value.

        Returns:
            The new model's info (its ``accuracy`` as measured by the run).

        Raises:
            ExplorerError: neither a preset nor data is given, or the data cannot be read.
        """
        from explorer.train.pipnet_trainer import PIPNetConfig, train_pipnet
        from explorer.train.trainer import train

        config = _train_config(preset, data, model_id, backbone, input_size, overrides, data_seed)
        folder = Path(out or Path("weights") / config.model_id)
        trainer = train_pipnet if isinstance(config, PIPNetConfig) else train
        trainer(config, folder, device=self.device)
        return self._register(folder)

    # --- retraining from labels (ProtoPDebug) -------------------------------------------------
    def retrain_labels(self, model_id: str | None = None) -> list[LabelEvent]:
        """The labels a retrain of this model would use: the current general labels (no image case)
        that are *misleading* (forgotten) or *valid* (remembered), by prototype."""
        return [
            e
            for e in self.current_labels(self._required_id(model_id))
            if e.case is None and e.verdict in RETRAIN_VERDICTS
        ]

    def _required_id(self, model_id: str | None) -> str:
        return self._folder(model_id)[0]

    def retrain_blocker(self, model_id: str | None = None) -> str | None:
        """Why this model cannot be retrained from its labels (``None``: it can): a family without
        prototype vectors, no recorded training configuration, or no labels to use."""
        bundle = self.bundle(model_id)
        line = not_applicable_line(bundle.model, CAPABILITIES["prototype_vectors"])
        if line is not None:
            return line.replace(
                "Not shown:", "Not available: retraining from labels (ProtoPDebug),", 1
            )
        if not bundle.spec.training.get("dataset"):
            return (
                f"Not available: retraining '{bundle.spec.model_id}' — it records no training "
                "configuration (an imported model); retrain models trained by this explorer."
            )
        if not self.retrain_labels(bundle.spec.model_id):
            return (
                "Nothing to retrain from yet: label prototypes *misleading* (to forget) or *valid* "
                "(to remember) first."
            )
        return None

    def _refuse_retrain(self, model_id: str) -> None:
        """Raises :class:`ExplorerError` with :meth:`retrain_blocker`'s line (without Markdown) when
        the model cannot be retrained."""
        blocker = self.retrain_blocker(model_id)
        if blocker is not None:
            raise ExplorerError(blocker.replace("*", ""))

    def retrain_estimate(self, model_id: str | None = None, **settings: Any) -> float | None:
        """Minutes a retrain would take, estimated from the model's recorded training time (``None``
        when it records none)."""
        from explorer.train.debug import estimated_minutes

        return estimated_minutes(self.spec(model_id).training, _debug_config(settings))

    def _cut_outs(self, bundle: ModelBundle, prototypes: Iterable[int]) -> list[CutOut]:
        """The labelled prototypes' cut-outs: push source and nearest training patches (computed and
        stored first if missing: one pass over the training split)."""
        from explorer.analysis.cut_outs import CutOutError, labelled_cut_outs

        nearest = self._nearest(bundle, "train")
        try:
            return labelled_cut_outs(bundle, prototypes, nearest)
        except CutOutError as error:
            raise ExplorerError(f"{bundle.spec.model_id}: {error}") from None

    def free_model_id(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``, ... : the first id no registered model has."""
        taken, candidate, n = set(self._folders), base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def debug(
        self,
        model_id: str | None = None,
        out: str | Path | None = None,
        *,
        new_id: str | None = None,
        progress: Callable[[Any], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        threads: int | None = None,
        **settings: Any,
    ) -> ModelInfo:
        """Retrains a ProtoPNet from its labels with ProtoPDebug and registers the new model.

        Misleading prototypes' cut-outs are forgotten, valid ones' remembered
        (:mod:`explorer.train.debug`); the parent's folder is only read and the new one is written
        whole or not at all.

        Args:
            model_id: the model to retrain.
            out: the new model folder (default ``weights/<new id>`` under the current folder).
            new_id: the new model's id (default ``<model id>-debugged``, numbered if taken).
            progress: called with a :class:`~explorer.train.debug.DebugProgress` after each step.
            should_stop: polled at each step; ``True`` cancels the run (nothing is written).
            threads: torch threads for the run.
            **settings: :class:`~explorer.train.debug.DebugConfig` fields (``rounds``,
                ``warm_epochs``, ``joint_epochs``, ``last_epochs``, ``act_place``,
                ``class_specific``, ``forget_weight``, ``remember_weight``, ``seed``).

        Raises:
            ExplorerError: the model cannot be retrained (see :meth:`retrain_blocker`), a setting is
                out of range, or ``out`` is taken.
        """
        from explorer.train.debug import debug_model

        bundle = self.bundle(model_id)
        self._refuse_retrain(bundle.spec.model_id)
        config = _debug_config(settings)
        _check_model_id(new_id)
        new_id = new_id or self.free_model_id(f"{bundle.spec.model_id}-debugged")
        folder = Path(out) if out is not None else Path("weights") / new_id
        labels = self.retrain_labels(bundle.spec.model_id)
        forbidden = self._cut_outs(
            bundle, [e.prototype for e in labels if e.verdict == "misleading"]
        )
        remembered = self._cut_outs(bundle, [e.prototype for e in labels if e.verdict == "valid"])
        records = [
            {"id": e.id, "prototype": e.prototype, "verdict": e.verdict, "reason": e.reason,
             "reviewer": e.reviewer, "time": e.time}
            for e in labels
        ]  # fmt: skip
        debug_model(
            bundle, forbidden, remembered, folder, new_id, records, config,
            progress=progress, should_stop=should_stop, threads=threads,
        )  # fmt: skip
        return self._register(folder.resolve())

    @property
    def retrain_jobs(self) -> Jobs:
        """The background retrains of this Explorer (one per model at a time)."""
        with self._lock:
            if self._jobs is None:
                self._jobs = Jobs(on_done=lambda status: self._register_job_model(status))
            return self._jobs

    def _register_job_model(self, status: JobStatus) -> None:
        folder = Path(str((status.result or {}).get("model", "")))
        self._register(folder)

    def start_retrain(
        self, model_id: str | None = None, threads: int | None = None, **settings: Any
    ) -> JobStatus:
        """Starts a retrain of ``model_id`` from its labels in a background process (see
        :meth:`debug`), writing the new model under :attr:`models_out`; it is registered here
        when it is done.

        Raises:
            ExplorerError: the model cannot be retrained. JobRefused: one of it is running.
        """
        from explorer.train.debug import partial_folder

        model_id = self._required_id(model_id)
        self._refuse_retrain(model_id)
        self.retrain_jobs.check_free(model_id)
        new_id = self.free_model_id(f"{model_id}-debugged")
        out = self.models_out / new_id
        while out.exists():  # a folder left by another app using the same models folder
            new_id = self.free_model_id(new_id + "-2")
            out = self.models_out / new_id
        self.models_out.mkdir(parents=True, exist_ok=True)
        # at a lower priority: the people using the app meanwhile are served first
        nice = ["nice", "-n", str(RETRAIN_NICENESS)] if shutil.which("nice") else []
        command = [
            *nice, sys.executable, "-m", "explorer", "debug",
            "--model", str(self._folders[model_id].resolve()), "--out", str(out.resolve()),
            "--model-id", new_id, "--progress-json", "--device", str(self.device),
            *(["--threads", str(threads)] if threads else []),
        ]  # fmt: skip
        for name, value in settings.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                command.append(flag if value else f"--no-{name.replace('_', '-')}")
            elif value is not None:
                command += [flag, str(value)]
        env = {
            "EXPLORER_LABELS_DB": str(self.labels_path.resolve()),
            "EXPLORER_CACHE_DIR": str(self.cache_root.resolve()),
        }
        package_root = Path(__file__).resolve().parent.parent  # `-m explorer` from anywhere
        return self.retrain_jobs.start(
            model_id, command, env, partial_folder(out.resolve()), package_root
        )

    def retrain_status(self, model_id: str | None = None) -> JobStatus | None:
        """The latest background retrain of a model (``None``: none since the app started)."""
        return self.retrain_jobs.status(self._required_id(model_id))

    def cancel_retrain(self, model_id: str | None = None) -> JobStatus | None:
        """Stops a model's running retrain; nothing of it is left on disk."""
        return self.retrain_jobs.cancel(self._required_id(model_id))

    def lineage(self, model_id: str | None = None) -> list[str]:
        """The registered models of ``model_id``'s lineage (its ancestors and descendants by the
        lineage records of their specs, itself included), oldest first."""
        model_id = self._required_id(model_id)
        specs = {m: ModelSpec.load(f / SPEC_FILE) for m, f in list(self._folders.items())}
        parent_of = {
            m: s.lineage.get("parent", {}).get("model_id") for m, s in specs.items() if s.lineage
        }
        root = model_id
        while parent_of.get(root) in specs and parent_of[root] != model_id:
            root = parent_of[root]
        family, frontier = [root], [root]
        while frontier:
            children = [m for m, p in parent_of.items() if p in frontier and m not in family]
            family += children
            frontier = children
        return family

    def before_after(self, before: str, after: str) -> BeforeAfter:
        """What changed from one model to another of its lineage (:mod:`explorer.analysis.before_after`):
        accuracy overall and per class on the test split, each prototype's source and weight, how
        much each labelled confound still activates the model, and the test images whose
        prediction changed. The confounds are the cut-outs the retrain used (its lineage record),
        else the cut-outs of ``before``'s current labels.

        Raises:
            ExplorerError: the two models are not comparable, or their test split is missing.
        """
        from explorer.analysis.before_after import before_after

        old, new = self.bundle(before), self.bundle(after)
        labels = {e.prototype: e.verdict for e in self.retrain_labels(old.spec.model_id)}
        recorded = new.spec.lineage.get("cut_outs")
        if recorded and new.spec.lineage.get("parent", {}).get("content_hash") == old.content_hash:
            train = self._dataset(old, "train")
            cut_outs = _recorded_cut_outs(recorded, train, old)
            labels = {
                **{int(r["prototype"]): str(r["verdict"]) for r in new.spec.lineage["labels"]},
                **labels,
            }
        else:
            cut_outs = {j: self._cut_outs(old, [j]) for j in labels}
        test = self._dataset(old, "test")
        try:
            return before_after(old, new, test.images, test.labels, labels, cut_outs)
        except ValueError as error:
            raise ExplorerError(str(error)) from None

    # --- importing -----------------------------------------------------------------------------
    def import_checkpoint(
        self,
        checkpoint: str | Path,
        out: str | Path,
        *,
        format: str = "auto",
        data: str | Path | None = None,
        push_dir: str | Path | None = None,
        class_names: Sequence[str] | str | None = None,
        model_id: str | None = None,
        class_identity: Any = None,
        **options: Any,
    ) -> ImportReport:
        """Imports a ProtoPNet or PIP-Net trained elsewhere into a new model folder and registers it.

        Args:
            checkpoint: an original ProtoPNet checkpoint (the whole pickled model, zip or legacy
                format), an original state dict, a CaBRNet checkpoint folder, or a public PIP-Net
                checkpoint (``format="pipnet"``, with ``backbone=``). Nothing in it is run.
            out: the new model folder (must not exist yet, or be empty).
            format: ``auto``, ``protopnet``, ``protopnet-state-dict``, ``cabrnet`` or ``pipnet``.
            data: an ImageFolder (``train/<class>/``, ``test/<class>/``): class names, the prototypes'
                nearest training patches (without a push folder), examples, and data-wide analyses.
            push_dir: the original code's push output (``img/`` or ``img/epoch-N/``).
            class_names: the class names (default: the ImageFolder's, else ``class_0``, ...).
            model_id: the new model's id (default: ``out``'s name).
            class_identity: a state dict's prototype classes: a file, a list, or ``"contiguous"``.
            **options: ``input_size``, ``activation``, ``epsilon`` (for a state dict), ``backbone``
                (for ``pipnet``: ``convnext_tiny_26``, ``convnext_tiny_13`` or ``resnet50``), and
                ``examples_per_class``, ``check_images``, ``progress``.

        Returns:
            What was found (architecture, prototypes per class, activation, input size, sources) and
            the equality check of the written model against the checkpoint's own tensors and math.

        Raises:
            CheckpointError: the checkpoint is refused, with the reason; nothing was run or written.
        """
        from explorer.models.importers import import_checkpoint as import_checkpoint_file

        report = import_checkpoint_file(
            checkpoint, out, format=format, data=data, push_dir=push_dir,
            class_names=class_names, model_id=model_id, class_identity=class_identity,
            device=self.device, **options,
        )  # fmt: skip
        self.add_model_folder(report.folder)
        if not self.default_model:  # an explorer that had no model opens the imported one
            self.default_model = report.model_id
        return report

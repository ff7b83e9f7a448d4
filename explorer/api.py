"""The facade the UI and the CLI call: a registry of model folders, cached loading, prediction."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.evidence import contributions, top_contributors
from explorer.errors import CheckpointError, UnknownModelError
from explorer.images import load_image
from explorer.models.checkpoint import SPEC_FILE, ModelBundle, load_model
from explorer.spec import ModelSpec
from explorer.types import Prediction, PrototypeEvidence

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "elpv"
MAX_LOADED_MODELS = 4


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
        rgb = load_image(image)
        model = bundle.model
        with torch.inference_mode():
            output = model(model.preprocess([rgb]))
        logits = output.logits[0].double()
        probabilities = torch.softmax(logits, dim=0).numpy()
        predicted = int(np.argmax(probabilities))
        scores = output.scores[0].numpy()
        weight = model.last_layer_weight.detach().numpy()
        row = contributions(scores, weight)[predicted]
        maps = output.similarity_maps[0]  # [P, h, w]
        width = maps.shape[-1]
        cells = maps.flatten(1).argmax(dim=1).numpy()
        classes = model.prototype_classes
        evidence = tuple(
            PrototypeEvidence(
                prototype=int(j),
                prototype_class=bundle.spec.class_names[classes[j]],
                similarity=float(scores[j]),
                distance=float(output.min_distances[0, j]),
                weight=float(weight[predicted, j]),
                contribution=float(row[j]),
                cell=(int(cells[j] // width), int(cells[j] % width)),
            )
            for j in top_contributors(row, top_k)
        )
        return Prediction(
            model_id=bundle.spec.model_id,
            content_hash=bundle.content_hash,
            class_names=bundle.spec.class_names,
            probabilities=tuple(float(p) for p in probabilities),
            logits=tuple(float(v) for v in logits),
            predicted=predicted,
            top_prototypes=evidence,
        )

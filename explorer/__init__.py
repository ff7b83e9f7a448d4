"""The prototype explanation explorer: look inside prototype-based image classifiers.

Public API::

    from explorer import Explorer, load_model
    explorer = Explorer()
    prediction = explorer.predict("cell.png", model_id="elpv")
"""

from explorer.api import Explorer, ModelInfo
from explorer.errors import BadImageError, CheckpointError, ExplorerError, UnknownModelError
from explorer.models.checkpoint import ModelBundle, load_model, save_model
from explorer.spec import ModelSpec
from explorer.types import ModelOutput, Prediction, PrototypeEvidence, PrototypeRecord

__all__ = [
    "BadImageError",
    "CheckpointError",
    "Explorer",
    "ExplorerError",
    "ModelBundle",
    "ModelInfo",
    "ModelOutput",
    "ModelSpec",
    "Prediction",
    "PrototypeEvidence",
    "PrototypeRecord",
    "UnknownModelError",
    "load_model",
    "save_model",
]

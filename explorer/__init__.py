"""The prototype explanation explorer: look inside prototype-based image classifiers.

Public API::

    from explorer import Explorer, load_model
    explorer = Explorer()
    prediction = explorer.predict("cell.png", model_id="elpv")

:class:`Explorer` is the one door to the library; every type its methods return (and the constants the
app offers as choices) is re-exported here, so the UI, the CLI and scripts import from ``explorer``
only.
"""

from explorer.analysis.activations import ImageActivations
from explorer.analysis.attribute_report import MatchAttributes, PrototypeAttributes
from explorer.analysis.attributes import (
    LOCAL_RELATIVE_READING,
    RELATIVE_READING,
    WHY_RAW_FAVOURS_CONTRAST,
    GlobalAttributes,
    LocalAttributes,
)
from explorer.analysis.attributions import AttributionMap
from explorer.analysis.explanation import Explanation, PatchPair
from explorer.analysis.nearest import NearestPatches
from explorer.analysis.prototypes import PrototypeView
from explorer.analysis.redundancy import DEFAULT_THRESHOLD, Cluster, RedundancyReport
from explorer.analysis.whatif import WhatIf
from explorer.api import ATTRIBUTE_MODES, LABEL_FORMATS, SPLITS, Explorer, ModelInfo
from explorer.boxes import upsample_map
from explorer.errors import BadImageError, CheckpointError, ExplorerError, UnknownModelError
from explorer.labels.store import REASONS, VERDICTS, LabelError, LabelEvent, LabelImport
from explorer.models.checkpoint import ModelBundle, load_model, save_model
from explorer.models.importers import ImportReport
from explorer.spec import ModelSpec
from explorer.types import ModelOutput, Prediction, PrototypeEvidence, PrototypeRecord

__all__ = [
    "ATTRIBUTE_MODES",
    "DEFAULT_THRESHOLD",
    "LABEL_FORMATS",
    "LOCAL_RELATIVE_READING",
    "REASONS",
    "RELATIVE_READING",
    "SPLITS",
    "VERDICTS",
    "WHY_RAW_FAVOURS_CONTRAST",
    "AttributionMap",
    "BadImageError",
    "CheckpointError",
    "Cluster",
    "Explanation",
    "Explorer",
    "ExplorerError",
    "GlobalAttributes",
    "ImageActivations",
    "ImportReport",
    "LabelError",
    "LabelEvent",
    "LabelImport",
    "LocalAttributes",
    "MatchAttributes",
    "ModelBundle",
    "ModelInfo",
    "ModelOutput",
    "ModelSpec",
    "NearestPatches",
    "PatchPair",
    "Prediction",
    "PrototypeAttributes",
    "PrototypeEvidence",
    "PrototypeRecord",
    "PrototypeView",
    "RedundancyReport",
    "UnknownModelError",
    "WhatIf",
    "load_model",
    "save_model",
    "upsample_map",
]

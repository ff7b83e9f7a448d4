"""The prototype explanation explorer: look inside prototype-based image classifiers.

Public API::

    from explorer import Explorer, load_model
    explorer = Explorer()
    prediction = explorer.predict("cell.png", model_id="elpv")

:class:`Explorer` is the one door to the library; every type its methods return (and the constants the
app offers as choices) is re-exported here, so the UI, the CLI and scripts import from ``explorer``
only.
"""

import gc
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

# Every public name → the module that defines it. Nothing is imported until a name is first used
# (PEP 562), so ``import explorer`` (and ``python -m explorer --help``) costs milliseconds, not the
# seconds torch, captum and scipy take; ``from explorer import Explorer`` imports only what the facade
# needs (torch, numpy, Pillow and the model code; the analyses import the rest when first called).
_EXPORTS: dict[str, str] = {
    "RETRAIN_VERDICTS": "explorer.api",
    "ModelMetrics": "explorer.analysis.metrics.evaluation",
    "MetricInfo": "explorer.analysis.metrics.catalogue",
    "ReviewQueue": "explorer.analysis.review_queue",
    "QueueEntry": "explorer.analysis.review_queue",
    "MatchRobustness": "explorer.analysis.match_robustness",
    "metrics_markdown": "explorer.viz.trust_text",
    "metrics_rows": "explorer.viz.trust_text",
    "badge_line": "explorer.viz.trust_text",
    "badge_rule": "explorer.viz.trust_text",
    "reasons": "explorer.viz.trust_text",
    "queue_rule": "explorer.viz.trust_text",
    "JobStatus": "explorer.jobs",
    "JobRefused": "explorer.jobs",
    "DebugProgress": "explorer.train.debug",
    "CutOut": "explorer.analysis.cut_outs",
    "BeforeAfter": "explorer.analysis.before_after",
    "ATTRIBUTE_MODES": "explorer.api",
    "DEFAULT_THRESHOLD": "explorer.analysis.redundancy",
    "LABEL_FORMATS": "explorer.api",
    "LOCAL_RELATIVE_READING": "explorer.analysis.attributes",
    "REASONS": "explorer.labels.store",
    "RELATIVE_READING": "explorer.analysis.attributes",
    "SPLITS": "explorer.api",
    "VERDICTS": "explorer.labels.store",
    "WHY_RAW_FAVOURS_CONTRAST": "explorer.analysis.attributes",
    "AnalysisRun": "explorer.analysis.packing",
    "AttributionMap": "explorer.analysis.attributions",
    "BadImageError": "explorer.errors",
    "CheckpointError": "explorer.errors",
    "Cluster": "explorer.analysis.redundancy",
    "DeviceError": "explorer.models.device",
    "Explanation": "explorer.analysis.explanation",
    "Explorer": "explorer.api",
    "ExplorerError": "explorer.errors",
    "GlobalAttributes": "explorer.analysis.attributes",
    "ImageActivations": "explorer.analysis.activations",
    "ImportReport": "explorer.models.importers",
    "LabelError": "explorer.labels.store",
    "LabelEvent": "explorer.labels.store",
    "LabelImport": "explorer.labels.store",
    "LocalAttributes": "explorer.analysis.attributes",
    "MatchAttributes": "explorer.analysis.attribute_report",
    "ModelBundle": "explorer.models.checkpoint",
    "ModelInfo": "explorer.api",
    "ModelOutput": "explorer.types",
    "ModelSpec": "explorer.spec",
    "NearestPatches": "explorer.analysis.nearest",
    "Packing": "explorer.analysis.packing",
    "PatchPair": "explorer.analysis.explanation",
    "Prediction": "explorer.types",
    "PrototypeAttributes": "explorer.analysis.attribute_report",
    "PrototypeEvidence": "explorer.types",
    "PrototypeRecord": "explorer.types",
    "PrototypeView": "explorer.analysis.prototypes",
    "RedundancyReport": "explorer.analysis.redundancy",
    "ScoringSheet": "explorer.analysis.scoring_sheet",
    "StoredResult": "explorer.result_store",
    "UnknownModelError": "explorer.errors",
    "WhatIf": "explorer.analysis.whatif",
    "load_model": "explorer.models.checkpoint",
    "save_model": "explorer.models.checkpoint",
    "upsample_map": "explorer.boxes",
}

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
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
    from explorer.analysis.before_after import BeforeAfter
    from explorer.analysis.cut_outs import CutOut
    from explorer.analysis.explanation import Explanation, PatchPair
    from explorer.analysis.match_robustness import MatchRobustness
    from explorer.analysis.metrics.catalogue import MetricInfo
    from explorer.analysis.metrics.evaluation import ModelMetrics
    from explorer.analysis.nearest import NearestPatches
    from explorer.analysis.packing import AnalysisRun, Packing
    from explorer.analysis.prototypes import PrototypeView
    from explorer.analysis.redundancy import DEFAULT_THRESHOLD, Cluster, RedundancyReport
    from explorer.analysis.review_queue import QueueEntry, ReviewQueue
    from explorer.analysis.scoring_sheet import ScoringSheet
    from explorer.analysis.whatif import WhatIf
    from explorer.api import (
        ATTRIBUTE_MODES,
        LABEL_FORMATS,
        RETRAIN_VERDICTS,
        SPLITS,
        Explorer,
        ModelInfo,
    )
    from explorer.boxes import upsample_map
    from explorer.errors import BadImageError, CheckpointError, ExplorerError, UnknownModelError
    from explorer.jobs import JobRefused, JobStatus
    from explorer.labels.store import REASONS, VERDICTS, LabelError, LabelEvent, LabelImport
    from explorer.models.checkpoint import ModelBundle, load_model, save_model
    from explorer.models.device import DeviceError
    from explorer.models.importers import ImportReport
    from explorer.result_store import StoredResult
    from explorer.spec import ModelSpec
    from explorer.train.debug import DebugProgress
    from explorer.types import ModelOutput, Prediction, PrototypeEvidence, PrototypeRecord
    from explorer.viz.trust_text import (
        badge_line,
        badge_rule,
        metrics_markdown,
        metrics_rows,
        queue_rule,
        reasons,
    )


__all__ = [
    "ATTRIBUTE_MODES",
    "DEFAULT_THRESHOLD",
    "LABEL_FORMATS",
    "LOCAL_RELATIVE_READING",
    "REASONS",
    "RELATIVE_READING",
    "RETRAIN_VERDICTS",
    "SPLITS",
    "VERDICTS",
    "WHY_RAW_FAVOURS_CONTRAST",
    "AnalysisRun",
    "AttributionMap",
    "BadImageError",
    "BeforeAfter",
    "CheckpointError",
    "Cluster",
    "CutOut",
    "DebugProgress",
    "DeviceError",
    "Explanation",
    "Explorer",
    "ExplorerError",
    "GlobalAttributes",
    "ImageActivations",
    "ImportReport",
    "JobRefused",
    "JobStatus",
    "LabelError",
    "LabelEvent",
    "LabelImport",
    "LocalAttributes",
    "MatchAttributes",
    "MatchRobustness",
    "MetricInfo",
    "ModelBundle",
    "ModelInfo",
    "ModelMetrics",
    "ModelOutput",
    "ModelSpec",
    "NearestPatches",
    "Packing",
    "PatchPair",
    "Prediction",
    "PrototypeAttributes",
    "PrototypeEvidence",
    "PrototypeRecord",
    "PrototypeView",
    "QueueEntry",
    "RedundancyReport",
    "ReviewQueue",
    "ScoringSheet",
    "StoredResult",
    "UnknownModelError",
    "WhatIf",
    "badge_line",
    "badge_rule",
    "load_model",
    "metrics_markdown",
    "metrics_rows",
    "queue_rule",
    "reasons",
    "save_model",
    "upsample_map",
]


def _import(module: str) -> ModuleType:
    """``importlib.import_module`` with the cyclic garbage collector paused (left as it was after).

    Importing torch creates some 300,000 long-lived objects, and the collections their allocation
    triggers find no garbage but cost a fifth of the import's time (about 0.5 s of ``import torch``
    on 2 cores).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        if enabled:
            gc.enable()


def __getattr__(name: str) -> Any:
    """Imports a public name's module on first use and keeps the name in this module."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

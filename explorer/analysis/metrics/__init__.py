"""Metrics of a model's prototypes, one module per metric, each with its paper's exact definition.

* :mod:`.consistency` and :mod:`.stability` — EvalProtoPNet (Huang et al., CVPR 2023), on the part
  vectors of :mod:`.parts`;
* :mod:`.purity` — top-k patches from the prototype's class and on the object;
* :mod:`.background` — activation mass outside the object;
* :mod:`.deletion` — deletion / insertion AUC of the model's own evidence (RISE), beside a random
  order;
* :mod:`.evaluation` — one pass that measures them all (:func:`evaluate`, :class:`ModelMetrics`);
* :mod:`.catalogue` — the registry of what each figure means, for the card, the CLI table and the
  review queue.
"""

from explorer.analysis.metrics.evaluation import ModelMetrics, evaluate

__all__ = ["ModelMetrics", "evaluate"]

"""Engines that run a global pass (map → combine → finish) over a data set.

* ``local`` — in this process, batch after batch (the default; :func:`explorer.analysis.nearest.nearest_patches`
  is that loop for the nearest-patch pass);
* ``ray`` — on Ray Data (:mod:`explorer.engines.ray_engine`): the images go to the object store, actors
  that each load the model folder once run the map step on batches, and the driver combines the
  per-batch partials (per-prototype top-k, never per-image maps) and finishes the result. Ray is an
  optional extra (``pip install -r requirements-scale.txt``).

Both run the same map, combine and finish functions, and the combine is associative and
order-independent, so both give the same result (``tests/test_engines.py``).
"""

ENGINES = ("local", "ray")

__all__ = ["ENGINES"]

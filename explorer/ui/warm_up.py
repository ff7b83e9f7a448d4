"""The one-time costs of a model's first explanation, paid in the background before a user asks.

The first explanation in a fresh server process costs seconds that no later one does (measured on
ELPV, 2 cores: 2.7 s against 0.28 s warm): captum's first import (it imports matplotlib's pyplot,
about 2 s), the backbone's first forward (oneDNN picks its kernels, about 1 s for the
EfficientNet-lite) and plotly's figure classes. A page load shows prototype 0's dose curves (1 to
3.5 s of forwards the first time, remembered after) and reads the shipped results. :class:`WarmUp`
runs the app's own event functions for these once per model, on its first bundled example (a
mid-grey image when it bundles none), in a daemon thread started when the server is up and again
whenever a user picks another model, so the first page and the first click on an example cost what
every later one does.

Nothing a warm-up computes is kept or shown; a failure is logged, never raised (the model's error
reaches the user on first use instead).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from explorer import Explorer
from explorer.ui.choices import PREDICTED
from explorer.ui.events import prototypes, redundancy
from explorer.ui.events.attributes import (
    DEFAULT_MODE,
    READINGS,
    MatchEvents,
    PrototypeAttributeEvents,
)
from explorer.ui.events.explain import ExplainEvents

log = logging.getLogger(__name__)

GREY = 128  # the stand-in image of a model without examples


class WarmUp:
    """Warms each model of one :class:`~explorer.Explorer` once, in the background."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, model_id: str | None) -> None:
        """Warms ``model_id`` in a daemon thread the first time it is asked for (later calls, and a
        model id the explorer does not serve, do nothing). Returns at once."""
        if model_id not in self.explorer.model_ids():
            return
        with self._lock:
            if model_id in self._threads:
                return
            thread = threading.Thread(
                target=self._run_logged, args=(model_id,), name=f"warm-up {model_id}", daemon=True
            )
            self._threads[model_id] = thread
        thread.start()

    def wait(self, model_id: str, timeout: float | None = None) -> bool:
        """Waits for ``model_id``'s warm-up; whether it has finished (``False``: never started, or
        still running after ``timeout`` seconds)."""
        with self._lock:
            thread = self._threads.get(model_id)
        if thread is None:
            return False
        thread.join(timeout)
        return not thread.is_alive()

    def _run_logged(self, model_id: str) -> None:
        try:
            self.run(model_id)
        except Exception:  # a warm-up never takes the server down
            log.warning("warming up %s failed; its first explanation pays the cost", model_id)
            log.debug("warm-up failure", exc_info=True)

    def run(self, model_id: str) -> None:
        """What a page load and the first click on an example do, in this thread: the Prototypes
        and Redundancy tabs' first views (the shipped results read, prototype 0's dose curves
        computed and remembered), then the explanation with its pictures, chart and attribution,
        the runner-up comparison and the strongest match's attribute explanation."""
        explorer = self.explorer
        prototypes.first_view(explorer, model_id)
        PrototypeAttributeEvents(explorer).default_view(model_id, 0, DEFAULT_MODE, READINGS[0])
        redundancy.first_view(explorer, model_id)
        explain = ExplainEvents(explorer)
        examples = self.explorer.bundle(model_id).examples()
        with tempfile.TemporaryDirectory(prefix="warm-up-") as scratch:
            image = examples[0] if examples else self._grey_image(model_id, Path(scratch))
            path = str(image)
            *_, shown = explain.explain(path, model_id, 10, "contribution", PREDICTED, "jet")
            explain.default_comparison(shown)
            MatchEvents(self.explorer).default_match(
                path, model_id, DEFAULT_MODE, READINGS[0], shown
            )

    def _grey_image(self, model_id: str, folder: Path) -> Path:
        height, width = self.explorer.bundle(model_id).spec.input_size
        path = folder / "grey.png"
        Image.fromarray(np.full((height, width, 3), GREY, dtype=np.uint8)).save(path)
        return path

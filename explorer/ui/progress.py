"""Progress of a long first pass, shown by Gradio in the panel that waits for it.

The facade's data-wide analyses (``Explorer.nearest``, ``Explorer.global_attributes``,
``Explorer.redundancy``) take a ``progress`` callable that wraps their batch iterator;
:func:`tracked` makes one from an event's ``gr.Progress``: a bar with the batches done of the total
and an estimate of the time left, from the pace of the batches so far. Where the panel is is the
event's ``show_progress_on``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

# gr.Progress, or anything called as progress((done, total), desc=..., unit=...)
ProgressBar = Callable[..., Any]


def time_left(seconds: float) -> str:
    """``about 40 s left``, ``about 3 min left``."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


def tracked(
    progress: ProgressBar, what: str, unit: str = "batches"
) -> Callable[[Iterable], Iterable]:
    """A facade ``progress`` callable reporting to ``progress`` as ``what: done/total unit``, with the
    time left once a batch has been timed."""

    def wrap(iterable: Iterable) -> Iterator:
        total = len(iterable) if isinstance(iterable, Sized) else None
        progress((0, total), desc=f"{what}: starting", unit=unit)
        started = time.monotonic()
        for done, item in enumerate(iterable, start=1):
            yield item
            desc = what
            if total:
                pace = (time.monotonic() - started) / done
                desc = f"{what}: {time_left(pace * (total - done))}" if done < total else what
            progress((done, total), desc=desc, unit=unit)

    return wrap

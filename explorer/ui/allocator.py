"""Keeping the server's resident memory bounded under concurrent load (glibc's malloc).

Under 8 concurrent clients the server's allocated bytes stay flat (about 255 MB in use, ELPV) while
the bytes glibc has freed but keeps grow round after round (8 → 703 → 838 → 910 → 1005 MB over rounds
of 8 x 5 explanations, read with ``mallinfo2`` in the server; Python objects flat, tracked by ``gc``;
``malloc_trim(0)`` handed back 670 MB at once): the web server runs requests on a pool of
threads, glibc gives threads their own malloc arenas (up to 8 per core), and every arena keeps the
pages its last explanation freed (hundreds of MB of activations and pictures), so the resident
memory creeps up towards arenas × the largest explanation. Two bounds, both glibc's own:

* at most :data:`MAX_ARENAS` arenas (``mallopt(M_ARENA_MAX)``, as ``MALLOC_ARENA_MAX`` does);
* every :data:`TRIM_INTERVAL_S` seconds (``$EXPLORER_MALLOC_TRIM_S``) a daemon thread gives free
  pages back to the system (``malloc_trim(0)``: 25 to 50 ms over ELPV's heap with 2 arenas).

Measured (``python -m bench.memory_under_load``: 8 clients x 10 ELPV explanations a round, RSS 6 s
after each round): 969 → 1734 → 1923 → 2024 → 2107 → 2201 MB without the bounds
(``EXPLORER_MALLOC_TUNING=0``); 967 → 1060 → 1050 → 1058 → 1054 → 1049 MB with them, at most 1,562 MB
during a round.

Elsewhere (another C library, or ``EXPLORER_MALLOC_TUNING=0``) nothing is changed. An explicit
``MALLOC_ARENA_MAX`` in the environment is left to glibc.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform
import sys
import threading
import time

log = logging.getLogger(__name__)

MAX_ARENAS = 2
TRIM_INTERVAL_S = 5.0
M_ARENA_MAX = -8  # glibc's malloc.h
SWITCH = "EXPLORER_MALLOC_TUNING"
INTERVAL = "EXPLORER_MALLOC_TRIM_S"

_started = threading.Lock()
_trimmer: threading.Thread | None = None


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, when that is its C library and it has the two functions."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def bound_server_memory(interval_s: float | None = None) -> bool:
    """Caps glibc's arenas and starts the trimming thread (once per process; later calls do nothing).

    Call it before the server starts its worker threads. Returns whether the tuning is active.

    Args:
        interval_s: seconds between trims (default ``$EXPLORER_MALLOC_TRIM_S``, else
            :data:`TRIM_INTERVAL_S`).
    """
    global _trimmer
    if os.environ.get(SWITCH, "1") == "0":
        return False
    if interval_s is None:
        interval_s = _interval_from_env()
    libc = _glibc()
    if libc is None:
        return False
    with _started:
        if _trimmer is not None:
            return True
        if "MALLOC_ARENA_MAX" not in os.environ and libc.mallopt(M_ARENA_MAX, MAX_ARENAS) != 1:
            log.warning("could not limit malloc arenas; memory may grow under load")
        _trimmer = threading.Thread(
            target=_trim_forever, args=(libc, interval_s), name="malloc-trim", daemon=True
        )
        _trimmer.start()
    return True


def _interval_from_env() -> float:
    """``$EXPLORER_MALLOC_TRIM_S`` when it is 0.05 to 3600 seconds, else :data:`TRIM_INTERVAL_S`."""
    text = os.environ.get(INTERVAL, "")
    if not text:
        return TRIM_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.05 <= value <= 3600:  # NaN too
        log.warning("%s=%r is not 0.05 to 3600 s; trimming every %s s", INTERVAL, text,
                    TRIM_INTERVAL_S)  # fmt: skip
        return TRIM_INTERVAL_S
    return value


def _trim_forever(libc: ctypes.CDLL, interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        libc.malloc_trim(0)

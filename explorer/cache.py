"""Per-model analysis results on disk, keyed by the model's content hash.

Each result is one ``.npz`` of plain arrays (loaded with ``allow_pickle=False``), written to a temporary
file and atomically renamed into place, and stamped with a format version and the content hash. A file
that is half-written, corrupt, of another format or of another model is never trusted: loading returns
``None`` and the caller recomputes.

:class:`AnalysisCache` is the user's cache (``~/.cache/prototype-explorer/<hash>/``); the analyses a
model folder ships (``<folder>/analyses/``) use the same stamped files (:mod:`explorer.folder_analyses`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from explorer.files import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_STAMP_FORMAT = "__format__"
_STAMP_HASH = "__content_hash__"


def default_cache_dir() -> Path:
    """``$EXPLORER_CACHE_DIR``, else ``~/.cache/prototype-explorer`` (outside the repository)."""
    env = os.environ.get("EXPLORER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "prototype-explorer"


def default_models_dir() -> Path:
    """Where the app writes the models it makes (retrains): ``$EXPLORER_MODELS_DIR``, else
    ``~/.local/share/prototype-explorer/models`` (beside the labels, outside the repository)."""
    env = os.environ.get("EXPLORER_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "prototype-explorer" / "models"


def save_stamped(path: Path, arrays: dict[str, np.ndarray], content_hash: str) -> Path:
    """Writes ``arrays`` to ``path`` atomically, stamped with the format and ``content_hash``: a
    reader sees the old file, the new file, or none — never half of one."""
    stamped = {
        **arrays,
        _STAMP_FORMAT: np.array(FORMAT_VERSION),
        _STAMP_HASH: np.array(content_hash),
    }
    with atomic_write(path) as stream:
        np.savez_compressed(stream, **stamped)
    return path


def load_stamped(path: Path, content_hash: str) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path``, or ``None`` when absent or not to be trusted (unreadable, of
    another format, or stamped for another model)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:
        # Damaged bytes raise far more than OSError and BadZipFile: zlib.error from a garbled
        # deflate stream, NotImplementedError from a garbled zip header, tokenize.TokenError from
        # a garbled .npy header. None of them is to be trusted.
        log.warning("ignoring unreadable analysis file %s (%s); it will be recomputed", path, error)
        return None
    if (
        arrays.pop(_STAMP_FORMAT, None) != FORMAT_VERSION
        or str(arrays.pop(_STAMP_HASH, "")) != content_hash
    ):
        log.warning("ignoring %s: of another format or model; it will be recomputed", path)
        return None
    return arrays


class AnalysisCache:
    """Reads and writes named array bundles for one model in the user's cache."""

    def __init__(self, content_hash: str, root: Path | None = None) -> None:
        self.content_hash = content_hash
        self.folder = (root or default_cache_dir()) / content_hash

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def save(self, name: str, arrays: dict[str, np.ndarray]) -> Path:
        """Writes atomically: a reader sees the old file, the new file, or none — never half of one."""
        return save_stamped(self.path(name), arrays, self.content_hash)

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        """The stored arrays, or ``None`` when absent or not to be trusted (then recompute)."""
        return load_stamped(self.path(name), self.content_hash)

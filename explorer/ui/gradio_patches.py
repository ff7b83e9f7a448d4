"""A fix for Gradio's output cache under concurrent users, applied when the app package is imported.

Gradio 6 writes each output image to ``<cache>/<hash of its bytes>/image.webp`` and rewrites that
file *in place* every time, even when it already exists. When two users get the same picture at the
same moment (both click the same example), one user's download can read the file while the other's
request is truncating and rewriting it, and the browser or client receives a cut-off file ("peer
closed connection ... received 0 bytes"; 8 of 320 requests in tests/test_load.py). The name is
content-addressed, so an existing file already holds the right bytes: we keep it, and a new file is
written under a temporary name and renamed into place, so a reader sees a whole file or none.
"""

from __future__ import annotations

from pathlib import Path

from gradio import processing_utils

from explorer.files import write_atomically


def _write_once(path: Path, data: bytes) -> str:
    """Writes ``data`` to the content-addressed ``path`` unless it is already there; atomic."""
    path = path.resolve()
    if not path.exists():
        write_atomically(path, data)
    return str(path)


def save_pil_to_cache(image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """``gradio.processing_utils.save_pil_to_cache`` without the in-place rewrite."""
    data = processing_utils.encode_pil_to_bytes(image, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    return _write_once(folder / f"{name}.{format}", data)


def apply_gradio_patches() -> None:
    """Installs the fixed function (Gradio's callers look it up on the module at call time)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache

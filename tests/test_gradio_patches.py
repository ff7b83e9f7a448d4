"""Gradio's output cache: a picture two users get at once is written once, whole, never rewritten."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from gradio import processing_utils
from PIL import Image

import explorer.ui  # noqa: F401 (applies the patch)
from explorer.ui.gradio_patches import save_pil_to_cache


def test_the_patch_is_installed_and_keeps_existing_files(tmp_path: Path) -> None:
    assert processing_utils.save_pil_to_cache is save_pil_to_cache
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    first = Path(processing_utils.save_img_array_to_cache(np.asarray(image), str(tmp_path)))
    inode = first.stat().st_ino
    again = Path(save_pil_to_cache(image, str(tmp_path)))
    assert again == first and first.stat().st_ino == inode  # not rewritten
    assert Image.open(first).size == (64, 64)
    assert [p.name for p in first.parent.iterdir()] == ["image.webp"]  # no temporary left


def test_concurrent_writers_never_expose_a_partial_file(tmp_path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 256, 3), np.uint8))
    expected = processing_utils.encode_pil_to_bytes(image, "webp")
    seen: list[int] = []

    def write_and_read() -> None:
        for _ in range(20):
            seen.append(len(Path(save_pil_to_cache(image, str(tmp_path))).read_bytes()))

    threads = [threading.Thread(target=write_and_read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen) == {len(expected)}

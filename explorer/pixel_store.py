"""Images as plain arrays of encoded bytes, so that stored analyses keep their pictures without
pickles and far smaller than raw pixels.

:func:`encode_images` stores each image as PNG (exact): plain arrays (``bytes``, ``offsets``,
``shapes``, ``grey``) that :func:`decode_images` turns back into the images. Grey images (one channel,
or channels all equal) are encoded with one channel and given back with the channels they had.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _is_grey(image: np.ndarray) -> bool:
    """Whether an ``[H, W, C]`` image has one channel, or channels that are all equal."""
    return image.shape[-1] == 1 or bool((image[..., :1] == image[..., 1:]).all())


def _png(plane: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", plane, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("an image could not be encoded")
    return png.tobytes()


def encode_images(images: Sequence[np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Encodes ``[H, W, C]`` uint8 images (C = 1 or 3; sizes may differ) as PNG, exactly.

    Returns:
        ``bytes`` (uint8), ``offsets`` ``[N + 1]``, ``shapes`` ``[N, 3]`` and ``grey`` ``[N]`` arrays.
    """
    chunks: list[bytes] = []
    shapes, grey = [], []
    for image in images:
        image = np.asarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[-1] not in (1, 3):
            raise ValueError(f"each image must be [H, W, 1 or 3], not {image.shape}")
        flat = _is_grey(image)
        plane = image[..., 0] if flat else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        chunks.append(b"" if min(plane.shape[:2]) == 0 else _png(np.ascontiguousarray(plane)))
        shapes.append(image.shape)
        grey.append(flat)
    return {
        "bytes": np.frombuffer(b"".join(chunks), dtype=np.uint8).copy(),
        "offsets": np.cumsum([0, *map(len, chunks)]).astype(np.int64),
        "shapes": np.array(shapes, dtype=np.int64).reshape(-1, 3),
        "grey": np.array(grey, dtype=bool),
    }


def decode_images(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The images :func:`encode_images` stored (each ``[H, W, C]`` uint8).

    Raises:
        ValueError: an image's bytes are damaged.
    """
    data, offsets = arrays["bytes"], arrays["offsets"]
    images = []
    for i, (h, w, c) in enumerate(arrays["shapes"].tolist()):
        if h == 0 or w == 0:
            images.append(np.zeros((h, w, c), dtype=np.uint8))
            continue
        grey = bool(arrays["grey"][i])
        chunk = data[offsets[i] : offsets[i + 1]]
        image = cv2.imdecode(chunk, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (h, w):
            raise ValueError(f"stored image {i} is damaged")
        if grey:
            images.append(np.repeat(image[..., None], c, axis=2))
        else:
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return images


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` with every key prefixed (to keep several encodings in one bundle)."""
    return {f"{prefix}{key}": value for key, value in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of one prefix, without it."""
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def encode_mosaic(images: np.ndarray, jpeg_quality: int | None = None) -> dict[str, np.ndarray]:
    """``[N, H, W, C]`` uint8 images of one size tiled into one picture and encoded once (PNG, exact;
    or JPEG at ``jpeg_quality``, lossy — one header for all, where small images would each pay
    their own). Arrays: ``bytes``, ``shape`` (``[N, H, W, C]``), ``grey`` and ``exact``."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W, 1 or 3], not {images.shape}")
    n, h, w, c = images.shape
    cols = max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / cols)))
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, image in enumerate(images):
        y, x = divmod(i, cols)
        canvas[y * h : (y + 1) * h, x * w : (x + 1) * w] = image
    grey = _is_grey(canvas)
    plane = canvas[..., 0] if grey else cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
    if n == 0:
        data, exact = b"", True
    elif jpeg_quality is None:
        ok, encoded = cv2.imencode(".png", plane, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        data, exact = encoded.tobytes(), True
        if not ok:
            raise ValueError("the images could not be encoded")
    else:
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"JPEG quality must be 1..100, not {jpeg_quality}")
        ok, encoded = cv2.imencode(".jpg", plane, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError("the images could not be encoded")
        data, exact = encoded.tobytes(), False
    return {
        "bytes": np.frombuffer(data, dtype=np.uint8).copy(),
        "shape": np.array(images.shape, dtype=np.int64),
        "grey": np.array(grey),
        "exact": np.array(exact),
    }


def decode_mosaic(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The ``[N, H, W, C]`` images :func:`encode_mosaic` stored.

    Raises:
        ValueError: the bytes are damaged.
    """
    n, h, w, c = (int(v) for v in arrays["shape"])
    out = np.zeros((n, h, w, c), dtype=np.uint8)
    if n == 0:
        return out
    grey = bool(arrays["grey"])
    canvas = cv2.imdecode(arrays["bytes"], cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    cols = max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / cols)))
    if canvas is None or canvas.shape[:2] != (rows * h, cols * w):
        raise ValueError("the stored mosaic of images is damaged")
    canvas = canvas[..., None] if grey else cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    for i in range(n):
        y, x = divmod(i, cols)
        tile = canvas[y * h : (y + 1) * h, x * w : (x + 1) * w]
        out[i] = np.repeat(tile, c, axis=2) if grey else tile
    return out

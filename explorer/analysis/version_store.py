"""Modified versions of images, kept on disk by content so a later pass only forwards them.

The attribute explanation's prepare stage (each image changed once per modification; non-local means
above all) costs as much as the network or more, and it depends only on the image and the
modification set, not on the model. :class:`VersionStore` keeps each image's versions under a key made
of the image's bytes and shape and the set's *fingerprint* (every modification's parameters, the
OpenCV version and :data:`FORMAT`), so recomputing the train split after the test split, a model
retrained from the same data, or a second modification set over the same images, makes only what it
has not made before. The files are lossless PNGs (a grey version as one channel), about 0.2 MB per
ELPV image for its seven versions; the store keeps at most ``limit_bytes`` (default
:data:`DEFAULT_LIMIT`), forgetting the least recently used files first. A file that cannot be read is
made again; nothing in it is executed or unpickled.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from explorer.files import write_atomically

FORMAT = "versions-1"
DEFAULT_LIMIT = 2 * 1024**3
PNG_SPEED = [cv2.IMWRITE_PNG_COMPRESSION, 1]
_MAGIC = b"EXV1"


def fingerprint(modifications: Sequence[object]) -> str:
    """What the versions depend on besides the image: the modifications (their parameters), the
    OpenCV that runs them, and this store's format."""
    text = f"{FORMAT}|opencv {cv2.__version__}|{modifications!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _encode(versions: Sequence[np.ndarray]) -> bytes:
    parts = [_MAGIC, len(versions).to_bytes(2, "little")]
    for version in versions:
        grey = version.ndim == 3 and (version == version[:, :, :1]).all()
        pixels = version[:, :, 0] if grey else version[:, :, ::-1]  # cv2 writes BGR
        ok, png = cv2.imencode(".png", np.ascontiguousarray(pixels), PNG_SPEED)
        if not ok:
            raise ValueError("a version could not be encoded as PNG")
        parts += [bytes([int(grey)]), len(png).to_bytes(4, "little"), png.tobytes()]
    return b"".join(parts)


def _decode(data: bytes) -> tuple[np.ndarray, ...]:
    if data[:4] != _MAGIC:
        raise ValueError("not a version file")
    count, at, out = int.from_bytes(data[4:6], "little"), 6, []
    for _ in range(count):
        grey, size = data[at], int.from_bytes(data[at + 1 : at + 5], "little")
        png = np.frombuffer(data[at + 5 : at + 5 + size], dtype=np.uint8)
        pixels = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError("a version could not be decoded")
        out.append(np.repeat(pixels[:, :, None], 3, axis=2) if grey else pixels[:, :, ::-1].copy())
        at += 5 + size
    return tuple(out)


@dataclass(frozen=True)
class VersionStore:
    """Versions of images by content (see the module text). Picklable: a distributed pass's workers
    open the same folder (on storage they share)."""

    root: str
    limit_bytes: int = DEFAULT_LIMIT

    def key(self, image: np.ndarray, set_fingerprint: str) -> str:
        digest = hashlib.sha256()
        digest.update(f"{set_fingerprint}|{image.shape}|{image.dtype}".encode())
        digest.update(np.ascontiguousarray(image).tobytes())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return Path(self.root) / key[:2] / f"{key}.bin"

    def get(self, key: str) -> tuple[np.ndarray, ...] | None:
        """The stored versions, or ``None`` (not stored, or unreadable: then removed)."""
        path = self._path(key)
        try:
            versions = _decode(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, IndexError):
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used: kept longest
        return versions

    def put(self, key: str, versions: Sequence[np.ndarray]) -> None:
        """Stores the versions (atomically; a full store forgets its least recently used files)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, _encode(versions))
        if int.from_bytes(bytes.fromhex(key[-2:]), "little") == 0:  # about one put in 256
            self.trim()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in Path(self.root).glob("*/*.bin"))

    def trim(self) -> None:
        """Forgets the least recently used files until the store holds at most its limit."""
        files = []
        for path in Path(self.root).glob("*/*.bin"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.limit_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


__all__ = ["DEFAULT_LIMIT", "FORMAT", "VersionStore", "fingerprint"]

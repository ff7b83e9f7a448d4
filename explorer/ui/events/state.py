"""What the Explain tab keeps in the user's ``gr.State``: one explanation per upload and option set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from explorer import Explanation, Explorer

STATE_TTL_S = 1800  # a state unused this long is dropped; the next panel then explains again


def source_key(image: object) -> str:
    """Which image an event names: a hash of its bytes (of the file a path names, or of pasted
    bytes), so that an example explained from the model folder and the copy of it that Gradio keeps
    in its cache, which later events name, are one image; the path itself if it cannot be read."""
    if isinstance(image, bytes | bytearray):
        return "sha256:" + hashlib.sha256(image).hexdigest()
    try:
        with open(image, "rb") as stream:  # type: ignore[arg-type]
            return "sha256:" + hashlib.file_digest(stream, "sha256").hexdigest()
    except (OSError, TypeError, ValueError):
        return str(image)


@dataclass(frozen=True)
class Shown:
    """The explanation the Explain tab shows, and the upload and options it was made for.

    Attributes:
        source: :func:`source_key` of the upload.
        model_id: the model that explained it.
        top_k, ranked_by: the pairs asked for.
        class_index: the class asked for (``None``: the predicted class).
        disabled: the prototypes left out (the what-if model); empty for the model as trained.
        explanation: the explanation (with Grad-CAM of the explained class).
    """

    source: str
    model_id: str
    top_k: int
    ranked_by: str
    class_index: int | None
    disabled: frozenset[int]
    explanation: Explanation


def shown_for(
    explorer: Explorer, shown: object, image: object, model_id: str | None
) -> Shown | None:
    """``shown`` when it was made for this upload by this model as it is now (the model folder may
    have been replaced since), else ``None`` (an API client has no state; a state may have expired)."""
    if not isinstance(shown, Shown) or image is None or model_id != shown.model_id:
        return None
    if source_key(image) != shown.source:
        return None
    if explorer.content_hash(model_id) != shown.explanation.content_hash:
        return None
    return shown

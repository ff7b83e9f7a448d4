"""Gradio components adapted to the explorer's needs.

The input components here hand their event functions what the client sent, checked by
:mod:`explorer.validation` and refused with a sentence naming the field (its label) and the limit,
where Gradio's own components would silently change the value (a number field with ``precision=0``
reads 2.5 as 2) or fail with its generic "the upstream app has raised an exception" (text in a
number field or a slider, a bare string where a file is expected). Each keeps the front end and the
API description of the Gradio component it extends (``is_template``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import gradio as gr
from gradio.data_classes import FileData, ImageData
from gradio_client.utils import is_file_obj_with_meta
from pydantic import BaseModel, ValidationError

from explorer.validation import InputError, real_number, shown, whole_number


def shown_picture(label: str, alt: str, elem_id: str | None = None) -> gr.Image:
    """An output-only image with its label and its text alternative for screen readers."""
    return gr.Image(label=label, interactive=False, alt_text=alt, elem_id=elem_id)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The API description of a payload model, as Gradio derives it from a component's data model."""
    schema = model.model_json_schema()
    schema["additional_description"] = schema.pop("description", None)
    return schema


def _uploaded(payload: object, model: type[BaseModel], label: str | None) -> Any:
    """The payload of a file uploaded to this app, as ``model``; anything else is a ``gr.Error``.

    Only payloads marked as Gradio files are accepted: Gradio checks those (before any event
    function runs) to name a file uploaded to this app, so a bare path such as
    ``{"path": "/etc/passwd"}`` is refused here and never opened.
    """
    if not is_file_obj_with_meta(payload):
        raise gr.Error(
            f"{label or 'the file'} must be a file uploaded to this app (with gradio_client: "
            f"handle_file(path)), not {shown(payload)}"
        )
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise gr.Error(f"{label or 'the file'}: the upload is malformed ({error})") from None


class UploadedImage(gr.Image):
    """``gr.Image`` (same front end) whose upload reaches the library undecoded.

    ``gr.Image`` opens uploads with Pillow before our code runs, so a broken or hostile file would fail
    with Gradio's generic error. This passes the stored upload's path (or the bytes of a pasted image)
    to :func:`explorer.images.load_image`, which checks it and explains what is wrong. The payload
    itself is checked here too (:func:`_uploaded`): a bare server path or a string is refused.
    """

    is_template = True  # use gr.Image's front end
    data_model = None  # the payload is validated by preprocess, which can say what is wrong

    def api_info(self) -> dict[str, Any]:
        return _schema(ImageData)

    def preprocess(self, payload: Any) -> str | bytes | None:
        if payload is None:
            return None
        if isinstance(payload, dict) and not payload.get("path"):
            url = payload.get("url")
            if isinstance(url, str) and url.startswith("data:"):
                try:
                    return base64.b64decode(url.split(",", 1)[-1])
                except (binascii.Error, ValueError):
                    raise gr.Error(f"{self.label}: the pasted image is not valid base64") from None
        return str(_uploaded(payload, ImageData, self.label).path)


class UploadedFile(gr.File):
    """``gr.File`` (same front end, one file) that refuses anything but an uploaded file with a
    sentence (:func:`_uploaded`) instead of Gradio's generic error."""

    is_template = True  # use gr.File's front end

    @property
    def data_model(self) -> None:
        """None: the payload is validated by preprocess, which can say what is wrong."""
        return None

    @data_model.setter
    def data_model(self, _model: object) -> None:
        """gr.File's constructor assigns its data model; this component keeps validating itself."""

    def api_info(self) -> dict[str, Any]:
        return _schema(FileData)

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        return super().preprocess(_uploaded(payload, FileData, self.label))


def _as_gradio_error(error: InputError) -> gr.Error:
    return gr.Error(str(error))


class WholeNumberInput(gr.Number):
    """``gr.Number`` (use ``precision=0``) that hands its event function a whole number, or ``None``
    for an empty field: 2.5, text and booleans are refused by the field's label, never rounded.

    The range (a model's prototypes, the clusters found) is checked where it is known, by the
    facade or the event function.
    """

    is_template = True  # use gr.Number's front end

    def preprocess(self, payload: Any) -> int | None:
        if payload is None:
            return None
        try:
            return whole_number(payload, self.label or "the number")
        except InputError as error:
            raise _as_gradio_error(error) from None


class BoundedSlider(gr.Slider):
    """``gr.Slider`` that refuses text, non-finite and out-of-range values by its label and range,
    and hands a whole number when its step is whole (2.5 pairs is refused, not rounded)."""

    is_template = True  # use gr.Slider's front end

    def preprocess(self, payload: Any) -> float | int:
        name = self.label or "the value"
        try:
            if float(self.step).is_integer():
                return whole_number(
                    payload, name, minimum=int(self.minimum), maximum=int(self.maximum)
                )
            return real_number(payload, name, minimum=self.minimum, maximum=self.maximum)
        except InputError as error:
            raise _as_gradio_error(error) from None

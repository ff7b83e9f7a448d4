"""The Predict tab: upload or pick an example → probabilities and the prototypes behind them."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from explorer.api import Explorer
from explorer.errors import ExplorerError
from explorer.models.checkpoint import example_class, read_png
from explorer.types import Prediction
from explorer.ui.components import UploadedImage
from explorer.viz.overlays import draw_box, enlarge

TOP_K = 10
GALLERY_K = 5
TABLE_HEADERS = ["rank", "prototype", "prototype class", "similarity", "weight", "contribution"]


def summary_text(prediction: Prediction) -> str:
    """A short plain-language reading of a prediction."""
    lines = [
        f"Predicted **{prediction.predicted_class}** (probability {prediction.confidence:.2f})."
    ]
    if prediction.top_prototypes:
        best = prediction.top_prototypes[0]
        lines.append(
            f"The strongest evidence: prototype {best.prototype} of class *{best.prototype_class}* "
            f"matches with similarity {best.similarity:.2f}; × weight {best.weight:+.2f} it adds "
            f"{best.contribution:+.2f} to the logit of *{prediction.predicted_class}* "
            f"({prediction.logits[prediction.predicted]:.2f} in all)."
        )
    return " ".join(lines)


def evidence_rows(prediction: Prediction) -> list[list[Any]]:
    return [
        [
            rank,
            e.prototype,
            e.prototype_class,
            round(e.similarity, 4),
            round(e.weight, 4),
            round(e.contribution, 4),
        ]
        for rank, e in enumerate(prediction.top_prototypes, start=1)
    ]


def prototype_gallery(explorer: Explorer, prediction: Prediction) -> list[tuple[np.ndarray, str]]:
    """Source images of the strongest prototypes with their 95th-percentile boxes."""
    bundle = explorer.bundle(prediction.model_id)
    if not bundle.projection:
        return []
    items = []
    for e in prediction.top_prototypes[:GALLERY_K]:
        record = bundle.projection[e.prototype]
        boxed = draw_box(
            enlarge(bundle.source_image(e.prototype)), record.box, bundle.spec.input_size
        )
        items.append(
            (boxed, f"prototype {e.prototype} · {e.prototype_class} · {e.contribution:+.2f}")
        )
    return items


def model_card(explorer: Explorer, model_id: str) -> str:
    info = next(i for i in explorer.models() if i.model_id == model_id)
    accuracy = info.accuracy.get("after_last_layer")
    shown = f"{accuracy:.1%}" if accuracy is not None else "not recorded"
    return (
        f"**{info.title}** — {len(info.class_names)} classes, {info.num_prototypes} prototypes, "
        f"test accuracy {shown}."
    )


def example_images(explorer: Explorer, model_id: str) -> list[tuple[np.ndarray, str]]:
    """The model's bundled test images, captioned with their true class."""
    bundle = explorer.bundle(model_id)
    return [(read_png(p), bundle.spec.class_names[example_class(p)]) for p in bundle.examples()]


def build_predict_tab(explorer: Explorer, model: gr.Dropdown) -> None:
    """Lays out the tab and wires its events (``api_name`` on each)."""
    with gr.Row():
        with gr.Column(scale=1):
            image = UploadedImage(
                label="Image to explain",
                type="filepath",
                format="png",
                sources=["upload", "clipboard"],
                height=300,
            )
            run = gr.Button("Predict", variant="primary")
            examples = gr.Gallery(
                value=example_images(explorer, explorer.default_model),
                label="Examples from the test split (click one)",
                columns=6,
                height=220,
                allow_preview=False,
            )
        with gr.Column(scale=2):
            summary = gr.Markdown("Upload an image or click an example.")
            probabilities = gr.Label(label="Class probabilities", num_top_classes=5)
            table = gr.Dataframe(
                headers=TABLE_HEADERS,
                label=f"Top {TOP_K} prototypes by contribution to the predicted class",
                interactive=False,
            )
            gallery = gr.Gallery(
                label="Their source patches (box: 95th-percentile activation on the training image)",
                columns=GALLERY_K,
                height=240,
            )

    def predict(path: str | bytes | None, model_id: str) -> tuple[Any, ...]:
        if not path:
            raise gr.Error("Upload an image or click an example first.")
        try:
            prediction = explorer.predict(path, model_id=model_id, top_k=TOP_K)
            pictures = prototype_gallery(explorer, prediction)
        except ExplorerError as error:
            raise gr.Error(str(error)) from None
        probs = dict(zip(prediction.class_names, prediction.probabilities, strict=True))
        return summary_text(prediction), probs, evidence_rows(prediction), pictures

    def pick_example(model_id: str, event: gr.SelectData) -> np.ndarray:
        return read_png(explorer.bundle(model_id).examples()[event.index])

    outputs = [summary, probabilities, table, gallery]
    run.click(predict, [image, model], outputs, api_name="predict")
    image.upload(predict, [image, model], outputs, api_name=False)
    examples.select(pick_example, [model], image, api_name=False).then(
        predict, [image, model], outputs, api_name=False
    )
    model.change(
        lambda model_id: (
            example_images(explorer, model_id),
            None,
            "Model changed: upload or pick an image.",
            None,
            None,
            None,
        ),
        model,
        [examples, image, summary, probabilities, table, gallery],
        api_name=False,
    )

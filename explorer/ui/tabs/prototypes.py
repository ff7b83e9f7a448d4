"""The Prototypes tab: every prototype's source patch; one prototype in detail with its nearest patches."""

from __future__ import annotations

import gradio as gr
import numpy as np

from explorer import (
    SPLITS,
    Explorer,
    ExplorerError,
    NearestPatches,
    PrototypeView,
    upsample_map,
)
from explorer.ui.choices import required_prototype
from explorer.ui.components import WholeNumberInput, shown_picture
from explorer.ui.tabs.attributes import build_prototype_section
from explorer.ui.tabs.labels import build_label_controls
from explorer.ui.thumbnails import prototype_thumbnail
from explorer.validation import prototype_index
from explorer.viz.figures import weights_figure
from explorer.viz.pairs import activation_picture, boxed_picture
from explorer.viz.text import describe_figure

ALL_CLASSES = "all classes"


def prototype_grid(explorer: Explorer, model_id: str, class_filter: str) -> tuple[list, list[int]]:
    """Source-patch crops of the prototypes of one class (or all), and their indices."""
    names = explorer.class_names(model_id)
    classes = explorer.prototype_classes(model_id)
    chosen = [
        j for j in range(len(classes))
        if class_filter in (None, ALL_CLASSES) or names[classes[j]] == class_filter
    ]  # fmt: skip
    if not explorer.has_sources(model_id):
        return [], chosen
    labels = explorer.prototype_labels(model_id)
    items = [(prototype_thumbnail(explorer, model_id, j), labels[j]) for j in chosen]
    return items, chosen


def nearest_gallery(
    view: PrototypeView, split: str, class_names: tuple[str, ...]
) -> list[tuple[np.ndarray, str]]:
    nearest: NearestPatches | None = view.nearest.get(split)
    if nearest is None:
        return []
    j = view.index
    size = view.source.shape[:2]
    return [
        (
            activation_picture(nearest.pixels[j, r], upsample_map(nearest.maps[j, r], size), tuple(nearest.boxes[j, r])),
            f"#{r + 1}: {split} image {nearest.images[j, r]} ({class_names[int(nearest.labels[j, r])]}), sim {nearest.scores[j, r]:.2f}",
        )
        for r in range(nearest.images.shape[1])
    ]  # fmt: skip


def detail_text(explorer: Explorer, model_id: str, view: PrototypeView) -> str:
    names = explorer.class_names(model_id)
    record = view.record
    lines = [
        f"### Prototype {view.index} — class *{names[view.class_index]}*",
        f"Projected onto training image {record.source_index}, feature cell {record.cell}; "
        f"box (y0, y1, x0, x1) = {record.box} in model-input pixels.",
    ]
    for split in SPLITS:
        if split in view.nearest:
            nearest = view.nearest[split]
            own = view.purity(split)
            labels = ", ".join(names[int(c)] for c in nearest.labels[view.index])
            lines.append(f"**Nearest {split} patches**: {own:.0%} from its own class ({labels}).")
        else:
            lines.append(
                f"Nearest {split} patches not computed yet: press *Compute nearest patches* "
                "(needs the model's data set) or run `python -m explorer analyse`."
            )
    return "\n\n".join(lines)


def build_prototypes_tab(explorer: Explorer, model: gr.Dropdown, reviewer: gr.Textbox) -> gr.Number:
    """Lays out the tab and wires its events; returns the number of the prototype on show."""
    default = explorer.default_model
    names = list(explorer.class_names(default)) if default else []
    with gr.Row():
        class_filter = gr.Dropdown(
            [ALL_CLASSES, *names], value=ALL_CLASSES, label="Show prototypes of"
        )
        number = WholeNumberInput(value=0, precision=0, label="Prototype")
        previous = gr.Button("◀ previous [p]", elem_classes=["prototype-previous"], size="sm")
        show = gr.Button("Show prototype")
        following = gr.Button("next [n] ▶", elem_classes=["prototype-next"], size="sm")
        compute = gr.Button("Compute nearest patches")
    initial, initial_ids = prototype_grid(explorer, default, ALL_CLASSES) if default else ([], [])
    grid = gr.Gallery(
        value=initial, label="Prototypes: their source patches (click one)",
        columns=10, height=260, allow_preview=False,
    )  # fmt: skip
    shown_ids = gr.State(initial_ids)  # per user: which prototype each grid cell shows
    details = gr.Markdown()
    with gr.Row():
        source = shown_picture(
            "Source training image and box",
            "The prototype's source training image with a box around its patch",
        )
        self_map = shown_picture(
            "Self-activation on its source image",
            "Heatmap of where the prototype matches its own source image",
        )
        weights = gr.Plot(label="Last-layer weights")
    nearest_train = gr.Gallery(
        label="Nearest training patches", columns=5, height=300, object_fit="contain"
    )
    nearest_test = gr.Gallery(
        label="Nearest test patches", columns=5, height=300, object_fit="contain"
    )

    def show_prototype(model_id: str, prototype: float | None):
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            view = explorer.prototype(prototype, model_id)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        names = explorer.class_names(model_id)
        weights_chart = weights_figure(view.weights, names, view.index)
        return (
            detail_text(explorer, model_id, view) + "\n\n" + describe_figure(weights_chart),
            boxed_picture(view.source, view.record.box),
            activation_picture(view.source, view.self_activation, view.record.box),
            weights_chart,
            nearest_gallery(view, "train", names),
            nearest_gallery(view, "test", names),
        )

    def compute_nearest(model_id: str, prototype: int | None, progress=gr.Progress()):  # noqa: B008 (Gradio's pattern)
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            prototype_index(prototype, explorer.num_prototypes(model_id))  # before the work
            for split in SPLITS:
                explorer.nearest(
                    model_id,
                    split,
                    progress=lambda it, s=split: progress.tqdm(it, desc=f"nearest patches ({s})"),
                )
        except ExplorerError as error:
            raise gr.Error(str(error)) from None
        return show_prototype(model_id, prototype)

    def pick(ids: list[int], event: gr.SelectData) -> int:
        return ids[event.index]

    def refilter(model_id: str, choice: str):
        items, ids = prototype_grid(explorer, model_id, choice)
        return items, ids

    gr.Markdown("### Label this prototype (keys: v valid, m misleading, u unsure, r redundant)")
    build_label_controls(explorer, model, required_prototype, number, reviewer, api=True)
    build_prototype_section(explorer, model, number)
    outputs = [details, source, self_map, weights, nearest_train, nearest_test]
    show.click(show_prototype, [model, number], outputs, api_name="prototype")

    def step(model_id: str, current: float | None, delta: int) -> int:
        total = explorer.num_prototypes(model_id)
        return (int(current or 0) + delta) % total

    for button, delta in ((previous, -1), (following, 1)):
        button.click(
            lambda m, c, d=delta: step(m, c, d), [model, number], number, api_name=False
        ).then(show_prototype, [model, number], outputs, api_name=False)
    number.submit(show_prototype, [model, number], outputs, api_name=False)
    grid.select(pick, shown_ids, number, api_name=False).then(
        show_prototype, [model, number], outputs, api_name=False
    )
    compute.click(compute_nearest, [model, number], outputs, api_name="nearest")
    class_filter.change(refilter, [model, class_filter], [grid, shown_ids], api_name=False)

    def reset(model_id: str):
        items, ids = prototype_grid(explorer, model_id, ALL_CLASSES)
        classes = [ALL_CLASSES, *explorer.class_names(model_id)]
        return (
            gr.update(choices=classes, value=ALL_CLASSES),
            items,
            ids,
            0,
            "",
            None,
            None,
            None,
            [],
            [],
        )

    model.change(
        reset, model,
        [class_filter, grid, shown_ids, number, details, source, self_map, weights, nearest_train, nearest_test],
        api_name=False,
    )  # fmt: skip
    return number

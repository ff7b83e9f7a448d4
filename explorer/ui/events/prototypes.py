"""Event functions of the Prototypes tab: the grid of source patches, one prototype in detail with
its nearest patches, and the first pass that finds them (laid out in ``explorer/ui/tabs/prototypes.py``)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from explorer import SPLITS, Explorer, ExplorerError, NearestPatches, PrototypeView, upsample_map
from explorer.ui.choices import prototype_index
from explorer.ui.progress import tracked
from explorer.ui.thumbnails import prototype_thumbnail
from explorer.validation import prototype_index as checked_prototype
from explorer.viz.figures import weights_figure
from explorer.viz.pairs import SHORT_SCORE_NAMES, activation_picture, boxed_picture
from explorer.viz.text import describe_figure

ALL_CLASSES = -1  # the class filter's value for "all classes" (the others are class indices)
# The tab's picture labels (grid, source, self-activation), by whether the family pushes its
# prototypes onto training patches (ProtoPNet) or shows them by their nearest patches (PIP-Net).
PICTURE_LABELS = {
    True: (
        "Prototypes: their source patches (click one)",
        "Source training image and box",
        "Self-activation on its source image",
    ),
    False: (
        "Prototypes: their nearest training patches (no push in this family; click one)",
        "Nearest training image and box (stands in for a source)",
        "Self-activation on that image",
    ),
}


def picture_labels(explorer: Explorer, model_id: str) -> tuple[str, str, str]:
    return PICTURE_LABELS[explorer.not_applicable(model_id, "push") is None]


def class_filter_choices(explorer: Explorer, model_id: str) -> list[tuple[str, int]]:
    """``("all classes", -1)`` then ``(class name, class index)`` for every class."""
    names = explorer.class_names(model_id)
    return [("all classes", ALL_CLASSES), *((name, k) for k, name in enumerate(names))]


def prototype_grid(
    explorer: Explorer, model_id: str, class_index: int | None = ALL_CLASSES
) -> tuple[list[tuple[np.ndarray | None, str]], list[int]]:
    """Source-patch crops of the prototypes of one class (all for ``-1`` or ``None``), and their
    indices (the grid is empty for a model that stores no sources)."""
    classes = explorer.prototype_classes(model_id)
    everything = class_index is None or int(class_index) == ALL_CLASSES
    chosen = [j for j in range(len(classes)) if everything or classes[j] == int(class_index)]
    if not explorer.has_sources(model_id):
        return [], chosen
    labels = explorer.prototype_labels(model_id)
    return [(prototype_thumbnail(explorer, model_id, j), labels[j]) for j in chosen], chosen


def nearest_gallery(
    view: PrototypeView, split: str, class_names: tuple[str, ...]
) -> list[tuple[np.ndarray, str]]:
    """The prototype's nearest patches in a split (empty when they are not stored)."""
    nearest: NearestPatches | None = view.nearest.get(split)
    if nearest is None:
        return []
    j = view.index
    size = view.source.shape[:2]
    return [
        (
            activation_picture(nearest.pixels[j, r], upsample_map(nearest.maps[j, r], size), tuple(nearest.boxes[j, r])),
            f"#{r + 1}: {split} image {nearest.images[j, r]} ({class_names[int(nearest.labels[j, r])]}), {SHORT_SCORE_NAMES.get(view.score_name, 'score')} {nearest.scores[j, r]:.2f}",
        )
        for r in range(nearest.images.shape[1])
    ]  # fmt: skip


def detail_text(explorer: Explorer, model_id: str, view: PrototypeView) -> str:
    names = explorer.class_names(model_id)
    record = view.record
    where = (
        f"Projected onto training image {record.source_index}"
        if view.shown_by == "push"
        else f"{explorer.not_applicable(model_id, 'push')} Shown here: its nearest training "
        f"patch, image {record.source_index}"
    )
    lines = [
        f"### Prototype {view.index} — class *{names[view.class_index]}*",
        f"{where}, feature cell {record.cell}; box (y0, y1, x0, x1) = {record.box} in "
        "model-input pixels.",
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


def show_prototype(explorer: Explorer, model_id: str, prototype: int | None) -> tuple:
    """The detail view (API ``/prototype``): text, source with box, self-activation, weights chart,
    nearest train and test patches (those stored; none computed)."""
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


def compute_nearest(
    explorer: Explorer,
    model_id: str,
    prototype: int | None,
    progress=gr.Progress(),  # noqa: B008 (Gradio's pattern)
) -> tuple:
    """Every prototype's nearest patches in both splits, computed where not stored (one pass over
    each split, its progress in ``progress``), then the prototype's view (API ``/nearest``)."""
    if prototype is None:
        raise gr.Error("Enter a prototype number.")
    try:
        checked_prototype(prototype, explorer.num_prototypes(model_id))  # before the work
        for split in SPLITS:
            what = f"Nearest patches, {split} split"
            explorer.nearest(model_id, split, progress=tracked(progress, what))
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
    return show_prototype(explorer, model_id, prototype)


def reveal_nearest() -> tuple[dict, dict]:
    """Both galleries shown, before a first pass that fills them (its progress shows there)."""
    return gr.update(visible=True), gr.update(visible=True)


def nearest_shown(explorer: Explorer, model_id: str) -> tuple[dict, dict]:
    """The train and test galleries shown where their patches are stored (after a pass that may
    have failed: a model without its data set hides them again)."""
    train, test = (gr.update(visible=explorer.has_nearest(model_id, split)) for split in SPLITS)
    return train, test


def first_view(explorer: Explorer, model_id: str, prototype: int = 0) -> tuple:
    """The number and the detail view of ``prototype`` (the tab opens on prototype 0), the nearest
    galleries shown where stored; a sentence instead for a model whose prototypes have no source."""
    try:
        shown = show_prototype(explorer, model_id, prototype)
    except gr.Error as error:
        sentence = f"Prototype {prototype} of *{model_id}* cannot be shown: {error.message}"
        return (prototype, sentence, None, None, None, gr.update(value=[], visible=False),
                gr.update(value=[], visible=False))  # fmt: skip
    # the galleries are shown for the splits whose patches are stored; the text says how to compute
    # the others (Compute nearest patches shows both galleries, with the progress of the pass)
    train, test = (
        gr.update(value=patches, visible=explorer.has_nearest(model_id, split))
        for split, patches in zip(SPLITS, shown[4:], strict=True)
    )
    _, source_label, self_label = picture_labels(explorer, model_id)
    source = gr.update(value=shown[1], label=source_label)
    self_map = gr.update(value=shown[2], label=self_label)
    return (prototype, shown[0], source, self_map, shown[3], train, test)


def open_model(explorer: Explorer, model_id: str) -> tuple:
    """Everything the tab shows for a newly chosen model: the class filter, the grid of all its
    prototypes and their indices, then :func:`first_view` of prototype 0."""
    items, ids = prototype_grid(explorer, model_id, ALL_CLASSES)
    choices = gr.update(choices=class_filter_choices(explorer, model_id), value=ALL_CLASSES)
    grid = gr.update(value=items, label=picture_labels(explorer, model_id)[0])
    return (choices, grid, ids, *first_view(explorer, model_id))


def follow_choice(explorer: Explorer, model_id: str, choice: Any) -> tuple:
    """The Explain tab's prototype choice shown here too (nothing changes for the strongest match or
    an entry that names no prototype of this model)."""
    try:
        index = prototype_index(choice)
        if index is None:
            raise ValueError("the strongest match names no fixed prototype")
        shown = show_prototype(explorer, model_id, index)
    except (ValueError, gr.Error):
        return (gr.update(),) * 7
    return (index, *shown)


def step(explorer: Explorer, delta: int, model_id: str, current: int | None) -> int:
    """The next (``delta`` 1) or previous (-1) prototype, round the model's prototypes."""
    return (int(current or 0) + delta) % explorer.num_prototypes(model_id)


def pick(ids: list[int], event: gr.SelectData) -> int:
    """The prototype of the grid cell clicked."""
    return ids[event.index]


def refilter(
    explorer: Explorer, model_id: str, class_index: int | None
) -> tuple[list[tuple[np.ndarray | None, str]], list[int]]:
    return prototype_grid(explorer, model_id, class_index)

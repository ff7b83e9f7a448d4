"""The Prototypes tab: every prototype's source patch; one prototype in detail with its nearest patches.

Layout and wiring only; the event functions are in :mod:`explorer.ui.events.prototypes`. The tab
opens on prototype 0 (its detail view and the nearest patches stored), for the default model when
the page loads and for any model chosen later.
"""

from __future__ import annotations

import gradio as gr

from explorer import Explorer
from explorer.ui.choices import required_prototype
from explorer.ui.components import WholeNumberInput, shown_picture
from explorer.ui.events import bind
from explorer.ui.events import prototypes as events
from explorer.ui.tabs.attributes import build_prototype_section
from explorer.ui.tabs.labels import build_label_controls


def build_prototypes_tab(
    explorer: Explorer, app: gr.Blocks, model: gr.Dropdown, reviewer: gr.Textbox
) -> tuple[gr.Number, list[gr.components.Component]]:
    """Lays out the tab and wires its events; returns the number of the prototype on show and the
    components of its detail view (the outputs of :func:`events.show_prototype`)."""
    default = explorer.default_model
    with gr.Row():
        class_filter = gr.Dropdown(
            events.class_filter_choices(explorer, default) if default else [],
            value=events.ALL_CLASSES, label="Show prototypes of",
        )  # fmt: skip
        number = WholeNumberInput(value=0, precision=0, label="Prototype")
        previous = gr.Button("◀ previous [p]", elem_classes=["prototype-previous"], size="sm")
        show = gr.Button("Show prototype")
        following = gr.Button("next [n] ▶", elem_classes=["prototype-next"], size="sm")
        compute = gr.Button("Compute nearest patches")
    initial, initial_ids = events.prototype_grid(explorer, default) if default else ([], [])
    grid_label, source_label, self_label = events.PICTURE_LABELS[True]
    if default:
        grid_label, source_label, self_label = events.picture_labels(explorer, default)
    grid = gr.Gallery(value=initial, label=grid_label, columns=10, height=260, allow_preview=False)
    shown_ids = gr.State(initial_ids)  # per user: which prototype each grid cell shows
    details = gr.Markdown("Loading prototype 0 …")
    with gr.Row():
        source = shown_picture(
            source_label, "The prototype's source training image with a box around its patch"
        )
        self_map = shown_picture(
            self_label, "Heatmap of where the prototype matches its own source image"
        )
        weights = gr.Plot(label="Last-layer weights")
    nearest_train = gr.Gallery(
        label="Nearest training patches", columns=5, height=300, object_fit="contain"
    )
    nearest_test = gr.Gallery(
        label="Nearest test patches", columns=5, height=300, object_fit="contain"
    )
    gr.Markdown("### Label this prototype (keys: v valid, m misleading, u unsure, r redundant)")
    build_label_controls(explorer, model, required_prototype, number, reviewer, api=True)
    attribute_view = build_prototype_section(explorer, model, number)

    view = [details, source, self_map, weights, nearest_train, nearest_test]
    show_prototype = bind(events.show_prototype, explorer)
    show.click(show_prototype, [model, number], view, api_name="prototype")
    number.submit(show_prototype, [model, number], view, api_name=False)
    for button, delta in ((previous, -1), (following, 1)):
        button.click(
            bind(events.step, explorer, delta), [model, number], number, api_name=False
        ).then(show_prototype, [model, number], view, api_name=False)
    grid.select(events.pick, shown_ids, number, api_name=False).then(
        show_prototype, [model, number], view, api_name=False
    )
    # Both galleries first (the pass's progress bar shows in them), then the pass and the view.
    nearest = [nearest_train, nearest_test]
    compute.click(events.reveal_nearest, None, nearest, api_name=False, queue=False).then(
        bind(events.compute_nearest, explorer), [model, number], view,
        api_name="nearest", show_progress_on=nearest,
    ).then(bind(events.nearest_shown, explorer), model, nearest, api_name=False)  # fmt: skip
    class_filter.change(
        bind(events.refilter, explorer), [model, class_filter], [grid, shown_ids], api_name=False
    )
    app.load(bind(events.first_view, explorer), model, [number, *view], api_name=False).then(
        *attribute_view, api_name=False
    )
    # the attribute section follows too (prototype 0 again is no change of the number)
    model.change(
        bind(events.open_model, explorer), model,
        [class_filter, grid, shown_ids, number, *view], api_name=False,
    ).then(*attribute_view, api_name=False)  # fmt: skip
    return number, view

"""``build_app(explorer)`` → ``gr.Blocks`` (not launched), and ``launch`` with safe defaults."""

from __future__ import annotations

import sys

import gradio as gr

from explorer import Explorer
from explorer.auth import Credentials, SignIn
from explorer.images import MAX_BYTES
from explorer.ui.allocator import bound_server_memory
from explorer.ui.events import bind
from explorer.ui.events.prototypes import follow_choice
from explorer.ui.identity import reviewer_field
from explorer.ui.login import gradio_login_options
from explorer.ui.preload import preload_script
from explorer.ui.skipped import skipped_folders_note
from explorer.ui.tabs.explain import build_explain_tab
from explorer.ui.tabs.labels import SHORTCUT_JS, build_labels_tab
from explorer.ui.tabs.model_card import build_model_card_tab
from explorer.ui.tabs.prototypes import build_prototypes_tab
from explorer.ui.tabs.redundancy import build_redundancy_tab
from explorer.ui.warm_up import WarmUp

TITLE = "Prototype explanation explorer"


def model_card(explorer: Explorer, model_id: str) -> str:
    """One line about the model under the selector."""
    info = explorer.model_info(model_id)
    accuracy = info.test_accuracy
    shown = f"{accuracy:.1%}" if accuracy is not None else "not recorded"
    return (
        f"**{info.title}** — {len(info.class_names)} classes, {info.num_prototypes} prototypes, "
        f"test accuracy {shown}."
    )


THEME = gr.themes.Soft()
LOCALHOST = "127.0.0.1"
QUEUE_SIZE = 64  # waiting requests at most (16 busy clients use a quarter of it)
LOOPBACK_HOSTS = (LOCALHOST, "localhost", "::1")
SIGN_IN_NOTICE = "Sign in with the account your administrator created for you."
# A chart drawn while its tab was hidden (the tabs fill at once, and again for each model chosen)
# takes plotly's default width; a resize event redraws it to its panel when its tab is shown.
REDRAW_CHARTS_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 50); }"
# The prototype metrics table: its value and "better" columns never break inside a word (the
# definitions take the rest of the width).
CSS = """
#prototype-metrics td:nth-child(2), #prototype-metrics td:nth-child(3),
#prototype-metrics th:nth-child(2), #prototype-metrics th:nth-child(3) { white-space: nowrap; }
"""


def build_app(explorer: Explorer, warm_up: WarmUp | None = None) -> gr.Blocks:
    """The whole app for one Explorer; per-user data lives in components and ``gr.State``. With
    ``warm_up``, every model a user picks is warmed in the background (:mod:`explorer.ui.warm_up`)."""
    ids = explorer.model_ids()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {TITLE}\nSee which parts of an image look like which learned prototypes, "
            "and how much each adds to every class. "
            f"*Networks run on {explorer.device_in_words()}.*"
        )
        with gr.Row():
            reviewer = gr.Textbox(
                label="Your name (for labels; remembered in this browser)", scale=1,
                elem_id="reviewer-name",
            )  # fmt: skip
            what_if = gr.Checkbox(
                label="What-if: disable the prototypes labelled misleading", scale=1
            )
        remembered = gr.BrowserState("", storage_key="prototype-explorer-reviewer")
        app.load(reviewer_field, remembered, reviewer, api_name=False)
        reviewer.change(lambda name: name, reviewer, remembered, api_name=False)
        with gr.Row():
            model = gr.Dropdown(
                choices=ids, value=explorer.default_model, label="Model", scale=1, interactive=True
            )
            card = gr.Markdown(
                model_card(explorer, explorer.default_model) if ids else "No models found."
            )
        if explorer.skipped_folders:
            gr.Markdown(skipped_folders_note(explorer.skipped_folders), elem_id="skipped-models")
        model.change(lambda m: model_card(explorer, m), model, card, api_name=False)
        with gr.Tab("Explain") as explain_tab:
            explained_prototype = build_explain_tab(explorer, model, reviewer, what_if, warm_up)
        with gr.Tab("Prototypes") as prototypes_tab:
            browsed_prototype, prototype_view = build_prototypes_tab(explorer, app, model, reviewer)
        # The prototype picked in Explain (e.g. by clicking a pair) is the one the browser shows.
        explained_prototype.change(
            bind(follow_choice, explorer), [model, explained_prototype],
            [browsed_prototype, *prototype_view], api_name=False,
        )  # fmt: skip
        with gr.Tab("Redundancy") as redundancy_tab:
            build_redundancy_tab(explorer, app, model)
        with gr.Tab("Labels") as labels_tab:
            queued_prototype = build_labels_tab(explorer, app, labels_tab, model, reviewer)
        # ... and so is the prototype picked in the Labels tab's review queue.
        queued_prototype.change(
            bind(follow_choice, explorer), [model, queued_prototype],
            [browsed_prototype, *prototype_view], api_name=False,
        )  # fmt: skip
        with gr.Tab("Model card") as card_tab:
            build_model_card_tab(explorer, app, card_tab, model)
        for tab in (explain_tab, prototypes_tab, redundancy_tab, labels_tab, card_tab):
            tab.select(None, js=REDRAW_CHARTS_JS, api_name=False)
    return app


def launch(
    explorer: Explorer,
    host: str = LOCALHOST,
    port: int | None = None,
    credentials: Credentials | None = None,
    sign_in: SignIn | None = None,
    warm: bool | WarmUp = True,
    **kwargs: object,
) -> gr.Blocks:
    """Launches on ``host`` (loopback unless the caller says otherwise); never a public share link.

    With ``credentials`` every page and API call needs a login, and labels carry the user's name;
    before sign-in only a sign-in page is served (:mod:`explorer.ui.login`), and sign-ins are
    checked by ``sign_in`` (by default ``SignIn(credentials)``: the standard rate limits and pool).
    With ``warm`` (the default; or the :class:`~explorer.ui.warm_up.WarmUp` to use) the default
    model is warmed in the background once the server is up, and every model a user picks when
    first picked (:mod:`explorer.ui.warm_up`).
    """
    if sign_in is None and credentials is not None:
        sign_in = SignIn(credentials)
    if host not in LOOPBACK_HOSTS and sign_in is None:
        print(
            f"warning: serving on {host} without --auth: anyone who can reach this address can "
            "use the app and write labels",
            file=sys.stderr,
        )
    warm_up = warm if isinstance(warm, WarmUp) else WarmUp(explorer) if warm else None
    app = build_app(explorer, warm_up)
    bound_server_memory()  # before the server's worker threads start (explorer/ui/allocator.py)
    # Two events at a time per event type: explanations are CPU-bound torch work, and on the 2-core
    # machines this targets more parallel runs only slow each other; the rest wait in Gradio's queue.
    # The queue is bounded so a flood of requests is answered "queue full" instead of growing memory.
    app.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        theme=THEME,
        css=CSS,
        footer_links=["api"],
        head=SHORTCUT_JS + preload_script(),
        **(gradio_login_options(sign_in, SIGN_IN_NOTICE) if sign_in else {}),
        allowed_paths=[],  # serve nothing from disk beyond Gradio's own upload/output cache
        max_file_size=MAX_BYTES,  # refuse larger uploads before they are written to disk
        **{**kwargs, "prevent_thread_lock": True},
    )
    if warm_up is not None:  # after the server is up: the first page is not kept waiting
        warm_up.start(explorer.default_model)
    if not kwargs.get("prevent_thread_lock"):
        app.block_thread()
    return app

"""The trust signals in the app's tabs (``explorer/ui/events``), called directly with nothing of the
core replaced: each pair's robustness badge in the Explain tab, the review queue of the Labels tab
(ranked, a row picked, labelled from, refreshed) and the Model card's prototype metrics, and the two
endpoints they add.

The shipped ``synthetic`` model carries its metrics (``weights/synthetic/analyses/``), so its queue
and table show at once; what is shown before anything is measured, and the first measurement with
its progress, are driven on the tiny trained model (a few seconds)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client

from explorer import Explorer, ReviewQueue, metrics_markdown
from explorer.ui.choices import PREDICTED
from explorer.ui.events import labels as label_events
from explorer.ui.events import model_card as card_events
from explorer.ui.events.explain import ROBUSTNESS_NOTE, TABLE_HEADERS, ExplainEvents
from explorer.validation import InputError
from tests.serving import served_app

MODEL = "synthetic"  # ships its metrics and nearest patches: its queue needs nothing computed
TINY = "tiny_synthetic"  # nothing stored: measured here (a few seconds)
NO_REQUEST = None  # the app without --auth


class ProgressRecord:
    """Stands in for the event's ``gr.Progress``: records what the bar is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, str | None]] = []

    def __call__(self, progress, desc=None, total=None, unit="steps") -> None:
        self.calls.append((progress, desc))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    folder = tmp_path_factory.mktemp("trust-events")
    return Explorer(cache_root=folder / "cache", label_path=folder / "labels.sqlite3")


@pytest.fixture
def tiny(tiny_run, tmp_path: Path) -> Explorer:
    """The tiny trained model with nothing stored."""
    folder, _ = tiny_run
    return Explorer([folder], cache_root=tmp_path / "cache", label_path=tmp_path / "labels.db")


def test_every_pair_of_an_explanation_carries_its_robustness_badge(shipped: Explorer) -> None:
    example = str(shipped.bundle(MODEL).examples()[0])
    summary, _, _, table, gallery, *_, shown = ExplainEvents(shipped).explain(
        example, MODEL, 10, "contribution", PREDICTED, "jet", False, None
    )
    pairs = shown.explanation.pairs
    assert table["headers"] == TABLE_HEADERS and TABLE_HEADERS[-1] == "robustness"
    assert len(table["data"]) == len(gallery) == len(pairs) == 10
    for pair, row, (_, caption) in zip(pairs, table["data"], gallery, strict=True):
        verdict = pair.robustness.verdict
        assert row[-1].startswith("robust (largest change" if verdict == "robust" else "fragile: ")
        mark = "✓ robust" if verdict == "robust" else "⚠ fragile: "
        assert re.match(rf"P{pair.prototype} \(\w+\) · {mark}.* · sim -?\d", caption), caption
    fragile = [p.prototype for p in pairs if p.robustness.verdict == "fragile"]
    assert fragile, "the first synthetic example has fragile matches (noise changes P1 and P4)"
    assert f"**Robustness:** {len(fragile)} of the 10 matches shown are fragile" in summary
    assert ", ".join(f"P{j}" for j in fragile) in summary
    # the rule is stated once, under the pairs
    assert "more than 20% of its value" in ROBUSTNESS_NOTE and "JPEG quality 75" in ROBUSTNESS_NOTE


def test_before_anything_is_measured_the_tabs_say_what_to_press_and_compute_nothing(
    tiny: Explorer,
) -> None:
    text, button = card_events.metrics_view(tiny, TINY)
    assert text.startswith(f"Not measured yet for *{TINY}*") and button["visible"] is True
    status, rows, number, picture, detail, label = label_events.open_queue(tiny, TINY)
    assert status.startswith(f"Not ranked yet for *{TINY}*") and rows == []
    assert (number, picture, detail, label) == (None, None, "", "")
    assert label_events.refresh_queue(tiny, TINY) == (gr.update(), gr.update())
    with pytest.raises(gr.Error, match=f"rank the prototypes of '{TINY}' first"):
        label_events.pick_queued(tiny, TINY, SimpleNamespace(index=[0, 1], row_value=[1, "P0"]))
    assert not tiny.has_metrics(TINY) and not tiny.has_nearest(TINY, "train")
    assert "Score = mean of the measured signals" in label_events.queue_rule_line()


@pytest.mark.slow
def test_the_buttons_measure_with_progress_then_the_tabs_show_what_is_stored(
    tiny: Explorer,
) -> None:
    progress = ProgressRecord()
    table = card_events.measure_metrics(tiny, TINY, progress)
    descriptions = [desc for _, desc in progress.calls]
    assert descriptions[0] == f"{card_events.METRICS_PASS}: loading the data set"
    assert descriptions[1] == f"{card_events.METRICS_PASS}: starting"
    assert descriptions[-1] == card_events.METRICS_PASS and progress.calls[-1][0][0] > 0
    assert table.startswith("Measured on the test split of `synthetic")
    for figure in ("Consistency", "Stability", "Class purity", "Background share", "Deletion AUC"):
        assert f"| {figure} |" in table
    # stored: the tab now shows it at once, and the button goes
    assert card_events.metrics_view(tiny, TINY) == (table, gr.update(visible=False))
    assert card_events.measured(tiny, TINY) == gr.update(visible=False)

    # the queue's first ranking finds the nearest patches of both splits, with progress
    progress = ProgressRecord()
    status, rows = label_events.rank_queue(tiny, TINY, progress)
    assert f"{label_events.QUEUE_PASS}: starting" in [desc for _, desc in progress.calls]
    total = tiny.num_prototypes(TINY)
    assert status.startswith(f"**0 of {total} prototypes reviewed** for *{TINY}*")
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1)) and rows
    assert label_events.open_queue(tiny, TINY)[:2] == (status, rows)  # stored: shown at once


def test_the_review_queue_drops_a_prototype_once_labelled(shipped: Explorer) -> None:
    status, rows = label_events.rank_queue(shipped, MODEL, ProgressRecord())
    assert status.startswith(f"**0 of 30 prototypes reviewed** for *{MODEL}*; 30 left")
    assert [row[0] for row in rows] == list(range(1, 31))
    labels = shipped.prototype_labels(MODEL)
    assert sorted(row[1] for row in rows) == sorted(labels)
    scores = [float(row[2]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(row[3] for row in rows)  # the reasons, joined
    # the synthetic model's exact duplicates (same push source) are flagged
    assert any("exact duplicate of a lower-numbered prototype" in row[3] for row in rows[:5])

    # a row clicked: its prototype, source patch, why it is there, and its label status
    top = rows[0]
    number, picture, detail, label = label_events.pick_queued(
        shipped, MODEL, SimpleNamespace(index=[0, 3], row_value=top)
    )
    assert labels[number] == top[1] and isinstance(picture, np.ndarray)
    assert detail.startswith(f"**{top[1]}** (rank 1, score {top[2]}): ")
    assert "Signals (0 best, 1 worst): background share" in detail
    assert f"P{number} has no current label" in label

    # labelled from the queue's controls: it leaves the queue, and an undo brings it back
    said = label_events.save_label(
        shipped, label_events.queued_prototype, "misleading", MODEL, number, "background", "",
        "Ana", NO_REQUEST,
    )  # fmt: skip
    assert said.startswith(f"Saved. current label of P{number}: **misleading**")
    status, rows = label_events.refresh_queue(shipped, MODEL)
    assert status.startswith("**1 of 30 prototypes reviewed**") and "29 left" in status
    assert top[1] not in [row[1] for row in rows] and len(rows) == 29
    assert rows[0][0] == 1  # ranked again from 1
    # a reviewed prototype still shows its detail, without a rank
    _, _, detail, _ = label_events.pick_queued(
        shipped, MODEL, SimpleNamespace(index=[0, 1], row_value=top)
    )
    assert detail.startswith(f"**{top[1]}** (score ")
    label_events.undo_last(shipped, label_events.queued_prototype, MODEL, number, "Ana", None)
    status, rows = label_events.refresh_queue(shipped, MODEL)
    assert status.startswith("**0 of 30 prototypes reviewed**") and rows[0][1] == top[1]

    # stored: opening the tab (or another model and back) shows the queue without a press
    assert label_events.open_queue(shipped, MODEL)[:2] == (status, rows)


def test_a_click_outside_the_queue_rows_is_refused_with_a_sentence(shipped: Explorer) -> None:
    for row in (None, [], ["header"], [1, "abc", 0.5, "x"], [1, "P99", 0.5, "x"]):
        with pytest.raises(gr.Error):
            label_events.pick_queued(shipped, MODEL, SimpleNamespace(index=[0, 0], row_value=row))
    with pytest.raises(InputError, match="click a row of the queue"):
        label_events.queued_prototype(None)
    with pytest.raises(gr.Error, match="click a row of the queue"):  # the controls' answer
        label_events.save_label(
            shipped, label_events.queued_prototype, "valid", MODEL, None, "", "", "Ana", NO_REQUEST
        )


def test_the_status_names_the_prototypes_no_class_weighs() -> None:
    queue = ReviewQueue(entries=(), reviewed=2, total=32, unused=(3, 17))
    status = label_events.queue_status("pip", queue)
    assert status.startswith("**2 of 32 prototypes reviewed** for *pip*; none left to review.")
    assert (
        "Left out: 2 prototypes that no class weighs (every last-layer weight zero: P3, P17)"
        in (status)
    )


def test_the_model_card_shows_shipped_metrics_at_once(shipped: Explorer) -> None:
    text, button = card_events.metrics_view(shipped, MODEL)
    assert text == metrics_markdown(shipped.evaluate(MODEL)) and button == gr.update(visible=False)
    assert text.startswith(f"Measured on the test split of `{MODEL}` (600 images")


@pytest.fixture(scope="module")
def client(shipped: Explorer) -> Iterator[Client]:
    with served_app(shipped) as url:
        yield Client(url, verbose=False)


def test_the_metrics_and_review_queue_endpoints_answer(shipped: Explorer, client: Client) -> None:
    assert client.predict(MODEL, api_name="/metrics") == metrics_markdown(shipped.evaluate(MODEL))
    status, queue = client.predict(MODEL, api_name="/review_queue")
    assert re.match(r"\*\*\d+ of 30 prototypes reviewed\*\*", status)
    assert queue["headers"] == label_events.QUEUE_HEADERS and len(queue["data"]) >= 29

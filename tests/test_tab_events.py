"""The event functions of the Prototypes, Redundancy and Labels tabs (``explorer/ui/events``), called
directly on a real Explorer over the tiny trained model: what each tab shows at first, with and
without stored analyses, the first pass with its progress, and the answers and refusals of each
event."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from explorer import DEFAULT_THRESHOLD, Explorer
from explorer.ui.choices import STRONGEST
from explorer.ui.events import bind
from explorer.ui.events import labels as label_events
from explorer.ui.events import prototypes as prototype_events
from explorer.ui.events import redundancy as redundancy_events
from explorer.ui.progress import time_left, tracked

MODEL = "tiny_synthetic"
NO_REQUEST = None  # the app without --auth: Gradio's request carries no user name


class ProgressRecord:
    """Stands in for the event's ``gr.Progress``: records what the bar is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, int | None], str, str]] = []

    def __call__(self, progress, desc=None, total=None, unit="steps") -> None:
        self.calls.append((progress, desc, unit))


def hidden(update: object) -> bool:
    return isinstance(update, dict) and update.get("visible") is False


@pytest.fixture
def fresh(tiny_run, tmp_path: Path) -> Explorer:
    """Nothing stored: the first passes are still to be made."""
    folder, _ = tiny_run
    return Explorer([folder], cache_root=tmp_path / "cache", label_path=tmp_path / "labels.db")


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Explorer, ProgressRecord]:
    """The nearest patches of both splits (and so the test-split scores) computed through the
    Prototypes tab's event, with the progress it reported."""
    folder, _ = tiny_run
    root = tmp_path_factory.mktemp("analysed")
    explorer = Explorer([folder], cache_root=root / "cache", label_path=root / "labels.db")
    progress = ProgressRecord()
    prototype_events.compute_nearest(explorer, MODEL, 2, progress)
    return explorer, progress


# --- the Prototypes tab ------------------------------------------------------------------------


def test_the_prototypes_tab_opens_on_prototype_0_and_says_what_is_not_computed(
    fresh: Explorer,
) -> None:
    number, details, source, self_map, weights, train, test = prototype_events.first_view(
        fresh, MODEL
    )
    assert number == 0 and details.startswith("### Prototype 0 — class")
    assert "Nearest train patches not computed yet: press *Compute nearest patches*" in details
    assert "Text view of the chart" in details
    assert (source["label"], self_map["label"]) == prototype_events.PICTURE_LABELS[True][1:]
    source, self_map = source["value"], self_map["value"]
    assert isinstance(source, np.ndarray) and source.ndim == 3 and source.any()
    assert isinstance(self_map, np.ndarray) and self_map.shape == source.shape
    assert weights is not None
    assert hidden(train) and hidden(test) and train["value"] == [] and test["value"] == []
    assert all(map(hidden, prototype_events.nearest_shown(fresh, MODEL)))  # after a failed pass


def test_a_model_chosen_later_opens_with_its_classes_grid_and_prototype_0(fresh: Explorer) -> None:
    names = fresh.class_names(MODEL)
    filter_update, grid, ids, number, details, *_ = prototype_events.open_model(fresh, MODEL)
    assert filter_update["value"] == prototype_events.ALL_CLASSES
    assert filter_update["choices"] == [("all classes", -1), *((n, k) for k, n in enumerate(names))]
    assert grid["label"] == prototype_events.PICTURE_LABELS[True][0]
    grid = grid["value"]
    assert ids == list(range(fresh.num_prototypes(MODEL))) and len(grid) == len(ids)
    assert [caption for _, caption in grid] == list(fresh.prototype_labels(MODEL))
    assert number == 0 and details.startswith("### Prototype 0")


def test_a_pipnet_opens_with_its_nearest_patches_standing_in_for_sources(tmp_path: Path) -> None:
    """No push: the grid, the source picture and every label show the nearest training patch
    (stored with the shipped folder), and the detail says in one line what does not apply."""
    pipnet = "synthetic_pipnet"
    fresh = Explorer(cache_root=tmp_path / "cache", label_path=tmp_path / "labels.db")
    _, grid, ids, number, details, source, self_map, *_ = prototype_events.open_model(fresh, pipnet)
    assert number == 0
    assert grid["label"] == prototype_events.PICTURE_LABELS[False][0]
    assert len(grid["value"]) == len(ids) == fresh.num_prototypes(pipnet)
    assert all(picture is not None for picture, _ in grid["value"])
    assert (source["label"], self_map["label"]) == prototype_events.PICTURE_LABELS[False][1:]
    assert "Not shown: projecting prototypes onto training patches (push) — a PIP-Net" in details
    nearest = fresh.nearest(pipnet, "train")
    assert f"patch, image {nearest.images[0, 0]}" in details and source["value"].ndim == 3


def test_the_class_filter_keeps_the_prototypes_of_the_class_it_names(fresh: Explorer) -> None:
    classes = fresh.prototype_classes(MODEL)
    for k, _ in enumerate(fresh.class_names(MODEL)):
        grid, ids = prototype_events.refilter(fresh, MODEL, k)
        assert ids == [j for j in range(len(classes)) if classes[j] == k] and len(grid) == len(ids)
    assert prototype_events.refilter(fresh, MODEL, None)[1] == list(range(len(classes)))


def test_stepping_goes_round_the_prototypes(fresh: Explorer) -> None:
    last = fresh.num_prototypes(MODEL) - 1
    assert prototype_events.step(fresh, -1, MODEL, 0) == last
    assert prototype_events.step(fresh, 1, MODEL, last) == 0
    assert prototype_events.step(fresh, 1, MODEL, None) == 1


def test_the_prototype_view_refuses_what_names_no_prototype(fresh: Explorer) -> None:
    with pytest.raises(gr.Error, match="Enter a prototype number"):
        prototype_events.show_prototype(fresh, MODEL, None)
    with pytest.raises(gr.Error, match="out of range"):
        prototype_events.show_prototype(fresh, MODEL, 999)
    with pytest.raises(gr.Error, match="out of range"):
        prototype_events.compute_nearest(fresh, MODEL, 999, ProgressRecord())
    assert not fresh.has_nearest(MODEL, "train")  # refused before the pass


def test_the_explain_tabs_choice_is_followed_unless_it_names_no_prototype(fresh: Explorer) -> None:
    for choice in (3, "3", "P3 · class1", "P3"):
        number, details, *_ = prototype_events.follow_choice(fresh, MODEL, choice)
        assert number == 3 and details.startswith("### Prototype 3"), choice
    for choice in (STRONGEST, None, "", 999, "nonsense"):
        shown = prototype_events.follow_choice(fresh, MODEL, choice)
        assert len(shown) == 7 and all(u == gr.update() for u in shown), choice


def test_the_first_pass_reports_batches_done_of_the_total_with_the_time_left(
    analysed: tuple[Explorer, ProgressRecord],
) -> None:
    explorer, progress = analysed
    assert explorer.has_nearest(MODEL, "train") and explorer.has_nearest(MODEL, "test")
    for split in ("train", "test"):
        calls = [c for c in progress.calls if c[1].startswith(f"Nearest patches, {split} split")]
        counts = [done for (done, _), _, _ in calls]
        total = calls[0][0][1]
        assert total and counts == list(range(total + 1)), split  # every batch, from 0 to all
        assert {unit for _, _, unit in calls} == {"batches"}
        assert calls[0][1].endswith(": starting")
        assert all(desc.endswith(" left") for (done, _), desc, _ in calls[1:] if done < total)


def test_with_nearest_patches_stored_the_tab_shows_them_at_once(
    analysed: tuple[Explorer, ProgressRecord],
) -> None:
    explorer, _ = analysed
    number, details, *_, train, test = prototype_events.first_view(explorer, MODEL)
    assert number == 0 and "not computed yet" not in details
    assert "**Nearest train patches**" in details and "from its own class" in details
    assert [u["visible"] for u in prototype_events.nearest_shown(explorer, MODEL)] == [True, True]
    for update, split in ((train, "train"), (test, "test")):
        assert update["visible"] is True and len(update["value"]) == 5
        picture, caption = update["value"][0]
        assert picture.ndim == 3 and caption.startswith(f"#1: {split} image ")


def test_the_progress_estimate_reads_as_a_person_would_say_it() -> None:
    assert time_left(0.2) == "about 1 s left" and time_left(40) == "about 40 s left"
    assert time_left(600) == "about 10 min left"
    record = ProgressRecord()
    assert list(tracked(record, "Counting")(iter("abc"))) == ["a", "b", "c"]  # no length: no total
    assert [c[0] for c in record.calls] == [(0, None), (1, None), (2, None), (3, None)]


# --- the Redundancy tab ------------------------------------------------------------------------


def test_without_stored_scores_the_redundancy_tab_says_what_to_press(fresh: Explorer) -> None:
    threshold, summary, heatmap, rows, crops, outcome, per_class = redundancy_events.first_view(
        fresh, MODEL
    )
    assert threshold == DEFAULT_THRESHOLD and hidden(rows)
    assert summary.startswith(f"No clusters yet for *{MODEL}*: press **Find clusters**")
    assert hidden(heatmap) and hidden(crops) and hidden(per_class)
    assert "Compute accuracy" in outcome
    assert all(map(hidden, redundancy_events.report_shown(fresh, MODEL)))  # after a failed pass
    assert hidden(redundancy_events.table_shown(fresh, MODEL))
    assert not fresh.has_nearest(MODEL, "test")  # opening the tab computes nothing


def test_finding_clusters_first_makes_the_test_pass_with_its_progress(fresh: Explorer) -> None:
    progress = ProgressRecord()
    summary, figure, *_ = redundancy_events.find_clusters(fresh, MODEL, 0.2, progress)
    assert "clusters at threshold 0.20" in summary and figure is not None
    assert progress.calls and progress.calls[-1][0][0] == progress.calls[-1][0][1]
    assert all(desc.startswith(redundancy_events.FIRST_PASS) for _, desc, _ in progress.calls)
    again = ProgressRecord()
    assert redundancy_events.find_clusters(fresh, MODEL, 0.2, again)[0] == summary
    assert again.calls == []  # the scores are stored now: no second pass


def test_with_stored_scores_the_redundancy_tab_shows_the_report_at_once(
    analysed: tuple[Explorer, ProgressRecord],
) -> None:
    explorer, _ = analysed
    _, summary, heatmap, rows, crops, outcome, per_class = redundancy_events.first_view(
        explorer, MODEL
    )
    report = explorer.redundancy(MODEL, threshold=DEFAULT_THRESHOLD)
    assert summary.startswith(f"{len(report.clusters)} clusters at threshold 0.20")
    assert heatmap["visible"] is True and heatmap["value"] is not None
    assert rows["visible"] is True and len(rows["value"]) == len(report.clusters)
    assert [row[0] for row in rows["value"]] == list(range(1, len(report.clusters) + 1))
    members = sum(len(c.members) for c in report.clusters)
    assert crops["visible"] is True and len(crops["value"]) == members
    assert outcome.startswith("The model as trained: test accuracy **")
    names = explorer.class_names(MODEL)
    assert [row[0] for row in per_class["value"]] == list(names)
    assert all(before == after for _, before, after in per_class["value"])
    assert [u["visible"] for u in redundancy_events.report_shown(explorer, MODEL)] == [True] * 3


def test_what_if_disables_and_merges_and_refuses_with_sentences(
    analysed: tuple[Explorer, ProgressRecord],
) -> None:
    explorer, _ = analysed
    outcome, per_class = redundancy_events.compute_what_if(explorer, MODEL, 0.2, "0, P1", None)
    assert outcome.startswith("**Disabled P0, P1**: test accuracy") and "→" in outcome
    assert len(per_class) == len(explorer.class_names(MODEL))
    direct = explorer.what_if(MODEL, disabled=[0, 1])
    assert f"**{direct.accuracy:.2%}**" in outcome
    clusters = explorer.redundancy(MODEL, threshold=0.6).clusters
    if clusters:
        outcome, _ = redundancy_events.compute_what_if(explorer, MODEL, 0.6, "", 1)
        assert outcome.startswith("**Cluster 1 merged into P")
    with pytest.raises(gr.Error, match="there are"):
        redundancy_events.compute_what_if(explorer, MODEL, 0.6, "", len(clusters) + 1)
    with pytest.raises(gr.Error, match="'P999' is not a prototype number"):
        redundancy_events.compute_what_if(explorer, MODEL, 0.2, "P999", None)
    with pytest.raises(gr.Error, match="name prototypes to disable or a cluster to merge"):
        redundancy_events.compute_what_if(explorer, MODEL, 0.2, " ", 0)


def test_the_typed_prototype_list_is_read_or_refused() -> None:
    assert redundancy_events.parse_prototypes("3, 7 P12 p3", 20) == [3, 7, 12]
    assert redundancy_events.parse_prototypes(None, 20) == []
    for bad in ("P20", "-1", "2.5", "٣"):
        with pytest.raises(ValueError, match="is not a prototype number between 0 and 19"):
            redundancy_events.parse_prototypes(bad, 20)


# --- labelling and the Labels tab --------------------------------------------------------------


def test_labels_are_saved_undone_and_shown_in_the_labels_tab(fresh: Explorer) -> None:
    text, rows, number, history = label_events.open_model(fresh, MODEL, "any", "", False)
    assert text.startswith("**0 of ") and "No labels yet" in text
    assert rows == [] and number == 0 and history == []

    def label(verdict: str, prototype: object) -> str:
        return bind(label_events.save_label, fresh, int, verdict)(
            MODEL, prototype, "background", "looks at the frame", "Dr Ana", NO_REQUEST
        )

    assert label("misleading", 1).startswith("Saved. current label of P1: **misleading**")
    assert label("valid", 2).startswith("Saved. current label of P2: **valid**")
    text, rows = label_events.show_labels(fresh, MODEL, "any", "", False)
    assert text.startswith("**2 of ") and "disabled by the what-if switch): P1." in text
    assert sorted(row[1] for row in rows) == [1, 2] and {row[6] for row in rows} == {"Dr Ana"}
    text, rows = label_events.show_labels(fresh, MODEL, "valid", "", False)
    assert [row[1] for row in rows] == [2]
    text, rows = label_events.show_labels(fresh, MODEL, "any", "Cleo", False)
    assert rows == [] and "No current label matches these filters." in text

    undone = bind(label_events.undo_last, fresh, int)(MODEL, 1, "Dr Ana", NO_REQUEST)
    assert undone.startswith("Undone. P1 has no current label; 2 events in its history.")
    again = bind(label_events.undo_last, fresh, int)(MODEL, 1, "Dr Ana", NO_REQUEST)
    assert again.startswith("Nothing to undo for P1.")
    assert [row[2] for row in label_events.show_history(fresh, MODEL, 1)] == [
        "misleading",
        "undo of #1",
    ]
    text, rows, history = label_events.refresh(fresh, MODEL, "any", "", False, 999)
    assert [row[1] for row in rows] == [2] and history == []  # out of range: empty, no error


def test_a_signed_in_user_labels_under_their_login(fresh: Explorer) -> None:
    alice = SimpleNamespace(username="alice")  # what Gradio's request carries with --auth
    bind(label_events.save_label, fresh, int, "unsure")(MODEL, 4, "", "", "not alice", alice)
    assert [e.reviewer for e in fresh.label_history(MODEL, 4)] == ["alice"]


def test_label_events_refuse_with_sentences(fresh: Explorer) -> None:
    save = bind(label_events.save_label, fresh, int, "valid")
    with pytest.raises(gr.Error, match="out of range"):
        save(MODEL, 999, "", "", "Ana", NO_REQUEST)
    with pytest.raises(gr.Error, match="reviewer must not be empty"):
        save(MODEL, 1, "", "", "  ", NO_REQUEST)
    with pytest.raises(gr.Error, match="Enter a prototype number"):
        label_events.show_history(fresh, MODEL, None)
    with pytest.raises(gr.Error, match="Choose a CSV or JSON file"):
        label_events.import_labels(fresh, MODEL, None, NO_REQUEST)
    with pytest.raises(gr.Error, match="choose an export among"):
        label_events.export_labels(fresh, MODEL, "nope")


def test_every_export_choice_writes_its_file_and_an_export_imports_back(
    fresh: Explorer, tmp_path: Path
) -> None:
    save = bind(label_events.save_label, fresh, int, "redundant")
    save(MODEL, 5, "", "same as P4", "Bo", NO_REQUEST)
    with pytest.raises(
        gr.Error, match="ProtoPDebug folders hold the prototypes labelled misleading"
    ):
        label_events.export_labels(fresh, MODEL, "ProtoPDebug folders (zip)")
    bind(label_events.save_label, fresh, int, "misleading")(MODEL, 6, "", "", "Bo", NO_REQUEST)
    files = {
        what: Path(label_events.export_labels(fresh, MODEL, what)) for what in label_events.EXPORTS
    }
    assert files["current labels (CSV)"].name == f"{MODEL}-labels.csv"
    assert files["full history (CSV)"].name == f"{MODEL}-label-history.csv"
    assert files["full history (JSON)"].name == f"{MODEL}-label-history.json"
    assert files["ProtoPDebug folders (zip)"].name == f"{MODEL}-protopdebug.zip"
    assert all(path.is_file() and path.stat().st_size > 0 for path in files.values())
    assert "same as P4" in files["current labels (CSV)"].read_text(encoding="utf-8")
    document = json.loads(files["full history (JSON)"].read_text(encoding="utf-8"))
    assert [e["prototype"] for e in document["events"]] == [5, 6]

    folder = fresh.model_info(MODEL).folder
    other = Explorer([folder], cache_root=tmp_path / "other", label_path=tmp_path / "other.db")
    bo = SimpleNamespace(username="Bo")
    message = label_events.import_labels(other, MODEL, str(files["full history (JSON)"]), bo)
    assert message == "Imported 2 new events (events already present are skipped)."
    assert label_events.import_labels(
        other, MODEL, str(files["full history (JSON)"]), bo
    ).startswith("Imported 0 new events")

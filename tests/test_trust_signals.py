"""Trust signals through the facade and the command line, on real weights: the shipped synthetic
model's metrics, an annotated ImageFolder measured exactly as the generator's arrays, the review
queue on the held-out planted-shortcut model, badges in the explain JSON and the case report, and
bad input answered with one line."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer import Explorer, ExplorerError
from explorer.analysis.metrics.evaluation import evaluate, stratified
from explorer.analysis.nearest import nearest_patches
from explorer.analysis.review_queue import precision_at_k
from explorer.api import WEIGHTS_DIR
from explorer.batch import explanation_record
from explorer.data.annotations import read_annotations
from explorer.data.folder import load_image_folder
from explorer.data.synthetic import PART_NAMES, generate
from tests.test_cli import ROOT, run_cli

MARKER_MODELS = ROOT / "bench" / "planted_shortcut_models"


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer()


@pytest.fixture(scope="module")
def synthetic_metrics(explorer: Explorer):
    return explorer.evaluate("synthetic")  # stored in the test cache: the CLI test reads it back


@pytest.mark.slow
def test_every_metric_of_the_shipped_synthetic_model(synthetic_metrics, explorer: Explorer) -> None:
    summary = synthetic_metrics.summary()
    # the figures of docs/method.md §9.1 (noise and random orders are seeded)
    assert summary["consistency"] == pytest.approx(33.3, abs=3.4)  # one prototype either way
    assert summary["stability"] == pytest.approx(34.0, abs=2.0)
    assert summary["class_purity"] == pytest.approx(0.86, abs=0.01)
    assert summary["object_share"] == pytest.approx(0.40, abs=0.01)
    assert summary["background_share"] == pytest.approx(0.603, abs=0.01)
    assert summary["insertion_auc"] > summary["random_insertion_auc"]
    assert synthetic_metrics.part_names == PART_NAMES
    assert len(synthetic_metrics.curves.images) == 120
    assert explorer.has_metrics("synthetic")
    again = explorer.evaluate("synthetic")  # read back from the store: the same figures
    assert again.summary() == pytest.approx(summary)


@pytest.mark.slow
def test_the_cli_prints_json_and_the_table(synthetic_metrics, tmp_path: Path) -> None:
    done = run_cli("evaluate", "--model", "synthetic", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["summary"]["consistency"] == pytest.approx(
        synthetic_metrics.summary()["consistency"]
    )
    assert len(record["prototypes"]) == 30 and record["images"] == 600
    assert "| Consistency |" in done.stderr and "EvalProtoPNet" in done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text()) == record
    assert "| Stability |" in (tmp_path / "metrics.md").read_text()


def write_annotated_folder(root: Path, data) -> None:
    """``data`` as an ImageFolder test split with parts.csv and masks (the documented layout)."""
    rows = []
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        name = f"{data.class_names[label]}/{i:03d}.png"
        path = root / "test" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        mask = root / "annotations" / "test" / "masks" / name
        mask.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(mask), data.extras["mask"][i] * 255)
        for k, part in enumerate(PART_NAMES):
            x, y = data.extras["keypoints"][i, k]
            rows.append({"image": name, "part": part, "x": repr(float(x)), "y": repr(float(y))})
    with (root / "annotations" / "test" / "parts.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "part", "x", "y"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_an_annotated_image_folder_measures_as_the_generators_arrays(
    tiny_folder_model: Path, tmp_path: Path
) -> None:
    data = generate(4, "test", seed=5, size=32, with_masks=True)
    write_annotated_folder(tmp_path / "annotated", data)
    loaded = load_image_folder(tmp_path / "annotated", "test", (32, 32))
    order = np.argsort([f"{data.class_names[c]}/{i:03d}" for i, c in enumerate(data.labels)])
    np.testing.assert_array_equal(loaded.images, data.images[order])
    np.testing.assert_array_equal(loaded.extras["mask"], data.extras["mask"][order])
    np.testing.assert_allclose(loaded.extras["keypoints"], data.extras["keypoints"][order])
    assert loaded.part_names == PART_NAMES

    explorer = Explorer([WEIGHTS_DIR, tiny_folder_model])
    by_folder = explorer.evaluate(
        "tiny_folder", data=str(tmp_path / "annotated"), faithfulness_images=6
    )
    model = explorer.bundle("tiny_folder").model
    arrays = data.subset(order)
    model_classes = explorer.class_names("tiny_folder")  # an ImageFolder's: sorted names
    as_model = np.array([model_classes.index(name) for name in data.class_names])
    arrays = dataclasses.replace(arrays, labels=as_model[arrays.labels], class_names=model_classes)
    nearest = nearest_patches(model, arrays.images, arrays.labels, "test")
    by_arrays = evaluate(model, arrays, nearest, faithfulness_images=6)
    assert by_folder.summary() == pytest.approx(by_arrays.summary(), nan_ok=True)
    assert by_folder.consistency is not None and by_folder.background_share is not None


def test_a_folder_without_annotations_measures_what_it_can(tiny_folder_model: Path) -> None:
    explorer = Explorer([WEIGHTS_DIR, tiny_folder_model])
    data_root = Path(explorer.spec("tiny_folder").dataset["name"])
    metrics = explorer.evaluate("tiny_folder", data=str(data_root), faithfulness_images=6)
    summary = metrics.summary()
    assert summary["consistency"] is None and summary["background_share"] is None
    assert summary["class_purity"] is not None and summary["deletion_auc"] is not None
    assert "not measured (needs keypoints)" in explorer_table(metrics)


def explorer_table(metrics) -> str:
    from explorer import metrics_markdown

    return metrics_markdown(metrics)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,part,x\n", "missing column(s) y"),
        ("image,part,x,y\nbase/nope.png,centre,1,2\n", "no image 'base/nope.png'"),
        ("image,part,x,y\nbase/000.png,centre,one,2\n", "x and y must be numbers"),
    ],
)
def test_a_bad_parts_file_is_refused_with_its_line(
    tmp_path: Path, content: str, message: str
) -> None:
    folder = tmp_path / "annotations" / "test"
    folder.mkdir(parents=True)
    (folder / "parts.csv").write_text(content)
    with pytest.raises(ExplorerError, match=re.escape(message)):
        read_annotations(tmp_path, "test", ["base/000.png"], [(64, 64)], (32, 32))


def test_keypoints_scale_with_the_image_and_a_missing_mask_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "annotations" / "test"
    folder.mkdir(parents=True)
    (folder / "parts.csv").write_text(
        "image,part,x,y\nbase/000.png,beak,10,20\nbase/001.png,tail,4,4\n"
    )
    extras, names = read_annotations(
        tmp_path, "test", ["base/000.png", "base/001.png"], [(64, 128), (64, 64)], (32, 32)
    )
    assert names == ("beak", "tail")
    np.testing.assert_allclose(extras["keypoints"][0, 0], [10 * 32 / 128, 20 * 32 / 64])
    assert extras["part_visible"].tolist() == [[True, False], [False, True]]
    (folder / "masks" / "base").mkdir(parents=True)
    cv2.imwrite(str(folder / "masks" / "base" / "000.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(ExplorerError, match=r"001\.png is missing"):
        read_annotations(
            tmp_path, "test", ["base/000.png", "base/001.png"], [(64, 64)] * 2, (32, 32)
        )


def test_bad_evaluate_inputs_get_one_line(tmp_path: Path) -> None:
    for args, message in (
        (("--data", str(tmp_path / "nowhere")), "unknown dataset"),
        (("--faithfulness-images", "-1"), "faithfulness_images"),
        (("--data", "synthetic", "--queue"), "leave out --data"),
        (("--data", "fashion_mnist"), "classes"),
    ):
        done = run_cli("evaluate", "--model", "synthetic", *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def test_stratified_takes_the_same_number_from_each_class() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert stratified(labels, 6).tolist() == [0, 1, 3, 4, 6, 7]
    assert stratified(labels, 0).tolist() == list(range(9))


@pytest.mark.slow
def test_the_held_out_marker_prototypes_head_the_review_queue() -> None:
    explorer = Explorer([WEIGHTS_DIR, MARKER_MODELS])
    locked = json.loads((MARKER_MODELS / "results-seed1.json").read_text())["lock_on"]["parent"][
        "locked"
    ]
    queue = explorer.review_queue("synthetic_marker-d1")
    assert precision_at_k(list(queue.entries), locked) == 1.0  # docs/method.md §9.3, seed 1
    assert {e.prototype for e in queue.entries if e.does_not_generalise} == set(locked)
    first = queue.entries[0].prototype
    explorer.label("synthetic_marker-d1", first, "misleading", "tester")
    after = explorer.review_queue("synthetic_marker-d1")
    assert first not in [e.prototype for e in after.entries]  # reviewed: it leaves the queue
    assert after.reviewed == queue.reviewed + 1 and len(after.entries) == len(queue.entries) - 1


def test_explain_json_and_the_case_report_carry_the_badges(explorer: Explorer) -> None:
    x = explorer.explain(
        explorer.example_image(0, "synthetic"), "synthetic", top_k=3, attribution=None
    )
    record = explanation_record(x, {})
    for pair in record["top_prototypes"]:
        badge = pair["robustness"]
        assert badge["verdict"] in ("robust", "fragile")
        assert set(badge["checks"]) == {"jpeg", "noise", "shift", "outside"}
        assert "20%" in badge["rule"]
    from explorer.report.case import build_case

    case = build_case(
        explorer, explorer.example_path(0, "synthetic"), "synthetic", top_k=3, attribution=None
    )
    assert all(
        p.robustness and p.robustness.split(" ")[0].rstrip(":") in ("robust", "fragile")
        for p in case.pairs
    )


@pytest.mark.slow
def test_prototypes_no_class_weighs_are_left_out_of_the_queue(
    tiny_folder_model: Path, tmp_path: Path
) -> None:
    import shutil

    import torch

    from explorer.models.checkpoint import load_model, save_model

    folder = tmp_path / "tiny_unused"
    shutil.copytree(tiny_folder_model, folder)
    bundle = load_model(folder)
    with torch.no_grad():
        bundle.model.class_weights[:, 3] = 0.0  # prototype 3 decides nothing now
    save_model(bundle.model, folder, bundle.projection)
    explorer = Explorer([WEIGHTS_DIR, folder])
    queue = explorer.review_queue("tiny_folder")
    assert queue.unused == (3,)
    assert 3 not in [e.prototype for e in queue.entries]
    assert len(queue.entries) == explorer.num_prototypes("tiny_folder") - 1

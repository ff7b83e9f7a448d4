"""PIP-Net's forward with answers on paper: softmax over the channels at every cell, max-pool,
presence below 0.1 is zero, a non-negative last layer, evidence that sums to the logit plus bias,
and the honest "nothing present" answer."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.errors import CheckpointError
from explorer.models.checkpoint import load_model, save_model
from explorer.models.pipnet import PRESENCE_THRESHOLD, PIPNet, presence
from explorer.spec import ModelSpec
from tests.conftest import tiny_spec


def _spec(
    prototypes: int, layout: tuple[str, ...] | None, bias: bool = False, size: int = 4
) -> ModelSpec:
    base = tiny_spec(
        backbone="identity", channels=3, classes=2, per_class=1, dim=prototypes, size=size
    )
    architecture = replace(
        base.architecture, family="pipnet", bias=bias, add_on_layout=layout,
        prototype_classes=tuple(j % 2 for j in range(prototypes)),
    )  # fmt: skip
    return replace(base, architecture=architecture, std=(0.1,) * 3)


def test_every_cell_votes_by_a_softmax_over_the_channels() -> None:
    # identity backbone, no conv: the 3 input channels are the prototypes; std 0.1 makes a pure
    # red pixel (10, 0, 0), whose softmax is (e^10, 1, 1) / (e^10 + 2)
    model = PIPNet(_spec(3, None)).eval()
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.5]]))
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    out = model(model.preprocess([red]))
    top = math.exp(10) / (math.exp(10) + 2)
    torch.testing.assert_close(out.similarity_maps.sum(dim=1), torch.ones(1, 4, 4))
    # green and blue reach 1 / (e^10 + 2) < 0.1: exactly zero
    torch.testing.assert_close(out.scores, torch.tensor([[top, 0.0, 0.0]]))
    torch.testing.assert_close(out.logits, torch.tensor([[2.0 * top, 0.0]]))


def test_negative_weights_add_nothing_and_the_bias_is_added() -> None:
    model = PIPNet(_spec(3, None, bias=True)).eval()
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor([[-5.0, 1.0, 1.0], [1.0, 1.0, 1.0]]))
        model.classification.bias.copy_(torch.tensor([0.25, 0.0]))
    grey = np.zeros((4, 4, 3), np.uint8)  # every channel 1/3 everywhere
    out = model(model.preprocess([grey]))
    torch.testing.assert_close(out.scores, torch.full((1, 3), 1 / 3))
    torch.testing.assert_close(out.logits, torch.tensor([[0.25 + 2 / 3, 1.0]]))
    model.clamp_weights()
    assert model.class_weights.min() == 0.0


def test_the_evidence_chart_and_the_comparison_end_at_the_logit_with_the_bias(tmp_path) -> None:
    """On paper: grey gives every presence 1/3; weights ``[[0, 1, 1], [1, 1, 1]]``, bias (0.25, 0.5):
    class 0's logit is 2/3 + 0.25, class 1's 1 + 0.5; the waterfall's last term is the bias and the
    comparison's bars sum to the gap −7/12."""
    from explorer import Explorer
    from explorer.viz.figures import comparison_figure, evidence_figure, evidence_terms

    model = PIPNet(_spec(3, None, bias=True, size=8)).eval()
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]))
        model.classification.bias.copy_(torch.tensor([0.25, 0.5]))
    save_model(model, tmp_path / "biased")
    explorer = Explorer(model_dirs=(tmp_path / "biased",), cache_root=tmp_path / "cache")
    acts = explorer.explain(np.zeros((8, 8, 3), np.uint8), "tiny", class_index=0).activations
    np.testing.assert_allclose(acts.logits, [2 / 3 + 0.25, 1.5], rtol=1e-6)
    np.testing.assert_allclose(acts.contributions.sum(axis=1) + acts.bias, acts.logits, rtol=1e-6)
    labels, values = evidence_terms(acts, 0, top=1)  # P0's weight to class 0 is 0: left out
    assert labels == ["P1", "other 1 prototypes", "bias"]
    assert values[-1] == pytest.approx(0.25) and sum(values) == pytest.approx(2 / 3 + 0.25)
    figure = evidence_figure(acts, 0, ("a", "b"))
    assert figure.layout.title.text.endswith(
        "and the bias sum to the logit (1 of 3 prototypes add exactly 0)"
    )
    assert figure.layout.xaxis.title.text == "presence × weight"
    bars = comparison_figure(acts, 0, 1, ("a", "b")).data[0]
    assert list(bars.y)[-1] == "bias" and sum(bars.x) == pytest.approx(2 / 3 + 0.25 - 1.5)
    # the scoring sheet: 5 of 6 weights non-zero, class 0 counts P1 and P2 (P0's weight is 0)
    sheet = explorer.scoring_sheet("tiny")
    assert sheet.nonzero_share == pytest.approx(5 / 6) and sheet.used == (0, 1, 2)
    assert sheet.rows[0].entries == ((1, 1.0), (2, 1.0)) and sheet.rows[0].bias == 0.25
    assert len(sheet.rows[1].entries) == 3 and sheet.score_name == "presence"
    assert "- *class1* (3): P0 × 1.00, P1 × 1.00, P2 × 1.00 + bias 0.50" in sheet.markdown()


def test_the_shipped_pipnets_scoring_sheet_is_its_recorded_sparsity(capsys) -> None:
    from explorer import Explorer
    from explorer.cli import main

    explorer = Explorer()
    sheet = explorer.scoring_sheet("synthetic_pipnet")
    recorded = explorer.spec("synthetic_pipnet").training["sparsity_test"]
    assert sheet.nonzero_share == pytest.approx(recorded["nonzero_weights"], abs=1e-4)
    assert main(["sheet", "--model", "synthetic_pipnet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["prototypes_used"] == list(sheet.used) and printed["score"] == "presence"


def test_an_image_where_nothing_is_present_gets_no_evidence() -> None:
    # twelve prototypes behind a zero 1x1 conv: every cell's softmax is 1/12 < 0.1
    model = PIPNet(_spec(12, ("conv:12",), bias=True)).eval()
    with torch.no_grad():
        model.add_on[0].weight.zero_()
        model.add_on[0].bias.zero_()
        model.classification.bias.copy_(torch.tensor([0.5, 0.0]))
    out = model(model.preprocess([np.full((4, 4, 3), 77, np.uint8)]))
    torch.testing.assert_close(out.similarity_maps, torch.full((1, 12, 4, 4), 1 / 12))
    assert torch.count_nonzero(out.scores) == 0
    torch.testing.assert_close(out.logits, torch.tensor([[0.5, 0.0]]))
    # the training pass is not thresholded (the public code's inference=False)
    _, pooled, logits = model.training_forward(model.preprocess([np.zeros((4, 4, 3), np.uint8)]))
    torch.testing.assert_close(pooled, torch.full((1, 12), 1 / 12))
    assert (logits > out.logits).all()


def test_presence_is_the_threshold_of_the_public_code() -> None:
    pooled = torch.tensor([0.0, 0.0999, PRESENCE_THRESHOLD, 0.7])
    assert presence(pooled).tolist() == pytest.approx([0.0, 0.0, 0.1, 0.7])


def test_a_pipnet_folder_round_trips_and_the_spec_is_checked(tmp_path) -> None:
    torch.manual_seed(1)
    model = PIPNet(_spec(6, ("conv:6",), bias=True, size=8)).eval()
    save_model(model, tmp_path / "m")
    copy = load_model(tmp_path / "m").model
    x = model.preprocess([np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)])
    torch.testing.assert_close(copy(x).logits, model(x).logits)
    data = _spec(6, ("conv:6",), size=8).to_dict()
    assert data["architecture"]["family"] == "pipnet"
    del data["architecture"]["prototype_classes"]
    with pytest.raises(CheckpointError, match="pipnet architecture lists prototype_classes"):
        ModelSpec.from_dict(data)
    protopnet = tiny_spec(backbone="identity", channels=3, classes=2, per_class=1, dim=3, size=8)
    data = protopnet.to_dict()
    assert "family" not in data["architecture"] and "bias" not in data["architecture"]
    data["architecture"]["bias"] = True
    with pytest.raises(CheckpointError, match="true only for pipnet"):
        ModelSpec.from_dict(data)


def _silent_pipnet_folder(folder: Path) -> Path:
    """A PIP-Net whose 12 prototypes are never present (a zero 1x1 conv: softmax 1/12 < 0.1)."""
    spec = _spec(12, ("conv:12",), bias=True, size=8)
    model = PIPNet(spec).eval()
    with torch.no_grad():
        model.add_on[0].weight.zero_()
        model.add_on[0].bias.zero_()
        model.classification.bias.copy_(torch.tensor([0.0, 0.0]))
    save_model(model, folder)
    return folder


def test_nothing_present_is_said_plainly_in_the_library_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from explorer import Explorer
    from explorer.cli import main
    from explorer.viz.text import explanation_summary

    folder = _silent_pipnet_folder(tmp_path / "silent")
    explorer = Explorer(model_dirs=(folder,), cache_root=tmp_path / "cache")
    image = np.full((8, 8, 3), 90, np.uint8)
    prediction = explorer.predict(image, "tiny")
    assert prediction.nothing_present and prediction.to_dict()["nothing_present"] is True
    assert all(p.contribution == 0.0 for p in prediction.top_prototypes)
    explanation = explorer.explain(image, "tiny", top_k=3)
    assert explanation.activations.nothing_present
    summary = explanation_summary(explanation)
    assert summary.startswith("**No prototype is present**") and "I don't know" in summary
    # a ProtoPNet has no presence threshold and never says so
    shipped = Explorer(cache_root=tmp_path / "cache2")
    assert not shipped.predict(shipped.example_image(0, "synthetic"), "synthetic").nothing_present
    path = tmp_path / "grey.png"
    from PIL import Image

    Image.fromarray(image).save(path)
    assert main(["predict", str(path), "--models", str(folder), "--model", "tiny"]) == 0
    assert '"nothing_present": true' in capsys.readouterr().out
    # the app: the Explain tab's event says it first, and its chart shows no evidence at all
    from explorer.ui.choices import PREDICTED
    from explorer.ui.events.explain import ExplainEvents

    summary, _, evidence, table, *_ = ExplainEvents(explorer).explain(
        str(path), "tiny", 3, "contribution", PREDICTED, "jet"
    )
    assert summary.startswith("**No prototype is present**") and "I don't know" in summary
    assert [y for y in evidence.data[0].y] == ["bias", "logit"]  # no prototype term
    assert all(row[5] == 0 for row in table["data"]) and table["headers"][3] == "presence"


def test_without_push_a_prototype_is_shown_by_its_nearest_training_patch(tmp_path: Path) -> None:
    from explorer.analysis.nearest import nearest_patches
    from explorer.analysis.prototypes import BY_NEAREST, prototype_view

    torch.manual_seed(2)
    save_model(PIPNet(_spec(6, ("conv:6",), size=8)).eval(), tmp_path / "m")
    bundle = load_model(tmp_path / "m")
    with pytest.raises(ValueError, match=r"no push sources .*compute them first"):
        prototype_view(bundle, 0)
    images = np.random.default_rng(4).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    nearest = nearest_patches(bundle.model, images, np.array([0, 1, 0, 1, 0]), "train", k=2)
    view = prototype_view(bundle, 3, {"train": nearest})
    assert view.shown_by == BY_NEAREST
    best = int(nearest.images[3, 0])
    assert view.record.source_index == best and np.array_equal(view.source, images[best])
    assert view.self_activation.shape == (8, 8)

"""Two models of one data set side by side: evidence per decision on paper, and the shipped
ProtoPNet beside the shipped PIP-Net through the library and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer import Explorer
from explorer.analysis.model_comparison import evidence_per_decision
from explorer.cli import main


def test_evidence_per_decision_on_paper() -> None:
    # image 1: logits (3, 0) → class 0, contributions (2, 1, 0): 2 add, 2 needed for 90 % of 3;
    # image 2: nothing present, no bias → class 0 by the argmax, nobody adds, none needed
    scores = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    weights = np.array([[2.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    adding, needed, predicted = evidence_per_decision(scores, weights, None)
    assert (adding, needed) == (1.0, 1.0) and list(predicted) == [0, 0]
    # a bias for class 1 turns image 2 to class 1, which no prototype adds to either
    _, _, predicted = evidence_per_decision(scores, weights, np.array([0.0, 0.5]))
    assert list(predicted) == [0, 1]


def test_the_shipped_protopnet_beside_the_pipnet(tmp_path, capsys) -> None:
    explorer = Explorer(cache_root=tmp_path / "cache")
    protopnet, pipnet = explorer.compare_models(["synthetic", "synthetic_pipnet"])
    assert (protopnet.family, pipnet.family) == ("ProtoPNet", "PIP-Net")
    for column in (protopnet, pipnet):  # the shipped scores (all, or a stratified half) agree
        assert column.images in (300, 600)
        assert column.accuracy == pytest.approx(column.recorded_accuracy, abs=0.01)
    assert pipnet.nonzero_weights < 0.30 < protopnet.nonzero_weights
    assert pipnet.used < pipnet.prototypes and pipnet.adding < protopnet.adding
    recorded = explorer.spec("synthetic_pipnet").training["sparsity_test"]
    assert pipnet.adding == pytest.approx(recorded["local_size"], abs=0.05)  # on 300 of 600
    assert (
        main(["compare", "--model", "synthetic", "--model", "synthetic_pipnet", "--markdown"]) == 0
    )
    table = capsys.readouterr().out
    assert "| family | ProtoPNet | PIP-Net |" in table
    assert main(["compare", "--model", "synthetic", "--model", "elpv"]) == 2
    assert "different data sets (elpv, synthetic)" in capsys.readouterr().err
    assert main(["compare", "--model", "synthetic", "--model", "synthetic_pipnet"]) == 0
    assert json.loads(capsys.readouterr().out)[1]["used"] == pipnet.used


def test_the_model_card_tab_sets_a_model_beside_the_others_of_its_data_set(tmp_path) -> None:
    from explorer.ui.tabs.model_card import comparison_text

    explorer = Explorer(cache_root=tmp_path / "cache")
    text = comparison_text(explorer, "synthetic_pipnet")
    assert text.startswith("## Beside the other models of `synthetic`")
    assert "| | `synthetic_pipnet` | `synthetic` |" in text
    assert comparison_text(explorer, "elpv") == ""  # the only model of its data set

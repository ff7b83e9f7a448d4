"""Attribute explanations through the Explorer: stored per model, read back, put into words."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.api import Explorer
from explorer.errors import ExplorerError


@pytest.fixture(scope="module")
def explorer(tiny_run, tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    folder, _ = tiny_run
    return Explorer([folder], cache_root=tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_global_attributes_are_stored_and_read_back(explorer: Explorer) -> None:
    with pytest.raises(ExplorerError, match="no global attribute explanation"):
        explorer.prototype_attributes(0, "tiny_synthetic")
    first = explorer.global_attributes("tiny_synthetic", "test", "reference")
    assert explorer.has_global_attributes("tiny_synthetic", "test", "reference")
    again = explorer.global_attributes("tiny_synthetic", "test", "reference")
    np.testing.assert_array_equal(first.phi, again.phi)
    assert first.images == len(explorer.dataset("tiny_synthetic", "test"))
    view = explorer.prototype_attributes(3, "tiny_synthetic")
    assert "reference reading" in view.sentence and "relative reading" in view.sentence
    assert view.test is not None and view.train is None and view.generalises is None


@pytest.mark.slow
def test_a_match_is_explained_beside_the_stored_global_explanation(explorer: Explorer) -> None:
    explorer.global_attributes("tiny_synthetic", "test", "disentangled")
    example = explorer.bundle("tiny_synthetic").examples()[0]
    match = explorer.match_attributes(example, 2, "tiny_synthetic", "disentangled")
    assert match.global_split == "test" and match.global_phi is not None
    assert match.names == ("hue", "shape", "texture", "contrast", "saturation")
    local = explorer.local_attributes(example, "tiny_synthetic", "disentangled")
    np.testing.assert_array_equal(match.local, local.phi[2])
    assert "φ" in match.sentence and "reading" in match.sentence


def test_grey_models_report_hue_and_saturation_not_applicable() -> None:
    explorer = Explorer()
    example = explorer.bundle("fashion_mnist").examples()[0]
    local = explorer.local_attributes(example, "fashion_mnist", "reference")
    assert set(local.not_applicable) == {"hue", "saturation"}
    columns = [local.modifications.index(n) for n in ("hue", "saturation")]
    assert np.abs(local.phi[:, columns]).max() < 1e-6
    curves = explorer.dose_curves(5, "fashion_mnist", "disentangled")
    for strengths, phi in curves.values():
        assert phi[0] == 0.0 and len(strengths) == len(phi)


def count_forwards(model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch size of every forward of this model's class from now on (each runs the real one)."""
    calls: list[int] = []
    original = type(model).forward

    def counting(self, x):
        calls.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(type(model), "forward", counting)
    return calls


def test_local_explanation_uses_one_batched_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    explorer = Explorer()
    bundle = explorer.bundle("synthetic")
    explorer.local_attributes(bundle.examples()[1], "synthetic", "reference")  # finds the grid once
    calls = count_forwards(bundle.model, monkeypatch)
    local = explorer.local_attributes(bundle.examples()[0], "synthetic", "reference")
    assert len(calls) == 1 and calls[0] <= 1 + len(local.modifications)
    assert local.phi.shape == (bundle.spec.num_prototypes, len(local.modifications))


def test_dose_curves_are_computed_once_and_handed_out_as_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Prototypes tab shows prototype 0's curves on every page load: the forwards run once."""
    explorer = Explorer()
    bundle = explorer.bundle("synthetic")
    first = explorer.dose_curves(3, "synthetic", "reference")
    calls = count_forwards(bundle.model, monkeypatch)
    for _, phi in first.values():
        phi += 100.0  # a caller changing what it was given
    again = explorer.dose_curves(3, "synthetic", "reference")
    assert calls == []  # remembered: no forward
    for (strengths, phi), (strengths_again, phi_again) in zip(
        first.values(), again.values(), strict=True
    ):
        assert strengths == strengths_again and phi_again[0] == 0.0
        np.testing.assert_allclose(phi - 100.0, phi_again)
    explorer.dose_curves(3, "synthetic", "disentangled")  # another set: computed
    assert len(calls) == len(first)  # one batched forward per attribute


def test_bad_prototype_index_is_refused(explorer: Explorer) -> None:
    example = explorer.bundle("tiny_synthetic").examples()[0]
    with pytest.raises(ValueError, match="out of range"):
        explorer.match_attributes(example, 999, "tiny_synthetic")


def test_cli_analyse_options() -> None:
    from explorer.cli import build_parser

    args = build_parser().parse_args(["analyse", "--model", "synthetic"])
    assert args.attributes == ["reference", "disentangled"] and not args.no_attributes
    args = build_parser().parse_args(["analyse", "--attributes", "disentangled", "--no-attributes"])
    assert args.attributes == ["disentangled"] and args.no_attributes


@pytest.mark.slow
def test_redundancy_uses_the_stored_attributes_as_its_explanatory_view(explorer: Explorer) -> None:
    explorer.global_attributes("tiny_synthetic", "test", "reference")
    report = explorer.redundancy("tiny_synthetic")
    assert "explanatory" in report.distances.weights
    assert report.distances.explanatory is not None

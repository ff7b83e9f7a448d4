"""The Explain tab explains an upload once: every panel reads the one explanation in the user's state.

The tab's real event functions (``explorer/ui/events``) are driven as Gradio calls them, and the
served app through ``gradio_client`` (whose session keeps the state between calls); the library's
explanations are counted by wrapping the Explorer instance's public ``explain`` method with a counter
that calls the real one. Nothing of the core is replaced.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file

from explorer import Explorer
from explorer.report import build_case
from explorer.ui.choices import (
    PREDICTED,
    STRONGEST,
    class_choices,
    class_index,
    prototype_choices,
    prototype_index,
    required_prototype,
)
from explorer.ui.events.attributes import MATCH_WAITING, READINGS, MatchEvents
from explorer.ui.events.explain import COMPARISON_WAITING, ExplainEvents, rival_class
from explorer.ui.events.state import Shown
from explorer.validation import InputError
from tests.counting import counting
from tests.serving import served_app

MODEL = "synthetic"  # the fastest shipped model


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    folder = tmp_path_factory.mktemp("explain-tab")
    return Explorer(cache_root=folder / "cache", label_path=folder / "labels.sqlite3")


@pytest.fixture(scope="module")
def example(explorer: Explorer) -> str:
    return str(explorer.bundle(MODEL).examples()[0])


def test_an_upload_and_every_panel_after_it_explain_the_image_once(
    explorer: Explorer, example: str
) -> None:
    explorer.label(MODEL, 0, "misleading", "Ana")  # so that the what-if model differs
    calls = counting(explorer)
    tab, section = ExplainEvents(explorer), MatchEvents(explorer)

    # the upload (what-if on): every panel of the explanation, and the state
    *panels, shown = tab.explain(example, MODEL, 10, "contribution", PREDICTED, "jet", True, None)
    summary, _, evidence, table, gallery, left, right, note, = panels  # fmt: skip
    assert isinstance(shown, Shown) and calls["explain"] == 1
    x = shown.explanation
    assert x.disabled == frozenset({0}) and "the model as trained" in summary
    assert len(gallery) == len(table["data"]) == 10 and evidence is not None
    assert table["headers"][3] == "similarity"
    assert left is not None and right is not None and "Grad-CAM" in note

    # the defaults that follow it: the runner-up comparison and the strongest match's attributes
    update, comparison, text = tab.default_comparison(shown)
    assert update["value"] == x.class_names[rival_class(x)] and comparison is not None
    assert text.startswith("**Text view of the chart** — Why")
    chart, words = section.default_match(example, MODEL, "reference", READINGS[0], shown)
    assert chart is not None and f"Prototype {x.pairs[0].prototype}" in str(chart.layout.title)
    assert "strongest match" in words

    # the panels a person then uses
    other = x.class_names[-1]
    figure, words = tab.why_not(example, MODEL, PREDICTED, other, shown)
    assert f"and not {other}" in str(figure.layout.title)
    default = tab.attribute(
        example, MODEL, PREDICTED, "Grad-CAM", "class", STRONGEST, False, False, "jet", None, shown
    )
    assert np.array_equal(default[0], left) and np.array_equal(default[1], right)
    assert calls["with_attribution"] == 1  # it handed back the stored map (see the test below)
    occlusion = tab.attribute(
        example,
        MODEL,
        PREDICTED,
        "Occlusion",
        "prototype",
        7,
        False,
        True,
        "jet",
        default[3],
        shown,
    )
    assert "Occlusion for prototype 7" in occlusion[2] and "prototype 7's own" in occlusion[2]
    picked = tab.pick_pair(shown, SimpleNamespace(index=2))
    assert picked == x.pairs[2].prototype
    section.explain_match(example, MODEL, picked, "reference", READINGS[0], shown)
    html, pdf = tab.case_report(example, MODEL, True, shown, progress=lambda *a, **k: None)
    assert x.content_hash in Path(html).read_text(encoding="utf-8")
    assert Path(pdf).read_bytes().startswith(b"%PDF")

    # Explain pressed again with the same inputs: the state is shown again, nothing is explained
    again = tab.explain(example, MODEL, 10, "contribution", PREDICTED, "jet", True, shown)
    assert again[-1] is shown
    print(f"\nlibrary calls for one upload and every panel: {dict(calls)}")
    assert calls["explain"] == 1 and calls["predict"] == 0
    assert calls["match_attributes"] == 2  # the default match, then the picked one


def test_without_a_state_each_endpoint_explains_its_inputs(
    explorer: Explorer, example: str
) -> None:
    """An API client has no state (or one made for another image): the inputs are explained."""
    calls = counting(explorer)
    tab, section = ExplainEvents(explorer), MatchEvents(explorer)
    _, words = tab.why_not(example, MODEL, PREDICTED, "hue", None)
    assert words.startswith("**Text view of the chart** — Why")
    assert calls["explain"] == 1
    *_, shown = tab.explain(example, MODEL, 3, "similarity", PREDICTED, "jet", False, None)
    other = str(explorer.bundle(MODEL).examples()[1])
    tab.why_not(other, MODEL, PREDICTED, "hue", shown)  # the state is another image's
    assert calls["explain"] == 3
    _, text = section.explain_match(other, MODEL, STRONGEST, "reference", READINGS[0], shown)
    assert calls["predict"] == 1 and "Sorted φ" in text  # the strongest match, without a state
    assert section.default_match(other, MODEL, "reference", READINGS[0], None) == (
        None,
        MATCH_WAITING,
    )
    assert tab.default_comparison(None)[2] == COMPARISON_WAITING
    assert tab.why_not(None, MODEL, PREDICTED, "hue", shown) == (None, COMPARISON_WAITING)


def test_the_attribution_is_recomputed_alone_and_the_default_is_the_stored_one(
    explorer: Explorer, example: str
) -> None:
    x = explorer.explain(example, MODEL)  # Grad-CAM of the predicted class
    assert explorer.with_attribution(x) is x
    assert explorer.with_attribution(x, "gradcam", "class", class_index=x.target_class) is x
    bare = explorer.explain(example, MODEL, attribution=None)
    for method in ("gradcam", "occlusion", "integrated_gradients"):
        for target, prototype in (("class", None), ("prototype", None), ("prototype", 4)):
            made = explorer.with_attribution(bare, method, target, prototype=prototype)
            fresh = explorer.explain(
                example, MODEL, attribution=method, attribution_target=target,
                attribution_prototype=prototype,
            )  # fmt: skip
            assert made.attribution.method == fresh.attribution.method == method
            assert made.attribution.target == fresh.attribution.target
            np.testing.assert_array_equal(made.attribution.values, fresh.attribution.values)
            assert made.pairs is bare.pairs and made.activations is bare.activations
    with pytest.raises(ValueError, match="out of range"):
        explorer.with_attribution(bare, "gradcam", "prototype", prototype=999)
    with pytest.raises(ValueError, match="another model"):
        explorer.with_attribution(dataclasses.replace(bare, content_hash="0" * 64))


def test_the_what_if_explanation_carries_the_model_as_trained(
    explorer: Explorer, example: str
) -> None:
    plain = explorer.predict(example, MODEL)
    x = explorer.explain(example, MODEL, attribution=None, disabled={0, 1, 2})
    assert x.disabled == frozenset({0, 1, 2})
    np.testing.assert_allclose(x.as_trained.logits, plain.logits, atol=1e-6)
    assert not np.allclose(x.activations.logits, plain.logits)
    same = explorer.explain(example, MODEL, attribution=None)
    assert same.as_trained is same.activations and same.disabled == frozenset()


def test_the_case_report_reuses_a_given_explanation(explorer: Explorer, example: str) -> None:
    x = explorer.explain(example, MODEL, top_k=10, disabled={0})
    calls = counting(explorer)
    case = build_case(explorer, example, MODEL, top_k=5, disabled={0}, explanation=x)
    assert calls["explain"] == 0 and calls["predict"] == 0
    assert [p.prototype for p in case.pairs] == [p.prototype for p in x.pairs[:5]]
    plain = explorer.predict(example, MODEL)
    assert case.as_trained == (
        plain.predicted_class,
        pytest.approx(plain.probabilities[plain.predicted], abs=1e-6),
    )
    with pytest.raises(ValueError, match="disabled"):
        build_case(explorer, example, MODEL, disabled=set(), explanation=x)


def test_dropdowns_carry_label_and_value_pairs(explorer: Explorer) -> None:
    choices = prototype_choices(explorer, MODEL)
    assert choices[0] == (STRONGEST, STRONGEST)
    assert choices[4] == (explorer.prototype_labels(MODEL)[3], 3)
    assert prototype_choices(explorer, MODEL, strongest=False)[0][1] == 0
    for sent, meant in (
        (3, 3),
        ("P3 · hue", 3),
        ("P3", 3),
        ("3", 3),
        (STRONGEST, None),
        (None, None),
    ):
        assert prototype_index(sent) == meant
    with pytest.raises(InputError, match="names no prototype"):
        prototype_index("abc")
    with pytest.raises(InputError, match="must be a whole number"):
        prototype_index(2.5)
    with pytest.raises(InputError, match="choose a prototype"):
        required_prototype(STRONGEST)
    names = explorer.class_names(MODEL)
    assert class_choices(explorer, MODEL)[0] == (PREDICTED, PREDICTED)
    assert class_choices(explorer, MODEL, predicted=False) == [(n, n) for n in names]
    assert class_index(explorer, MODEL, PREDICTED) is None
    assert class_index(explorer, MODEL, names[2]) == 2
    with pytest.raises(InputError, match="has no class 5"):
        class_index(explorer, MODEL, 5)  # a bare number names no class (API clients send names)


def test_a_pair_is_picked_by_its_place_among_the_states_pairs(
    explorer: Explorer, example: str
) -> None:
    tab = ExplainEvents(explorer)
    *_, shown = tab.explain(example, MODEL, 4, "similarity", PREDICTED, "jet", False, None)
    picked = [tab.pick_pair(shown, SimpleNamespace(index=i)) for i in range(4)]
    assert picked == [p.prototype for p in shown.explanation.pairs]
    import gradio as gr

    for state, index in ((shown, 4), (None, 0), (shown, "P3")):
        with pytest.raises(gr.Error, match="Pick the prototype from the list"):
            tab.pick_pair(state, SimpleNamespace(index=index))


@pytest.fixture(scope="module")
def served(explorer: Explorer) -> Iterator[tuple[Client, Counter]]:
    calls = counting(explorer)
    with served_app(explorer) as url:
        yield Client(url, verbose=False), calls


def test_through_the_app_one_session_explains_an_upload_once(
    served: tuple[Client, Counter], example: str
) -> None:
    """The API endpoints in one ``gradio_client`` session share its state, like a browser's panels;
    the explanation's follow-up defaults run for browsers only (they are not API events)."""
    client, calls = served
    before = calls.copy()
    summary, *_ = client.predict(
        handle_file(example), MODEL, 10, "contribution", PREDICTED, "jet", False,
        api_name="/explain",
    )  # fmt: skip
    _, text = client.predict(handle_file(example), MODEL, PREDICTED, "hue", api_name="/why_not")
    left, right, note = client.predict(
        handle_file(example), MODEL, PREDICTED, "Grad-CAM", "class", STRONGEST, False, False,
        "jet", api_name="/attribute",
    )  # fmt: skip
    html, pdf = client.predict(handle_file(example), MODEL, False, api_name="/report")
    made = calls - before
    print(f"\nlibrary calls through the app: {dict(made)}")
    assert summary.startswith("Predicted *") and text.startswith("**Text view of the chart**")
    assert left is not None and right is not None and "Grad-CAM" in note
    assert Path(html).is_file() and Path(pdf).is_file()
    assert made["explain"] == 1 and made["match_attributes"] == 0
    fresh = Client(client.src, verbose=False)  # another session: no state, so it explains
    fresh.predict(handle_file(example), MODEL, PREDICTED, "hue", api_name="/why_not")
    assert (calls - before)["explain"] == 2


def test_an_example_clicked_is_explained_in_one_step_and_its_copy_keeps_the_state(
    explorer: Explorer, tmp_path: Path
) -> None:
    """Clicking an example returns the image and its explanation from one event; the later panels
    name the copy Gradio keeps of that image (another path, the same bytes) and read the state."""
    calls = counting(explorer)
    tab = ExplainEvents(explorer)
    image, *panels, shown = tab.explain_example(
        MODEL, 10, "contribution", PREDICTED, "jet", False, None, SimpleNamespace(index=1)
    )
    original = explorer.example_path(1, MODEL)
    assert Path(image).read_bytes() == original.read_bytes() and Path(image) != original
    assert isinstance(shown, Shown) and len(panels[4]) == 10 and calls["explain"] == 1
    gradio_copy = tmp_path / "cache" / "image.png"  # where Gradio would keep it
    gradio_copy.parent.mkdir()
    gradio_copy.write_bytes(Path(image).read_bytes())
    tab.why_not(str(gradio_copy), MODEL, PREDICTED, "hue", shown)
    again = tab.explain(str(gradio_copy), MODEL, 10, "contribution", PREDICTED, "jet", False, shown)
    assert again[-1] is shown and calls["explain"] == 1  # the same image: nothing explained again
    with pytest.raises(gr.Error, match="example 99 does not exist"):
        tab.explain_example(
            MODEL, 10, "contribution", PREDICTED, "jet", False, None, SimpleNamespace(index=99)
        )

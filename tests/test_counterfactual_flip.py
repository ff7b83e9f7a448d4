"""Exact counterfactuals of both known-answer generators (``flip``): image ``i`` drawn again with one
attribute taken against its class changes in that attribute, measured on the pixels, and in nothing
else; the labels and every other draw stay. The ground truth of bench/known_answer_premise.py."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.data import blobs, synthetic
from explorer.data.drawing import FLIPPABLE
from tests.known_answer_measure import measure_attributes

GENERATORS = {
    "A": lambda flip=(): synthetic.generate(8, "test", seed=5, with_masks=True, flip=flip),
    "B": lambda flip=(): blobs.generate(8, "test", seed=105, flip=flip),
}
STATISTIC = {"hue": "hue", "saturation": "sat", "contrast": "contrast", "texture": "lap",
             "shape": "solidity"}  # fmt: skip
"""What each attribute is measured by (tests/known_answer_measure.py)."""


COUPLED = {
    ("B", "contrast", "texture"): "B's noise is signal-dependent (σ = k·√value): a darker "
    "object has less pixel noise, which the Laplacian variance reads as texture"
}
"""Measures that move with a flip by the generator's own physics, not by another attribute."""


def _difference(key: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if key == "hue":  # circular, degrees
        return np.abs((a - b + 180.0) % 360.0 - 180.0)
    return np.abs(a - b)


@pytest.fixture(scope="module", params=sorted(GENERATORS))
def plain(request: pytest.FixtureRequest) -> tuple[str, object, dict[str, np.ndarray]]:
    data = GENERATORS[request.param]()
    return request.param, data, measure_attributes(data)


@pytest.mark.parametrize("attribute", FLIPPABLE)
def test_a_flip_moves_its_attribute_across_and_leaves_the_others(
    plain: tuple[str, object, dict[str, np.ndarray]], attribute: str
) -> None:
    generator, data, before = plain
    flipped = GENERATORS[generator]((attribute,))
    after = measure_attributes(flipped)
    assert np.array_equal(data.labels, flipped.labels)
    names = data.class_names
    own = data.labels == names.index(attribute)
    base = data.labels == names.index("base")
    exact = flipped.extras["exact"]
    key = STATISTIC[attribute]
    # the class's images now measure like the base and the base's like the class: each lies
    # nearer to the other group's median than to its own group's
    medians = {"class": np.median(before[key][own]), "base": np.median(before[key][base])}
    gap = float(_difference(key, medians["class"], medians["base"]))
    for now, nearer, farther in ((own, "base", "class"), (base, "class", "base")):
        values = after[key][now & exact]
        margin = _difference(key, values, medians[farther]) - _difference(
            key, values, medians[nearer]
        )
        assert np.all(margin > 0), (nearer, margin, gap)
    # every other attribute measures as it did, image by image
    for other, other_key in STATISTIC.items():
        if other == attribute or (generator, attribute, other) in COUPLED:
            continue
        other_gap = float(
            _difference(
                other_key,
                np.median(before[other_key][data.labels == names.index(other)]),
                np.median(before[other_key][base]),
            )
        )
        change = _difference(other_key, after[other_key][exact], before[other_key][exact])
        assert change.max() < 0.3 * other_gap, (other, change.max(), other_gap)


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_no_flip_is_the_data_set_itself(generator: str) -> None:
    make = GENERATORS[generator]
    assert np.array_equal(make().images, make(()).images)
    with pytest.raises(ValueError, match="flip must name attributes among"):
        make(("brightness",))

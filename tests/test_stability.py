"""Local ranking stability under the modifications' seeds (explorer.analysis.stability)."""

from __future__ import annotations

import numpy as np

from explorer.analysis.attributes import local_attributes
from explorer.analysis.calibration import SCALES
from explorer.analysis.modifications import ATTRIBUTES, reference_set
from explorer.analysis.stability import is_seeded, ranking_stability, reseeded


def _image() -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:16, 0:16]
    disc = (np.hypot(x - 8, y - 7) < 5)[..., None]
    return np.where(disc, rng.uniform(60, 200, 3), rng.uniform(40, 220, 3)).astype(np.uint8)


def _swirl_set() -> tuple:
    return tuple(SCALES[a].make(0.5, 4.0) for a in ATTRIBUTES)


def test_a_deterministic_set_is_exact(random_model) -> None:
    result = ranking_stability(random_model, _image(), reference_set(brightness=None))
    assert result.deterministic and result.seeds == 1
    assert np.all(result.top_agreement == 1.0)
    assert "exact" in result.sentence(0)


def test_the_swirl_is_resampled_and_seed_zero_is_the_plain_explanation(random_model) -> None:
    mods = _swirl_set()
    assert [m.name for m in mods if is_seeded(m)] == ["shape"]
    result = ranking_stability(random_model, _image(), mods, seeds=4)
    assert result.seeded == ("shape",) and result.seeds == 4
    assert np.all((result.top_agreement >= 0.25) & (result.top_agreement <= 1.0))
    # other seeds are other changes: φ_shape differs; the other attributes' φ are unchanged
    plain = local_attributes(random_model, _image(), mods).phi
    other = local_attributes(random_model, _image(), [reseeded(m, 1) for m in mods]).phi
    shape = ATTRIBUTES.index("shape")
    assert not np.allclose(plain[:, shape], other[:, shape])
    rest = [i for i in range(len(ATTRIBUTES)) if i != shape]
    np.testing.assert_array_equal(plain[:, rest], other[:, rest])
    assert "of 4 seeds of shape" in result.sentence(0)


def test_reseeding_keeps_every_other_parameter() -> None:
    swirl = SCALES["shape"].make(0.5, 4.0)
    again = reseeded(swirl, 3)
    assert again.param("seed") == 3.0 and again.strength == swirl.strength
    assert again.param("wavelength_cells") == swirl.param("wavelength_cells")
    contrast = SCALES["contrast"].make(0.5, 4.0)
    assert reseeded(contrast, 3) is contrast

"""95th-percentile boxes and upsampling, against ProtoPNet's own crop code on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.boxes import high_activation_box, upsample_map


def reference_crop(activation_map: np.ndarray, percentile: float = 95) -> tuple[int, int, int, int]:
    """ProtoPNet's find_high_activation_crop (cfchen-duke/ProtoPNet), loops and all."""
    threshold = np.percentile(activation_map, percentile)
    mask = np.ones(activation_map.shape)
    mask[activation_map < threshold] = 0
    lower_y, upper_y, lower_x, upper_x = 0, 0, 0, 0
    for i in range(mask.shape[0]):
        if np.amax(mask[i]) > 0.5:
            lower_y = i
            break
    for i in reversed(range(mask.shape[0])):
        if np.amax(mask[i]) > 0.5:
            upper_y = i
            break
    for j in range(mask.shape[1]):
        if np.amax(mask[:, j]) > 0.5:
            lower_x = j
            break
    for j in reversed(range(mask.shape[1])):
        if np.amax(mask[:, j]) > 0.5:
            upper_x = j
            break
    return lower_y, upper_y + 1, lower_x, upper_x + 1


def test_box_on_a_hand_made_map() -> None:
    activation = np.zeros((20, 20))
    activation[3:8, 10:15] = 5.0  # 25 pixels = 6.25 % of 400: the 95th percentile is 5.0
    activation[4, 12] = 9.0
    assert high_activation_box(activation) == (3, 8, 10, 15) == reference_crop(activation)


@pytest.mark.parametrize("seed", range(20))
def test_box_matches_protopnet_crop_semantics_and_contains_the_argmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cells = rng.random((7, 7)) ** 3
    upsampled = upsample_map(cells, (224, 224))
    box = high_activation_box(upsampled)
    assert box == reference_crop(upsampled)
    y0, y1, x0, x1 = box
    ay, ax = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert y0 <= ay < y1 and x0 <= ax < x1
    assert (y1 - y0) * (x1 - x0) >= 0.05 * upsampled.size


def test_upsampling_is_bicubic_to_the_input_size() -> None:
    cells = np.arange(49, dtype=np.float32).reshape(7, 7)
    up = upsample_map(cells, (28, 56))
    assert up.shape == (28, 56) and up.dtype == np.float32
    import cv2

    np.testing.assert_array_equal(up, cv2.resize(cells, (56, 28), interpolation=cv2.INTER_CUBIC))


def test_constant_map_gives_the_whole_image() -> None:
    assert high_activation_box(np.ones((10, 12))) == (0, 10, 0, 12)

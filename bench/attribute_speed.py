"""Speed of the global attribute explanation, and parity with a reference-style implementation.

For each model, over ``--images`` test images and the reference modification set:

* batched (ours): every image modified once per modification, the original and its versions
  preprocessed together and forwarded in batches; time per image split into the modification share
  and the forward share (preprocess + forward);
* plain inference of the very same forward images (each original and its versions) in the same
  batches, interleaved chunk by chunk with the batched path so both see the same content and machine
  state (ELPV forwards run 10-15 ms/img depending on the image): the forward share should run at
  ≥ 0.8 × its throughput;
* reference-style: a loop per image and per modification with one forward each, as the public code
  does (optionally with its JPEG round trip), and the speed ratio. Parity is checked with the model
  in float64 (both ways must agree to 1e-5; they do to ~1e-12): in float32 the batched and the
  single-image convolution kernels differ in the last bits, which the bench also prints.

    python -m bench.attribute_speed [--images 200] [--jpeg]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image

from explorer.analysis.attribute_sets import feature_grid, modification_set
from explorer.analysis.attributes import attribute_batch
from explorer.api import Explorer
from explorer.models.preprocess import forward_batch_size, preprocess


def rgb_of(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def jpeg_round_trip(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@torch.inference_mode()
def reference_loop(model, images, mods, jpeg: bool) -> np.ndarray:
    """φ [N, P, M] the slow way: one forward per image and per modification."""
    out = []
    for image in images:
        rgb = rgb_of(image)
        original = model(model.preprocess([rgb])).similarity_maps[0]  # [P, h, w]
        flat = original.flatten(1)
        cells = flat.argmax(dim=1)
        s = flat.gather(1, cells[:, None])[:, 0]
        phi = []
        for mod in mods:
            modified = mod.apply(rgb)
            if jpeg:
                modified = jpeg_round_trip(modified)
            maps = model(model.preprocess([modified])).similarity_maps[0].flatten(1)
            phi.append((s.double() - maps.gather(1, cells[:, None])[:, 0].double()).numpy())
        out.append(np.stack(phi, axis=1))
    return np.stack(out)


def batched(model, images, mods, originals: int, timings: dict | None) -> tuple[np.ndarray, int]:
    """φ [N, P, M] the explorer's way; also how many images went through the network."""
    phis, forwarded = [], 0
    for start in range(0, len(images), originals):
        batch = attribute_batch(model, images[start : start + originals], mods, timings=timings,
                                reuse_unchanged=False)  # fmt: skip
        forwarded += batch.forwarded
        phis.append(batch.phi)
    return np.concatenate(phis), forwarded


def interleaved(model, images, mods, originals: int) -> tuple[np.ndarray, int, dict, float]:
    """The explorer's batched φ and plain inference of the very same forward images (each original
    and its modified versions), chunk by chunk, so both see the same content and machine state.

    Returns:
        φ ``[N, P, M]``, images forwarded, the batched path's ``modify``/``forward`` seconds, and the
        plain path's seconds (preprocess + forward, as the forward share).
    """
    timings = {"modify": 0.0, "forward": 0.0}
    phis, forwarded, plain = [], 0, 0.0
    for start in range(0, len(images), originals):
        chunk = images[start : start + originals]
        batch = attribute_batch(model, chunk, mods, timings=timings, reuse_unchanged=False)
        phis.append(batch.phi)
        forwarded += batch.forwarded
        originals_rgb = [rgb_of(im) for im in chunk]
        versions = [v for rgb in originals_rgb for v in (rgb, *(m.apply(rgb) for m in mods))]
        started = time.perf_counter()
        with torch.inference_mode():
            model(model.preprocess(versions))
        plain += time.perf_counter() - started
    return np.concatenate(phis), forwarded, timings, plain


def float64_parity(model, images, mods, originals: int) -> float:
    """Max |Δφ| between the batched and the loop implementation with the model in float64."""
    model.double()
    model.preprocess = lambda ims: preprocess(ims, model.spec).double()
    try:
        gap = np.abs(batched(model, images, mods, originals, None)[0]
                     - reference_loop(model, images, mods, jpeg=False)).max()  # fmt: skip
    finally:
        del model.preprocess
        model.float()
    return float(gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--jpeg", action="store_true", help="also time the loop with JPEG round trips"
    )
    parser.add_argument("--models", nargs="*", help="model ids (default: every model)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"{args.images} test images per model, reference set, forward batches as the explorer")
    print(
        f"{'model':<15}{'modify ms/img':>14}{'forward ms/img':>15}{'fwd img/s':>11}{'plain img/s':>12}"
        f"{'fwd/plain':>10}{'loop ms/img':>12}{'batched ×':>10}{'|Δφ| f32':>10}{'|Δφ| f64':>10}"
    )
    for model_id in args.models or explorer.model_ids():
        bundle = explorer.bundle(model_id)
        model = bundle.model
        images = explorer.dataset(model_id, "test").images[: args.images]
        mods = modification_set(model, "reference", images.shape[1:], feature_grid(model))
        per_pass = forward_batch_size(model.spec)
        originals = max(1, per_pass // (1 + len(mods)))
        interleaved(model, images[: 2 * originals], mods, originals)  # warm-up (oneDNN kernels)
        phi, forwarded, timings, plain_seconds = interleaved(model, images, mods, originals)
        batched_seconds = timings["modify"] + timings["forward"]
        started = time.perf_counter()
        loop_phi = reference_loop(model, images, mods, jpeg=False)
        loop_seconds = time.perf_counter() - started
        n = len(images)
        double_gap = float64_parity(model, images[:20], mods, originals)
        forward_rate = forwarded / timings["forward"]
        plain_rate = forwarded / plain_seconds
        print(
            f"{model_id:<15}{1000 * timings['modify'] / n:>14.2f}{1000 * timings['forward'] / n:>15.2f}"
            f"{forward_rate:>11.0f}{plain_rate:>12.0f}{forward_rate / plain_rate:>10.2f}"
            f"{1000 * loop_seconds / n:>12.2f}{loop_seconds / batched_seconds:>10.1f}"
            f"{np.abs(loop_phi - phi).max():>10.1e}{double_gap:>10.1e}"
        )
        share = timings["modify"] / (timings["modify"] + timings["forward"])
        print(f"{'':<15}modifications take {share:.0%} of the batched time"
              + (" — on this model the modifications, not the network, set the pace" if share > 0.5 else ""))  # fmt: skip
        if args.jpeg:
            jpeg_phi = reference_loop(model, images, mods, jpeg=True)
            print(f"{'':<15}with the reference's JPEG round trip: mean |Δφ| "
                  f"{np.abs(jpeg_phi - phi).mean():.4f}, max {np.abs(jpeg_phi - phi).max():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()

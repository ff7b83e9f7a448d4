"""The model card: a Markdown description of a model folder, written next to its weights."""

from __future__ import annotations

from explorer.spec import ModelSpec

ACCURACY_LABELS = {
    "after_warm": "after warm-up",
    "before_push": "before push (after joint training)",
    "after_push": "right after push",
    "after_last_layer": "final: after push + last-layer optimisation",
    "train_after_last_layer": "final, on the training split",
}


def model_card_markdown(spec: ModelSpec) -> str:
    """A README for ``weights/<model_id>/``: what it is, its data and licence, measured accuracy,
    and the command that reproduces it."""
    arch = spec.architecture
    training = spec.training
    rows = "\n".join(
        f"| {ACCURACY_LABELS.get(key, key)} | {value:.2%} |" for key, value in spec.accuracy.items()
    )
    dataset = spec.dataset
    return f"""# {spec.title}

{spec.description}

- Classes ({spec.num_classes}): {", ".join(spec.class_names)}
- Architecture: ProtoPNet on `{arch.backbone}` {arch.backbone_options or ""}, {arch.prototypes_per_class} prototypes per class ({spec.num_prototypes} in all), prototype depth {arch.prototype_dim}
- Input: {spec.input_size[0]}×{spec.input_size[1]}, {"grey" if spec.grey_input else "RGB"}, normalised with mean {list(spec.mean)}, std {list(spec.std)}
- Data: `{dataset.get("name", "?")}`, {dataset.get("train_images", "?")} training and {dataset.get("test_images", "?")} test images

## Licence

{spec.licence}

## Measured test accuracy

| stage | accuracy |
|---|---|
{rows}

Measured by the training run itself on the full test split (seed {training.get("seed", "?")}, {training.get("minutes", "?")} min on 2 CPU cores, torch {training.get("torch", "?")}).

## Reproduce

```
python -m explorer train --preset {spec.model_id} --out weights/{spec.model_id}
```

The full configuration is recorded under `training` in `spec.json`. The folder is self-contained: each
prototype's source image (`sources/`, at model-input size) and box (`projection.json`), and example test
images per class (`examples/`), so the explorer can show the model without its training data.
"""

"""The model card: a Markdown description of a model folder, written next to its weights."""

from __future__ import annotations

import numpy as np

from explorer.spec import DEFAULT_EPSILON, ModelSpec

ACCURACY_LABELS = {
    "after_warm": "after warm-up",
    "before_push": "before push (after joint training)",
    "after_push": "right after push",
    "after_last_layer": "final: after push + last-layer optimisation",
    "train_after_last_layer": "final, on the training split",
}


def architecture_line(spec: ModelSpec) -> str:
    """One line on the network: backbone, prototypes (per class when not in equal blocks), depth,
    add-on stages and the similarity function when they differ from ours."""
    arch = spec.architecture
    counts = np.bincount(spec.prototype_classes, minlength=spec.num_classes)
    per_class = (
        f"{counts[0]} prototypes per class"
        if (counts == counts[0]).all()
        else f"{counts.min()}–{counts.max()} prototypes per class"
    )
    parts = [
        f"ProtoPNet on `{arch.backbone}` {arch.backbone_options or ''}".rstrip(),
        f"{per_class} ({spec.num_prototypes} in all)",
        f"prototype depth {arch.prototype_dim}",
    ]
    if arch.add_on_widths and len(arch.add_on_widths) > 1:
        parts.append(f"bottleneck add-on {' → '.join(map(str, arch.add_on_widths))}")
    if arch.activation == "linear":
        parts.append("similarity −d (the original code's 'linear' activation)")
    elif arch.epsilon != DEFAULT_EPSILON:
        parts.append(f"similarity log((d + 1) / (d + {arch.epsilon:g}))")
    return ", ".join(parts)


def _provenance(spec: ModelSpec) -> str:
    training = spec.training
    if "imported_from" in training:
        return f"""## Origin

Imported from `{training["imported_from"]}` ({training.get("format", "?")} checkpoint, SHA-256
`{str(training.get("sha256", "?"))[:16]}…`) by `python -m explorer import`; no code from the file was
executed. Training settings are those of the tool that trained it and are not recorded here.
"""
    return f"""## Reproduce

```
python -m explorer train --preset {spec.model_id} --out weights/{spec.model_id}
```

The full configuration is recorded under `training` in `spec.json`."""


def model_card_markdown(spec: ModelSpec) -> str:
    """A README for ``weights/<model_id>/``: what it is, its data and licence, measured accuracy,
    and the command that reproduces it (or where it was imported from)."""
    rows = "\n".join(
        f"| {ACCURACY_LABELS.get(key, key)} | {value:.2%} |" for key, value in spec.accuracy.items()
    )
    dataset = spec.dataset
    return f"""# {spec.title}

{spec.description}

- Classes ({spec.num_classes}): {", ".join(spec.class_names)}
- Architecture: {architecture_line(spec)}
- Input: {spec.input_size[0]}×{spec.input_size[1]}, {"grey" if spec.grey_input else "RGB"}, normalised with mean {list(spec.mean)}, std {list(spec.std)}
- Data: `{dataset.get("name", "?")}`, {dataset.get("train_images", "?")} training and {dataset.get("test_images", "?")} test images

## Licence

{spec.licence}

## Measured test accuracy

| stage | accuracy |
|---|---|
{rows}

{_accuracy_source(spec)}

{_provenance(spec)} The folder is self-contained: each
prototype's source image (`sources/`, at model-input size) and box (`projection.json`), and example test
images per class (`examples/`), so the explorer can show the model without its training data.
"""


def _accuracy_source(spec: ModelSpec) -> str:
    training = spec.training
    if "imported_from" in training:
        return "Measured at import on the test split given with `--data` (none given: no figure)."
    return (
        f"Measured by the training run itself on the full test split (seed {training.get('seed', '?')}, "
        f"{training.get('minutes', '?')} min on 2 CPU cores, torch {training.get('torch', '?')})."
    )

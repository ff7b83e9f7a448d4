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
    "before_cleanup": "PIP-Net: after training, before silent prototypes lose their weights",
    "test": "on the test split of the ImageFolder given at import",
    "parent_after_last_layer": "the parent model, before the retrain",
}
PIPNET_ACCURACY_LABELS = {  # a PIP-Net has no push: its final stage is the cleanup after training
    **ACCURACY_LABELS,
    "after_last_layer": "final: after pretraining, training and the silent-prototype cleanup",
}


def architecture_line(spec: ModelSpec) -> str:
    """One line on the network: backbone, prototypes (per class when not in equal blocks), depth,
    add-on stages and the similarity function when they differ from ours."""
    arch = spec.architecture
    if arch.family == "pipnet":
        return _pipnet_line(spec)
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


def _pipnet_line(spec: ModelSpec) -> str:
    """PIP-Net: prototypes belong to no class; what the head computes, and its measured size."""
    arch = spec.architecture
    conv = f"a 1x1 conv to {arch.prototype_dim} channels, then " if arch.add_on_layout else ""
    line = (
        f"PIP-Net on `{arch.backbone}` {arch.backbone_options or ''}".rstrip()
        + f", {arch.prototype_dim} prototypes ({conv}a softmax over the channels at every cell; "
        "presence = the max over cells, below 0.1 set to 0), non-negative last layer"
        + (" with a bias" if arch.bias else "")
    )
    size = spec.training.get("sparsity_test")
    if size:
        line += (
            f"; measured on the test split: {size['nonzero_weights']:.0%} of the weights non-zero, "
            f"{size['prototypes_used']} prototypes used, {size['prototypes_per_class']:g} per class, "
            f"{size['present_per_image']:g} present per image on average, "
            f"{size['abstained']:.1%} of images with no evidence"
        )
    return line


def _imported(spec: ModelSpec) -> bool:
    return "imported_from" in spec.training


def _data_line(spec: ModelSpec) -> str:
    dataset = spec.dataset
    if not dataset.get("name"):
        return "not given (imported without `--data`: analyses over a data set need an ImageFolder)"
    return (
        f"`{dataset['name']}`, {dataset.get('train_images', '?')} training and "
        f"{dataset.get('test_images', '?')} test images"
    )


def _on_object_line(spec: ModelSpec) -> str:
    """Where the prototypes were projected, when the training data had object masks."""
    counts = spec.training.get("prototypes_on_object")
    if not counts:
        return ""
    on, total = int(counts["on_object"]), int(counts["prototypes"])
    cover = float(counts.get("min_cover", 0.5))
    return (
        f"\n- Prototypes on the object: {on} of {total} were projected onto feature cells at least "
        f"{cover:.0%} covered by the object (the training data's object masks); {total - on} sit on "
        f"the background{', where no attribute of the object can be read' if total - on else ''}"
    )


def _accuracy_section(spec: ModelSpec) -> str:
    if not spec.accuracy:
        return "Not measured here (import with `--data` to measure it on the ImageFolder's test split)."
    labels = PIPNET_ACCURACY_LABELS if spec.architecture.family == "pipnet" else ACCURACY_LABELS
    rows = "\n".join(
        f"| {labels.get(key, key)} | {value:.2%} |" for key, value in spec.accuracy.items()
    )
    training = spec.training
    if _imported(spec):
        source = "Measured at import on the test split of the ImageFolder given with `--data`."
    else:
        source = (
            f"Measured by the training run itself on the full test split (seed "
            f"{training.get('seed', '?')}, {training.get('minutes', '?')} min on 2 CPU cores, torch "
            f"{training.get('torch', '?')})."
        )
    return f"| stage | accuracy |\n|---|---|\n{rows}\n\n{source}"


SOURCE_WORDS = {  # by the kinds of explorer.models.importers.sources
    "push folder": "the original push folder (its source images and boxes)",
    "nearest training patch": "each prototype's nearest training patch of its own class in the ImageFolder given "
    "with `--data` (found at import; the prototypes were not changed)",
    "unknown": "unknown: the checkpoint came without its push folder or training data, so no source "
    "patches are stored; re-import with `--push-dir` or `--data` to add them",
}


def _lineage(spec: ModelSpec) -> str:
    """A retrained model: its parent, the labels and settings it was retrained from, and how."""
    lineage = spec.lineage
    parent = lineage.get("parent", {})
    labels = "".join(
        f"\n- P{r.get('prototype')}: {r.get('verdict')}"
        + (f" ({r['reason']})" if r.get("reason") else "")
        + (f", by {r['reviewer']}" if r.get("reviewer") else "")
        for r in lineage.get("labels", ())
    )
    cut_outs = lineage.get("cut_outs", {})
    config = lineage.get("config", {})
    settings = ", ".join(f"{k} {v}" for k, v in config.items())
    return f"""## Lineage

Retrained from `{parent.get("model_id")}` (content hash `{parent.get("content_hash")}`) with
{lineage.get("method", "?")}: {len(cut_outs.get("forbidden", ()))} forbidden and
{len(cut_outs.get("remembered", ()))} remembered cut-outs, from these labels:{labels}

Settings: {settings}. It took {spec.training.get("minutes", "?")} min; the parent's training took
{parent.get("training_minutes", "?")} min. To do it again: give the parent the same labels, then
`python -m explorer debug --model {parent.get("model_id")} --seed {config.get("seed", 0)}`. Every
cut-out (training image and box) is listed under `lineage` in `spec.json`.
"""


def _provenance(spec: ModelSpec) -> str:
    training = spec.training
    if spec.lineage:
        return _lineage(spec)
    if _imported(spec):
        notes = "".join(f"\n- {note}" for note in training.get("notes", ()))
        sources = training.get("sources", "unknown")
        return f"""## Origin

Imported from `{training["imported_from"]}` ({training.get("format", "?")} checkpoint, SHA-256
`{str(training.get("sha256", "?"))[:16]}…`) by `python -m explorer import`; no code from the file was
executed. Training settings are those of the tool that trained it and are not recorded here.

Prototype sources: {SOURCE_WORDS.get(sources, sources)}.{notes}
"""
    return """## Reproduce

```
python -m explorer train --preset {model_id} --out weights/{model_id}
```

The full configuration is recorded under `training` in `spec.json`. {contents}
""".replace("{model_id}", spec.model_id).replace(
        "{contents}", FOLDER_CONTENTS[spec.architecture.family]
    )


FOLDER_CONTENTS = {  # what a trained model's folder holds so that it can be shown without its data
    "protopnet": "The folder is self-contained: each\nprototype's source image (`sources/`, at model-input "
    "size) and box (`projection.json`), and example test\nimages per class (`examples/`), so the explorer "
    "can show the model without its training data.",
    "pipnet": "A PIP-Net has no push step: each\nprototype is shown by its nearest training patches, "
    "stored with the folder's analyses (`analyses/`,\nonce `python -m explorer analyse --into-folder` has "
    "run), beside example test images per class (`examples/`).",
}


def model_card_markdown(spec: ModelSpec) -> str:
    """A README for ``weights/<model_id>/``: what it is, its data and licence, measured accuracy,
    and the command that reproduces it (or where it was imported from)."""
    licence = spec.licence or (
        "Not stated: an imported checkpoint carries its owner's licence." if _imported(spec) else ""
    )
    return f"""# {spec.title}

{spec.description}

- Classes ({spec.num_classes}): {", ".join(spec.class_names)}
- Architecture: {architecture_line(spec)}
- Input: {spec.input_size[0]}×{spec.input_size[1]}, {"grey" if spec.grey_input else "RGB"}, normalised with mean {list(spec.mean)}, std {list(spec.std)}
- Data: {_data_line(spec)}{_on_object_line(spec)}

## Licence

{licence}

## Measured test accuracy

{_accuracy_section(spec)}

{_provenance(spec)}"""

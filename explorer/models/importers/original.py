"""The original ProtoPNet's tensors (``model.PPNet``'s state) in our terms, for both of its save formats.

Key mapping (ours ← original): ``features.tail.X`` ← ``features.X``, ``add_on.X`` ← ``add_on_layers.X``,
``prototype_vectors`` and ``last_layer.weight`` unchanged; ``ones`` (all ones, by construction) is checked
and kept for the reference forward only; our ``_class_identity`` buffer is built from the class identity.
"""

from __future__ import annotations

import torch

from explorer.errors import CheckpointError
from explorer.models.importers.layout import add_on_widths, infer_backbone
from explorer.models.importers.network import ImportedNetwork, check_finite
from explorer.models.importers.safe_pickle import PickledModule
from explorer.spec import ACTIVATIONS

TOP_LEVEL = ("prototype_vectors", "ones", "last_layer.weight")


def network_from_original_state(
    state: dict[str, torch.Tensor],
    *,
    format: str,
    where: str,
    classes: tuple[int, ...] | None,
    img_size: int,
    activation: str,
    epsilon: float,
    features_tree: PickledModule | None = None,
    add_on_tree: PickledModule | None = None,
    vgg_length: int | None = None,
) -> ImportedNetwork:
    """Maps an original ``PPNet`` state (``state_dict()`` keys) to an :class:`ImportedNetwork`.

    Args:
        classes: the class of every prototype (``None`` is refused: the caller must know it).
        img_size: the original ``img_size`` (square input).

    Raises:
        CheckpointError: missing or unexpected top-level tensors, NaN weights, impossible shapes,
            an unknown backbone, a class identity that does not fit the last layer.
    """
    check_finite(state, where)
    known = ("features.", "add_on_layers.")
    unexpected = [k for k in state if k not in TOP_LEVEL and not k.startswith(known)]
    missing = [k for k in TOP_LEVEL if k not in state]
    if unexpected or missing:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"]
            if unexpected else []
        )  # fmt: skip
        raise CheckpointError(f"{where}: not an original ProtoPNet state ({'; '.join(parts)})")
    prototypes, ones, weight = (state[k] for k in TOP_LEVEL)
    if prototypes.ndim != 4 or prototypes.shape[2:] != (1, 1):
        raise CheckpointError(
            f"{where}: prototype_vectors has shape {tuple(prototypes.shape)}; only 1x1 prototypes "
            "[P, D, 1, 1] (the original's default) are supported"
        )
    num_prototypes, dim = int(prototypes.shape[0]), int(prototypes.shape[1])
    if ones.shape != prototypes.shape or not bool((ones == 1).all()):
        raise CheckpointError(
            f"{where}: 'ones' is not an all-ones tensor shaped like the prototypes"
        )
    if weight.ndim != 2 or weight.shape[1] != num_prototypes:
        raise CheckpointError(
            f"{where}: last_layer.weight has shape {tuple(weight.shape)}, which does not fit "
            f"{num_prototypes} prototypes"
        )
    num_classes = int(weight.shape[0])
    if num_classes < 2:
        raise CheckpointError(f"{where}: the last layer has {num_classes} class; at least 2 needed")
    if classes is None:
        raise CheckpointError(f"{where}: the class of each prototype is unknown")
    if len(classes) != num_prototypes or not all(0 <= c < num_classes for c in classes):
        raise CheckpointError(
            f"{where}: the class identity lists {len(classes)} prototypes with classes up to "
            f"{max(classes, default=-1)}, but the last layer has {num_prototypes} prototypes and "
            f"{num_classes} classes"
        )
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"{where}: prototype activation {activation!r} is not supported (only 'log' and 'linear')"
        )
    if not isinstance(epsilon, int | float) or not 0 < epsilon < 1:
        raise CheckpointError(f"{where}: epsilon {epsilon!r} must be a number in (0, 1)")
    if not isinstance(img_size, int) or not 8 <= img_size <= 2048:
        raise CheckpointError(f"{where}: img_size {img_size!r} must be an integer in 8..2048")

    backbone_state = {
        k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
    }
    backbone = infer_backbone(backbone_state, where, vgg_length, "features.")
    add_on_state = {
        k.removeprefix("add_on_layers."): v
        for k, v in state.items()
        if k.startswith("add_on_layers.")
    }
    widths = add_on_widths(add_on_state, where)
    if widths[-1] != dim:
        raise CheckpointError(
            f"{where}: the add-on ends {widths[-1]} channels wide but the prototypes have {dim}"
        )
    tensors: dict[str, torch.Tensor] = {}
    source_keys: dict[str, str] = {}
    for key, tensor in state.items():
        if key == "ones":
            continue
        ours = (
            "features.tail." + key.removeprefix("features.") if key.startswith("features.")
            else "add_on." + key.removeprefix("add_on_layers.") if key.startswith("add_on_layers.")
            else key
        )  # fmt: skip
        tensors[ours] = tensor
        source_keys[ours] = key
    return ImportedNetwork(
        format=format,
        where=where,
        backbone=backbone,
        add_on_widths=widths,
        add_on_layout=None,
        prototype_dim=dim,
        tensors=tensors,
        source_keys=source_keys,
        prototype_classes=tuple(classes),
        num_classes=num_classes,
        activation=activation,
        epsilon=float(epsilon),
        input_size=(img_size, img_size),
        head="protopnet",
        ones=ones,
        features_tree=features_tree,
        add_on_tree=add_on_tree,
        notes=list(backbone.notes),
        key_prefixes=(("features.tail.", "features."), ("add_on.", "add_on_layers.")),
    )

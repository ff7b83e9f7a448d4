"""Original ProtoPNet checkpoints: ``torch.save(model)`` of ``model.PPNet`` (``<epoch>push<acc>.pth``),
zip or legacy format, optionally wrapped in ``torch.nn.DataParallel``.

Read with :mod:`~explorer.models.importers.safe_pickle` (nothing from the file runs). Besides its tensors,
the pickle holds what a state dict lacks: ``prototype_class_identity`` (``[P, C]``, re-indexed by pruning),
``img_size``, ``prototype_activation_function``, ``epsilon``, ``prototype_shape``; and the layer graph with
its hyper-parameters, which the rebuilt network must match module by module.
"""

from __future__ import annotations

from pathlib import Path

from explorer.errors import CheckpointError
from explorer.models.importers.network import (
    ImportedNetwork,
    Importer,
    ReadOptions,
    class_identity_classes,
    epoch_from_name,
)
from explorer.models.importers.original import network_from_original_state
from explorer.models.importers.safe_pickle import (
    TORCH_MODULE_CLASSES,
    PickledModule,
    load_checkpoint,
    module_tree,
    referenced_globals,
)

PPNET = "model.PPNet"
DATA_PARALLEL = "torch.nn.parallel.data_parallel.DataParallel"
FEATURE_CLASSES = {
    "resnet_features.ResNet_features": "resnet",
    "vgg_features.VGG_features": "vgg",
    "densenet_features.DenseNet_features": "densenet",
}
ALLOWED_CLASSES = (
    PPNET,
    *FEATURE_CLASSES,
    "resnet_features.BasicBlock",
    "resnet_features.Bottleneck",
    "densenet_features._DenseBlock",
    "densenet_features._DenseLayer",
    "densenet_features._Transition",
    *TORCH_MODULE_CLASSES,
)


def _attribute(root: PickledModule, name: str, where: str) -> object:
    if name not in root.attributes:
        raise CheckpointError(f"{where}: the pickled PPNet lacks its attribute '{name}'")
    return root.attributes[name]


def network_from_ppnet(
    root: PickledModule, where: str, format: str = "protopnet"
) -> ImportedNetwork:
    """An :class:`ImportedNetwork` from the pickled ``PPNet`` graph."""
    if root.class_name != PPNET:
        raise CheckpointError(
            f"{where} holds a {root.class_name}, not an original ProtoPNet ({PPNET})"
        )
    features = root.child("features", where)
    family = FEATURE_CLASSES.get(features.class_name)
    if family is None:
        raise CheckpointError(
            f"{where}: unknown backbone {features.class_name} (known: {', '.join(FEATURE_CLASSES)})"
        )
    add_on = root.child("add_on_layers", where)
    last = root.child("last_layer", where)
    if last.parameters.get("bias") is not None:
        raise CheckpointError(
            f"{where}: the last layer has a bias; the original ProtoPNet's has none"
        )
    state = root.state()
    vgg_length = len(features.child("features", where).children) if family == "vgg" else None
    weight = state.get("last_layer.weight")
    prototypes = state.get("prototype_vectors")
    if weight is None or prototypes is None:
        raise CheckpointError(f"{where}: the pickled PPNet lacks prototype_vectors or last_layer")
    classes = class_identity_classes(
        _attribute(root, "prototype_class_identity", where),
        int(prototypes.shape[0]), int(weight.shape[0]), where,
    )  # fmt: skip
    activation = _attribute(root, "prototype_activation_function", where)
    if not isinstance(activation, str):
        raise CheckpointError(
            f"{where}: the prototype activation is a custom function; only 'log' and 'linear' are "
            "supported"
        )
    shape = root.attributes.get("prototype_shape")
    if shape is not None and (
        not isinstance(shape, list | tuple) or list(shape) != list(prototypes.shape)
    ):
        raise CheckpointError(
            f"{where}: prototype_shape {shape!r} differs from prototype_vectors "
            f"{list(prototypes.shape)}"
        )
    net = network_from_original_state(
        state,
        format=format,
        where=where,
        classes=classes,
        img_size=_attribute(root, "img_size", where),  # type: ignore[arg-type]
        activation=activation,
        epsilon=_attribute(root, "epsilon", where),  # type: ignore[arg-type]
        features_tree=features,
        add_on_tree=add_on,
        vgg_length=vgg_length,
    )
    if not net.backbone.name.startswith(family):
        raise CheckpointError(
            f"{where}: the features module is a {features.short_name} but its tensors are a "
            f"{net.backbone.description}"
        )
    return net


class ProtoPNetPickle(Importer):
    """``torch.save(model)`` of the original code's ``model.PPNet`` (zip or legacy format)."""

    name = "protopnet"
    description = "original ProtoPNet checkpoint: the whole pickled model.PPNet (torch.save(model))"

    def recognises(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            return PPNET in referenced_globals(path, path.name)
        except CheckpointError:
            return False

    def read(self, path: Path, options: ReadOptions) -> ImportedNetwork:
        where = path.name
        for given, label in ((options.class_identity, "--class-identity"),
                             (options.activation, "an activation"), (options.epsilon, "an epsilon"),
                             (options.input_size, "an input size")):  # fmt: skip
            if given is not None:
                raise CheckpointError(
                    f"{where}: a pickled ProtoPNet states its own class identity, activation, "
                    f"epsilon and image size; {label} cannot be given for it"
                )
        loaded = load_checkpoint(path, ALLOWED_CLASSES, where)
        if isinstance(loaded, dict):
            raise CheckpointError(
                f"{where} holds a state dict, not a whole pickled model: import it with "
                "--format protopnet-state-dict"
            )
        root = module_tree(loaded, where)
        if root.class_name == DATA_PARALLEL:
            root = root.child("module", where)
        net = network_from_ppnet(root, where)
        net.epoch = epoch_from_name(where)
        if root.attributes.get("training") is True:
            net.notes.append("the model was saved in training mode; imported for evaluation")
        return net

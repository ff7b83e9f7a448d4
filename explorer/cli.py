"""The command line: ``python -m explorer train|predict|explain|analyse|redundancy|labels|models``.

Every command prints JSON on stdout (progress on stderr); a bad input ends with a one-line message on
stderr and exit status 2, never a traceback. ``explain`` goes on past files it cannot read, reports
them on stderr and in its summary, and exits with 1 when some failed (2 when all did).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from explorer.errors import ExplorerError

EXIT_BAD_INPUT = 2


def _train(args: argparse.Namespace) -> int:
    from explorer.train.config import PRESETS, TrainConfig
    from explorer.train.trainer import train

    if args.preset:
        config = PRESETS[args.preset]
    else:
        if not args.data:
            raise ExplorerError(
                "give --preset NAME or --data IMAGEFOLDER (with train/ and test/ inside)"
            )
        size = args.input_size or 224
        config = TrainConfig(
            model_id=args.model_id or Path(args.data).name,
            dataset=str(args.data),
            backbone=args.backbone,
            pretrained=args.backbone == "efficientnet_lite0",
            input_size=(size, size),
            channels=3,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
        )
    config = config.with_overrides(
        seed=args.seed,
        warm_epochs=args.warm_epochs,
        joint_epochs=args.joint_epochs,
        last_epochs=args.last_epochs,
        prototypes_per_class=args.prototypes_per_class,
    )
    out = Path(args.out or Path("weights") / config.model_id)
    spec = train(config, out)
    print(json.dumps({"model": str(out), "accuracy": spec.accuracy}, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from explorer.api import Explorer

    explorer = Explorer()
    prediction = explorer.predict(args.image, model_id=args.model, top_k=args.top_k)
    print(json.dumps(prediction.to_dict(), indent=2))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from explorer.api import Explorer
    from explorer.batch import explain_batch

    attribution = None if args.attribution == "none" else args.attribution
    summary = explain_batch(
        Explorer(), args.paths, Path(args.out), args.model, args.top_k, attribution
    )
    for failure in summary["failed"]:
        print(f"error: {failure['image']}: {failure['error']}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    if not summary["explained"] and summary["failed"]:
        return EXIT_BAD_INPUT
    return 1 if summary["failed"] else 0


def _analyse(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from explorer.api import Explorer

    explorer = Explorer()
    model_id = args.model or explorer.default_model
    classes = explorer.bundle(model_id).model.prototype_classes
    summary: dict = {"model_id": model_id, "nearest_patches": {}, "attributes": {}}
    for split in args.splits:
        result = explorer.nearest(
            model_id, split, progress=lambda it, s=split: tqdm(it, desc=f"nearest patches ({s})")
        )
        summary["nearest_patches"][split] = {
            "k": int(result.images.shape[1]),
            "mean_purity": round(float(result.purity(classes).mean()), 4),
            "cache": str(explorer.cache(model_id).path(f"nearest_{split}")),
        }
        for mode in [] if args.no_attributes else args.attributes:
            attributes = explorer.global_attributes(
                model_id, split, mode,
                progress=lambda it, s=split, m=mode: tqdm(it, desc=f"attributes {m} ({s})"),
            )  # fmt: skip
            summary["attributes"][f"{mode}_{split}"] = {
                "modifications": list(attributes.modifications),
                "mean_phi": [round(float(v), 4) for v in attributes.phi.mean(axis=0)],
                "cache": str(explorer.cache(model_id).path(f"attributes_{mode}_{split}")),
            }
    print(json.dumps(summary, indent=2))
    return 0


def _redundancy(args: argparse.Namespace) -> int:
    from explorer.analysis.redundancy import prune_plan, pruned_weight
    from explorer.analysis.whatif import what_if
    from explorer.api import Explorer

    explorer = Explorer()
    model_id = args.model or explorer.default_model
    report = explorer.redundancy(model_id, threshold=args.threshold)
    bundle = explorer.bundle(model_id)
    names = bundle.spec.class_names
    weight = bundle.model.last_layer_weight.detach().numpy().astype("float64")
    nearest = explorer.nearest(model_id, "test")
    every = prune_plan(report.clusters, weight, every_cluster=True)
    pruned_every = what_if(
        nearest.all_scores, nearest.all_labels, weight, pruned_weight(weight, every)
    )

    def plan_summary(plan: dict[int, list[int]], result) -> dict:
        return {
            "kept_merged": {str(k): v for k, v in plan.items()},
            "prototypes_removed": sum(len(v) for v in plan.values()),
            "test_accuracy": round(result.accuracy, 4),
            "changed_predictions": result.changed_predictions,
        }

    print(
        json.dumps(
            {
                "model_id": model_id,
                "threshold": report.threshold,
                "views": report.distances.weights,
                "clusters": [
                    {
                        "members": list(c.members),
                        "classes": [names[k] for k in c.classes],
                        "within_distance": round(c.within_distance, 4),
                        "suggestion": c.suggestion,
                        "reason": c.reason,
                    }
                    for c in report.clusters
                ],
                "baseline_test_accuracy": round(pruned_every.baseline_accuracy, 4),
                "pruned_as_suggested": plan_summary(report.plan, report.pruned),
                "every_cluster_pruned_to_one": plan_summary(every, pruned_every),
            },
            indent=2,
        )
    )
    return 0


def _labels(args: argparse.Namespace) -> int:
    from explorer.api import Explorer
    from explorer.labels import exchange

    explorer = Explorer()
    store = explorer.labels
    if args.action == "import":
        path = Path(args.path)
        reader = exchange.import_json if path.suffix.lower() == ".json" else exchange.import_csv
        print(json.dumps({"imported_events": reader(store, path), "store": str(store.path)}))
        return 0
    model_hash = explorer.bundle(args.model).content_hash if args.model else None
    out = Path(args.path)
    if args.format == "protopdebug":
        bundle = explorer.bundle(args.model)
        nearest = (
            explorer.nearest(args.model, "train")
            if explorer.has_nearest(args.model, "train")
            else None
        )
        counts = exchange.export_protopdebug(store, bundle, out, nearest)
        print(json.dumps({"folder": str(out), "counts": counts}, default=str))
        return 0
    if args.format == "json":
        count = exchange.export_json(store, out, model_hash, history=args.history)
    elif args.history:
        count = exchange.export_history_csv(store, out, model_hash)
    else:
        count = exchange.export_current_csv(store, out, model_hash)
    print(json.dumps({"file": str(out), "events": count, "store": str(store.path)}))
    return 0


def _models(args: argparse.Namespace) -> int:
    from explorer.api import Explorer

    print(json.dumps([info.to_dict() for info in Explorer().models()], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a ProtoPNet (a shipped preset or your ImageFolder)"
    )
    train.add_argument("--preset", choices=["fashion_mnist", "synthetic", "elpv"])
    train.add_argument("--data", help="ImageFolder root with train/<class>/ and test/<class>/")
    train.add_argument(
        "--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "small_cnn"]
    )
    train.add_argument("--input-size", type=int, help="square input size for --data (default 224)")
    train.add_argument(
        "--model-id", help="name of the model folder (default: the data folder's name)"
    )
    train.add_argument("--out", help="output folder (default weights/<model id>)")
    train.add_argument("--seed", type=int)
    train.add_argument("--warm-epochs", type=int)
    train.add_argument("--joint-epochs", type=int)
    train.add_argument("--last-epochs", type=int)
    train.add_argument("--prototypes-per-class", type=int)
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict", help="classify an image and list its top prototypes (JSON)"
    )
    predict.add_argument("image", help="path to an image file")
    predict.add_argument("--model", help="model id or model folder (default: the default model)")
    predict.add_argument("--top-k", type=int, default=10)
    predict.set_defaults(run=_predict)

    explain = commands.add_parser(
        "explain", help="explain images into a folder: per image a JSON and overlay PNGs"
    )
    explain.add_argument("paths", nargs="+", help="image files or folders of images")
    explain.add_argument("--model", help="model id (default: the default model)")
    explain.add_argument("--out", required=True, help="output folder")
    explain.add_argument("--top-k", type=int, default=10)
    explain.add_argument(
        "--attribution",
        default="gradcam",
        choices=["gradcam", "occlusion", "integrated_gradients", "none"],
    )
    explain.set_defaults(run=_explain)

    analyse = commands.add_parser(
        "analyse",
        help="compute and store data-wide analyses: nearest patches, test scores, attributes",
    )
    analyse.add_argument("--model", help="model id (default: the default model)")
    analyse.add_argument(
        "--splits", nargs="+", default=["train", "test"], choices=["train", "test"]
    )
    analyse.add_argument(
        "--attributes", nargs="+", default=["reference", "disentangled"],
        choices=["reference", "disentangled"], help="global attribute explanations to compute",
    )  # fmt: skip
    analyse.add_argument(
        "--no-attributes", action="store_true", help="skip the global attribute explanations"
    )
    analyse.set_defaults(run=_analyse)

    redundancy = commands.add_parser(
        "redundancy", help="redundancy clusters of prototypes and what pruning them costs (JSON)"
    )
    redundancy.add_argument("--model", help="model id (default: the default model)")
    redundancy.add_argument("--threshold", type=float, default=0.2, help="clustering cut height")
    redundancy.set_defaults(run=_redundancy)

    labels = commands.add_parser("labels", help="export or import prototype labels")
    labels.add_argument("action", choices=["export", "import"])
    labels.add_argument("path", help="file to write or read (a folder for --format protopdebug)")
    labels.add_argument("--model", help="only this model's labels (required for protopdebug)")
    labels.add_argument("--format", choices=["csv", "json", "protopdebug"], default="json")
    labels.add_argument(
        "--history", action="store_true", help="every event, not only current labels"
    )
    labels.set_defaults(run=_labels)

    models = commands.add_parser("models", help="list the available models (JSON)")
    models.set_defaults(run=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "train" else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except ExplorerError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

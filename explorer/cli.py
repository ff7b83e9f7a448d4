"""The command line: ``python -m explorer train|import|predict|explain|report|analyse|evaluate|redundancy|sheet|compare|debug|before-after|labels|models``.

Every command prints JSON on stdout (progress on stderr); a bad input ends with a one-line message on
stderr and exit status 2, never a traceback. ``explain`` goes on past files it cannot read, reports
them on stderr and in its summary, and exits with 1 when some failed (2 when all did). ``report``
goes on past files it cannot read too, names each on stderr, and exits with 2 if any was bad.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.errors import ExplorerError

if TYPE_CHECKING:
    from explorer import DebugProgress, Explorer

EXIT_BAD_INPUT = 2
DEBUG_SETTINGS = (
    "rounds", "warm_epochs", "joint_epochs", "last_epochs", "act_place", "class_specific",
    "forget_weight", "remember_weight", "seed",
)  # fmt: skip
"""``debug``'s options that are settings of the retrain (``None``: the default)."""
PRESET_NAMES = (
    "fashion_mnist", "synthetic", "elpv", "blobs", "synthetic_pipnet", "synthetic_marker",
    "synthetic_unmarked",
)  # fmt: skip
"""``train --preset``: every preset of :mod:`explorer.train.config` and of the PIP-Net trainer (a
test holds the two equal; the registries import torch, which ``--help`` should not wait for)."""


def _explorer(args: argparse.Namespace) -> tuple[Explorer, str | None]:
    """A command's Explorer (the shipped models and the ``--models`` folders) and the model it asks
    for: ``--model`` names a model id, or a model folder, which is then registered too."""
    from explorer import Explorer
    from explorer.api import WEIGHTS_DIR

    extra = getattr(args, "models", [])
    for folder in extra:
        if not Path(folder).is_dir():
            raise ExplorerError(f"--models {folder}: no such folder")
    explorer = Explorer([WEIGHTS_DIR, *extra], device=args.device)
    return explorer, _model_id(explorer, getattr(args, "model", None))


def _model_id(explorer: Explorer, model: str | None) -> str | None:
    """A model id as given, or the id of the model folder ``model``, registered on the way."""
    if model and model not in explorer.model_ids() and Path(model).is_dir():
        return explorer.add_model_folder(model).model_id
    return model


def _train(args: argparse.Namespace) -> int:
    from explorer import Explorer

    info = Explorer(model_dirs=(), device=args.device).train(
        args.out,
        preset=args.preset,
        data=args.data,
        model_id=args.model_id,
        backbone=args.backbone,
        input_size=args.input_size,
        data_seed=args.data_seed,
        seed=args.seed,
        warm_epochs=args.warm_epochs,
        joint_epochs=args.joint_epochs,
        last_epochs=args.last_epochs,
        prototypes_per_class=args.prototypes_per_class,
        push_on_object=args.push_on_object,
    )
    print(json.dumps({"model": str(info.folder), "accuracy": info.accuracy}, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    explorer, model = _explorer(args)
    prediction = explorer.predict(args.image, model_id=model, top_k=args.top_k)
    print(json.dumps(prediction.to_dict(), indent=2))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from explorer.batch import explain_batch

    attribution = None if args.attribution == "none" else args.attribution
    explorer, model = _explorer(args)
    summary = explain_batch(explorer, args.paths, Path(args.out), model, args.top_k, attribution)
    for failure in summary["failed"]:
        print(f"error: {failure['image']}: {failure['error']}", file=sys.stderr)
    for skipped in summary["skipped"]:
        print(f"skipped: {skipped['image']}: {skipped['reason']}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    if not summary["explained"] and summary["failed"]:
        return EXIT_BAD_INPUT
    return 1 if summary["failed"] else 0


def _output_folder(out: Path) -> Path:
    """``out``, created if missing; a clear error when it cannot be a writable folder."""
    if out.exists() and not out.is_dir():
        raise ExplorerError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExplorerError(
            f"cannot create the output folder {out}: {error.strerror or error}"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ExplorerError(f"cannot write into the output folder {out}: permission denied")
    return out


def _unique_stem(stem: str, used: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... if an earlier input of this run had the same name
    (compared without case, for case-insensitive file systems)."""
    candidate, n = stem, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate.lower())
    return candidate


def _report(args: argparse.Namespace) -> int:
    from explorer.batch import expand_paths
    from explorer.report import build_case, write_reports

    if args.top_k < 1:
        raise ExplorerError(f"--top-k must be at least 1, not {args.top_k}")
    explorer, model = _explorer(args)
    model_id = explorer.spec(model).model_id  # an unknown model fails before any work
    out = _output_folder(Path(args.out))
    disabled = explorer.misleading(model_id) if args.without_misleading else set()
    attribution = None if args.attribution == "none" else args.attribution
    images = expand_paths(args.paths)
    bad = 0
    for path in map(Path, args.paths):
        if path.is_dir() and not any(p.is_relative_to(path) for p in images):
            message = f"error: {path}: no files in this folder (hidden files are skipped)"
            print(message, file=sys.stderr, flush=True)
            bad += 1
    used: set[str] = set()
    for image in images:
        try:
            case = build_case(
                explorer, image, model_id, top_k=args.top_k, attribution=attribution,
                mode=args.mode, disabled=disabled,
            )  # fmt: skip
        except (ExplorerError, ValueError) as error:
            print(f"error: {image}: {error}", file=sys.stderr, flush=True)
            bad += 1
            continue
        stem = _unique_stem(image.stem, used)
        try:
            html, pdf = write_reports(case, out, stem)
        except OSError as error:
            raise ExplorerError(
                f"cannot write the reports into {out}: {error.strerror or error}"
            ) from None
        record = {
            "image": str(image),
            "html": str(html),
            "pdf": str(pdf),
            "model_id": case.model_id,
            "predicted_class": case.predicted_class,
            "probability": round(case.probability, 6),
        }
        print(json.dumps(record), flush=True)
    return EXIT_BAD_INPUT if bad else 0


def _analyse(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    explorer, model = _explorer(args)
    model_id = model or explorer.default_model
    modes = [] if args.no_attributes else args.attributes
    if args.engine != "ray" and (args.address or args.workers):
        raise ExplorerError("--address and --workers go with --engine ray")
    if args.workers is not None and args.workers < 1:
        raise ExplorerError(f"--workers must be at least 1, not {args.workers}")
    if not 0 <= args.size_share < 1:
        raise ExplorerError(f"--size-share must be at least 0 and below 1, not {args.size_share}")
    run = explorer.analyse(
        model_id, args.splits, modes, into_folder=args.into_folder,
        progress=lambda description: lambda it: tqdm(it, desc=description),
        size_share=args.size_share or None,
        engine=args.engine, workers=args.workers, address=args.address,
    )  # fmt: skip
    classes = explorer.prototype_classes(model_id)
    summary: dict = {"model_id": model_id, "nearest_patches": {}, "attributes": {}}
    for split, result in run.nearest.items():
        summary["nearest_patches"][split] = {
            "k": int(result.images.shape[1]),
            "mean_purity": round(float(result.purity(classes).mean()), 4),
            "cache": str(explorer.nearest_path(model_id, split)),
            "engine": result.engine,
        }
    for (mode, split), attributes in run.attributes.items():
        summary["attributes"][f"{mode}_{split}"] = {
            "modifications": list(attributes.modifications),
            "mean_phi": [round(float(v), 4) for v in attributes.phi.mean(axis=0)],
            "cache": str(explorer.global_attributes_path(model_id, split, mode)),
        }
    if run.packing is not None:
        summary["folder"] = {
            "path": str(run.folder),
            "share_of_folder": round(float(run.folder_share or 0), 4),
            "packing": run.packing.describe(),
            "fits": run.packing.fits,
        }
        if not run.packing.fits:
            print(
                f"warning: analyses/ takes {run.folder_share:.0%} of {run.folder}, more than "
                f"--size-share {args.size_share}: even the smallest packing does not fit",
                file=sys.stderr,
            )
    print(json.dumps(summary, indent=2))
    return 0


def _sheet(args: argparse.Namespace) -> int:
    explorer, model = _explorer(args)
    print(json.dumps(explorer.scoring_sheet(model or explorer.default_model).to_dict(), indent=2))
    return 0


def _compare(args: argparse.Namespace) -> int:
    explorer, _ = _explorer(argparse.Namespace(models=args.models, device=args.device))
    columns = explorer.compare_models(args.model)
    if args.markdown:
        print(explorer.comparison_markdown(columns))
    else:
        print(json.dumps([c.to_dict() for c in columns], indent=2))
    return 0


def _redundancy(args: argparse.Namespace) -> int:
    explorer, model = _explorer(args)
    model_id = model or explorer.default_model
    report = explorer.redundancy(model_id, threshold=args.threshold)
    names = explorer.class_names(model_id)
    every = explorer.prune_plan(report.clusters, model_id)
    pruned_every = explorer.what_if(model_id, merges=every)

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
                "accuracies_measured_on": pruned_every.measured_on,
                "test_images_scored": pruned_every.images,
                "pruned_as_suggested": plan_summary(report.plan, report.pruned),
                "every_cluster_pruned_to_one": plan_summary(every, pruned_every),
            },
            indent=2,
        )
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from explorer import metrics_markdown

    if args.queue and args.data is not None:
        raise ExplorerError("--queue reads the model's own data set: leave out --data")
    explorer, model = _explorer(args)
    model_id = model or explorer.default_model
    if args.into_folder and args.data is not None:
        raise ExplorerError("--into-folder ships the model's own figures: leave out --data")
    metrics = explorer.evaluate(
        model_id,
        data=args.data,
        split=args.split,
        faithfulness_images=args.faithfulness_images,
        into_folder=args.into_folder,
    )
    record = {"model_id": model_id, **metrics.to_dict()}
    table = metrics_markdown(metrics)
    if args.queue:
        record["review_queue"] = explorer.review_queue(model_id).to_dict()
    if args.out:
        out = _output_folder(Path(args.out))
        (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / "metrics.md").write_text(f"# Prototype metrics of {model_id}\n\n{table}\n")
    if args.markdown:
        print(table)
    else:
        print(json.dumps(record, indent=2))
        print(table, file=sys.stderr)
    return 0


def _labels(args: argparse.Namespace) -> int:
    from explorer import Explorer

    explorer = Explorer(device=args.device)
    store = str(explorer.labels_path)
    if args.action == "import":
        imported = explorer.import_labels(args.path)  # no login here: every event counts as it was
        print(json.dumps({"imported_events": imported.added, "store": store}))
        return 0
    out = Path(args.path)
    if args.format is None:  # the file's suffix decides, as import does
        args.format = "csv" if out.suffix.lower() == ".csv" else "json"
    if args.format == "protopdebug":
        counts = explorer.export_protopdebug(out, args.model)
        print(json.dumps({"folder": str(out), "counts": counts}, default=str))
        return 0
    count = explorer.export_labels(out, args.model, format=args.format, history=args.history)
    print(json.dumps({"file": str(out), "events": count, "store": store}))
    return 0


def _users(args: argparse.Namespace) -> int:
    from explorer.auth import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ExplorerError("the two passwords differ; nothing was changed")
    new = add_user(args.file, args.name, password)
    print(json.dumps({"file": str(args.file), "user": args.name, "added": new}))
    return 0


def _models(args: argparse.Namespace) -> int:
    explorer, _ = _explorer(args)
    print(json.dumps([info.to_dict() for info in explorer.models()], indent=2))
    return 0


def _class_names_file(path: Path) -> list[str]:
    """One class name per non-empty line (at most 1 MB)."""
    if not path.is_file():
        raise ExplorerError(f"--classes: {path} is not a file")
    if path.stat().st_size > 1 << 20:
        raise ExplorerError(f"--classes: {path} is larger than 1 MB; it should list class names")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ExplorerError(f"--classes: {path} is not UTF-8 text") from None
    return [line.strip() for line in lines if line.strip()]


def _import(args: argparse.Namespace) -> int:
    from explorer import Explorer

    class_names = args.class_names
    if args.classes:
        if class_names:
            raise ExplorerError("give the class names once: --classes FILE or --class-names")
        class_names = _class_names_file(Path(args.classes))
    report = Explorer(device=args.device).import_checkpoint(
        args.checkpoint, args.out, format=args.format, data=args.data, push_dir=args.push_dir,
        class_names=class_names, model_id=args.model_id, class_identity=args.class_identity,
        **({"input_size": args.input_size} if args.input_size else {}),
        **({"backbone": args.backbone} if args.backbone else {}),
    )  # fmt: skip
    for line in report.summary():
        print(line, file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2))
    return 0


def _debug(args: argparse.Namespace) -> int:
    import signal

    explorer, model = _explorer(args)
    progress = None
    if args.progress_json:

        def progress(step: DebugProgress) -> None:
            record = {"stage": step.stage, "done": step.done, "total": step.total}
            print(json.dumps({"progress": record}), flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # the retrain's clean-up runs, nothing half-written is left

    previous = signal.signal(signal.SIGTERM, stop)
    settings = {name: getattr(args, name) for name in DEBUG_SETTINGS}
    try:
        info = explorer.debug(
            model, args.out, new_id=args.model_id, progress=progress, threads=args.threads,
            **settings,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("error: the retrain was stopped; nothing was written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    spec = explorer.spec(info.model_id)
    result = {
        "model": str(info.folder), "model_id": info.model_id, "parent": spec.lineage["parent"],
        "accuracy": info.accuracy, "minutes": spec.training.get("minutes"),
        "parent_training_minutes": spec.lineage["parent"].get("training_minutes"),
    }  # fmt: skip
    print(json.dumps({"result": result}) if args.progress_json else json.dumps(result, indent=2))
    return 0


def _before_after(args: argparse.Namespace) -> int:
    from explorer.viz.lineage_text import before_after_markdown

    explorer, _ = _explorer(args)
    before, after = _model_id(explorer, args.before), _model_id(explorer, args.after)
    result = explorer.before_after(before, after)
    print(
        before_after_markdown(result) if args.markdown else json.dumps(result.to_dict(), indent=2)
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)
    # every command that runs a network runs it where --device says
    on_device = argparse.ArgumentParser(add_help=False)
    on_device.add_argument(
        "--device", default=os.environ.get("EXPLORER_DEVICE", "auto"), metavar="DEVICE",
        help="where the networks run: auto (a CUDA GPU when there is one, else the CPU), cpu, "
        "cuda or cuda:N (default: $EXPLORER_DEVICE, else auto)",
    )  # fmt: skip
    # every command that uses models also sees the user's own model folders
    with_models = argparse.ArgumentParser(add_help=False, parents=[on_device])
    with_models.add_argument(
        "--models", action="append", default=[], metavar="DIR",
        help="an extra model folder, or a folder of them (repeat for more)",
    )  # fmt: skip

    train = commands.add_parser(
        "train",
        parents=[on_device],
        help="train a ProtoPNet (a shipped preset or your ImageFolder)",
    )
    train.add_argument("--preset", choices=PRESET_NAMES)
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
    train.add_argument(
        "--data-seed", type=int,
        help="with --preset synthetic or blobs: which draw of the generated data (default 0)",
    )  # fmt: skip
    train.add_argument("--warm-epochs", type=int)
    train.add_argument("--joint-epochs", type=int)
    train.add_argument("--last-epochs", type=int)
    train.add_argument("--prototypes-per-class", type=int)
    train.add_argument(
        "--push-on-object",
        action=argparse.BooleanOptionalAction,
        help="project prototypes only onto cells mostly on the object (needs object masks; "
        "default: the preset's, on for synthetic)",
    )
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict",
        parents=[with_models],
        help="classify an image and list its top prototypes (JSON)",
    )
    predict.add_argument("image", help="path to an image file")
    predict.add_argument("--model", help="model id or model folder (default: the default model)")
    predict.add_argument("--top-k", type=int, default=10)
    predict.set_defaults(run=_predict)

    explain = commands.add_parser(
        "explain",
        parents=[with_models],
        help="explain images into a folder: per image a JSON and overlay PNGs",
    )
    explain.add_argument("paths", nargs="+", help="image files or folders of images")
    explain.add_argument("--model", help="model id or model folder (default: the default model)")
    explain.add_argument("--out", required=True, help="output folder")
    explain.add_argument("--top-k", type=int, default=10)
    explain.add_argument(
        "--attribution",
        default="gradcam",
        choices=["gradcam", "occlusion", "integrated_gradients", "none"],
    )
    explain.set_defaults(run=_explain)

    report = commands.add_parser(
        "report",
        parents=[with_models],
        help="self-contained case reports: per image one HTML file and one PDF (JSON line each)",
    )
    report.add_argument("paths", nargs="+", help="image files or folders of images")
    report.add_argument("--model", help="model id or model folder (default: the default model)")
    report.add_argument("--out", required=True, help="output folder (created if missing)")
    report.add_argument("--top-k", type=int, default=5, help="prototype pairs per report")
    report.add_argument(
        "--mode", default="reference", choices=["reference", "disentangled"],
        help="attribute modification set",
    )  # fmt: skip
    report.add_argument(
        "--attribution",
        default="gradcam",
        choices=["gradcam", "occlusion", "integrated_gradients", "none"],
    )
    report.add_argument(
        "--without-misleading", action="store_true",
        help="leave out the prototypes labelled misleading (the what-if model)",
    )  # fmt: skip
    report.set_defaults(run=_report)

    analyse = commands.add_parser(
        "analyse",
        parents=[with_models],
        help="compute and store data-wide analyses: nearest patches, test scores, attributes",
    )
    analyse.add_argument("--model", help="model id or model folder (default: the default model)")
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
    analyse.add_argument(
        "--into-folder", action="store_true",
        help="also store them in the model folder's analyses/ (shipped with the model; packed to "
        "at most --size-share of the folder, boxes and scores exact)",
    )  # fmt: skip
    analyse.add_argument(
        "--size-share", type=float, default=0.25,
        help="with --into-folder: the largest share of the folder analyses/ may take (default 0.25; "
        "0 for no limit)",
    )  # fmt: skip
    analyse.add_argument(
        "--engine", choices=["local", "ray"], default="local",
        help="where the data-wide passes (nearest patches, scores, attribute explanations) run: in "
        "this process, or on Ray Data (the optional extra: pip install -r requirements-scale.txt)",
    )  # fmt: skip
    analyse.add_argument(
        "--address", help="with --engine ray: a cluster to join (auto, ray://HOST:10001); default: "
        "a local Ray with this machine's cores",
    )  # fmt: skip
    analyse.add_argument(
        "--workers", type=int, help="with --engine ray: actors, one CPU each (default: every CPU)"
    )
    analyse.set_defaults(run=_analyse)

    redundancy = commands.add_parser(
        "redundancy",
        parents=[with_models],
        help="redundancy clusters of prototypes and what pruning them costs (JSON)",
    )
    redundancy.add_argument("--model", help="model id or model folder (default: the default model)")
    redundancy.add_argument("--threshold", type=float, default=0.2, help="clustering cut height")
    redundancy.set_defaults(run=_redundancy)

    sheet = commands.add_parser(
        "sheet",
        parents=[with_models],
        help="the scoring sheet: per class, the prototypes with a non-zero weight (JSON)",
    )
    sheet.add_argument("--model", help="model id or model folder (default: the default model)")
    sheet.set_defaults(run=_sheet)

    compare = commands.add_parser(
        "compare",
        parents=[with_models],
        help="models of one data set side by side: accuracy, prototypes used, evidence per "
        "decision, redundancy (JSON, or a Markdown table)",
    )
    compare.add_argument(
        "--model", action="append", required=True, help="a model id (give two or more)"
    )
    compare.add_argument("--markdown", action="store_true", help="a Markdown table instead of JSON")
    compare.set_defaults(run=_compare)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[with_models],
        help="metrics of the prototypes: consistency, stability, purity, background share, "
        "deletion/insertion (JSON on stdout, the table on stderr)",
    )
    evaluate.add_argument("--model", help="model id or model folder (default: the default model)")
    evaluate.add_argument(
        "--data", help="a data set name or an ImageFolder (with annotations/, see docs/guide.md) "
        "instead of the model's own",
    )  # fmt: skip
    evaluate.add_argument("--split", choices=["train", "test"], default="test")
    evaluate.add_argument(
        "--faithfulness-images", type=int, default=None,
        help="images read for deletion/insertion, class-stratified (default 120; 0: all)",
    )  # fmt: skip
    evaluate.add_argument(
        "--queue", action="store_true", help="add the review queue (its signals need both splits)"
    )
    evaluate.add_argument("--out", help="also write metrics.json and metrics.md into this folder")
    evaluate.add_argument(
        "--into-folder", action="store_true",
        help="also store them in the model folder's analyses/, to ship them with it",
    )  # fmt: skip
    evaluate.add_argument("--markdown", action="store_true", help="print the table, not the JSON")
    evaluate.set_defaults(run=_evaluate)

    labels = commands.add_parser(
        "labels", parents=[on_device], help="export or import prototype labels"
    )
    labels.add_argument("action", choices=["export", "import"])
    labels.add_argument("path", help="file to write or read (a folder for --format protopdebug)")
    labels.add_argument("--model", help="only this model's labels (required for protopdebug)")
    labels.add_argument(
        "--format", choices=["csv", "json", "protopdebug"], default=None,
        help="default: csv for a path ending in .csv, else json",
    )  # fmt: skip
    labels.add_argument(
        "--history", action="store_true", help="every event, not only current labels"
    )
    labels.set_defaults(run=_labels)

    debug = commands.add_parser(
        "debug",
        parents=[with_models],
        help="retrain a ProtoPNet from its labels (ProtoPDebug): forget the prototypes labelled "
        "misleading, remember the valid ones; writes a new model folder",
    )
    debug.add_argument("--model", required=True, help="model id or model folder to retrain")
    debug.add_argument("--out", help="the new model folder (default weights/<new id>)")
    debug.add_argument("--model-id", help="the new model's id (default <model>-debugged)")
    debug.add_argument("--rounds", type=int, help="fine-tune, push, last layer: how often (1)")
    debug.add_argument("--warm-epochs", type=int, help="add-on and prototypes epochs (5)")
    debug.add_argument("--joint-epochs", type=int, help="epochs with the backbone too (10)")
    debug.add_argument("--last-epochs", type=int, help="last-layer epochs (the parent's)")
    debug.add_argument(
        "--act-place", choices=["all", "center"],
        help="where a prototype's similarity to a cut-out is read: best cell or centre (all)",
    )  # fmt: skip
    debug.add_argument(
        "--class-specific", action=argparse.BooleanOptionalAction,
        help="forget only with the cut-out's class's prototypes (default) or with every prototype",
    )  # fmt: skip
    debug.add_argument("--forget-weight", type=float, help="λ forget (100)")
    debug.add_argument("--remember-weight", type=float, help="λ remember (10)")
    debug.add_argument("--seed", type=int, help="the run's seed (0)")
    debug.add_argument("--threads", type=int, help="torch threads (the parent's training setting)")
    debug.add_argument(
        "--progress-json", action="store_true",
        help="one JSON line per step on stdout, the result last (for programs that follow it)",
    )  # fmt: skip
    debug.set_defaults(run=_debug)

    before_after = commands.add_parser(
        "before-after",
        parents=[with_models],
        help="what a retrain changed: accuracy per class, prototypes moved, how much the flagged "
        "confounds still activate the model, predictions changed (JSON, or Markdown)",
    )
    before_after.add_argument("--before", required=True, help="the parent: model id or folder")
    before_after.add_argument("--after", required=True, help="the retrained model: id or folder")
    before_after.add_argument("--markdown", action="store_true", help="Markdown instead of JSON")
    before_after.set_defaults(run=_before_after)

    users = commands.add_parser(
        "users", help="manage the login file for shared deployments (python app.py --auth FILE)"
    )
    users_commands = users.add_subparsers(dest="action", required=True)
    add = users_commands.add_parser("add", help="add a user or change their password")
    add.add_argument("name", help="user name (letters, digits, . _ @ -)")
    add.add_argument("--file", required=True, help="credentials file (created if missing)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(run=_users)

    models = commands.add_parser(
        "models", parents=[with_models], help="list the available models (JSON)"
    )
    models.set_defaults(run=_models)

    imports = commands.add_parser(
        "import",
        parents=[on_device],
        help="import an original ProtoPNet, CaBRNet or PIP-Net checkpoint into a model folder (runs "
        "nothing from the file)",
    )
    imports.add_argument(
        "checkpoint", help="a .pth file (whole pickled model or state dict) or a CaBRNet folder"
    )
    imports.add_argument(
        "--format", default="auto",
        choices=["auto", "protopnet", "protopnet-state-dict", "cabrnet", "pipnet"],
    )  # fmt: skip
    imports.add_argument(
        "--backbone", choices=["convnext_tiny_26", "convnext_tiny_13", "resnet50"],
        help="for --format pipnet: the public code's --net (a checkpoint does not name it)",
    )  # fmt: skip
    imports.add_argument(
        "--classes", metavar="FILE", help="a text file with one class name per line, in index order"
    )
    imports.add_argument(
        "--data",
        help="ImageFolder with train/<class>/ and test/<class>/: class names, sources, examples",
    )
    imports.add_argument("--push-dir", help="the original push output (img/ or img/epoch-N/)")
    imports.add_argument("--class-names", help="comma-separated class names, in class-index order")
    imports.add_argument(
        "--class-identity",
        help="for a state dict: a file with one class index per prototype, or 'contiguous'",
    )
    imports.add_argument(
        "--input-size", type=int, help="square input size (state dicts; default 224)"
    )
    imports.add_argument("--model-id", help="the new model's id (default: the --out folder's name)")
    imports.add_argument("--out", required=True, help="the new model folder, e.g. weights/ID")
    imports.set_defaults(run=_import)
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

"""The ``medseg-r`` command line: thin wrappers over the library (parse arguments, call, report).

User errors (bad files, bad arguments, unreadable checkpoints) print one line and exit with status 2;
never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from typing import List, Optional

from . import __version__
from .report import parse_report
from .report.format import summarise
from .runtime import keep_freed_memory

# Commands that run models: they get the allocator setting of medseg_r.runtime (2x faster CPU steps).
HEAVY_COMMANDS = ("predict", "export", "train", "evaluate", "demo")
# TrainConfig's defaults that `train --help` states (importing TrainConfig would load Lightning for
# --help; tests/test_cli.py checks that the two agree)
TRAIN_DEFAULTS = {"backbone": "sam_tiny", "epochs": 10, "batch_size": 8, "lr": 1e-3, "loss": "dice_ce",
                  "schedule": "cosine", "accumulate": 1, "num_nodes": 1, "num_workers": 0, "seed": 0,
                  "cache_dtype": "float16"}


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def _report_of_row(line: str):
    """``(report, id or None)`` of one JSON-lines manifest row; the report is a ``ValueError`` to
    report for its line when the row has none."""
    from .io.jsonl import parse_json_object

    try:
        row = parse_json_object(line)
    except ValueError as exc:
        return exc, None
    if not isinstance(row.get("report"), str):
        return ValueError("a .jsonl line must be a JSON object with a 'report' text"), row.get("id")
    return row["report"], row.get("id")


def _cmd_parse_report(args) -> int:
    """One report per line (or TEXT). A report that cannot be read (e.g. over the 200,000-character
    limit) gives one line on stderr and, in its place in the output, ``{"error": ..., "line": N}``
    (JSON) or ``line N: error: ...`` (text); the other reports are still read. Exit status: 0 when
    every report was read, 1 when one or more could not be, 2 for a usage error."""
    if (args.text is None) == (args.input is None):
        raise UserError("give either TEXT or --input FILE")
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.text is not None:
        texts = [args.text]
    else:
        if os.path.isdir(args.input):
            raise UserError(f"--input {args.input} is a folder: give a text or .jsonl file")
        if not os.path.isfile(args.input):
            raise UserError(f"input file not found: {args.input}")
        from .io.jsonl import jsonl_lines
        from .io.text import read_text

        texts = jsonl_lines(read_text(args.input))  # a report per line; "\n" ends a line
        if texts and texts[-1] == "":
            texts.pop()  # the newline that ends the last line
        if args.input.lower().endswith(".jsonl"):  # a manifest: each row's "report"; blank lines skipped
            texts = [None if not line.strip() else _report_of_row(line) for line in texts]
    failed = 0
    for number, text in enumerate(texts, 1):
        if text is None:
            continue
        case_id = None
        if isinstance(text, tuple):  # a .jsonl row: (report or its error, id)
            text, case_id = text
        try:
            if isinstance(text, Exception):
                raise text
            report = parse_report(text)
        except (ValueError, TypeError) as exc:
            failed += 1
            where = f"line {number}" if args.input is not None else "report"
            message = " ".join(str(exc).split())
            print(f"medseg-r: {where}: {message}", file=sys.stderr)
            error = {"error": message}
            if args.input is not None:
                error["line"] = number
            if case_id is not None:
                error["id"] = case_id
            print(json.dumps(error) if args.json else f"{where}: error: {message}")
            continue
        if args.json:  # read from a file: each object says which line (and manifest id) it is
            where = {} if args.input is None else {"line": number}
            if case_id is not None:
                where["id"] = case_id
            print(json.dumps({**where, **report.to_dict()}, ensure_ascii=False))
        else:
            print(summarise(report, colour=colour))
    return 1 if failed else 0


def _cmd_describe(args) -> int:
    """One case (report text, or JSON with the measurements), a batch (``--manifest`` -> ``--out``
    JSONL that ``medseg-r train`` reads) or a data set (``--data DIR`` -> a described copy in
    ``--out``). Exit status: 0 every case described; 1 one or more cases of a batch could not be
    (one line each on stderr, the others written); 2 usage or input error (nothing written)."""
    from .describe import DescribeError, describe_case, describe_dataset, describe_manifest

    if sum(x is not None for x in (args.image, args.manifest, args.data)) != 1:
        raise UserError("give one of --image IMG --mask MASK, --manifest FILE --out OUT.jsonl, "
                        "or --data DIR --out OUT_DIR")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    spacing = None
    if args.spacing:
        spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    options = dict(domain=args.domain or "chest", orientation=args.orientation, style=args.style,
                   seed=args.seed, spacing=spacing)
    try:
        if args.image is not None:
            if args.mask is None:
                raise UserError("--image needs --mask MASK")
            result = describe_case(args.image, args.mask, target=args.target, organ=args.organ,
                                   **options)
        elif not args.out:
            raise UserError(f"{'--data' if args.data else '--manifest'} needs --out")
        elif args.data is not None:
            if not os.path.isfile(os.path.join(args.data, "manifest.jsonl")):
                raise UserError(f"{args.data}: no manifest.jsonl (a phantom or manifest folder)")
            summary = describe_dataset(args.data, args.out, style=args.style, seed=args.seed,
                                       domain=args.domain, spacing=spacing,
                                       progress=not args.quiet)
        else:
            summary = describe_manifest(args.manifest, args.out, target=args.target,
                                        organ=args.organ, progress=not args.quiet, **options)
    except DescribeError as exc:
        raise UserError(str(exc)) from None
    if args.image is None:
        print(f"wrote {summary['out']}: {summary['written']} described, "
              f"{summary['skipped']} already there, {len(summary['failed'])} failed")
        return 1 if summary["failed"] else 0
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(result.report.text)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _need_extra(extra: str, modules: List[str], command: str) -> None:
    """A command whose optional dependencies are missing stops here, before any work, with the
    install line (not with a traceback once the model has loaded)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{command} needs {', '.join(missing)}: pip install 'medseg-r[{extra}]' "
                        f"(from a clone: pip install '.[{extra}]')")


def _cmd_backbones(args) -> int:
    from .backbones import describe_backbones

    for name, text in describe_backbones().items():
        print(f"{name:<14}{text}")
    return 0


def _load_model(args):
    """(model, trained): a MedSeg-R checkpoint, else the weights that ship for the backbone (unless
    ``--untrained``), else the backbone with untrained (zero-gated) MedSeg-R modules."""
    from .backbones.weights import CheckpointError
    from .model import build_model, load_model
    from .model.checkpoint import is_medseg_checkpoint
    from .model.shipped import default_for, load_shipped, shipped_note

    try:
        if args.checkpoint and is_medseg_checkpoint(args.checkpoint):
            model = load_model(args.checkpoint, expect_backbone=args.backbone)
            return model, True
        backbone = args.backbone or "litemedsam"
        shipped = None if args.checkpoint or getattr(args, "untrained", False) else default_for(backbone)
        if shipped:
            model, info = load_shipped(shipped)
            model.shipped_info = info
            print(shipped_note(info), file=sys.stderr)
            return model, True
        return build_model(backbone, checkpoint=args.checkpoint), False
    except (CheckpointError, ValueError) as exc:  # a bad checkpoint, an unknown backbone
        raise UserError(str(exc)) from None


def _is_example(path: str, example) -> bool:
    """Whether ``path`` holds the example image (an earlier ``--example`` wrote it, whether or not
    that run finished)."""
    import numpy as np

    from .io import read_image

    try:
        return bool(np.array_equal(read_image(path), example))
    except (OSError, ValueError):
        return False


def _read_report_arg(args) -> str:
    if (args.report is None) == (args.report_file is None):
        raise UserError("give exactly one of --report TEXT or --report-file FILE")
    if args.report_file is None:
        return args.report
    if os.path.isdir(args.report_file):
        raise UserError(f"--report-file {args.report_file} is a folder: give a text file")
    if not os.path.isfile(args.report_file):
        raise UserError(f"report file not found: {args.report_file}")
    from .io.text import read_text

    return read_text(args.report_file)


def _cmd_predict(args) -> int:
    from PIL import Image

    from .example import EXAMPLE_REPORT, chest_like_image
    from .inference import (InputError, PredictOptions, Predictor, predict_case, predict_manifest,
                            read_manifest)
    from .inference.pipeline import check_report
    from .inference.sources import load_source
    from .io import atomic_write

    example = None
    if args.example:
        if args.image is not None or args.manifest is not None:
            raise UserError("--example is its own input: leave out --image and --manifest")
        example, _ = chest_like_image()
        args.image = os.path.join(args.out, "example.png")  # written once the checks have passed
        if args.report is None and args.report_file is None:
            args.report = EXAMPLE_REPORT
    if (args.image is None) == (args.manifest is None):
        raise UserError("give either --image PATH (with --report/--report-file) or --manifest FILE")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is a file, not a folder")
    if args.window is not None and args.window[1] <= 0:
        raise UserError(f"--window WIDTH must be positive, got {args.window[1]:g}")
    try:
        options = PredictOptions(threshold=args.threshold, box=tuple(args.box) if args.box else None,
                                 window=tuple(args.window) if args.window else None, z_zones=not args.no_z_zones,
                                 largest=args.largest, fill_holes=args.fill_holes, no_finding=args.no_finding,
                                 progress=not args.quiet and sys.stderr.isatty())
    except ValueError as exc:
        raise UserError(str(exc)) from None
    report_text = _read_report_arg(args) if args.image is not None else None
    cases = None
    if args.manifest is not None:  # every row checked before the model is loaded
        try:
            cases = read_manifest(args.manifest)
        except InputError as exc:
            raise UserError(str(exc)) from None
    if args.image is not None:  # cheap checks before the model is loaded
        try:
            check_report(report_text, options)
        except InputError as exc:
            raise UserError(str(exc)) from None
        if example is not None:
            if os.path.exists(args.image) and not _is_example(args.image, example):
                raise UserError(f"{args.image} exists and is not an earlier example's; choose "
                                f"another --out")
            with atomic_write(args.image) as tmp:
                Image.fromarray(example).save(tmp, format="PNG")
            print(f"wrote {args.image} (the example image)")
        if not os.path.exists(args.image):
            raise UserError(f"input not found: {args.image}")
        try:
            source = load_source(args.image)
        except InputError as exc:
            raise UserError(str(exc)) from None
    model, trained = _load_model(args)
    if not trained:
        print(f"note: no MedSeg-R checkpoint given: the prior modules are untrained (zero gates), so the masks are "
              f"those of plain {model.backbone_name}{' with your box' if args.box else ' without a prompt'}.",
              file=sys.stderr)
    try:
        predictor = Predictor(model, batch_size=args.batch_size, device=args.device)
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    info = {"backbone": model.backbone_name, "checkpoint": args.checkpoint, "trained_priors": trained}
    if getattr(model, "shipped_info", None):
        info["shipped_weights"] = model.shipped_info
    try:
        if args.manifest is not None:
            result = predict_manifest(predictor, args.manifest, args.out, options=options, model_info=info,
                                      log=lambda line: print(line, file=sys.stderr), cases=cases)
            print(f"{len(result['done'])} predicted, {len(result['skipped'])} already done (skipped), "
                  f"{len(result['failed'])} failed; summary: {os.path.join(args.out, 'batch_summary.json')}")
            return 1 if result["failed"] else 0
        summary = predict_case(predictor, args.image, report_text, args.out, options=options,
                               reference=args.reference, model_info=info, source=source)
    except InputError as exc:
        raise UserError(str(exc)) from None
    if not args.quiet:
        print(summarise(parse_report(report_text), colour=sys.stdout.isatty()))
    _print_case(summary, args.out)
    return 0


def _print_case(summary, out_dir: str) -> None:
    total, timing = summary["statistics"]["total"], summary["timing"]
    size = f"{total['voxels']} voxels" if "voxels" in total else f"{total['area_px']} px"
    extra = f", {total['volume_ml']} ml" if "volume_ml" in total else f", {total['area_mm2']} mm2" if "area_mm2" in total else ""
    conf = summary["confidence"]
    parts = [f"mean probability {conf['mean_probability_inside']:.2f}"] if conf["mean_probability_inside"] is not None else []
    parts += [f"predicted IoU {conf['predicted_iou']:.2f}"] if conf["predicted_iou"] is not None else []
    print(f"mask: {size}{extra}" + (f"; confidence: {', '.join(parts)}" if parts else ""), end="")
    if summary.get("rule"):
        print(f" ({summary['rule']})", end="")
    print()
    for f in summary["statistics"]["findings"]:
        key = "volume_ml" if "volume_ml" in f else "area_mm2" if "area_mm2" in f else "voxels" if "voxels" in f else "area_px"
        print(f"  finding {f['index'] + 1} ({f['target'] or 'target?'}): {f['components']} component(s), {key} {f[key]}")
    if "reference" in summary:
        print(f"reference: Dice {summary['reference']['dice']:.3f}, IoU {summary['reference']['iou']:.3f}")
    per = timing["seconds_per_slice"]
    print(f"time {timing['seconds']:.2f} s" + (f" ({1000 * per:.1f} ms per slice, {timing['slices_run']} slices)"
                                                 if per is not None and summary["kind"] == "volume" else "")
          + f"; peak memory {timing['peak_rss_mb']:.0f} MB" + (f" (GPU {timing['peak_gpu_mb']:.0f} MB)"
                                                                 if timing["peak_gpu_mb"] else ""))
    for name in summary["outputs"].values():
        print(f"wrote {os.path.join(out_dir, name)}")
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def _cmd_export(args) -> int:
    from .backbones.weights import CheckpointError
    from .export import ParityError, export_checkpoint
    from .inference.sources import InputError, load_source

    if not os.path.isfile(args.checkpoint):
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {args.tolerance}")
    if args.format == "onnx":
        _need_extra("export", ["onnx", "onnxscript", "onnxruntime"], "export --format onnx")
    out = args.out or os.path.splitext(args.checkpoint)[0] + (
        ".onnx" if args.format == "onnx" else ".torchscript.pt")
    if os.path.realpath(out) == os.path.realpath(args.checkpoint):
        raise UserError(f"--out {out} is the checkpoint itself: choose another file")
    if os.path.isdir(out):
        raise UserError(f"--out {out} is a folder: give a file name")
    if out.lower().endswith(".onnx") != (args.format == "onnx"):
        raise UserError(f"--out {out} does not fit --format {args.format} (ONNX files end in .onnx, "
                        f"TorchScript files do not)")
    if (os.path.exists(out) or os.path.exists(out + ".json")) and not _earlier_export(out):
        raise UserError(f"{out} (or {out}.json) exists and is not an earlier export: choose another "
                        f"--out")
    if args.report is not None and not args.report.strip():
        raise UserError("--report is empty (leave it out to check parity on the example report)")
    image = None
    if args.image:
        try:
            source = load_source(args.image)
        except InputError as exc:
            raise UserError(str(exc)) from None
        if source.kind != "image":
            raise UserError("--image for the parity check must be a 2-D image")
        image = source.pixels
    try:
        result = export_checkpoint(args.checkpoint, out, fmt=args.format, image=image, report=args.report,
                                   tolerance=args.tolerance)
    except ParityError as exc:  # a model that fails its check is not written; earlier files stay
        print(f"parity with PyTorch on one input: max |logit diff| {exc.diff:.2e}, masks agree on "
              f"{100 * exc.agreement:.3f} % of pixels")
        print(f"medseg-r: error: {exc}", file=sys.stderr)
        return 1
    except (CheckpointError, ValueError) as exc:
        raise UserError(str(exc)) from None
    print(f"parity with PyTorch on one input: max |logit diff| {result['max_abs_diff']:.2e}, masks agree on "
          f"{100 * result['mask_agreement']:.3f} % of pixels")
    print(f"wrote {out} and {out}.json")
    return 0


def _earlier_export(out: str) -> bool:
    """Whether ``out`` and its sidecar are an earlier ``export``'s (the sidecar names the file)."""
    try:
        with open(out + ".json", "r", encoding="utf-8") as handle:
            sidecar = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(sidecar, dict) and sidecar.get("file") == os.path.basename(out) and \
        sidecar.get("format") in ("onnx", "torchscript")


def _cmd_serve(args) -> int:
    """The local web app (medseg_r.serve): same model loading as predict, one line per error."""
    _need_extra("serve", ["starlette", "uvicorn"], "medseg-r serve")
    from .serve import ServeConfig, is_loopback, open_socket, run_server

    for name in ("max_upload_mb", "idle_minutes"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            raise UserError(f"--{name.replace('_', '-')} must be a positive number")
    if args.workers < 1 or args.queue < 0 or not 0 <= args.port <= 65535:
        raise UserError("need --workers >= 1, --queue >= 0 and --port in 0..65535")
    if not is_loopback(args.host):
        print(f"warning: --host {args.host} lets other machines reach this page; it has no login",
              file=sys.stderr)
    try:  # before the model loads: a taken port is reported at once
        sock = open_socket(args.host, args.port)
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        raise UserError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    keep_freed_memory()
    try:
        model, trained = _load_model(args)
    except BaseException:
        sock.close()
        raise
    if not trained:
        print(f"note: no MedSeg-R checkpoint given: the prior modules are untrained (zero gates), "
              f"so the masks are those of plain {model.backbone_name} (with your box or points, "
              f"if any).", file=sys.stderr)
    config = ServeConfig(max_upload_mb=args.max_upload_mb, workers=args.workers, queue=args.queue,
                         idle_minutes=args.idle_minutes)
    checkpoint = os.path.basename(args.checkpoint) if args.checkpoint else None
    info = {"backbone": model.backbone_name, "checkpoint": checkpoint, "trained_priors": trained}
    try:
        run_server(model, config, sock, model_info=info, device=args.device)
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    return 0


def _cmd_make_data(args) -> int:
    from .data.phantom import make_phantom
    from .io.output_folders import check_phantom_folder

    if args.kind != "phantom":
        raise UserError(f"unknown data kind {args.kind!r} (known: phantom)")
    try:
        check_phantom_folder(args.out, n=args.n, seed=args.seed, size=args.size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        path = make_phantom(args.out, n=args.n, seed=args.seed, size=args.size, splits=args.splits)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    with open(path, encoding="utf-8") as handle:
        count = sum(1 for line in handle if line.strip())
    print(f"{count} of {args.n} cases ({', '.join(args.splits or ['train', 'val', 'test'])}); manifest: {path}")
    return 0


def _json_arg(text: Optional[str], what: str) -> dict:
    if not text:
        return {}
    from .io.jsonl import parse_json_object

    try:
        return parse_json_object(text)
    except ValueError as exc:
        raise UserError(f"{what} must be a JSON object: {exc}") from None


def _cmd_train(args) -> int:
    from .engine.train import TrainConfig, train

    fields = {}
    if args.config:
        try:
            import yaml

            with open(args.config, "r", encoding="utf-8") as handle:
                fields = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read config {args.config}: {exc}") from None
        if not isinstance(fields, dict):
            raise UserError(f"config {args.config} must be a mapping of option: value, got a "
                            f"{type(fields).__name__}")
    for key in ("data", "val_data", "out", "backbone", "img_size", "epochs", "batch_size", "lr", "accumulate", "precision",
                "accelerator", "devices", "num_nodes", "strategy", "num_workers", "seed", "resume", "loss",
                "schedule", "limit_train_batches", "model_weights", "objective", "backbone_lr",
                "feature_cache", "cache_dtype", "describe_missing", "shift_augment", "image_augment"):
        value = getattr(args, key, None)
        if value is not None:
            fields[key] = value
    if args.options:
        fields["model_options"] = {**fields.get("model_options", {}), **_json_arg(args.options, "--options")}
    if args.no_augment:
        fields["augment"] = False
    if args.deterministic is not None:
        fields["deterministic"] = args.deterministic
    if isinstance(fields.get("devices"), str) and fields["devices"].isdigit():
        fields["devices"] = int(fields["devices"])
    missing = [k for k in ("data", "out") if not fields.get(k)]
    if missing:
        raise UserError(f"missing {' and '.join('--' + m for m in missing)} (or set them in the config file)")
    try:
        cfg = TrainConfig(**fields)
    except TypeError as exc:
        raise UserError(f"bad training option: {exc}") from None
    try:
        result = train(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    print(f"done: {result['steps']} optimisation steps; best checkpoint {result['best']}; model {result['model']}")
    return 0


def _cmd_evaluate(args) -> int:
    from .model import load_model
    from .backbones.weights import CheckpointError
    from .data.checks import check_files
    from .data.readers import has_splits, read_dataset
    from .engine.evaluate import evaluate
    from .io.output_folders import check_evaluate_folder, clear_evaluate_folder

    if args.overlays < 0:
        raise UserError(f"--overlays must be >= 0, got {args.overlays}")
    if args.out:
        try:
            check_evaluate_folder(args.out)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:  # the data and its files are checked before the model is loaded
        records, root = read_dataset(args.data, split=args.split)
        if not records:
            raise UserError(f"no case in split {args.split!r} of {args.data}")
        check_files(records, root, args.split)
        model = load_model(args.checkpoint)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if not has_splits(records):
        print(f"medseg-r: warning: {args.data} has no split column: all its {len(records)} cases are "
              f"scored, including any the model was trained on", file=sys.stderr)
    if args.out:  # after the checks, before the new outputs are written
        clear_evaluate_folder(args.out)
    summary = evaluate(model, records, root=root, size=model.img_size, out_dir=args.out, overlays=args.overlays,
                       progress=True)
    print(json.dumps(summary, indent=2))
    print(f"wrote {os.path.join(args.out, 'cases.csv')} and {os.path.join(args.out, 'summary.json')}")
    return 0


def _cmd_demo(args) -> int:
    from .engine.demo import run_demo

    try:
        run_demo(args.out, quick=args.quick, seed=args.seed, precision=args.precision,
                 train_models=args.train)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medseg-r", description="Report-guided medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medseg-r {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse-report", help="read a free-text report into structured priors",
                       description="Read free-text reports into structured priors (PRIORS.md). "
                       "A report that cannot be read is reported on stderr and as "
                       "{\"error\": ...} in the output; the others are still read.",
                       epilog="exit status: 0 every report read; 1 one or more could not be read; "
                       "2 usage error")
    p.add_argument("text", nargs="?", help="the report text")
    p.add_argument("--input", help="a file with one report per line, or a .jsonl manifest (each "
                                   "row's report, e.g. describe's output)")
    p.add_argument("--json", action="store_true", help="print one JSON object per report (PRIORS.md)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="highlight the evidence words (default auto: when printing to a terminal)")
    p.set_defaults(func=_cmd_parse_report)

    p = sub.add_parser("describe", help="describe the lesions of a mask as report text (priors)",
                       description="Describe the lesions of a mask as findings and report text "
                       "(one finding per connected component, or per label of a label mask; an "
                       "empty mask gives a negative report).",
                       epilog="exit status: 0 every case described; 1 one or more cases of a "
                       "batch failed (one line each on stderr); 2 usage or input error")
    p.add_argument("--image", help="PNG/JPEG/TIFF/BMP, NIfTI, a DICOM file or series folder")
    p.add_argument("--mask", help="mask on the same grid (binary or integer labels)")
    p.add_argument("--manifest", help="batch: .csv/.jsonl with image, mask [, id, split, tags, "
                                      "spacing]; paths relative to it")
    p.add_argument("--data", help="a folder with manifest.jsonl (e.g. the phantom): writes a copy "
                                  "with described reports to --out (images referenced, not copied)")
    p.add_argument("--out", help="batch output .jsonl (a manifest medseg-r train reads), or the "
                                 "folder for --data")
    p.add_argument("--domain", default=None,
                   choices=["chest", "abdomen", "breast", "brain", "colonoscopy", "image"],
                   help="default chest (--data: the data set's dataset.json domain, else chest)")
    p.add_argument("--orientation", default="radiological",
                   choices=["radiological", "neurological"],
                   help="which image side is the patient's right: radiological (default: the "
                        "left of the image) or neurological (the right)")
    p.add_argument("--style", default="radiology", choices=["radiology", "qata", "attribute"],
                   help="the sentences' style: radiology (default), qata (QaTa-COV19's short "
                        "phrases) or attribute (one attribute list per lesion)")
    p.add_argument("--seed", type=int, default=0, help="phrasing seed (batch: seed + row number)")
    p.add_argument("--spacing", type=float, nargs="+", metavar="MM",
                   help="mm per pixel (one number, or one per axis); files with an affine have it")
    p.add_argument("--target", help="finding noun (default per domain)")
    p.add_argument("--organ", help="organ the lesions lie in, e.g. liver")
    p.add_argument("--json", action="store_true", help="print the priors and measurements as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("backbones", help="list the registered SAM-family backbones",
                       description="List the registered SAM-family backbones with their image size, "
                       "encoder and where their weights come from.")
    p.set_defaults(func=_cmd_backbones)

    p = sub.add_parser("predict", help="segment what a report describes in an image or volume")
    p.add_argument("--image", help="PNG/JPEG/TIFF/BMP, NIfTI (.nii/.nii.gz), a DICOM file or a DICOM series folder")
    p.add_argument("--manifest", help="batch mode: .csv/.jsonl with image, report|report_file [, id, reference, box]")
    p.add_argument("--example", action="store_true", help="generate an example chest-like image and report")
    p.add_argument("--untrained", action="store_true",
                   help="without --checkpoint: untrained MedSeg-R modules (the plain backbone's masks) "
                        "instead of the weights that ship with the package")
    p.add_argument("--report", help="report text")
    p.add_argument("--report-file", help="file holding the report text")
    p.add_argument("--checkpoint", help="MedSeg-R checkpoint, or the backbone's own weights")
    p.add_argument("--backbone", default=None, help="backbone name (default: litemedsam, or the checkpoint's)")
    p.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="optional box prompt (2-D)")
    p.add_argument("--reference", help="reference mask on the same grid: adds Dice/IoU and a green outline")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    p.add_argument("--window", nargs=2, type=float, metavar=("LEVEL", "WIDTH"),
                   help="CT window for volumes, e.g. -600 1500 (default: 0.5-99.5 percentiles)")
    p.add_argument("--no-z-zones", action="store_true",
                   help="volumes: apply the report to every slice (default: upper/middle/lower pick cranio-caudal thirds)")
    p.add_argument("--largest", type=int, default=0, metavar="N", help="keep the N largest connected components")
    p.add_argument("--fill-holes", action="store_true", help="fill holes in the mask")
    p.add_argument("--no-finding", choices=("error", "segment"), default="error",
                   help="a report without any finding: error (default) or segment without priors")
    p.add_argument("--batch-size", type=int, default=None,
                   help="slices per forward pass for volumes (default: 8 on a GPU, 1 on a CPU)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or report summary")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript, checked against PyTorch")
    p.add_argument("--checkpoint", required=True, help="MedSeg-R checkpoint (model.ckpt of a run)")
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True,
                   help="onnx (needs the 'export' extra) or torchscript")
    p.add_argument("--out", help="output file (default: the checkpoint's name with .onnx / .torchscript.pt)")
    p.add_argument("--image", help="2-D image for the parity check (default: the bundled example)")
    p.add_argument("--report", help="report for the parity check (default: the example report)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest accepted logit difference against PyTorch (default 1e-3)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("serve", help="local web page: load, type a report, segment, correct",
                       description="Start a local web app (open the printed address in a browser).")
    p.add_argument("--checkpoint", help="MedSeg-R checkpoint or backbone weights (as predict)")
    p.add_argument("--backbone", default=None,
                   help="backbone name (default: litemedsam, or the checkpoint's)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--max-upload-mb", dest="max_upload_mb", type=float, default=512.0,
                   help="largest accepted upload in MB (default 512)")
    p.add_argument("--workers", type=int, default=2, help="segmentations run at once (default 2)")
    p.add_argument("--queue", type=int, default=16,
                   help="segmentations that may wait beyond those; more are told 'busy' "
                        "(default 16)")
    p.add_argument("--idle-minutes", dest="idle_minutes", type=float, default=30.0,
                   help="a page silent this long loses its session and files (default 30)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("make-data", help="generate the embedded phantom benchmark")
    p.add_argument("kind", choices=["phantom"], help="the data set to generate (phantom: synthetic "
                                                     "chest radiographs with reports)")
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=int, default=600, help="number of cases (default 600)")
    p.add_argument("--seed", type=int, default=0,
                   help="generation seed (default 0, the accuracy benchmark's; the demo uses 1)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--splits", nargs="+", choices=["train", "val", "test"], default=None,
                   help="write only these splits' cases, drawn exactly as in a full generation "
                        "(default: all)")
    p.set_defaults(func=_cmd_make_data)

    p = sub.add_parser("train", help="train MedSeg-R (PyTorch Lightning)")
    p.add_argument("config", nargs="?", help="YAML file with TrainConfig fields (options below override it)")
    p.add_argument("--data", help="manifest (.jsonl/.csv), medvlsm .json, LViT folder or volume folder")
    p.add_argument("--val-data", dest="val_data", help="separate validation set (default: the 'val' split of --data)")
    p.add_argument("--out", help="run folder (checkpoints/, logs/, model.ckpt)")
    p.add_argument("--backbone", help=f"a registered backbone (medseg-r backbones; default "
                                      f"{TRAIN_DEFAULTS['backbone']})")
    p.add_argument("--img-size", dest="img_size", type=int,
                   help="encoder input side in pixels (default: the backbone's)")
    p.add_argument("--options", help='model options as JSON, e.g. \'{"priors": "none", "freeze": "none"}\'')
    p.add_argument("--epochs", type=int, help=f"default {TRAIN_DEFAULTS['epochs']}")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help=f"cases per step and device (default {TRAIN_DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, help=f"AdamW learning rate (default {TRAIN_DEFAULTS['lr']:g})")
    p.add_argument("--loss", choices=["dice_ce", "dice_focal", "batch_dice_ce", "batch_dice_focal"],
                   help=f"MONAI Dice plus cross-entropy or focal loss, per image or over the batch "
                        f"(default {TRAIN_DEFAULTS['loss']})")
    p.add_argument("--schedule", choices=["cosine", "poly"],
                   help=f"learning-rate schedule over the run (default {TRAIN_DEFAULTS['schedule']})")
    p.add_argument("--accumulate", type=int,
                   help=f"gradient accumulation steps (default {TRAIN_DEFAULTS['accumulate']})")
    p.add_argument("--precision", help="e.g. 16-mixed, bf16-mixed, 32-true (default: 16-mixed on GPU)")
    p.add_argument("--accelerator", help="auto, cpu, gpu")
    p.add_argument("--devices", help="number of devices (DDP when > 1)")
    p.add_argument("--num-nodes", dest="num_nodes", type=int,
                   help=f"machines of a multi-node DDP run (default {TRAIN_DEFAULTS['num_nodes']})")
    p.add_argument("--strategy", help="auto, ddp, ddp_spawn ... (default auto)")
    p.add_argument("--num-workers", dest="num_workers", type=int,
                   help=f"data-loading processes (default {TRAIN_DEFAULTS['num_workers']}: the main "
                        f"process)")
    p.add_argument("--seed", type=int, help=f"seed of weights, order and augmentation (default "
                                            f"{TRAIN_DEFAULTS['seed']})")
    p.add_argument("--limit-train-batches", dest="limit_train_batches", type=int,
                   help="at most this many batches per epoch (a quick check; default: all)")
    p.add_argument("--no-augment", action="store_true", help="no flips")
    p.add_argument("--model-weights", dest="model_weights", choices=["best", "last"],
                   help="weights written to OUT/model.ckpt: best validation Dice (default) or the last epoch")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                   help="deterministic kernels (default: on CPU yes, on GPU no)")
    p.add_argument("--resume", help="a Lightning checkpoint, or 'auto' for OUT/checkpoints/last.ckpt (or the "
                        "latest epochNNN.ckpt there when last.ckpt is missing)")
    p.add_argument("--objective", choices=["segmentation", "localisation", "both", "reference_boxes"],
                   help="train on the masks (default), the box head alone (model option report_box; "
                        "the decoder is not run), both, or the mask decoder on jittered boxes around "
                        "the reference lesions (reference_boxes: the report is not read)")
    p.add_argument("--backbone-lr", dest="backbone_lr", type=float,
                   help="learning rate of the pretrained SAM parts that train (default: --lr)")
    p.add_argument("--feature-cache", dest="feature_cache",
                   help="folder caching the frozen encoder's features (computed once per image)")
    p.add_argument("--cache-dtype", dest="cache_dtype", choices=["float16", "float32"],
                   help=f"precision of the cached features on disk (default "
                        f"{TRAIN_DEFAULTS['cache_dtype']})")
    p.add_argument("--shift-augment", dest="shift_augment", type=int,
                   help="translate training batches by up to K cells of the cached site (default 0)")
    p.add_argument("--image-augment", dest="image_augment", type=float,
                   help="warp (zoom, aspect, rotation) and re-tone (gamma, contrast, brightness, "
                        "noise) the training images at strength S (1: zoom within about 15%%, "
                        "rotation within 6 degrees, ...; the ranges scale with S); only for an image "
                        "localiser (model option box_input=image) trained with --objective "
                        "localisation (default 0: off)")
    p.add_argument("--describe-missing", dest="describe_missing", action="store_true", default=None,
                   help="describe cases with an empty report from their masks (medseg-r describe)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="Dice, IoU, HD95, small-lesion sensitivity, FP rate; per subset")
    p.add_argument("--checkpoint", required=True, help="MedSeg-R checkpoint (model.ckpt of a run)")
    p.add_argument("--data", required=True,
                   help="a data set as train reads it (manifest, medvlsm .json, LViT or volume folder)")
    p.add_argument("--split", default="test",
                   help="the split scored (default test; a data set without splits is scored whole)")
    p.add_argument("--out", required=True, help="folder for cases.csv, summary.json and overlays")
    p.add_argument("--overlays", type=int, default=0, help="write overlay PNGs for the first N cases")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("demo", help="fresh phantom test cases -> the shipped MedSeg-R and its two "
                                    "baselines -> one table (CPU)")
    p.add_argument("--out", default="medseg_r_demo",
                   help="output folder (default medseg_r_demo; a rerun reuses its data and encodings)")
    p.add_argument("--quick", action="store_true", help="fewer cases (a smoke test of the pipeline)")
    p.add_argument("--train", action="store_true",
                   help="train the three models here instead of using the shipped ones (longer)")
    p.add_argument("--seed", type=int, default=1,
                   help="phantom seed (default 1; the shipped models were trained on seeds 0 and 2)")
    p.add_argument("--precision", help="precision of training and scoring: 32-true (default) or "
                                       "bf16-mixed (same figures, slower scoring on a CPU)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in HEAVY_COMMANDS:
        keep_freed_memory()
    shown = warnings.showwarning
    warnings.showwarning = _one_line_data_warnings(shown)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"medseg-r: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medseg-r: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a folder that cannot be written, a path under a file, a full disk
        if exc.filename is None:
            raise
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        print(f"medseg-r: error: {exc.strerror or exc}: {where}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown


def _one_line_data_warnings(show):
    """``warnings.showwarning`` that prints a :class:`~medseg_r.data.readers.DataWarning` as one
    line for the user and hands every other warning to ``show``."""

    def _show(message, category, filename, lineno, file=None, line=None):
        from .data.readers import DataWarning

        if issubclass(category, DataWarning):
            print(f"medseg-r: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return _show


if __name__ == "__main__":
    raise SystemExit(main())

"""``predict`` and ``export``: a model on the user's images."""
from __future__ import annotations

import json
import os
import sys

from ..report import parse_report
from ..report.format import summarise
from . import common
from .common import UserError, need_extra


def _is_example(path: str, example) -> bool:
    """Whether ``path`` holds the example image (an earlier ``--example`` wrote it, whether or not
    that run finished)."""
    import numpy as np

    from ..io import read_image

    try:
        return bool(np.array_equal(read_image(path), example))
    except (OSError, ValueError):
        return False


def _read_report_arg(args) -> str:
    if args.report is None and args.report_file is None and args.box:
        return ""  # a box alone: segmented without report priors
    if (args.report is None) == (args.report_file is None):
        raise UserError("give exactly one of --report TEXT or --report-file FILE (or --box alone)")
    if args.report_file is None:
        return args.report
    if os.path.isdir(args.report_file):
        raise UserError(f"--report-file {args.report_file} is a folder: give a text file")
    if not os.path.isfile(args.report_file):
        raise UserError(f"report file not found: {args.report_file}")
    from ..io.text import read_text

    return read_text(args.report_file)


def _cmd_predict(args) -> int:
    from ..example import EXAMPLE_REPORT, chest_like_image
    from ..inference.options import PredictOptions

    example = None
    if args.example:
        if args.image is not None or args.manifest is not None:
            raise UserError("--example is its own input: leave out --image and --manifest")
        args.image = os.path.join(args.out, "example.png")  # written once the checks have passed
        if args.report is None and args.report_file is None:
            args.report = EXAMPLE_REPORT
    if (args.image is None) == (args.manifest is None):
        raise UserError("give either --image PATH (with --report/--report-file) or --manifest FILE")
    if args.manifest is not None:  # per-case inputs come from the manifest's columns
        given = [name for name, value in (("--report", args.report), ("--report-file", args.report_file),
                                          ("--reference", args.reference), ("--box", args.box))
                 if value is not None]
        if given:
            raise UserError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --image; with "
                            f"--manifest each row gives its own (columns report or report_file, "
                            f"reference, box)")
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
    common.check_device(args.device)
    if args.example:  # drawn after the cheap checks (a few seconds)
        example, _ = chest_like_image()
    from PIL import Image

    from ..inference import InputError, Predictor, predict_case, predict_manifest, read_manifest
    from ..inference.batch import check_batch_summary
    from ..inference.pipeline import check_report
    from ..inference.sources import load_source
    from ..io import atomic_write

    report_text = _read_report_arg(args) if args.image is not None else None
    cases = source = None
    if args.manifest is not None:  # every row checked before the model is loaded
        try:
            cases = read_manifest(args.manifest)
            check_batch_summary(args.out)
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
        elif not os.path.exists(args.image):
            raise UserError(f"input not found: {args.image}")
        else:
            try:
                source = load_source(args.image)
            except InputError as exc:
                raise UserError(str(exc)) from None
            if source.n_slices > 1 and args.box:  # before the model loads
                raise UserError("--box is for 2-D images and one-slice volumes (a DICOM radiograph); a "
                                "volume of several slices is segmented from the report alone")
    if args.reference is not None and not os.path.exists(args.reference):  # before the model loads
        raise UserError(f"reference mask not found: {args.reference}")
    model, trained = common.model_from_args(args)
    if example is not None:  # written once the model has loaded: a failed load leaves nothing
        with atomic_write(args.image) as tmp:
            Image.fromarray(example).save(tmp, format="PNG")
        print(f"wrote {args.image} (the example image)")
        source = load_source(args.image)
    if not trained:
        # sam_tiny ships no weights: built without a checkpoint, the whole model is random
        random = " (random weights: it ships none; give --checkpoint)" if model.backbone_name == "sam_tiny" \
            and not args.checkpoint else ""
        print(f"note: no MedSeg-R checkpoint given: the prior modules are untrained (zero gates), so the masks are "
              f"those of plain {model.backbone_name}{random}"
              f"{' with your box' if args.box else ' without a prompt'}.", file=sys.stderr)
        if not args.box and (source is None or source.n_slices == 1):  # several slices take no box
            advice = (" (leave out --untrained for the shipped weights, which read the report)"
                      if getattr(args, "untrained", False) else "")
            print(f"warning: plain {model.backbone_name} needs a prompt to segment: without --box expect "
                  f"an empty or arbitrary mask{advice}", file=sys.stderr)
    try:
        predictor = Predictor(model, batch_size=args.batch_size, device=args.device)
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    info = common.model_info(model, args.checkpoint, trained)
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
    if not args.quiet and report_text.strip():
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
    run = timing["slices_run"]
    print(f"time {timing['seconds']:.2f} s" + (f" ({1000 * per:.1f} ms per slice, {run} slice{'s' * (run != 1)})"
                                                 if per is not None and summary["kind"] == "volume" else "")
          + f"; peak memory {timing['peak_rss_mb']:.0f} MB" + (f" (GPU {timing['peak_gpu_mb']:.0f} MB)"
                                                                 if timing["peak_gpu_mb"] else ""))
    for name in summary["outputs"].values():
        print(f"wrote {os.path.join(out_dir, name)}")
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def _cmd_export(args) -> int:
    from ..backbones.weights import CheckpointError
    from ..export import ParityError, export_checkpoint
    from ..inference.sources import InputError, load_source
    from ..model.shipped import is_shipped

    if os.path.isdir(args.checkpoint):
        raise UserError(f"{args.checkpoint} is a folder, not a checkpoint file (a run's weights are "
                        f"RUN/model.ckpt)")
    if not os.path.isfile(args.checkpoint) and not is_shipped(args.checkpoint):
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {args.tolerance}")
    if args.format == "onnx":
        need_extra("export", ["onnx", "onnxscript", "onnxruntime"], "export --format onnx")
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


def add_parsers(sub) -> None:
    """Add the ``predict`` and ``export`` commands to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "predict", help="segment what a report describes in an image or volume",
        description="Segment what a report describes in a 2-D image (PNG, JPEG, TIFF, BMP) or a "
                    "volume (NIfTI, DICOM), or in each row of a manifest. Writes the mask in the "
                    "input's own format and geometry, an overlay picture and a JSON summary (what the "
                    "report was read as, statistics, warnings). Without --checkpoint it uses the "
                    "MedSeg-R weights shipped with the package (trained on synthetic phantom chest "
                    "radiographs, not for clinical use).",
        epilog="exit status: 0 done; 1 one or more manifest cases failed (the others are written); "
               "2 usage or input error")
    p.add_argument("--image", help="PNG/JPEG/TIFF/BMP, NIfTI (.nii/.nii.gz), a DICOM file or a DICOM series folder")
    p.add_argument("--manifest", help="batch mode: .csv/.jsonl with image, report|report_file [, id, reference, "
                                      "box] (paths relative to the manifest); a rerun skips the cases "
                                      "already predicted with the same inputs and options")
    p.add_argument("--example", action="store_true", help="generate an example chest-like image and report")
    p.add_argument("--untrained", action="store_true",
                   help="without --checkpoint: untrained MedSeg-R modules (the plain backbone's masks) "
                        "instead of the weights that ship with the package")
    p.add_argument("--report", help="report text (may be left out with --box: the box alone is then "
                                    "segmented; --example brings its own report, so give --report '' "
                                    "with it for the box alone)")
    p.add_argument("--report-file", help="file holding the report text")
    p.add_argument("--checkpoint", help="MedSeg-R checkpoint (model.ckpt of a run), shipped weights "
                                          "(their file or name: litemedsam_phantom, ...), or the "
                                          "backbone's own weights")
    p.add_argument("--backbone", default=None, help="backbone name (default: litemedsam, or the checkpoint's)")
    p.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="optional box prompt in pixels of the picture predict draws (2-D images "
                   "and one-slice volumes; a one-slice volume's in its radiological display, as in "
                   "the overlay)")
    p.add_argument("--reference", help="reference mask on the same grid: adds Dice/IoU and a green outline")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    p.add_argument("--window", nargs=2, type=float, metavar=("LEVEL", "WIDTH"),
                   help="CT window for volumes, e.g. -600 1500 (default: 0.5-99.5 percentiles)")
    p.add_argument("--no-z-zones", action="store_true",
                   help="volumes: apply the report to every slice (default: upper/middle/lower pick cranio-caudal thirds)")
    p.add_argument("--largest", type=int, default=0, metavar="N", help="keep the N largest connected components")
    p.add_argument("--fill-holes", action="store_true", help="fill holes in the mask")
    p.add_argument("--no-finding", choices=("error", "segment"), default="error",
                   help="a report without any finding: error (default) or segment without priors (the "
                        "shipped weights then box what their localiser finds in the image alone)")
    p.add_argument("--batch-size", type=common.positive_int, default=None,
                   help="slices per forward pass for volumes (default: 8 on a GPU, 1 on a CPU)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or report summary")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript, checked against PyTorch")
    p.add_argument("--checkpoint", required=True,
                   help="MedSeg-R checkpoint (model.ckpt of a run), or shipped weights (file or name)")
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True,
                   help="onnx (needs the 'export' extra) or torchscript")
    p.add_argument("--out", help="output file (default: the checkpoint's name with .onnx / .torchscript.pt)")
    p.add_argument("--image", help="2-D image for the parity check (default: the bundled example)")
    p.add_argument("--report", help="report for the parity check (default: the example report)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest accepted logit difference against PyTorch (default 1e-3)")
    p.set_defaults(func=_cmd_export)

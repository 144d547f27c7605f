"""One case end to end: read the input, parse the report, predict, post-process, write every output.

Outputs for a case ``STEM`` in ``out_dir`` (each written atomically; the JSON is written last and marks
the case as finished, which is what batch mode's resume checks):

* ``STEM_mask.png|.tif|.nii.gz``: the mask in the input's format and geometry (see :mod:`.sources`);
* ``STEM_overlay.png``: overlay + location attention + the report with its evidence coloured;
* ``STEM_sheet.png`` (volumes): every k-th slice with the mask;
* ``STEM_prediction.json``: parsed priors, per-finding statistics, confidence, timing, options.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..data.projection import as_displayed, as_stored
from ..data.volumes import check_same_grid, on_axes_of
from ..io import atomic_write
from ..io.images import mask_foreground, read_mask
from ..io.output_folders import is_plain_file_name
from ..report import parse_report
from ..report.schema import Report
from ..report.transform import without_sides, without_zones
from .postprocess import fill_holes, keep_largest
from .options import PredictOptions
from .predictor import Prediction, Predictor, display_to_ras
from .sources import IMAGE_FORMATS, InputError, Source, format_of, load_source
from .stats import finding_statistics
from .writers import write_mask, write_stored_png


def case_stem(path: str) -> str:
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))  # "." is its folder's name
    for ending in (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".bmp", ".tiff", ".tif", ".dcm", ".dicom", ".ima"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def output_paths(source_path: str, out_dir: str, stem: Optional[str] = None, *, fmt: Optional[str] = None,
                 one_dicom_image: bool = False) -> Dict[str, str]:
    """The files a prediction writes; ``one_dicom_image`` adds ``stored_mask``, a one-image DICOM's mask
    as a PNG in the file's stored pixel order."""
    stem = stem or case_stem(source_path)
    paths = {"overlay": f"{stem}_overlay.png", "json": f"{stem}_prediction.json", "sheet": f"{stem}_sheet.png"}
    if fmt is not None:
        from .writers import WRITERS

        paths["mask"] = f"{stem}_{WRITERS[fmt][0]}"
    if one_dicom_image:
        paths["stored_mask"] = f"{stem}_mask.png"
    return {k: os.path.join(out_dir, v) for k, v in paths.items()}


def check_outputs(paths: Dict[str, str], inputs: Sequence[Optional[str]]) -> None:
    """Refuse outputs that would replace what the user has: an input (the image, the reference
    mask), or an existing file of an output's name that no earlier prediction wrote (an earlier
    prediction leaves its ``_prediction.json`` beside its outputs, or its ``.pending`` marker when
    it was stopped while writing, and may be written again). Raises :class:`InputError`."""
    given = [os.path.realpath(p) for p in inputs if p]
    for key, path in paths.items():
        if os.path.realpath(path) in given or any(os.path.exists(g) and os.path.exists(path)
                                                  and os.path.samefile(g, path) for g in given):
            raise InputError(f"the {key} output {path} would overwrite an input of this prediction; "
                             f"choose another --out")
    if not os.path.exists(paths["json"]) and not os.path.exists(_pending(paths)):
        there = [p for k, p in paths.items() if k != "json" and os.path.exists(p)]
        if there:
            raise InputError(f"{there[0]} exists and is not an earlier prediction's output (no "
                             f"{os.path.basename(paths['json'])} beside it); choose another --out "
                             f"or move the file")
        return
    if inputs and inputs[0]:
        earlier = _earlier_input(paths)
        if earlier is False:
            raise InputError(f"{paths['json']} exists and is not an earlier prediction's summary; "
                             f"choose another --out or move the file")
        if earlier and earlier != os.path.abspath(inputs[0]):
            raise InputError(f"{paths['json']} holds the prediction of another image of the same "
                             f"name ({earlier}); choose another --out")


def _earlier_input(paths: Dict[str, str]):
    """The image an earlier prediction in these paths was of: its summary's ``input`` (or, for one
    stopped while writing, its ``.pending`` marker's text); ``None`` when unknown (a marker of an
    older version, empty), ``False`` when the summary is not a prediction's."""
    if os.path.exists(paths["json"]):
        try:
            with open(paths["json"], encoding="utf-8") as handle:
                held = json.load(handle)
        except (OSError, ValueError):
            return False
        if not (isinstance(held, dict) and isinstance(held.get("input"), str) and "kind" in held):
            return False
        return held["input"]
    try:
        with open(_pending(paths), encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _pending(paths: Dict[str, str]) -> str:
    """The marker a prediction keeps beside its outputs while it writes them."""
    return paths["json"] + ".pending"


MAX_REFERENCE_LABELS = 64  # as describe's label masks
# Raised whenever how predict reads an input or what it writes changes, so that a resumed batch
# predicts again the cases an earlier version finished (2: a DICOM radiograph's PatientOrientation
# is read, and a one-image DICOM's mask is also written in its stored pixel order)
RESULT_VERSION = 2


def _reference(path: str, source: Source) -> np.ndarray:
    """A reference mask on the same grid as ``source``, in display order like the prediction."""
    if not os.path.exists(path):
        raise InputError(f"reference mask not found: {path}")
    fmt = format_of(path)
    ref = None
    if fmt in IMAGE_FORMATS:  # read once, as training reads masks (palette: indices)
        try:
            values = read_mask(path)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    else:
        ref = load_source(path)
        values = ref.voxels
    if np.asarray(values).dtype.kind == "f":
        if not np.isfinite(values).all():  # as load_source refuses such an image
            raise InputError(f"reference mask {path} contains NaN or infinite values")
        finite = values[np.isfinite(values)]
        if not np.equal(np.mod(finite, 1), 0).all():
            raise InputError(f"reference mask {path} holds non-integer values (an image, or "
                             f"probabilities?); give a label mask, or threshold it first")
    if fmt != "jpeg":  # (a JPEG's compression noise gives many values: it is cut at half its range)
        levels = len(np.unique(np.asarray(values)))
        if levels > MAX_REFERENCE_LABELS + 1:  # the image itself given as its reference: "Dice 0.009"
            raise InputError(f"reference mask {path} holds {levels} different values: an image, not a "
                             f"mask? give a binary or label mask (at most {MAX_REFERENCE_LABELS} labels)")
    if source.kind == "image":
        if ref is not None:
            raise InputError(f"reference {path} is a volume but the input is a 2-D image")
        arr = mask_foreground(values, lossy=fmt == "jpeg")
        if arr.shape != source.pixels.shape[:2]:
            raise InputError(f"reference mask {path} is {arr.shape[1]}x{arr.shape[0]} pixels but the image is "
                             f"{source.pixels.shape[1]}x{source.pixels.shape[0]}")
        return arr
    if ref is None and source.n_slices == 1:  # one radiograph or slice: a 2-D mask in the file's
        # stored pixel order (as predict writes it), turned as the image is for the model
        arr = mask_foreground(values, lossy=fmt == "jpeg")
        stored = as_stored(source.display(0), source.view).shape
        if arr.shape != stored:
            order = "in its stored pixel order" if source.view is not None else "as displayed"
            raise InputError(f"reference mask {path} is {arr.shape[1]}x{arr.shape[0]} pixels but the "
                             f"image is {stored[1]}x{stored[0]} {order}")
        return as_displayed(arr, source.view)[None]
    if ref is not None:  # a NIfTI read as RAS+, a radiograph turned for the model: on its axes
        voxels, affine = on_axes_of(ref.voxels, ref.affine, source.affine)
    if ref is None or voxels.shape != source.voxels.shape:
        shape = np.shape(values)
        raise InputError(f"reference mask {path} has shape {tuple(shape)} but the volume has "
                         f"{tuple(source.voxels.shape)} (after reorientation to RAS+)")
    try:
        check_same_grid(source.affine, affine, mask=path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return np.stack([source.display(z, normalised=(np.nan_to_num(voxels) > 0).astype(np.float32))
                     for z in range(voxels.shape[2])]) > 0


def _overlap(pred: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    inter, total = float((pred & truth).sum()), float(pred.sum() + truth.sum())
    union = float((pred | truth).sum())
    return {"dice": 1.0 if total == 0 else 2 * inter / total, "iou": 1.0 if union == 0 else inter / union,
            "reference_pixels": int(truth.sum())}


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _json_ready(value.item())
    return value


def report_warnings(report: Report) -> List[str]:
    """What the user should know about how the report was read: a positive finding with no
    location the parser understood (a misspelt side, a language or a phrasing it does not know) is
    looked for over the whole image."""
    out = []
    for i, finding in enumerate(report.positive_findings, start=1):
        name = f"finding {i} ({finding.target or 'lesion'})"
        where = finding.location
        if where.is_empty():
            out.append(f"{name} has no location the report reader understood (a misspelt word, or a "
                       f"language or phrasing it does not know): it is looked for over the whole image")
        elif where.side is None and where.organ in (None, "lung") and (where.zones or where.segment):
            out.append(f"{name} has a zone but no side the report reader understood: it is looked for "
                       f"on both sides")
    return out


def _rule(report: Report, *, prompted: bool) -> Optional[str]:
    """The rule a prediction followed instead of the model's own choice, if any."""
    if report.all_negative:
        rule = ("all findings negated: empty mask, model not run" if report.findings
                else "a normal study stated, no finding: empty mask, model not run")
        if prompted:  # the report says there is nothing: it wins over a box or points
            rule += ("; the box / points were not used (give no report, or one that names what "
                     "to segment)")
        return rule
    return "no finding parsed: model run without report priors" if report.reads_nothing else None


def check_report(report_text: str, options: PredictOptions, *, prompted: bool = False) -> Report:
    """Parse the report, or raise :class:`InputError` when it is empty or (by default) yields no
    finding and states no normal study. With a box (``options.box``), or another prompt the caller
    gives the model (``prompted``: the web page's points), the report may be empty: the prompt alone
    is segmented, without priors."""
    if not isinstance(report_text, str):
        raise InputError("the report is empty")
    if not report_text.strip() and options.box is None and not prompted:
        raise InputError("the report is empty (a report may be left out only with a box prompt)")
    try:
        report = parse_report(report_text)
    except ValueError as exc:  # over the reader's length limit
        raise InputError(str(exc)) from None
    if report.reads_nothing and options.no_finding == "error" and options.box is None:
        raise InputError(f"the report yields no finding to segment ({report_text.strip()[:60]!r}); rephrase it, "
                         f"give --box, or pass --no-finding segment to run the model without priors")
    return report


def predict_case(predictor: Predictor, image_path: str, report_text: str, out_dir: str, *,
                 options: Optional[PredictOptions] = None, stem: Optional[str] = None,
                 reference: Optional[str] = None, model_info: Optional[Dict[str, Any]] = None,
                 source: Optional[Source] = None, prompted: bool = False) -> Dict[str, Any]:
    """Predict one case and write its outputs; returns the JSON summary. Raises :class:`InputError` (one
    line) for bad input before anything is written. ``source``: ``image_path`` already loaded;
    ``prompted``: ``predictor`` brings a prompt of its own (points), so the report may be empty."""
    from PIL import Image

    from ..viz.report_figure import contact_sheet, prediction_figure

    options = options or PredictOptions()
    report = check_report(report_text, options, prompted=prompted)
    source = source or load_source(image_path)
    if source.n_slices > 1 and options.box is not None:  # one slice (a DICOM radiograph) takes it
        raise InputError("--box is for 2-D images and one-slice volumes (a DICOM radiograph); a volume "
                         "of several slices is segmented from the report alone")
    if options.box is not None:  # in the picture's pixels (a one-slice volume's as predict shows it)
        height, width = (source.pixels if source.kind == "image" else source.display(0)).shape[:2]
        x0, y0, x1, y1 = options.box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise InputError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the {width} x "
                             f"{height} image (pixels: x0 y0 x1 y1, 0 <= x <= {width}, "
                             f"0 <= y <= {height})")
    truth = _reference(reference, source) if reference else None
    if stem is not None and not is_plain_file_name(stem):
        raise InputError(f"case name {stem!r} must be a plain file name (no folder part)")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"output folder {out_dir} is a file")
    paths = output_paths(image_path, out_dir, stem, fmt=source.format,
                         one_dicom_image=source.format == "dicom" and source.n_slices == 1)
    written = {k: v for k, v in paths.items() if k != "sheet" or source.kind == "volume"}  # 2-D: no sheet
    check_outputs(written, [image_path, reference])

    if source.kind == "image":
        pred: Prediction = predictor.predict_image(source.pixels, report, box=options.box)
    else:
        pred = predictor.predict_volume(source, report, window=options.window, z_zones=options.z_zones,
                                        progress=options.progress, box=options.box)
    mask = pred.prob > options.threshold
    if options.largest:
        mask = keep_largest(mask, options.largest)
    if options.fill_holes:
        mask = fill_holes(mask)

    volume = source.kind == "volume"
    spacing = source.pixel_spacing
    # one slice (a 2-D NIfTI, a single DICOM image) has no slice spacing: its statistics are areas
    slice_mm = float(np.linalg.norm(source.affine[:3, 2])) if volume and source.voxels.shape[2] > 1 else None
    # one axial slice: its zones were not used for the mask, nor are they for the statistics
    read = without_zones(report) if source.axial_slice and options.z_zones else report
    read = without_sides(read) if source.lateral_view else read  # nor the sides of a lateral view
    stats = finding_statistics(mask, pred.prob, read, rasteriser=predictor.model.rasteriser,
                               spacing=spacing, slice_mm=slice_mm,
                               prompted=prompted or options.box is not None)
    run = ~np.isnan(pred.iou)
    confidence = {"predicted_iou": float(np.clip(np.nanmean(pred.iou), 0.0, 1.0)) if run.any() else None,
                  "mean_probability_inside": float(pred.prob[mask].mean()) if mask.any() else None,
                  "max_probability": float(pred.prob.max())}

    # Pictures: the 2-D image, or the volume slice with the largest predicted area.
    if volume:
        vol = source.normalised(window=options.window)
        areas = mask.reshape(mask.shape[0], -1).sum(1)
        z = int(areas.argmax()) if areas.any() else mask.shape[0] // 2
        shown, shown_mask = source.display(z, normalised=vol), mask[z]
        shown_att = None if pred.attention is None else pred.attention[z].astype(np.float32)
        shown_truth = None if truth is None else truth[z]
        title = f"{os.path.basename(image_path)}  slice z={z} of {mask.shape[0]}"
    else:
        shown, shown_mask, shown_att, shown_truth = source.pixels, mask, pred.attention, truth
        title = os.path.basename(image_path)
        if stem is not None and stem != case_stem(image_path):  # a manifest's id names the case
            title = f"{stem} ({title})"
    figure = prediction_figure(shown, shown_mask, report, attention=shown_att, truth=shown_truth, title=title)

    if volume:
        from nibabel.orientations import aff2axcodes

    axes = "".join(aff2axcodes(source.affine)) if volume else None
    summary: Dict[str, Any] = {
        "input": os.path.abspath(image_path), "format": source.format, "kind": source.kind,
        "shape": list(source.pixels.shape if not volume else source.stored_shape or source.voxels.shape),
        # the voxel grid the mask NIfTI is written on: RAS+, or a radiograph's turned grid (its codes)
        "shape_ras": list(source.voxels.shape) if volume and axes == "RAS" else None,
        "voxel_axes": axes,
        "pixel_spacing_mm": list(spacing) if spacing else None, "slice_spacing_mm": slice_mm,
        "model": model_info or {}, "report": report.to_dict(), "all_negative": report.all_negative,
        "rule": _rule(report, prompted=prompted or options.box is not None),
        "options": asdict(options), "statistics": stats, "confidence": confidence,
        "outputs": {k: os.path.basename(v) for k, v in written.items()}, "result_version": RESULT_VERSION,
        "timing": {"seconds": round(pred.seconds, 3), "slices_run": pred.slices_run,
                   "seconds_per_slice": None if pred.seconds_per_slice is None else round(pred.seconds_per_slice, 4),
                   "peak_rss_mb": round(pred.peak_rss_mb, 1),
                   "peak_gpu_mb": None if pred.peak_gpu_mb is None else round(pred.peak_gpu_mb, 1)},
    }
    notices = report_warnings(report) + list(source.notes)
    if source.axial_slice and options.z_zones and any(f.location.zones for f in report.positive_findings):
        notices.append("one axial slice of a cross-sectional scan: the report's upper / middle / lower "
                       "name levels along the body, which one slice cannot show, so they are not used "
                       "(--no-z-zones reads them as image rows, as on a radiograph)")
    values = source.voxels if volume else source.pixels
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0 or finite.min() == finite.max():
        notices.append("the input is blank (one value everywhere): its mask means nothing")
    if options.window is not None and not volume:
        notices.append("--window is a CT window for volumes; a 2-D image is used as it is stored")
    if notices:
        summary["warnings"] = notices
    if volume:
        summary["slices"] = {"total": int(mask.shape[0]), "described": int(pred.applies.sum()),
                             "with_mask": int((mask.reshape(mask.shape[0], -1).any(1)).sum()),
                             "nan_voxels_replaced": source.nan_voxels}
    if truth is not None:
        summary["reference"] = {"path": os.path.abspath(reference), **_overlap(mask, truth)}

    # Write: mask, pictures, then the JSON that marks the case finished (the marker says, until
    # then, that the files are this prediction's own: check_outputs lets a rerun replace them).
    os.makedirs(out_dir, exist_ok=True)
    with open(_pending(paths), "w", encoding="utf-8") as handle:  # names the image (check_outputs)
        handle.write(os.path.abspath(image_path))
    write_mask(source, display_to_ras(mask) if volume else mask, paths["mask"])
    if "stored_mask" in paths:  # one DICOM image: also in its stored pixel order
        write_stored_png(source, mask[0], paths["stored_mask"])
    with atomic_write(paths["overlay"]) as tmp:
        Image.fromarray(figure).save(tmp, format="PNG")
    if volume:
        Z = mask.shape[0]
        step = max(1, math.ceil(Z / max(1, options.sheet_tiles)))
        zs = list(range(0, Z, step))
        sheet = contact_sheet([source.display(k, normalised=vol) for k in zs], [mask[k] for k in zs],
                              [f"z={k}  {100 * mask[k].mean():.1f}%" for k in zs])
        with atomic_write(paths["sheet"]) as tmp:
            Image.fromarray(sheet).save(tmp, format="PNG")
    with atomic_write(paths["json"]) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(_json_ready(summary), handle, indent=2)
    os.remove(_pending(paths))
    return summary

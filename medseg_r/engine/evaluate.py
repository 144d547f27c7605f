"""``medseg-r evaluate``: Dice, IoU, HD95 (MONAI), small-lesion sensitivity and the false-positive rate on
negative reports; overall and per subset tag; a CSV per case and a JSON summary.

Conventions: every case is scored at its own size (the model's mask, predicted on the square canvas of
the model's input size, is cropped of its padding and resized back; :func:`native_logits`), so HD95 is
in the image's own pixels and a lesion smaller than a canvas pixel still counts. Dice/IoU/HD95 are
averaged over cases whose reference mask is not empty (negative cases are scored by the false-positive
rate instead: the share of them where the model marks any pixel).
HD95 of an empty prediction against a non-empty reference is the image diagonal (the worst case).
Lesion sensitivity: a described lesion (connected component of the reference) counts as found when the
prediction overlaps it; ``small_sensitivity`` restricts that to components < 0.5 % of the image.
Confidence: each case also records the two confidences ``medseg-r predict`` reports (SAM's predicted IoU
and the mean probability inside the predicted mask, 0 for an empty one); the summary gives, for each, its
Spearman rank correlation with the real IoU over the positive cases, i.e. how well it ranks good masks
above bad ones (``None`` when it cannot be computed, e.g. every value equal).
"""
from __future__ import annotations

import csv
import json
import os
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch.utils.data import DataLoader

from ..data.datasets import SegmentationDataset, collate, fitted_size
from ..io import atomic_write
from ..io.output_folders import CASES_CSV, OVERLAYS, PREDICTIONS, SUMMARY_JSON, is_plain_file_name
from ..model.inputs import check_threshold

# Subset tags of the phantom benchmark (medseg_r.data.phantom): the hard cases, the cases in which only
# one kind of prior can pick the described lesion, and the test split's two phrasing groups.
SUBSETS = ("small", "overlap", "low_contrast", "distractor", "by_location", "by_texture", "by_shape",
           "phrasing_new", "phrasing_known")
# lesion-free cases (scored by the false-positive rate): the phantom's, a volume's empty slices
NEGATIVE_TAGS = frozenset(("negative", "negative_slice"))


def case_metrics(pred: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou

    p = torch.from_numpy(pred.astype(np.float32))[None, None]
    t = torch.from_numpy(truth.astype(np.float32))[None, None]
    out: Dict[str, float] = {"pred_px": float(pred.sum()), "truth_px": float(truth.sum())}
    if truth.any():
        out["dice"] = float(compute_dice(p, t, include_background=True, ignore_empty=False)[0, 0])
        out["iou"] = float(compute_iou(p, t, include_background=True, ignore_empty=False)[0, 0])
        if pred.any():
            with warnings.catch_warnings():  # MONAI 1.5+ warns about an argument its own HD95 code passes
                warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
                out["hd95"] = float(compute_hausdorff_distance(p, t, include_background=True, percentile=95)[0, 0])
        else:
            out["hd95"] = float(np.hypot(*truth.shape))
        labels, n = ndimage.label(truth, structure=np.ones((3, 3), dtype=bool))  # 8-connected, as
        # describe and the breakdown count lesions: a diagonal chain of pixels is one lesion
        found = [bool(pred[labels == i + 1].any()) for i in range(n)]
        small = [f for i, f in enumerate(found) if (labels == i + 1).sum() < 0.005 * truth.size]
        out.update(lesions=n, lesions_found=sum(found), small_lesions=len(small), small_found=sum(small))
    else:
        out["false_positive"] = float(pred.any())
    return out


def summarise(rows: List[Dict[str, object]]) -> Dict[str, object]:
    def block(subset: List[Dict[str, object]]) -> Dict[str, Optional[float]]:
        pos = [r for r in subset if "dice" in r]
        res: Dict[str, Optional[float]] = {"n": len(pos)}
        for key in ("dice", "iou", "hd95"):
            res[key] = float(np.mean([r[key] for r in pos])) if pos else None
        small = sum(r.get("small_lesions", 0) for r in pos)
        res["small_sensitivity"] = sum(r.get("small_found", 0) for r in pos) / small if small else None
        clear = [r["false_positive"] for r in subset if "false_positive" in r]  # lesion-free cases
        res["negatives"] = len(clear)
        res["fp_rate"] = float(np.mean(clear)) if clear else None
        return res

    negatives = [r for r in rows if "false_positive" in r]
    # the phantom's subsets always (a stable shape), then any other tag the data's records carry
    # (not the tags of lesion-free cases: they are the false-positive rate's)
    own = sorted({str(t) for r in rows for t in r["tags"]} - set(SUBSETS) - NEGATIVE_TAGS)
    # reports that negate every finding: predict gives them an empty mask without running the model,
    # evaluate scores the model's own masks (a lesion-free image's false positives measure its reading)
    negating = [r for r in rows if r.get("all_negative")]
    return {"overall": block(rows),
            "subsets": {s: block([r for r in rows if s in r["tags"]]) for s in (*SUBSETS, *own)},
            "negative_fp_rate": float(np.mean([r["false_positive"] for r in negatives])) if negatives else None,
            "negatives": len(negatives), "cases": len(rows), "confidence_rank_correlation": confidence_ranking(rows),
            "all_negative_reports": {"cases": len(negating),
                                     "with_lesion": sum("dice" in r for r in negating)}}


CONFIDENCES = ("predicted_iou", "mean_probability")


def confidence_ranking(rows: List[Dict[str, object]]) -> Dict[str, Optional[float]]:
    """Spearman correlation of each confidence with the real IoU, over positive cases that carry it."""
    from scipy.stats import spearmanr

    result: Dict[str, Optional[float]] = {}
    for key in CONFIDENCES:
        pairs = [(r[key], r["iou"]) for r in rows if "iou" in r and r.get(key) is not None
                 and np.isfinite(r[key]) and np.isfinite(r["iou"])]  # NaN would reach the JSON
        rho = None
        if len(pairs) >= 3 and len({p for p, _ in pairs}) > 1 and len({t for _, t in pairs}) > 1:
            rho = float(spearmanr([p for p, _ in pairs], [t for _, t in pairs])[0])
        result[key] = rho if rho is not None and np.isfinite(rho) else None
    return result


def check_case_ids(records) -> None:
    """Every case id names the case's overlay and prediction files, so it must be a plain file
    name: "../img" or "patient1/slice3" would write outside the output folder (or over the
    user's own files). ``ValueError`` naming the first bad one."""
    for r in records:
        case = str(r.id)
        if not is_plain_file_name(case):
            raise ValueError(f"case id {case!r} must be a plain file name (it names the case's "
                             f"overlay and prediction files): give ids without a folder part")


def unique_ids(records) -> list:
    """The records with every case id made unique ("case_00008", "case_00008~2", ...: ids name
    each case's row and pictures, and an image with several masks, one per row, gives one id
    per image; a made-up id never takes one a record already has), with a warning naming the
    first repeated ones."""
    import dataclasses
    from collections import Counter

    from ..data.readers import DataWarning

    counts = Counter(r.id for r in records)
    repeated = [case for case, n in counts.items() if n > 1]
    if not repeated:
        return list(records)
    taken = set(counts)
    seen: Counter = Counter()
    out = []
    for r in records:
        seen[r.id] += 1
        if seen[r.id] == 1:
            out.append(r)
            continue
        k = seen[r.id]
        while f"{r.id}~{k}" in taken:
            k += 1
        seen[r.id] = k
        taken.add(f"{r.id}~{k}")
        out.append(dataclasses.replace(r, id=f"{r.id}~{k}"))
    warnings.warn(f"{len(repeated)} case id(s) name several rows (e.g. {', '.join(repeated[:3])}): "
                  f"their later rows are scored as ID~2, ID~3 ... (give each row an id of its own "
                  f"to name them)", DataWarning)
    return out


def _cell(key: str, value) -> object:
    """A cases.csv cell: tags joined; a predicted IoU in [0, 1] (SAM's IoU head is unbounded: a fresh
    or briefly trained one gives -0.1; the ranking uses the values as given)."""
    if value is None:
        return ""
    if key == "tags":
        return ";".join(value)
    if key == "predicted_iou":
        return float(np.clip(value, 0.0, 1.0))
    return value


def native_logits(logits: torch.Tensor, shape: tuple, size: int) -> torch.Tensor:
    """Mask logits on the square canvas ``[1, S, S]`` (the record fitted by
    :func:`~medseg_r.data.datasets.fit_square`) -> ``[H, W]`` at the record's own ``shape``: the
    padding cropped, the rest resized bilinearly."""
    h, w = shape
    nh, nw = fitted_size(h, w, size)
    crop = logits[:, :nh, :nw]
    if (nh, nw) != (h, w):
        crop = F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return crop[0]


def _predict(model, batch, size: int, device):
    """Mask logits ``[B, 1, S, S]`` on the batch's square canvases (float, CPU; the padding of a
    non-square case holds -1e4), predicted IoUs ``[B]`` (or ``None``) and the location attention
    ``[B, 1, S, S]`` (or ``None``). A non-square case is run on its image without the
    canvas's padding, as ``medseg-r predict`` runs it (the model frames it itself; on the padded
    canvas it would take the padding for image and spread the priors over it), together with the
    batch's other cases of its fitted size."""
    images, shapes = batch["image"], [tuple(m.shape) for m in batch["native_mask"]]
    fitted = [fitted_size(h, w, size) for h, w in shapes]
    B = images.shape[0]
    logits = torch.full((B, 1, size, size), -1e4)
    attention, ious = None, None
    groups: Dict[tuple, List[int]] = {}  # cases of one fitted size run together
    for i, f in enumerate(fitted):
        groups.setdefault(f, []).append(i)
    for (nh, nw), group in groups.items():
        out = model(images[group, :, :nh, :nw].to(device), [batch["report"][i] for i in group])
        logits[group, :, :nh, :nw] = out["masks"][:, :1].float().cpu()
        if out.get("iou") is not None:
            ious = np.full(B, np.nan) if ious is None else ious
            ious[group] = out["iou"][:, 0].float().cpu().numpy()
        if out.get("attention") is not None:
            a = out["attention"][:, :1].float().cpu()
            if a.shape[-2:] != (nh, nw):
                a = F.interpolate(a, size=(nh, nw), mode="bilinear", align_corners=False)
            attention = torch.zeros(B, 1, size, size) if attention is None else attention
            attention[group, :, :nh, :nw] = a
    return logits, ious, attention


def _figure_title(case_id: str, row: Dict[str, object]) -> str:
    """An overlay's title: the case and its scores, as ``cases.csv`` gives them (a lesion-free case:
    whether the mask marks anything)."""
    if "dice" not in row:
        marked = "marks nothing" if not row["false_positive"] else f"false positive, {row['pred_px']:.0f} px"
        return f"{case_id}   no lesion: {marked}"
    return (f"{case_id}   Dice {row['dice']:.3f}   IoU {row['iou']:.3f}   HD95 {row['hd95']:.1f} px   "
            f"lesions found {row['lesions_found']}/{row['lesions']}")


@torch.no_grad()
def evaluate(model, records, *, root: str, size: int, out_dir: Optional[str] = None, batch_size: int = 8,
             threshold: float = 0.0, overlays: int = 0, save_predictions: bool = False,
             progress: bool = False) -> Dict[str, object]:
    """Evaluate ``model`` on ``records``; writes ``cases.csv`` and ``summary.json`` under ``out_dir``,
    and with ``save_predictions`` each predicted mask as ``out_dir/predictions/ID.png`` (0/255, the
    case's own size: what :mod:`medseg_r.benchmarks.breakdown` reads to say where masks went).

    ``size``: the model's input size; ``threshold``: a logit (0 is probability 0.5). The summary
    has a block per subset tag: the phantom's :data:`SUBSETS` always, then any other tag the
    records carry (not ``negative`` or ``negative_slice``)."""
    from tqdm import tqdm

    check_threshold(threshold)
    if getattr(model, "img_size", size) != size:
        raise ValueError(f"size must be the model's input size {model.img_size}, got {size}")
    model.eval()
    device = next(model.parameters()).device
    if out_dir and (overlays or save_predictions):  # the ids name files
        check_case_ids(records)
    records = unique_ids(records)
    loader = DataLoader(SegmentationDataset(records, root=root, size=size, native=True), batch_size=batch_size,
                        shuffle=False, collate_fn=collate)
    rows: List[Dict[str, object]] = []
    shown = 0
    for batch in tqdm(loader, desc="evaluate", disable=not progress, unit="batch"):
        logits, ious, attentions = _predict(model, batch, size, device)
        preds = (logits > threshold).numpy()[:, 0]
        truths = batch["mask"].numpy()[:, 0] > 0.5
        for i, case_id in enumerate(batch["id"]):
            row: Dict[str, object] = {"id": case_id, "tags": list(batch["tags"][i]),
                                      "all_negative": bool(batch["report"][i].all_negative)}
            truth = batch["native_mask"][i].numpy()
            native = native_logits(logits[i], truth.shape, size)
            pred, prob = native > threshold, torch.sigmoid(native).numpy()
            pred = pred.numpy()
            row.update(case_metrics(pred, truth))
            row["predicted_iou"] = float(ious[i]) if ious is not None else None  # ranked as given
            row["mean_probability"] = float(prob[pred].mean()) if pred.any() else 0.0
            rows.append(row)
            if out_dir and save_predictions:
                from PIL import Image

                with atomic_write(os.path.join(out_dir, PREDICTIONS, f"{case_id}.png")) as tmp:
                    Image.fromarray(pred.astype(np.uint8) * 255).save(tmp, format="PNG")
            if out_dir and shown < overlays:
                from PIL import Image

                from ..viz.report_figure import prediction_figure

                nh, nw = fitted_size(*truth.shape, size)  # the picture without the canvas's padding
                attention = attentions[i, 0, :nh, :nw].numpy() if attentions is not None else None
                if attention is not None and not attention.any():
                    attention = None  # a model without a location prior: no attention panel
                # the model's input in 8 bits, drawn as it is (a float picture would be stretched)
                seen = (batch["image"][i, :, :nh, :nw].permute(1, 2, 0).numpy() * 255).round()
                pic = prediction_figure(seen.clip(0, 255).astype(np.uint8),
                                        preds[i, :nh, :nw], batch["report"][i], truth=truths[i, :nh, :nw],
                                        attention=attention, title=_figure_title(case_id, row))
                path = os.path.join(out_dir, OVERLAYS, f"{case_id}.png")
                with atomic_write(path) as tmp:
                    Image.fromarray(pic).save(tmp, format="PNG")
                shown += 1
    summary = summarise(rows)
    summary["threshold"] = round(float(1 / (1 + np.exp(-threshold))), 6)  # as a probability
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        keys = ["id", "tags", "dice", "iou", "hd95", "false_positive", "pred_px", "truth_px", "lesions",
                "lesions_found", "small_lesions", "small_found", *CONFIDENCES]
        with atomic_write(os.path.join(out_dir, CASES_CSV)) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=keys)
                writer.writeheader()
                for r in rows:
                    writer.writerow({k: _cell(k, r.get(k)) for k in keys})
        with atomic_write(os.path.join(out_dir, SUMMARY_JSON)) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2)
    return summary

"""Run a MedSeg-R model on a 2-D image or, slice by slice, on a volume.

Volumes are cut into axial slices in radiological display. The report applies to the whole volume; its
"upper / middle / lower" zones select cranio-caudal thirds (see :func:`medseg_r.report.transform.slice_report`),
so a slice that no positive finding reaches is left empty without running the model. An all-negative
report gives an empty mask (documented behaviour, no model call).
"""
from __future__ import annotations

import numbers
import resource
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..io.images import image_to_tensor
from ..model.inputs import check_box
from ..report import parse_report
from ..report.schema import Report
from ..report.transform import slice_report, without_sides, without_zones
from .sources import Source


@dataclass
class Prediction:
    """Model output in display order: ``prob`` / ``attention`` ``[H, W]`` for images, ``[Z, H, W]`` for
    volumes; ``iou`` the model's predicted IoU per slice (NaN where the model was not run); ``applies`` per
    slice whether the report describes something there."""

    prob: np.ndarray
    attention: Optional[np.ndarray]
    iou: np.ndarray
    applies: np.ndarray
    seconds: float
    slices_run: int
    peak_rss_mb: float
    peak_gpu_mb: Optional[float]

    @property
    def seconds_per_slice(self) -> Optional[float]:
        return self.seconds / self.slices_run if self.slices_run else None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


class Predictor:
    """Args: model (a :class:`~medseg_r.MedSegR`); batch_size: slices per forward pass (default 8 on a GPU
    and 1 on a CPU, where batches of 8 measured 10-26 % slower per slice); max_side: inputs with a longer
    side are downscaled (antialiased) before the model, and the mask is scaled back to full size; device:
    default CUDA when available."""

    def __init__(self, model, *, batch_size: Optional[int] = None, max_side: int = 2048,
                 device: Optional[str] = None) -> None:
        if not hasattr(model, "img_size") or not callable(model):
            raise ValueError(f"model must be a MedSeg-R model (build_model or load_model), got "
                             f"{type(model).__name__}")
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        if not (isinstance(max_side, numbers.Integral) and max_side >= 64):
            raise ValueError(f"max_side must be a whole number >= 64, got {max_side!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size or (8 if self.device.type == "cuda" else 1)
        self.max_side = max_side

    @torch.no_grad()
    def _run(self, images: torch.Tensor, reports: Sequence[Report], box=None):
        """``images`` ``[B, 3, H, W]`` in [0, 1] at full size -> (prob ``[B, H, W]``, attention or None, iou)."""
        H, W = images.shape[-2:]
        scale = min(1.0, self.max_side / max(H, W))
        x = images.to(self.device)
        boxes = None
        if scale < 1.0:
            x = F.interpolate(x, size=(max(1, round(H * scale)), max(1, round(W * scale))), mode="bilinear",
                              align_corners=False, antialias=True)
        if box is not None:
            boxes = torch.tensor([list(box)] * len(reports), dtype=torch.float32) * scale
        out = self.model(x, list(reports), boxes=boxes)
        logits, attention = out["masks"][:, :1], out["attention"]
        if scale < 1.0:
            logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
            if attention is not None:
                attention = F.interpolate(attention, size=(H, W), mode="bilinear", align_corners=False)
        prob = torch.sigmoid(logits[:, 0]).float().cpu().numpy()
        att = attention[:, 0].float().cpu().numpy() if attention is not None else None
        return prob, att, out["iou"][:, 0].float().cpu().numpy()

    def _finish(self, prob, attention, iou, applies, start, runs) -> Prediction:
        gpu = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None
        return Prediction(prob=prob, attention=attention, iou=iou, applies=applies,
                          seconds=time.perf_counter() - start, slices_run=runs, peak_rss_mb=_peak_rss_mb(),
                          peak_gpu_mb=gpu)

    def predict_image(self, pixels: np.ndarray, report: Union[str, Report], *,
                      box: Optional[Sequence[float]] = None) -> Prediction:
        start = time.perf_counter()
        if isinstance(report, str):
            report = parse_report(report)
        if not isinstance(report, Report):
            raise ValueError(f"report must be a string or a Report, got {type(report).__name__}")
        check_box(box, tuple(np.shape(pixels)[:2]))
        if report.all_negative:
            shape = pixels.shape[:2]
            return self._finish(np.zeros(shape, np.float32), None, np.array([np.nan]), np.array([False]), start, 0)
        prob, att, iou = self._run(image_to_tensor(pixels), [report], box)
        return self._finish(prob[0], None if att is None else att[0], iou, np.array([True]), start, 1)

    def predict_volume(self, source: Source, report: Report, *, window: Optional[Tuple[float, float]] = None,
                       z_zones: bool = True, progress: bool = True,
                       box: Optional[Sequence[float]] = None) -> Prediction:
        """Slice-wise prediction of a volume ``Source``; ``z_zones=False`` applies the report unchanged to
        every slice (zones then act in-plane, as on a radiograph). ``box``: for a one-slice volume (a
        DICOM radiograph, a 2-D NIfTI), a box prompt in its displayed slice's pixels."""
        from tqdm.auto import tqdm

        start = time.perf_counter()
        vol = source.normalised(window=window)
        Z = vol.shape[2]
        first = source.display(0, normalised=vol)
        H, W = first.shape
        if box is not None and Z != 1:
            raise ValueError("a box prompt is for one-slice volumes; a volume of several slices is "
                             "segmented from the report alone")
        check_box(box, (H, W))
        prob = np.zeros((Z, H, W), np.float32)
        attention: Optional[np.ndarray] = None
        iou = np.full(Z, np.nan, np.float32)
        reports: List[Report] = []
        for z in range(Z):
            if Z > 1 and z_zones:
                reports.append(slice_report(report, z / (Z - 1)))
            elif z_zones and source.axial_slice:  # one axial slice at an unknown level
                reports.append(without_zones(report))
            else:
                reports.append(report)
            if source.lateral_view:  # left and right overlap in a lateral radiograph
                reports[-1] = without_sides(reports[-1])
        # A report read as nothing (allowed by the caller) applies everywhere; otherwise a slice needs a
        # positive finding of its own (an all-negative report, negated findings or a normal study
        # stated, has none anywhere).
        applies = np.array([bool(r.positive_findings) or report.reads_nothing for r in reports])
        todo = [z for z in range(Z) if applies[z]]
        runs = 0
        with tqdm(total=len(todo), unit="slice", desc="predict", disable=not progress, leave=False) as bar:
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i:i + self.batch_size]
                # Same intensity path as training on volume slices (per-slice min-max of the windowed slice).
                images = torch.cat([image_to_tensor(source.display(z, normalised=vol)) for z in chunk])
                p, a, s = self._run(images, [reports[z] for z in chunk], box)
                prob[chunk], iou[chunk] = p, s
                if a is not None:
                    if attention is None:
                        attention = np.zeros((Z, H, W), np.float16)
                    attention[chunk] = a.astype(np.float16)
                runs += len(chunk)
                bar.update(len(chunk))
        return self._finish(prob, attention, iou, applies, start, runs)


def display_to_ras(stack: np.ndarray) -> np.ndarray:
    """Invert the radiological display of :func:`medseg_r.data.volumes.display_slice`:
    ``[Z, H, W]`` display stack -> ``[X, Y, Z]`` RAS+ volume."""
    return np.ascontiguousarray(np.stack([s[::-1, ::-1].T for s in stack], axis=-1))

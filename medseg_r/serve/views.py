"""What the page shows, computed on the server: the report with its evidence, the mask and the
location attention as transparent PNG layers, and the per-finding table of a segmentation."""

from __future__ import annotations

import io
import math
from typing import Any, Dict, List, Optional

import numpy as np
from scipy import ndimage

from ..report.schema import Finding, Report
from ..report.transform import Z_ZONES

MAX_DISPLAY_SIDE = 1024  # layers of larger inputs are sent downscaled (the page scales them anyway)
MASK_FILL, MASK_EDGE = (255, 40, 40, 110), (255, 0, 0, 255)


def png_bytes(array: np.ndarray) -> bytes:
    """``[H, W, 3|4]`` uint8 -> PNG bytes (fast compression: these are redrawn often)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def display_shape(height: int, width: int) -> tuple:
    scale = min(1.0, MAX_DISPLAY_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_picture(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    shape = display_shape(*rgb.shape[:2])
    if shape == rgb.shape[:2]:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(shape[::-1], Image.Resampling.LANCZOS))


def fit_mask(mask: np.ndarray) -> np.ndarray:
    """Downscale keeping every marked pixel visible (box filter, any overlap counts)."""
    from PIL import Image

    shape = display_shape(*mask.shape)
    if shape == mask.shape:
        return mask
    small = Image.fromarray(mask.astype(np.uint8) * 255).resize(shape[::-1], Image.Resampling.BOX)
    return np.asarray(small) > 0


def fit_map(values: np.ndarray) -> np.ndarray:
    from PIL import Image

    shape = display_shape(*values.shape)
    if shape == values.shape:
        return values
    return np.asarray(
        Image.fromarray(values.astype(np.float32)).resize(shape[::-1], Image.Resampling.BILINEAR)
    )


def mask_layer(mask: np.ndarray) -> np.ndarray:
    """RGBA: the mask in translucent red with an opaque outline; transparent elsewhere."""
    mask = fit_mask(np.asarray(mask, dtype=bool))
    out = np.zeros(mask.shape + (4,), np.uint8)
    out[mask] = MASK_FILL
    out[mask & ~ndimage.binary_erosion(mask)] = MASK_EDGE
    return out


def attention_layer(attention: np.ndarray) -> np.ndarray:
    """RGBA: the location attention as a blue (0) -> red (1) tint, as in ``predict``'s overlay."""
    a = np.clip(fit_map(np.asarray(attention, dtype=np.float32)), 0, 1)[..., None]
    rgb = np.concatenate([a, 1 - np.abs(2 * a - 1), 1 - a], axis=-1) * 255
    alpha = np.full(a.shape, 140.0)
    return np.concatenate([rgb, alpha], axis=-1).astype(np.uint8)


def _location_words(finding: Finding) -> Dict[str, Any]:
    loc = finding.location
    return {
        "side": loc.side,
        "zones": list(loc.zones),
        "organ": loc.organ,
        "segment": loc.segment,
        "image_region": loc.image_region,
    }


def report_view(report: Report) -> Dict[str, Any]:
    """The report as pieces of text with the prior each piece is evidence for (``kind``), whether
    its finding is negated, and the parsed findings."""
    spans = sorted(
        (s, e, kind, i)
        for i, f in enumerate(report.findings)
        for kind, ranges in f.spans.items()
        for s, e in ranges
    )
    pieces: List[Dict[str, Any]] = []
    pos = 0
    for start, end, kind, index in spans:
        if start < pos:
            continue  # overlapping evidence: the first span wins, as in predict's overlay
        if start > pos:
            pieces.append({"text": report.text[pos:start], "kind": None})
        finding = report.findings[index]
        pieces.append(
            {
                "text": report.text[start:end],
                "kind": kind,
                "finding": index,
                "negated": finding.negated,
                "uncertain": finding.uncertain,
            }
        )
        pos = end
    if pos < len(report.text):
        pieces.append({"text": report.text[pos:], "kind": None})
    findings = [
        {
            "index": i,
            "target": f.target,
            "negated": f.negated,
            "uncertain": f.uncertain,
            "artefact": f.artefact,
            **_location_words(f),
            "texture": list(f.texture),
            "shape": list(f.shape),
            "size_mm": f.size_mm,
            "size_class": f.size_class,
            "count": f.count,
            "diagnosis": f.diagnosis,
        }
        for i, f in enumerate(report.findings)
    ]
    return {
        "pieces": pieces,
        "findings": findings,
        "positive": len(report.positive_findings),
        "all_negative": report.all_negative,
        "normal_statements": [report.text[s:e] for s, e in report.normal_statements],
    }


def z_range(finding: Finding, slices: int) -> List[int]:
    """The slices ``[first, last]`` a finding reaches with ``predict``'s z-zones (the rule of
    :func:`medseg_r.report.transform.slice_report`); the whole volume when it names no zone."""
    zones = [z for z in finding.location.zones if z in Z_ZONES]
    if not zones or "all" in finding.location.zones or slices < 2:
        return [0, slices - 1]
    inside = [
        k
        for k in range(slices)
        if any(Z_ZONES[z][0] <= k / (slices - 1) <= Z_ZONES[z][1] for z in zones)
    ]
    return [inside[0], inside[-1]] if inside else [0, -1]


def equivalent_diameter(row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Diameter of the circle (2-D) or sphere (volume) with the finding's area or volume."""
    if row.get("area_mm2"):
        return {"value": round(2 * math.sqrt(row["area_mm2"] / math.pi), 1), "unit": "mm"}
    if row.get("volume_ml"):
        return {"value": round((6 * row["volume_ml"] * 1000 / math.pi) ** (1 / 3), 1), "unit": "mm"}
    if row.get("area_px"):
        return {"value": round(2 * math.sqrt(row["area_px"] / math.pi), 1), "unit": "px"}
    return None


def model_not_run(summary: Dict[str, Any], report: Report) -> Optional[str]:
    """Why the model did not run at all (``predict``'s rule: a report that says there is nothing
    gives an empty mask without it), or ``None`` when it ran."""
    if summary["timing"]["slices_run"]:
        return None
    if report.all_negative:
        return "all findings negated" if report.findings else "a normal study stated"
    return "nothing to segment"


def result_view(summary: Dict[str, Any], report: Report, mask: np.ndarray) -> Dict[str, Any]:
    """The page's summary of one segmentation (from ``predict``'s JSON summary and the mask)."""
    volume = summary["kind"] == "volume"
    positives = report.positive_findings
    rows = []
    for row, finding in zip(summary["statistics"]["findings"], positives):
        out = {
            key: row.get(key)
            for key in (
                "index",
                "target",
                "components",
                "area_px",
                "area_mm2",
                "voxels",
                "volume_ml",
                "mean_probability",
                "reported_size_mm",
            )
        }
        out.update(_location_words(finding))
        out["diameter"] = equivalent_diameter(row)
        if volume:
            out["z_range"] = z_range(finding, mask.shape[0])
        rows.append(out)
    shown = 0
    if volume:
        areas = mask.reshape(mask.shape[0], -1).sum(1)
        shown = (
            int(areas.argmax())
            if areas.any()
            else (
                (rows[0]["z_range"][0] + rows[0]["z_range"][1]) // 2
                if rows and rows[0]["z_range"][1] >= 0
                else mask.shape[0] // 2
            )
        )
    return {
        "kind": summary["kind"],
        "findings": rows,
        "total": summary["statistics"]["total"],
        "unassigned": summary["statistics"]["unassigned"],
        "confidence": summary["confidence"],
        "rule": summary["rule"],
        "warnings": list(summary.get("warnings", [])),  # predict's: blank input, unread words, ...
        "slices": summary.get("slices"),
        "show_slice": shown,
        "model_seconds": summary["timing"]["seconds"],
        "model_not_run": model_not_run(summary, report),
        "mask_pixels": int(mask.sum()),
        "options": {k: summary["options"][k] for k in ("box", "window", "threshold", "no_finding")},
    }

"""Before/after picture and lesion contrast statistics for phantom folders.

``python -m medseg_r.data.phantom.figure OLD NEW OUT.png --ids case_00004,...`` compares a folder
written by an earlier phantom generator (OLD) with one written by this one (NEW): one row per case,
columns *before*, *after*, and *after* with the lesions outlined (green: target, in the mask;
orange: present and mentioned as not the target; red: present and not reported; cyan dots: vessels
seen end-on). It prints the contrast statistics of both folders.

The statistics use only the image and mask files, so that both generations are measured alike: for
every connected component of a reference mask (a described lesion), the contrast is its mean
intensity minus the mean of a ring 2-6 px around it (other components excluded), and the
contrast-to-noise ratio (CNR) is that difference over the ring's standard deviation, which includes
the anatomy around the lesion.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Sequence

import numpy as np

from ...io.jsonl import read_jsonl_rows
from .render import measure_contrast

ROLE_COLOURS = {"target": (40, 230, 40), "mentioned": (255, 160, 0), "omitted": (255, 30, 30)}
DOT_COLOUR = (0, 210, 255)


def _rows(folder: str) -> List[Dict]:
    return [row for _, row in read_jsonl_rows(os.path.join(folder, "manifest.jsonl"))]


def _gray(folder: str, path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(os.path.join(folder, path)).convert("L"), dtype=np.float32) / 255.0


def contrast_stats(folder: str) -> Dict[str, float]:
    """Median and quartiles of contrast and CNR over the components of every reference mask."""
    from scipy import ndimage

    contrast, cnr = [], []
    for row in _rows(folder):
        mask = _gray(folder, row["mask"]) > 0.5
        if not mask.any():
            continue
        image = _gray(folder, row["image"])
        labels, n = ndimage.label(mask)
        for k in range(1, n + 1):
            c, r = measure_contrast(image, labels == k, mask & (labels != k))
            contrast.append(c)
            cnr.append(r)
    if not cnr:
        raise ValueError(f"{folder}: no lesion in any mask")
    return {"lesions": len(cnr), "contrast_median": float(np.median(contrast)),
            "cnr_q1": float(np.percentile(cnr, 25)), "cnr_median": float(np.median(cnr)),
            "cnr_q3": float(np.percentile(cnr, 75)),
            "cnr_below_1": float(np.mean(np.array(cnr) < 1))}


GRAYS = 128  # palette entries for grey levels (the rest are outline colours): a small file


def before_after(old: str, new: str, out: str, ids: Sequence[str], tile: int = 256) -> None:
    """Write the before/after grid of the cases ``ids`` to ``out`` (a small palette PNG)."""
    from PIL import Image, ImageDraw

    old_rows = {r["id"]: r for r in _rows(old)}
    new_rows = {r["id"]: r for r in _rows(new)}
    head = 28
    canvas = Image.new("L", (3 * tile, head + len(ids) * tile), 255)
    for k, case in enumerate(ids):
        sources = ((old, old_rows[case]), (new, new_rows[case]), (new, new_rows[case]))
        for col, (folder, row) in enumerate(sources):
            picture = Image.open(os.path.join(folder, row["image"])).convert("L")
            canvas.paste(picture.resize((tile, tile)), (col * tile, head + k * tile))
    grid = canvas.point(lambda g: g * (GRAYS - 1) // 255).convert("P")
    keys = ("target", "mentioned", "omitted", "dot", "text")
    colours = [ROLE_COLOURS["target"], ROLE_COLOURS["mentioned"], ROLE_COLOURS["omitted"],
               DOT_COLOUR, (0, 0, 0)]
    palette = [int(g * 255 / (GRAYS - 1)) for g in range(GRAYS) for _ in range(3)]
    grid.putpalette(palette + [c for rgb in colours for c in rgb])
    index = {name: GRAYS + i for i, name in enumerate(keys)}
    draw = ImageDraw.Draw(grid)
    draw.text((4, 2), "before (phantom v1)", fill=index["text"])
    draw.text((tile + 4, 2), "after (phantom v2)", fill=index["text"])
    legend = (("target", "target", 0, 0), ("mentioned, not target", "mentioned", 60, 0),
              ("unreported granuloma", "omitted", 0, 13), ("vessel end-on", "dot", 140, 13))
    for text, key, dx, dy in legend:
        draw.text((2 * tile + 4 + dx, 2 + dy), text, fill=index[key])
    for k, case in enumerate(ids):
        row = new_rows[case]
        scale = tile / _gray(new, row["image"]).shape[0]
        x0, y0 = 2 * tile, head + k * tile
        for lesion in row["lesions"]:
            bx0, by0, bx1, by1 = (v * scale for v in lesion["bbox"])
            box = [x0 + bx0 - 3, y0 + by0 - 3, x0 + bx1 + 3, y0 + by1 + 3]
            draw.rectangle(box, outline=index[lesion["role"]])
        for dx, dy, _ in row.get("vessel_dots", []):
            draw.point([(x0 + dx * scale, y0 + dy * scale)], fill=index["dot"])
    grid.save(out, optimize=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("out")
    parser.add_argument("--ids", default="case_00004,case_00007,case_00024,case_00005")
    args = parser.parse_args(argv)
    for name, folder in (("before", args.old), ("after", args.new)):
        print(name, json.dumps({k: round(v, 3) for k, v in contrast_stats(folder).items()}))
    before_after(args.old, args.new, args.out, args.ids.split(","))


if __name__ == "__main__":
    main()

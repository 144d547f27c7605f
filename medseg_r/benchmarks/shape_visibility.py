"""Does the phantom's image show its lesions' shapes? A small CNN learns each lesion's shape code
from a full-resolution crop around it, once from every rated shape and once from the lesions whose
record says the image shows it (``shape_shown``, :attr:`medseg_r.data.phantom.render.Lesion.shape_shown`),
and is scored on the test split's ``by_shape`` pairs (same zone and texture, different shapes): a
pair is told apart when the target's code is likelier at the target than at its look-alike and the
look-alike's code the other way round, the criterion of the counterfactual probe's "head tells
apart" (:func:`medseg_r.benchmarks.counterfactual.picks_either`), here at full resolution with no
localiser around it. It tells whether a shape choice is limited by the labels, by the image or by
the model that reads it. Nothing of MedSeg-R is trained.

    python -m medseg_r.benchmarks.shape_visibility medseg_r_accuracy/data \
        --extra medseg_r_accuracy/data_extra  # 21 CPU-minutes (Intel Xeon, one thread)
"""
from __future__ import annotations

import os
import random
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.phantom.render import SHAPE_SHOWN_PX
from ..io import atomic_write
from ..io.images import read_image, to_unit_float
from ..io.jsonl import read_jsonl_rows
from .counterfactual import picks_either, share
from . import benchmark_parser
from ..cli.common import positive_int, seed_int

LABELS = ("rated", "shown")  # every rated shape, or only the shapes the image shows
CROP = 48  # px around the lesion's box centre (the largest by_shape lesion is 29 px)

Item = Tuple[str, Dict]  # (image path, lesion record)


def read_rows(folder: str) -> List[Dict]:
    """The manifest rows of a phantom folder, each with its image's absolute path."""
    rows = [row for _, row in read_jsonl_rows(os.path.join(folder, "manifest.jsonl"))]
    return [{**row, "image": os.path.join(folder, row["image"])} for row in rows]


def crop(image: np.ndarray, bbox: Sequence[float], *, size: int = CROP,
         shift: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """The ``size`` x ``size`` window of a 2-D ``image`` centred on ``bbox`` ``(x0, y0, x1, y1)``
    (moved by ``shift`` (dx, dy)), edges repeated beyond the image, standardised."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    cx, cy = int(round((x0 + x1) / 2)) + shift[0], int(round((y0 + y1) / 2)) + shift[1]
    padded = np.pad(image, size, mode="edge")
    window = padded[cy - size // 2 + size: cy - size // 2 + 2 * size,
                    cx - size // 2 + size: cx - size // 2 + 2 * size].astype(np.float32)
    return (window - window.mean()) / (window.std() + 1e-3)


def training_items(rows: Sequence[Dict], labels: str) -> List[Item]:
    """The training split's lesions at least :data:`SHAPE_SHOWN_PX` across with a shape code: all
    of them (``"rated"``) or those whose record says the image shows the shape (``"shown"``)."""
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    return [(row["image"], lesion) for row in rows if row["split"] == "train"
            for lesion in row["lesions"]
            if lesion.get("shape") and lesion["size_px"] >= SHAPE_SHOWN_PX
            and (labels == "rated" or lesion.get("shape_shown"))]


def shape_pairs(rows: Sequence[Dict], split: str = "test") -> List[Tuple[str, Dict, Dict]]:
    """(image, target, look-alike) of each ``by_shape`` case of ``split``: the look-alike shares
    the target's side, zone and texture and has another shape."""
    out = []
    for row in rows:
        if row["split"] != split or row["kind"] != "by_shape":
            continue
        for target in (les for les in row["lesions"] if les["role"] == "target"):
            other = next((les for les in row["lesions"] if les["role"] == "mentioned"
                          and (les["side"], les["zone"], les["texture"])
                          == (target["side"], target["zone"], target["texture"])
                          and les["shape"] != target["shape"]), None)
            if other is not None:
                out.append((row["image"], target, other))
    return out


class ShapeNet(nn.Sequential):
    """``[B, 1, CROP, CROP]`` -> ``[B, n_shapes]`` logits."""

    def __init__(self, n_shapes: int) -> None:
        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        super().__init__(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.MaxPool2d(2), *block(64, 64), nn.MaxPool2d(2), *block(64, 96),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, n_shapes))


Images = Callable[[str], np.ndarray]  # an image's path -> its grey values in [0, 1]


def grey_image(path: str) -> np.ndarray:
    return to_unit_float(read_image(path))[..., 0]


def train_classifier(items: Sequence[Item], shapes: Sequence[str], images: Images, *,
                     epochs: int, seed: int, batch_size: int = 64) -> ShapeNet:
    """A :class:`ShapeNet` fitted to ``items`` with shifts, quarter turns and mirrors (a shape code
    has no orientation)."""
    if not items:
        raise ValueError("no training lesions to learn shapes from")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    net = ShapeNet(len(shapes))
    steps = epochs * -(-len(items) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    order = list(items)
    for _ in range(epochs):
        rng.shuffle(order)
        net.train()
        for start in range(0, len(order), batch_size):
            batch, target = [], []
            for path, lesion in order[start:start + batch_size]:
                window = crop(images(path), lesion["bbox"],
                              shift=(rng.randint(-3, 3), rng.randint(-3, 3)))
                window = np.rot90(window, rng.randint(0, 3))
                batch.append(np.ascontiguousarray(window[:, ::-1] if rng.random() < 0.5 else window))
                target.append(shapes.index(lesion["shape"]))
            loss = F.cross_entropy(net(torch.from_numpy(np.stack(batch))[:, None]),
                                   torch.tensor(target))
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return net.eval()


@torch.no_grad()
def shape_probabilities(net: ShapeNet, image: np.ndarray, bbox: Sequence[float]) -> torch.Tensor:
    return net(torch.from_numpy(crop(image, bbox))[None, None]).softmax(1)[0]


def told_apart(net: ShapeNet, shapes: Sequence[str], pairs, images: Images) -> Optional[float]:
    """Share of ``pairs`` (:func:`shape_pairs`) the classifier tells apart (module doc)."""
    told = []
    for path, target, other in pairs:
        if target["shape"] not in shapes or other["shape"] not in shapes:
            continue
        p_t = shape_probabilities(net, images(path), target["bbox"])
        p_o = shape_probabilities(net, images(path), other["bbox"])
        told.append(picks_either(lambda code: float(p_t[shapes.index(code)]),
                                 lambda code: float(p_o[shapes.index(code)]),
                                 target["shape"], other["shape"]))
    return share(told)


def measure(rows: Sequence[Dict], labels: Sequence[str] = LABELS, *, epochs: int = 40,
            seed: int = 0) -> List[Dict[str, object]]:
    """One result per label set: training lesions, share of test ``by_shape`` pairs told apart."""
    # each image read once (the phantom's are 256 px: 2,000 cases hold 0.5 GB as float32)
    images, pairs = lru_cache(maxsize=None)(grey_image), shape_pairs(rows)
    shapes = sorted({les["shape"] for row in rows for les in row["lesions"] if les.get("shape")})
    out = []
    for name in labels:
        items = training_items(rows, name)
        net = train_classifier(items, shapes, images, epochs=epochs, seed=seed)
        out.append({"labels": name, "training_lesions": len(items), "pairs": len(pairs),
                    "told_apart": told_apart(net, shapes, pairs, images)})
    return out


def render(results: Sequence[Dict[str, object]]) -> str:
    lines = ["| shape labels learned from | training lesions | by_shape test pairs | told apart |",
             "|---|---|---|---|"]
    for r in results:
        share = "-" if r["told_apart"] is None else f"{r['told_apart']:.2f}"
        lines.append(f"| {r['labels']} | {r['training_lesions']} | {r['pairs']} | {share} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = benchmark_parser("shape_visibility", __doc__)
    parser.add_argument("data", help="a phantom folder (its train split trains, its test split scores)")
    parser.add_argument("--extra", nargs="*", default=[],
                        help="phantom folders whose training lesions are added (their test splits "
                             "are not used)")
    parser.add_argument("--labels", nargs="+", default=list(LABELS), choices=LABELS,
                        help="shape labels the probe learns to tell apart (default: all)")
    parser.add_argument("--epochs", type=positive_int, default=40,
                        help="training epochs of the probe (default 40)")
    parser.add_argument("--seed", type=seed_int, default=0, help="training seed (default 0)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    rows = read_rows(args.data) + [{**row, "split": "train" if row["split"] == "train" else "unused"}
                                   for folder in args.extra for row in read_rows(folder)]
    text = render(measure(rows, args.labels, epochs=args.epochs, seed=args.seed))
    print(text)
    if args.out:
        with atomic_write(args.out) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "shape_visibility"))

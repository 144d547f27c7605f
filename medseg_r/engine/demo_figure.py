"""The demo's picture: one test case from each subset that needs one prior, the reference, each
model's mask and boxes, and MedSeg-R's location attention."""

from __future__ import annotations

import textwrap
from typing import Dict

import numpy as np

from ..io import atomic_write

PICK = ("by_location", "by_texture", "by_shape")


CAPTION_WIDTH, CAPTION_LINES = 36, 8


def _caption(tag: str, report: str) -> str:
    """The subset and the report, wrapped; a longer report is cut at a word, with an ellipsis."""
    return "\n".join(textwrap.wrap(f"[{tag}] {report}" if tag else report, CAPTION_WIDTH,
                                    max_lines=CAPTION_LINES, placeholder=" ..."))


def figure(path: str, data_dir: str, runs: Dict[str, object], cache: str) -> None:
    """``runs``: model name -> a checkpoint path or a loaded model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    from ..data.datasets import SegmentationDataset
    from ..data.readers import read_dataset
    from ..model import load_model
    from .comparison import attach_cache

    records, root = read_dataset(data_dir, split="test")
    chosen = []
    for tag in PICK:
        chosen += [r for r in records if tag in r.tags and r not in chosen][:1]
    chosen = chosen or records[:3]
    models = {name: attach_cache((load_model(p) if isinstance(p, str) else p).eval(), cache, name)
              for name, p in runs.items()}
    size = next(iter(models.values())).img_size
    ds = SegmentationDataset(chosen, root=root, size=size)
    cols = 2 + len(models) + 1
    # each row: the image (2.3 in) and its caption above it (up to CAPTION_LINES lines)
    fig, axes = plt.subplots(len(chosen), cols, figsize=(2.3 * cols, 3.3 * len(chosen)), squeeze=False)
    for i in range(len(chosen)):
        sample = ds[i]
        img = sample["image"].permute(1, 2, 0).numpy()
        ax = axes[i]
        tag = next((t for t in PICK if t in chosen[i].tags), "")
        ax[0].imshow(img, cmap="gray")
        ax[0].set_title(_caption(tag, chosen[i].report), fontsize=5.5)
        ax[1].imshow(img, cmap="gray")
        ax[1].contour(sample["mask"][0].numpy(), levels=[0.5], colors="lime", linewidths=0.8)
        ax[1].set_title("reference", fontsize=7)
        attention = None
        for j, (name, model) in enumerate(models.items()):
            with torch.no_grad():
                out = model(sample["image"][None], [sample["report"]])
            a = ax[2 + j]
            a.imshow(img, cmap="gray")
            a.imshow(np.ma.masked_where(out["masks"][0, 0].numpy() <= 0, np.ones((size, size))),
                     cmap="autumn", alpha=0.6, vmin=0, vmax=1)
            for x0, y0, x1, y1 in out.get("boxes", [np.zeros((0, 4))])[0].tolist():
                a.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=0.7))
            a.set_title(name, fontsize=7)
            if name == "medseg_r" and out["attention"] is not None:
                attention = out["attention"][0, 0].numpy()
        ax[-1].imshow(img, cmap="gray")
        if attention is not None:
            ax[-1].imshow(attention, cmap="magma", alpha=0.55, vmin=0, vmax=1)
        ax[-1].set_title("MedSeg-R location attention", fontsize=7)
        for a in ax:
            a.axis("off")
    fig.legend(handles=[Line2D([], [], color="lime", lw=1.2, label="reference outline"),
                        Patch(facecolor="yellow", alpha=0.6, label="model's mask"),
                        Patch(facecolor="none", edgecolor="cyan", label="box prompts given to the decoder"),
                        Patch(facecolor=plt.get_cmap("magma")(0.8), alpha=0.7,
                              label="location attention (bright: high)")],
               loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)

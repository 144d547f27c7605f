"""Test-time shifts of the image localiser (stop 49, shift_tta_val.md), an exploration on top of
the package's test-time flip (``box_flip``): besides the image and its mirror, the localiser also
reads the canvas shifted by ``STEP`` px up, down, left and right (edges replicated; the location
map shifted with it), and each reading's maps are shifted back; the box map is the mean of all
readings. Nothing is trained; the package is patched in this process only.

    python shift_tta.py RUN/model.ckpt SPLIT VARIANT ...

VARIANT: ``base`` (the package as it is), ``shift8`` / ``shift16`` (four shifts of 8 / 16 px;
multiples of 8 px keep the location map, rendered at stride 8, on whole cells). The data and
feature cache are that machine's benchmark folder (/work/bench = the accuracy benchmark's --out)."""
import json
import sys
import time

import torch
import torch.nn.functional as F

import medseg_r.model.encoding as encoding
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model import load_model
from medseg_r.model.conditioning import location_render
from medseg_r.model.feature_cache import FeatureCache

flip_averaged_map = encoding.flip_averaged_map
STEP = {"step": 0}  # the shift in px of the variant being scored (0: the package as it is)


def shifted(t: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``t`` ``[B, C, H, W]`` with its content moved by ``(dy, dx)`` cells, edges replicated."""
    if dy == 0 and dx == 0:
        return t
    H, W = t.shape[-2:]
    padded = F.pad(t, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)), mode="replicate")
    y0, x0 = max(-dy, 0), max(-dx, 0)
    return padded[..., y0:y0 + H, x0:x0 + W]


def reading(model, canvas, priors, render, dy: int, dx: int) -> torch.Tensor:
    """The localiser's maps of the canvas shifted by ``(dy, dx)`` px, shifted back (``priors``,
    ``render``: the batch's fused priors and location render, read once for every shift)."""
    S = canvas.shape[-1]
    moved = None
    if render is not None:
        def moved(size):
            return shifted(render(size), dy * size[0] // S, dx * size[1] // S)
    maps = model.box_head(None, None, shifted(canvas, dy, dx), priors, moved)
    h, w = maps.shape[-2:]
    return shifted(maps, -dy * h // S, -dx * w // S)


def with_shifts(model, canvas, reports, frame, box_map):
    out = flip_averaged_map(model, canvas, reports, frame, box_map)
    step = STEP["step"]
    if step == 0 or frame.resized != (frame.size, frame.size):
        return out
    priors = model.encode_priors(reports)
    render = location_render(model, reports, frame, canvas.device)
    readings = [reading(model, canvas, priors, render, dy, dx).to(out.dtype)
                for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step))]
    return (2 * out + sum(readings)) / (2 + len(readings))  # the image and its mirror count once each


encoding.flip_averaged_map = with_shifts

if __name__ == "__main__":
    ckpt, split = sys.argv[1], sys.argv[2]
    records, root = read_dataset("/work/bench/data", split=split)
    model = load_model(ckpt)
    model.feature_cache = FeatureCache("/work/bench/feature_cache")
    for variant in sys.argv[3:]:
        STEP["step"] = 0 if variant == "base" else int(variant.removeprefix("shift"))
        start = time.time()
        with torch.no_grad():
            s = evaluate(model, records, root=root, size=model.img_size)
        sub = {k: (None if v["dice"] is None else round(v["dice"], 3)) for k, v in s["subsets"].items()
               if k in ("small", "by_location", "by_texture", "by_shape", "low_contrast")}
        print(json.dumps({"ckpt": ckpt.split("/")[-2], "split": split, "variant": variant,
                          "dice": round(s["overall"]["dice"], 4), **sub,
                          "s": round(time.time() - start)}), flush=True)

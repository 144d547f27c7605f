"""A MedSeg-R checkpoint as the package wrote it before the injection rework (format version 1,
commit fece3f6), kept as a recipe instead of a 13 MB binary: the payload's keys, shapes and options
are in ``checkpoint_v1.json``, the weights come from :func:`weights` (seeded per key), and the JSON also
holds the logits the old code computed with those weights on :func:`example_input`.

Regenerate (only with the old code, e.g. ``git worktree add /tmp/old fece3f6``):
``PYTHONPATH=/tmp/old python tests/model/data/checkpoint_v1.py``.
"""
from __future__ import annotations

import json
import os
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
JSON = os.path.join(HERE, "checkpoint_v1.json")
REPORTS = ["2 cm round spiculated nodule in the right upper lobe", "Ground-glass opacity at the left base."]
PIXELS = [(5, 5), (12, 40), (30, 20), (40, 50), (60, 60), (20, 10)]


def weights(shapes):
    """Deterministic weights for the given ``{key: shape}``: N(0, 0.15) per key, LayerNorm-like scales
    around 1, gates at 0.4 so that every prior path is open."""
    out = {}
    for key, shape in shapes.items():
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        value = torch.randn(tuple(shape), generator=g) * 0.15
        last = key.rsplit(".", 1)[-1]
        if "gate" in key:
            value = torch.full(tuple(shape), 0.4)
        elif last == "weight" and ("norm" in key or key.endswith("neck.1.weight") or key.endswith("neck.3.weight")):
            value = 1.0 + value
        out[key] = value
    return out


def example_input():
    g = torch.Generator().manual_seed(7)
    return torch.rand(2, 3, 64, 64, generator=g)


def _make():
    from medseg_r import build_model
    from medseg_r.checkpoint import FORMAT, VERSION

    model = build_model("sam_tiny", img_size=64)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(weights(shapes))
    model.eval()
    with torch.no_grad():
        out = model(example_input(), REPORTS)
    masks = out["masks"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gate" in name:
                p.zero_()
        closed = model(example_input(), REPORTS)["masks"]
    record = {"format": FORMAT, "version": VERSION, "backbone": "sam_tiny", "img_size": 64,
              "options": dict(model.options), "shapes": shapes, "reports": REPORTS,
              "logits": {f"{b},{y},{x}": float(masks[b, 0, y, x]) for b in range(2) for y, x in PIXELS},
              "logits_mean": [float(masks[b].mean()) for b in range(2)],
              "logits_mean_gates_closed": [float(closed[b].mean()) for b in range(2)],
              "iou": [float(v) for v in out["iou"][:, 0]]}
    with open(JSON, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)


if __name__ == "__main__":
    _make()

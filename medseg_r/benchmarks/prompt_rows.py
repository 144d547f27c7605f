"""Untrained rows: pretrained LiteMedSAM given a box, either the reference box of each described
lesion (the oracle: what a user who draws boxes gets) or the box of each positive finding's location
prior (a training-free report-to-box mode: the report alone, no learning). The reference boxes also
score the ``decoder_boxes`` row (a decoder fine-tuned on such boxes, nothing that reads a report)."""

from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np
import torch

from ..engine.evaluate import case_metrics, summarise


@torch.no_grad()
def _boxed(records, root: str, boxes_of: Callable[[Dict[str, object]], List[List[float]]],
           model=None) -> Dict:
    from ..backbones import build_backbone
    from ..data.datasets import SegmentationDataset
    from ..model import MedSegR

    if model is None:
        model = MedSegR(build_backbone("litemedsam"), priors="none", matched_capacity=False)
    model.eval()
    ds = SegmentationDataset(records, root=root, size=256)
    rows = []
    for i in range(len(ds)):
        sample = ds[i]
        truth = sample["mask"][0].numpy() > 0.5
        pred = np.zeros_like(truth)
        for box in boxes_of(sample):
            prompt = torch.tensor([box], dtype=torch.float32)
            pred |= (model(sample["image"][None], [""], boxes=prompt)["masks"][0, 0] > 0).numpy()
        rows.append({"id": sample["id"], "tags": sample["tags"], **case_metrics(pred, truth)})
    return summarise(rows)


def oracle_box(records, root: str, model=None) -> Dict[str, object]:
    """LiteMedSAM given the bounding box of each connected component of the reference mask
    (``model``: another model prompted so, e.g. one whose decoder was fine-tuned: the
    ``decoder_boxes`` row; default: the pretrained LiteMedSAM)."""
    from ..model.box_regression import component_boxes

    def boxes(sample):
        return [list(box) for _, box in component_boxes(sample["mask"][0].numpy() > 0.5,
                                                        diagonal=False)]

    return _boxed(records, root, boxes, model)


def zone_box(records, root: str) -> Dict[str, object]:
    """LiteMedSAM given, for each positive finding of the parsed report, the bounding box of its
    location prior (the region :class:`~medseg_r.cognition.LocationRasteriser` draws); a finding
    without a location gives no box. No training."""
    from ..cognition import LocationRasteriser

    rasteriser = LocationRasteriser()

    def boxes(sample):
        out = []
        size = sample["image"].shape[-1]
        for finding in sample["report"].positive_findings:
            for x0, y0, x1, y1 in rasteriser.boxes(finding) or []:
                out.append([x0 * size, y0 * size, x1 * size, y1 * size])
        return out

    return _boxed(records, root, boxes)


if __name__ == "__main__":  # a library module of the benchmarks, not one of them
    from . import not_a_benchmark

    raise SystemExit(not_a_benchmark("prompt_rows"))

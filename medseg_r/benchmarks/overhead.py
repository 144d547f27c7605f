"""What MedSeg-R adds to a SAM backbone: parameters and CPU forward latency, side by side.

    python -m medseg_r.benchmarks.overhead            # table
    python -m medseg_r.benchmarks.overhead --json     # one JSON object
    python -m medseg_r.benchmarks.overhead --backbones sam_tiny litemedsam --repeats 7

Latency is one image, batch 1, no box prompt, ``torch.no_grad``, on this machine's CPU threads: plain SAM
(its own modules called directly: preprocess, image encoder, prompt encoder, mask decoder) against
MedSeg-R (report parsed, priors encoded and fused, modulated encoder, decoder prompts). Runs alternate
(plain, MedSeg-R, plain, ...) after one warm-up each; the ratio is of the medians. Gates are set non-zero
so that no path is skipped (the compute is the same either way).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F

from ..model import MedSegR
from ..backbones import build_backbone

DEFAULT_CASES = (("sam_tiny", 256), ("litemedsam", 256), ("sam_vit_b", 1024))
REPORT = "A 2 cm spiculated part-solid nodule in the right upper lobe and a small ground-glass opacity at the left base."


def plain_sam(sam, images: torch.Tensor, normalize: str) -> torch.Tensor:
    x = (images * 255.0 - sam.pixel_mean) / sam.pixel_std if normalize == "sam" else images
    emb = sam.image_encoder(x)
    sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
    low, _ = sam.mask_decoder(image_embeddings=emb, image_pe=sam.prompt_encoder.get_dense_pe(),
                              sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
    return F.interpolate(low, size=images.shape[-2:], mode="bilinear", align_corners=False)


def measure(name: str, size: int, repeats: int) -> Dict[str, float]:
    backbone = build_backbone(name, img_size=size, pretrained=True)
    sam = backbone.sam.eval()
    model = MedSegR(backbone).eval()
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.1)
    summary = model.parameter_summary()
    images = torch.rand(1, 3, size, size)
    plain_t: List[float] = []
    ours_t: List[float] = []
    with torch.no_grad():
        plain_sam(sam, images, backbone.normalize)
        model(images, [REPORT])
        for _ in range(repeats):
            t0 = time.perf_counter()
            plain_sam(sam, images, backbone.normalize)
            t1 = time.perf_counter()
            model(images, [REPORT])
            t2 = time.perf_counter()
            plain_t.append(t1 - t0)
            ours_t.append(t2 - t1)
    plain_med, ours_med = statistics.median(plain_t), statistics.median(ours_t)
    return {"img_size": size, "backbone_params": summary["backbone"], "added_params": summary["added"],
            "added_params_pct": round(summary["added_pct"], 3), "plain_ms": round(1000 * plain_med, 1),
            "medseg_r_ms": round(1000 * ours_med, 1), "latency_ratio": round(ours_med / plain_med, 3),
            "repeats": repeats}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--backbones", nargs="*", default=None, help="subset of: sam_tiny litemedsam sam_vit_b")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model (median reported)")
    args = parser.parse_args(argv)
    cases = [c for c in DEFAULT_CASES if args.backbones is None or c[0] in args.backbones]
    if not cases:
        parser.error("no known backbone selected")
    results = {}
    for name, size in cases:
        results[name] = measure(name, size, args.repeats)
        if not args.json:
            print(f"measured {name} ...", file=sys.stderr)
    meta = {"device": "cpu", "torch_threads": torch.get_num_threads(), "batch": 1, "torch": torch.__version__}
    if args.json:
        print(json.dumps({"backbones": results, "setup": meta}))
        return 0
    header = f"{'backbone':<12}{'input':>7}{'backbone params':>17}{'added':>11}{'added %':>9}{'plain ms':>10}{'MedSeg-R ms':>13}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:<12}{r['img_size']:>7}{r['backbone_params']:>17,}{r['added_params']:>11,}{r['added_params_pct']:>8.2f}%"
              f"{r['plain_ms']:>10.1f}{r['medseg_r_ms']:>13.1f}{r['latency_ratio']:>7.3f}")
    print(f"CPU, {meta['torch_threads']} threads, batch 1, median of {args.repeats} alternating runs; torch {meta['torch']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What MedSeg-R adds to a SAM backbone: parameters and CPU forward latency, side by side.

    python -m medseg_r.benchmarks.overhead            # table
    python -m medseg_r.benchmarks.overhead --json     # one JSON object
    python -m medseg_r.benchmarks.overhead --backbones sam_tiny litemedsam --repeats 7

Latency is one image, batch 1, no box prompt, ``torch.no_grad``, on this machine's CPU threads: plain SAM
(its own modules called directly: preprocess, image encoder, prompt encoder, mask decoder) against
MedSeg-R (report parsed, priors encoded and fused, modulated encoder, decoder prompts). After one warm-up
each, runs alternate in ABBA order (plain, MedSeg-R, MedSeg-R, plain, ...) so that neither model always
runs first; ratios are of medians. Gates are set non-zero so that no path is skipped (the compute is the
same either way). Default repeats: 21 for the 256 px backbones, 5 for ViT-B at 1024 px.

Two baselines: SAM as shipped ("stock"), and SAM whose patch-embedding output is made contiguous. Stock
SAM's ViT hands a permuted (non-contiguous) tensor to its blocks, which costs the ViTs 3-8 % here;
MedSeg-R's blocks get the same permuted layout (its modulator's sum keeps the input's strides, so a
pretrained model's output is bit for bit unchanged at initialisation). ``latency_ratio`` is taken
against the contiguous baseline (the stricter figure); ``latency_ratio_vs_stock`` is reported beside
it.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F

from ..model import MedSegR
from ..runtime import cpu_model, keep_freed_memory
from ..backbones import build_backbone
from ..cli.common import positive_int
from . import benchmark_parser

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
    # a timing: LiteMedSAM's shipped weights where they exist, random weights elsewhere (on purpose)
    backbone = build_backbone(name, img_size=size, pretrained=name == "litemedsam")
    sam = backbone.sam.eval()
    model = MedSegR(backbone).eval()
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.1)
    summary = model.parameter_summary()
    images = torch.rand(1, 3, size, size)
    times: Dict[str, List[float]] = {"stock": [], "contiguous": [], "medseg_r": []}

    def contiguous_plain():
        hook = sam.image_encoder.patch_embed.register_forward_hook(lambda mod, inp, out: out.contiguous())
        try:
            plain_sam(sam, images, backbone.normalize)
        finally:
            hook.remove()

    runs = [("stock", lambda: plain_sam(sam, images, backbone.normalize)), ("contiguous", contiguous_plain),
            ("medseg_r", lambda: model(images, [REPORT]))]
    with torch.no_grad():
        for _, run in runs:
            run()
        for i in range(repeats):
            for key, run in (runs if i % 2 == 0 else runs[::-1]):
                t0 = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"img_size": size, "backbone_params": summary["backbone"], "added_params": summary["added"],
            "added_params_pct": round(summary["added_pct"], 3), "plain_ms": round(1000 * med["contiguous"], 1),
            "plain_stock_ms": round(1000 * med["stock"], 1), "medseg_r_ms": round(1000 * med["medseg_r"], 1),
            "latency_ratio": round(med["medseg_r"] / med["contiguous"], 3),
            "latency_ratio_vs_stock": round(med["medseg_r"] / med["stock"], 3), "repeats": repeats}


def main(argv=None) -> int:
    parser = benchmark_parser("overhead", __doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--backbones", nargs="*", default=None, help="subset of: sam_tiny litemedsam sam_vit_b")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed runs per model (median reported; default 21 at 256 px, 5 at 1024 px)")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as predict does: without it, page faults weigh on both models' timings
    known = [c[0] for c in DEFAULT_CASES]
    unknown = sorted(set(args.backbones or []) - set(known))
    if unknown:
        parser.error(f"--backbones: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    cases = [c for c in DEFAULT_CASES if args.backbones is None or c[0] in args.backbones]
    if not cases:
        parser.error("no known backbone selected")
    results = {}
    for name, size in cases:
        results[name] = measure(name, size, args.repeats or (21 if size <= 256 else 5))
        if not args.json:
            print(f"measured {name} ...", file=sys.stderr)
    meta = {"device": "cpu", "torch_threads": torch.get_num_threads(), "batch": 1, "torch": torch.__version__,
            "cpu": cpu_model()}
    if args.json:
        print(json.dumps({"backbones": results, "setup": meta}))
        return 0
    header = (f"{'backbone':<12}{'input':>7}{'backbone params':>17}{'added':>11}{'added %':>9}{'SAM ms':>9}"
              f"{'MedSeg-R ms':>13}{'ratio':>7}{'stock SAM ms':>14}{'ratio vs stock':>16}")
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:<12}{r['img_size']:>7}{r['backbone_params']:>17,}{r['added_params']:>11,}{r['added_params_pct']:>8.2f}%"
              f"{r['plain_ms']:>9.1f}{r['medseg_r_ms']:>13.1f}{r['latency_ratio']:>7.3f}{r['plain_stock_ms']:>14.1f}"
              f"{r['latency_ratio_vs_stock']:>16.3f}")
    print(f"CPU, {meta['torch_threads']} threads, batch 1, median of {', '.join(str(r['repeats']) for r in results.values())} "
          f"ABBA-alternating runs; torch {meta['torch']}")
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "overhead"))

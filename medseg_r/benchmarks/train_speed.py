"""Training throughput of MedSeg-R: images per second and peak memory for one optimiser step.

    python -m medseg_r.benchmarks.train_speed [--configs NAME ...] [--steps 10] [--warmup 3]
                                              [--batch-size 8] [--precision 32-true|bf16-mixed|16-mixed] [--json]

Each configuration builds the model, runs ``--warmup`` steps, then times ``--steps`` real steps
(forward, Dice + BCE loss on random masks, backward, AdamW step) on random images and reports the
median step time as images/s, with peak GPU memory (``torch.cuda.max_memory_allocated``) on a GPU
or peak resident memory on a CPU. Configurations (random-initialised ViTs; LiteMedSAM pretrained):

* ``sam_vit_b_frozen`` / ``sam_vit_b_full``: SAM ViT-B at 1024 px, image encoder frozen (MedSeg-R
  modules and mask decoder train) or everything trained (with activation checkpointing);
* ``litemedsam_early``: LiteMedSAM, modulated after its first two stages (the encoder runs every
  step and the gradient goes back through it to the modulators);
* ``litemedsam_late``: LiteMedSAM modulated at the image embedding (``inject_at=["neck"]``), the
  encoder run every step; ``litemedsam_late_cached``: the same with the encoder's output read from
  a feature cache (what the accuracy benchmark and the demo train with).
"""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import tempfile
import time
from typing import Dict, List

import torch

from . import benchmark_parser
from ..cli.common import non_negative_int, positive_int

CONFIGS: Dict[str, Dict[str, object]] = {
    "sam_vit_b_frozen": {"backbone": "sam_vit_b", "img_size": 1024, "options": {}},
    "sam_vit_b_full": {"backbone": "sam_vit_b", "img_size": 1024,
                       "options": {"freeze": "none", "activation_checkpointing": True}},
    "litemedsam_early": {"backbone": "litemedsam", "img_size": None, "options": {}},
    "litemedsam_late": {"backbone": "litemedsam", "img_size": None,
                        "options": {"inject_at": ["neck"], "report_box": True}},
    "litemedsam_late_cached": {"backbone": "litemedsam", "img_size": None, "cache": True,
                               "options": {"inject_at": ["neck"], "report_box": True}},
}
# Lightning's names, as train, demo and the accuracy benchmark spell them; the short ones too
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
ALIASES = {"fp32": "32-true", "32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed", "16": "16-mixed"}
REPORTS = ["2 cm round spiculated nodule in the right upper lobe",
           "ground-glass opacity in the left lower zone"]


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name: str, *, batch_size: int, steps: int, warmup: int, precision: str,
            device: torch.device) -> Dict[str, object]:
    from ..engine.task import build_loss
    from ..model import build_model
    from ..model.feature_cache import FeatureCache

    spec = CONFIGS[name]
    torch.manual_seed(0)
    model = build_model(spec["backbone"], img_size=spec["img_size"], **spec["options"]).to(device)
    if spec.get("cache"):
        model.feature_cache = FeatureCache(tempfile.mkdtemp(prefix="medseg_r_train_speed_"))
    model.train()
    size = model.img_size
    loss_fn = build_loss("dice_ce")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    images = torch.rand(batch_size, 3, size, size, device=device)
    masks = (torch.rand(batch_size, 1, size, size, device=device) > 0.98).float()
    reports = [REPORTS[i % 2] for i in range(batch_size)]
    dtype = PRECISIONS[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: List[float] = []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = loss_fn(model(images, reports)["masks"].float(), masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"config": name, "batch_size": batch_size, "precision": precision,
            "images_per_s": round(batch_size / median, 2), "step_s": round(median, 4),
            "peak_mb": round(_peak_mb(device)), "trainable_params": sum(p.numel() for p in params)}


def main(argv: List[str] | None = None) -> int:
    parser = benchmark_parser("train_speed", __doc__)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS),
                        help="configurations timed (default: all)")
    parser.add_argument("--steps", type=positive_int, default=10,
                        help="timed training steps of each configuration (default 10)")
    parser.add_argument("--warmup", type=non_negative_int, default=3,
                        help="untimed steps first (default 3)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="batch size (default 8)")
    parser.add_argument("--precision", choices=[*PRECISIONS, *ALIASES], default=None,
                        help="autocast precision: 32-true, bf16-mixed or 16-mixed (or fp32, bf16, "
                             "fp16; default: 16-mixed on a GPU, 32-true on a CPU)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be positive, --warmup not negative")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = ALIASES.get(args.precision, args.precision) or ("16-mixed" if device.type == "cuda"
                                                                 else "32-true")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows = []
    for name in args.configs:
        rows.append(measure(name, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                            precision=precision, device=device))
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if not args.json:
            r = rows[-1]
            print(f"{r['config']:<24}{r['images_per_s']:>10.2f} img/s{r['step_s']:>9.3f} s/step"
                  f"{r['peak_mb']:>9} MB peak  {r['trainable_params']:,} trainable", flush=True)
    if args.json:
        print(json.dumps({"device": where, "precision": precision, "rows": rows}, indent=2))
    else:
        print(f"({where}, {precision}, batch {args.batch_size}, median of {args.steps} steps after "
              f"{args.warmup} warm-up steps)")
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "train_speed"))

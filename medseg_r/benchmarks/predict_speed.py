"""Throughput of ``medseg-r predict`` on a volume: slices per second and peak memory, per backbone and batch size.

    python -m medseg_r.benchmarks.predict_speed [--backbones sam_tiny litemedsam] [--batch-sizes 1 8]
                                               [--repeats 3] [--slices 48] [--out DIR] [--json]

Each measurement runs the real command (``python -m medseg_r.cli predict``) in a fresh process on a synthetic
256 x 256 x N CT (NIfTI, 0.7 x 0.7 x 2.5 mm) with a report that reaches every slice ("... in both lungs"),
so the model runs on all N slices. The checkpoints are MedSeg-R models with every gate set to 0.1, so no
MedSeg-R path is skipped (an untrained model's zero gates would skip nothing either, but this keeps the
figure honest for trained models); ``sam_tiny`` is random-initialised, ``litemedsam`` carries the shipped
pretrained weights. The figures are the medians over ``--repeats`` runs of the time the command prints
(model work only: reading and writing files excluded) and of its peak resident memory.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

import numpy as np

from ..cli.common import positive_int
from . import benchmark_parser

REPORT = "Multiple round nodules in both lungs."


def make_volume(path: str, slices: int, seed: int = 0, size: int = 256) -> None:
    import nibabel as nib

    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:slices, 0:size, 0:size] * np.array([1.0, 256 / size, 256 / size])[:, None, None, None]
    body = ((x - 128) / 110.0) ** 2 + ((y - 128) / 90.0) ** 2 < 1
    lungs = body & ((((x - 80) / 40.0) ** 2 + ((y - 120) / 60.0) ** 2 < 1) |
                    (((x - 176) / 40.0) ** 2 + ((y - 120) / 60.0) ** 2 < 1))
    hu = np.where(body, 40.0, -1000.0)
    hu = np.where(lungs, -850.0, hu) + rng.normal(0, 25, size=hu.shape)
    volume = np.transpose(hu, (2, 1, 0)).astype(np.int16)  # x, y, z voxel order
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.7, 2.5, 1.0])), path)


def make_checkpoint(backbone: str, path: str) -> None:
    import torch

    from ..model import save_model
    from ..model import build_model

    torch.manual_seed(0)
    model = build_model(backbone)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.1)
    save_model(model, path)


def run_once(ckpt: str, volume: str, batch_size: int, out: str) -> Dict[str, float]:
    cmd = [sys.executable, "-m", "medseg_r.cli", "predict", "--image", volume, "--report", REPORT,
           "--checkpoint", ckpt, "--batch-size", str(batch_size), "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"predict failed: {proc.stderr.strip()[-500:]}")
    name = os.path.basename(volume).split(".")[0]
    with open(os.path.join(out, f"{name}_prediction.json"), encoding="utf-8") as handle:
        timing = json.load(handle)["timing"]
    return {"seconds_per_slice": timing["seconds_per_slice"], "slices_run": timing["slices_run"],
            "peak_rss_mb": timing["peak_rss_mb"], "peak_gpu_mb": timing.get("peak_gpu_mb")}


def main(argv: List[str] | None = None) -> int:
    parser = benchmark_parser("predict_speed", __doc__)
    parser.add_argument("--backbones", nargs="+", default=["sam_tiny", "litemedsam"],
                        help="backbones timed (default sam_tiny litemedsam)")
    parser.add_argument("--batch-sizes", nargs="+", type=positive_int, default=[1, 8],
                        help="slices predicted at once (default 1 8)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed runs of each setting; the median is reported (default 3)")
    parser.add_argument("--slices", type=positive_int, default=48,
                        help="slices of the synthetic volume (default 48)")
    parser.add_argument("--size", type=positive_int, default=256,
                        help="in-plane size of the synthetic CT (default 256)")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    from ..backbones import list_backbones

    unknown = sorted(set(args.backbones) - set(list_backbones()))
    if unknown:
        parser.error(f"--backbones: unknown {', '.join(unknown)} (known: {', '.join(list_backbones())})")
    if args.repeats < 1 or args.slices < 1 or any(b < 1 for b in args.batch_sizes):
        parser.error("--repeats, --slices and --batch-sizes must be positive")
    work = args.out or tempfile.mkdtemp(prefix="medseg_r_predict_speed_")
    os.makedirs(work, exist_ok=True)
    volume = os.path.join(work, "ct.nii.gz")
    make_volume(volume, args.slices, size=args.size)
    rows = []
    for backbone in args.backbones:
        ckpt = os.path.join(work, f"{backbone}.ckpt")
        make_checkpoint(backbone, ckpt)
        for batch in args.batch_sizes:
            runs = [run_once(ckpt, volume, batch, os.path.join(work, f"out_{backbone}_{batch}_{i}"))
                    for i in range(args.repeats)]
            per = statistics.median(r["seconds_per_slice"] for r in runs)
            rows.append({"backbone": backbone, "batch_size": batch, "slices_run": runs[0]["slices_run"],
                         "ms_per_slice": round(1000 * per, 1), "slices_per_s": round(1 / per, 2),
                         "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs)),
                         "peak_gpu_mb": runs[0]["peak_gpu_mb"] and round(max(r["peak_gpu_mb"] for r in runs)),
                         "ms_per_slice_runs": [round(1000 * r["seconds_per_slice"], 1) for r in runs]})
    if args.json:
        print(json.dumps({"rows": rows, "slices": args.slices, "size": args.size, "repeats": args.repeats,
                          "device": _device()}, indent=2))
        return 0
    print(f"medseg-r predict on a {args.size} x {args.size} x {args.slices} CT ({_device()}), "
          f"median of {args.repeats} runs:")
    print(f"{'backbone':<12}{'batch':>6}{'slices/s':>10}{'ms/slice':>10}{'peak MB':>9}   runs (ms/slice)")
    for r in rows:
        print(f"{r['backbone']:<12}{r['batch_size']:>6}{r['slices_per_s']:>10.2f}{r['ms_per_slice']:>10.1f}"
              f"{r['peak_rss_mb']:>9}   {', '.join(map(str, r['ms_per_slice_runs']))}")
    return 0


def _device() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "predict_speed"))

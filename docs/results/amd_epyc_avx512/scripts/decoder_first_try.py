"""Fine-tune LiteMedSAM's mask decoder on jittered reference boxes of the training lesions (cached
embeddings) and save its state dict.

Exploration of stop 46, kept as it ran (the default paths are that machine's benchmark folder,
/work/bench = the accuracy benchmark's --out); the package's own way is the decoder_boxes row."""
import argparse, math, random, time, json
import numpy as np, torch
from scipy import ndimage
from medseg_r.backbones import build_backbone
from medseg_r.data.datasets import SegmentationDataset
from medseg_r.data.readers import read_dataset
from medseg_r.model import MedSegR
from medseg_r.model.feature_cache import FeatureCache
from monai.losses import DiceCELoss

p = argparse.ArgumentParser()
p.add_argument("--data", default="/work/bench/data")
p.add_argument("--cache", default="/work/bench/feature_cache")
p.add_argument("--steps", type=int, default=800)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--jitter", type=float, default=0.2)
p.add_argument("--train-n", type=int, default=1400)
p.add_argument("--out", default="/work/bench/decoder_ft.pt")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
torch.manual_seed(args.seed); random.seed(args.seed); np.random.seed(args.seed)

model = MedSegR(build_backbone("litemedsam"), priors="none", matched_capacity=False, inject_at=[],
                freeze="image_encoder")
model.feature_cache = FeatureCache(args.cache)
records, root = read_dataset(args.data, split="train")
ds = SegmentationDataset(records[:args.train_n], root=root, size=256, native=True)
lesions = []  # (case index, box, component slice label)
for i in range(len(ds)):
    m = ds[i]["mask"][0].numpy() > 0.5
    labels, n = ndimage.label(m)
    for j, sl in enumerate(ndimage.find_objects(labels)):
        lesions.append((i, j + 1, [sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1]))
print("lesions", len(lesions), "cases", len(ds), flush=True)
loss_fn = DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0)
params = [q for q in model.sam.mask_decoder.parameters() if q.requires_grad]
print("trainable", sum(q.numel() for q in params), flush=True)
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
warm = max(1, args.steps // 20)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, args.steps - warm))))
rng = np.random.default_rng(args.seed)


def jittered(box):
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    d = rng.uniform(-args.jitter, args.jitter, 4) * np.array([w, h, w, h]) + rng.uniform(-1, 1, 4)
    b = np.array([x0, y0, x1, y1], dtype=float) + d
    b[2] = max(b[2], b[0] + 1); b[3] = max(b[3], b[1] + 1)
    return np.clip(b, 0, 255).tolist()


model.train()
t0 = time.time()
for step in range(args.steps):
    picks = [lesions[k] for k in rng.integers(0, len(lesions), args.batch)]
    images, targets, boxes = [], [], []
    for i, lab, box in picks:
        s = ds[i]
        images.append(s["image"]); boxes.append(jittered(box))
        labels, _ = ndimage.label(s["mask"][0].numpy() > 0.5)
        targets.append(torch.from_numpy((labels == lab).astype(np.float32))[None])
    out = model(torch.stack(images), [""] * args.batch, boxes=torch.tensor(boxes, dtype=torch.float32))
    loss = loss_fn(out["masks"][:, :1], torch.stack(targets))
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
torch.save(model.sam.mask_decoder.state_dict(), args.out)
print("saved", args.out, f"{time.time() - t0:.0f}s", flush=True)

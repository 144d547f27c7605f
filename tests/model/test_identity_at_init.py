"""At initialisation a wrapped SAM must give the plain SAM's masks (zero-initialised gates), in every
precision training uses: fp32, bf16 autocast on CPU and, on a GPU, fp16 and bf16 autocast."""
import contextlib

import pytest
import torch
import torch.nn.functional as F

from medseg_r import MedSegR
from medseg_r.backbones import build_backbone

REPORTS = ["2 cm round hypodense nodule in the right upper lobe", "Irregular ground-glass opacity, left base."]
CUDA = torch.cuda.is_available()

PRECISIONS = [
    pytest.param("cpu", None, id="cpu-fp32"),
    pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
    pytest.param("cuda", None, id="cuda-fp32", marks=pytest.mark.gpu),
    pytest.param("cuda", torch.float16, id="cuda-fp16", marks=pytest.mark.gpu),
    pytest.param("cuda", torch.bfloat16, id="cuda-bf16", marks=pytest.mark.gpu),
]


def _precision(device, dtype):
    if device == "cuda" and not CUDA:
        pytest.skip("needs a CUDA GPU")
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=dtype)


def plain_sam_logits(sam, images, boxes=None, points=None):
    """The reference: segment_anything's own modules called directly (the encoder on the whole batch,
    the decoder one image at a time, as SAM's predictor does)."""
    S = sam.image_encoder.img_size
    x = sam.preprocess(images * 255.0) if hasattr(sam, "preprocess") else images
    emb = sam.image_encoder(x)
    out = []
    for b in range(images.shape[0]):
        pts = None if points is None else (points[0][b:b + 1], points[1][b:b + 1])
        box = None if boxes is None else boxes[b:b + 1]
        sparse, dense = sam.prompt_encoder(points=pts, boxes=box, masks=None)
        low, _ = sam.mask_decoder(image_embeddings=emb[b:b + 1], image_pe=sam.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=False)
        out.append(F.interpolate(low, size=(S, S), mode="bilinear", align_corners=False))
    return torch.cat(out)


def _wrapped(name, size, device="cpu", **options):
    # SAM ViTs are random here (no checkpoint on this machine): built so on purpose, without the warning
    sam = build_backbone(name, img_size=size, pretrained=name == "litemedsam").sam.to(device).eval()
    return sam, MedSegR.from_sam(sam, **options).to(device).eval()


PROMPTS = {
    "none": {},
    "box": {"boxes": torch.tensor([[20.0, 30.0, 120.0, 140.0], [5.0, 5.0, 200.0, 90.0]])},
    "points": {"points": (torch.tensor([[[60.0, 70.0], [100.0, 30.0]], [[10.0, 200.0], [128.0, 128.0]]]),
                          torch.tensor([[1, 0], [1, 1]]))},
}


def _to(prompt, device):
    out = {}
    for key, value in prompt.items():
        out[key] = tuple(v.to(device) for v in value) if isinstance(value, tuple) else value.to(device)
    return out


@pytest.mark.parametrize("decoder_prior", ["both", "extra_token"])
@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_identity_at_init_random_vit_fp32(prompt, decoder_prior):
    sam, model = _wrapped("sam_vit_b", 256, decoder_prior=decoder_prior)
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ours = model(images, REPORTS, **PROMPTS[prompt])["masks"]
        ref = plain_sam_logits(sam, images, **PROMPTS[prompt])
    assert torch.equal(ours, ref)


def _every_precision():
    """Each backbone in each precision. bf16 autocast on a CPU is marked slow: without bfloat16
    instructions it is emulated (about a minute for the random ViT, many minutes for LiteMedSAM's eight
    encoder passes); CI runs these after the default run."""
    for backbone, size, name in [("sam_vit_b", 256, "random-vit"), ("litemedsam", None, "pretrained-litemedsam")]:
        for p in PRECISIONS:
            device, dtype = p.values
            slow = device == "cpu" and dtype is not None
            yield pytest.param(backbone, size, device, dtype, id=f"{name}-{p.id}",
                               marks=[*p.marks, *([pytest.mark.slow] if slow else [])])


@pytest.mark.parametrize("backbone, size, device, dtype", list(_every_precision()))
def test_identity_at_init_in_every_precision(backbone, size, device, dtype):
    """Bit for bit: the modulators add a zero update in the main path's own dtype. (Before that fix, bf16
    autocast moved SAM ViT-B's logits by up to 3.4e-3 and flipped 0.4 % of its mask pixels.)"""
    precision = _precision(device, dtype)
    sam, model = _wrapped(backbone, size, device)
    images = torch.rand(2, 3, 256, 256, device=device)
    box = _to(PROMPTS["box"], device)
    with torch.no_grad(), precision:
        for prompt in ({}, box):
            ours = model(images, REPORTS, **prompt)["masks"].float()
            ref = plain_sam_logits(sam, images, **prompt).float()
            assert torch.equal(ours, ref), f"max |diff| {(ours - ref).abs().max().item():.3g}"


@pytest.mark.parametrize("decoder_prior, decoder_gates", [("both", 2), ("extra_token", 1)])
def test_identity_at_init_fails_when_any_gate_is_not_zero(decoder_prior, decoder_gates):
    """The identity test above can fail: each gate alone, set non-zero, changes the masks."""
    sam, model = _wrapped("sam_vit_b", 256, decoder_prior=decoder_prior)
    images = torch.rand(1, 3, 256, 256)
    gates = model.gates()
    assert len(gates) == 3 * 3 + decoder_gates  # three modules at three sites + the decoder-side gates
    assert all(float(g.detach().abs().max()) == 0.0 for g in gates.values())
    with torch.no_grad():
        ref = plain_sam_logits(sam, images)
        for name, gate in gates.items():
            gate.fill_(0.5)
            diff = (model(images, REPORTS[:1])["masks"] - ref).abs().max().item()
            gate.zero_()
            assert diff > 1e-4, f"gate {name} has no effect on the output"

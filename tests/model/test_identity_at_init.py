"""At initialisation a wrapped pretrained SAM must give the plain SAM's masks (zero-initialised gates)."""
import pytest
import torch
import torch.nn.functional as F

from medseg_r import MedSegR
from medseg_r.backbones import build_backbone

REPORTS = ["2 cm round hypodense nodule in the right upper lobe", "Irregular ground-glass opacity, left base."]


def plain_sam_logits(sam, images, boxes=None, points=None):
    """The reference: segment_anything's own modules called directly, one image at a time."""
    S = sam.image_encoder.img_size
    out = []
    for b in range(images.shape[0]):
        x = images[b:b + 1]
        x = sam.preprocess(x * 255.0) if hasattr(sam, "preprocess") else x
        emb = sam.image_encoder(x)
        pts = None if points is None else (points[0][b:b + 1], points[1][b:b + 1])
        box = None if boxes is None else boxes[b:b + 1]
        sparse, dense = sam.prompt_encoder(points=pts, boxes=box, masks=None)
        low, _ = sam.mask_decoder(image_embeddings=emb, image_pe=sam.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=False)
        out.append(F.interpolate(low, size=(S, S), mode="bilinear", align_corners=False))
    return torch.cat(out)


def _wrapped(name, size, **options):
    sam = build_backbone(name, img_size=size).sam.eval()
    return sam, MedSegR.from_sam(sam, **options).eval()


PROMPTS = {
    "none": {},
    "box": {"boxes": torch.tensor([[20.0, 30.0, 120.0, 140.0], [5.0, 5.0, 200.0, 90.0]])},
    "points": {"points": (torch.tensor([[[60.0, 70.0], [100.0, 30.0]], [[10.0, 200.0], [128.0, 128.0]]]),
                          torch.tensor([[1, 0], [1, 1]]))},
}


@pytest.mark.parametrize("decoder_prior", ["both", "extra_token"])
@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_identity_at_init_sam_vit_b(prompt, decoder_prior):
    sam, model = _wrapped("sam_vit_b", 256, decoder_prior=decoder_prior)
    images = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ours = model(images, REPORTS, **PROMPTS[prompt])["masks"]
        ref = plain_sam_logits(sam, images, **PROMPTS[prompt])
    assert (ours - ref).abs().max().item() < 1e-5


def test_identity_at_init_litemedsam_pretrained():
    sam, model = _wrapped("litemedsam", None)
    images = torch.rand(1, 3, 256, 256)
    box = torch.tensor([[40.0, 50.0, 180.0, 200.0]])
    with torch.no_grad():
        ours = model(images, REPORTS[:1], boxes=box)["masks"]
        ref = plain_sam_logits(sam, images, boxes=box)
    assert (ours - ref).abs().max().item() < 1e-5


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

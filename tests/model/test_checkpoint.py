import pytest
import torch

from medseg_r import build_model, load_model
from medseg_r.backbones import CheckpointError
from medseg_r.checkpoint import save_model


def test_save_load_round_trip(tmp_path):
    model = build_model("sam_tiny", deformable=False, prior_dim=96).eval()
    with torch.no_grad():
        for g in model.gates().values():
            g.normal_()
    path = tmp_path / "m.ckpt"
    save_model(model, path, extra={"epoch": 2})
    again = load_model(path).eval()
    assert again.options == model.options
    images = torch.rand(1, 3, 100, 80)
    with torch.no_grad():
        a = model(images, ["round nodule, right upper lobe"])["masks"]
        b = again(images, ["round nodule, right upper lobe"])["masks"]
    assert torch.equal(a, b)
    via_build = build_model("sam_tiny", checkpoint=str(path))
    assert via_build.options["deformable"] is False


def test_medseg_checkpoint_for_another_backbone_is_an_error(tmp_path):
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny"), path)
    with pytest.raises(CheckpointError, match="trained on backbone 'sam_tiny', not 'litemedsam'"):
        build_model("litemedsam", checkpoint=str(path))


def test_tampered_checkpoint_names_the_keys(tmp_path):
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny"), path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop("fusion.norm.weight")
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="missing key.*fusion.norm.weight"):
        load_model(path)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(path)

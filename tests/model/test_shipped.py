"""Shipped weights: only what differs from the pretrained backbone is stored, and loading them gives
the trained model back (to fp16 rounding)."""
import os

import pytest
import torch

from medseg_r import build_model
from medseg_r.backbones.weights import CheckpointError
from medseg_r.checkpoint import save_model
from medseg_r.model.shipped import DEFAULT, default_for, export_shipped, load_shipped, shipped_path

REPORT = "2 cm round solid nodule in the right upper lobe"


def _trained(tmp_path, **options):
    torch.manual_seed(0)  # sam_tiny is random: the seed makes it the "pretrained" backbone
    model = build_model("sam_tiny", img_size=64, **options)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.5)
        model.sam.mask_decoder.iou_prediction_head.layers[0].bias.add_(0.25)  # a trained SAM tensor
    path = str(tmp_path / "model.ckpt")
    save_model(model, path)
    return model, path


def test_round_trip_stores_only_what_training_changed(tmp_path, monkeypatch):
    model, ckpt = _trained(tmp_path)
    import medseg_r.model.build as build

    original = build.build_model

    def seeded(*args, **kwargs):  # the reference backbone export compares with: the same seed
        torch.manual_seed(0)
        return original(*args, **kwargs)

    monkeypatch.setattr(build, "build_model", seeded)
    out = str(tmp_path / "weights")
    path = export_shipped(ckpt, "tiny", trained_on="unit test", recipe={"epochs": 1},
                          metrics={"dice": 0.5}, directory=out)
    payload = torch.load(path, weights_only=False)
    stored_sam = [k for k in payload["state_dict"] if k.startswith("sam.")]
    assert stored_sam == ["sam.mask_decoder.iou_prediction_head.layers.0.bias"]
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    loaded, info = load_shipped("tiny", directory=out)
    assert info["trained_on"] == "unit test" and info["metrics"] == {"dice": 0.5}
    assert not loaded.training
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.eval()(images, [REPORT])["masks"]
        got = loaded(images, [REPORT])["masks"]
    assert float((got - expected).abs().max()) < 5e-2  # fp16 storage of the trained tensors
    assert ((got > 0) == (expected > 0)).float().mean() > 0.999


def test_bad_or_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shipped weights"):
        load_shipped("nothing", directory=str(tmp_path))
    torch.save({"format": "something else"}, shipped_path("odd", str(tmp_path)))
    with pytest.raises(CheckpointError, match="not a shipped"):
        load_shipped("odd", directory=str(tmp_path))


def test_the_default_is_only_offered_when_its_file_is_there():
    name = DEFAULT["litemedsam"]
    assert default_for("litemedsam") == (name if os.path.isfile(shipped_path(name)) else None)
    assert default_for("sam_tiny") is None


def test_the_shipped_note_says_what_the_weights_were_trained_on_and_not_for_clinical_use():
    from medseg_r.model.shipped import shipped_note

    line = shipped_note({"trained_on": "synthetic phantom chest radiographs (seed 0)"})
    assert "synthetic phantom chest radiographs (seed 0)" in line
    assert "not for clinical use" in line and line.count("synthetic") == 1
    assert "not for clinical use" in shipped_note({})


def test_restamping_replaces_the_stored_figures_and_keeps_the_weights(tmp_path):
    from medseg_r.model.shipped import restamp_metrics

    _, ckpt = _trained(tmp_path)
    out = str(tmp_path / "weights")
    path = export_shipped(ckpt, "tiny", trained_on="unit test", recipe={"epochs": 1},
                          metrics={"dice": 0.5}, directory=out)
    before = torch.load(path, weights_only=False)
    restamp_metrics("tiny", {"dice": 0.61, "test_split": "unit"}, directory=out)
    after = torch.load(path, weights_only=False)
    assert after["metrics"] == {"dice": 0.61, "test_split": "unit"}
    assert {k: v for k, v in after.items() if k not in ("metrics", "state_dict")} == \
        {k: v for k, v in before.items() if k not in ("metrics", "state_dict")}
    assert after["state_dict"].keys() == before["state_dict"].keys()
    assert all(torch.equal(after["state_dict"][k], v) for k, v in before["state_dict"].items())
    assert load_shipped("tiny", directory=out)[1]["metrics"]["dice"] == 0.61
    torch.save({"format": "something else"}, shipped_path("odd", out))
    with pytest.raises(CheckpointError, match="not a shipped"):
        restamp_metrics("odd", {"dice": 0.1}, directory=out)

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


def test_a_saved_checkpoint_is_as_readable_as_any_file_it_writes(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        save_model(build_model("sam_tiny", img_size=64), tmp_path / "m.ckpt")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "m.ckpt").st_mode) == 0o644  # not mkstemp's private 0600
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_medseg_checkpoint_for_another_backbone_is_an_error(tmp_path):
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny"), path)
    with pytest.raises(CheckpointError, match="trained on backbone 'sam_tiny', not 'litemedsam'"):
        build_model("litemedsam", checkpoint=str(path))
    # a backbone left out is the checkpoint's (it was refused as 'not litemedsam', the default name)
    assert build_model(checkpoint=str(path)).backbone_name == "sam_tiny"


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


def test_a_checkpoint_saved_before_the_injection_rework_loads_and_gives_the_same_masks(tmp_path):
    """Format version 1, as commit fece3f6 wrote it (hooks on the encoder, a decoder pre-hook): same keys,
    same options, and the same logits from the same weights (recorded with that code)."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("checkpoint_v1", Path(__file__).parent / "data" / "checkpoint_v1.py")
    v1 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(v1)

    record = json.load(open(v1.JSON))
    state = v1.weights({k: tuple(s) for k, s in record["shapes"].items()})
    payload = {"format": record["format"], "version": record["version"], "backbone": record["backbone"],
               "img_size": record["img_size"], "options": record["options"], "state_dict": state,
               "extra": {}}
    path = tmp_path / "v1.ckpt"
    torch.save(payload, path)
    model = load_model(path)
    assert model.training is False
    with torch.no_grad():
        out = model(v1.example_input(), record["reports"])
    masks = out["masks"]
    got = {f"{b},{y},{x}": float(masks[b, 0, y, x]) for b in range(2) for y, x in v1.PIXELS}
    for key, expected in record["logits"].items():
        assert got[key] == pytest.approx(expected, rel=1e-4, abs=1e-5), key
    assert [float(masks[b].mean()) for b in range(2)] == pytest.approx(record["logits_mean"], rel=1e-4)
    assert [float(v) for v in out["iou"][:, 0]] == pytest.approx(record["iou"], rel=1e-4)
    # the recorded figures depend on the prior paths: with the gates closed they are far from these
    closed = record["logits_mean_gates_closed"]
    assert all(abs(a - b) > 0.1 for a, b in zip(closed, record["logits_mean"]))


def test_files_that_are_not_checkpoints_say_what_they_are(tmp_path):
    import os

    import medseg_r

    shipped_file = os.path.join(os.path.dirname(medseg_r.__file__), "weights", "litemedsam_phantom_none.pt")
    with pytest.raises(CheckpointError, match="it is the shipped MedSeg-R weights .*--checkpoint.*load_any"):
        load_model(shipped_file)
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6.6"}, tmp_path / "best.ckpt")
    with pytest.raises(CheckpointError, match="Lightning training checkpoint .* model.ckpt"):
        load_model(tmp_path / "best.ckpt")
    torch.save({"model": {}}, tmp_path / "sam.pth")
    with pytest.raises(CheckpointError, match="use it as backbone weights instead"):
        load_model(tmp_path / "sam.pth")


def test_a_loaded_litemedsam_model_predicts_as_the_saved_one_without_calling_eval(tmp_path):
    # TinyViT keeps an eval-mode copy of its attention biases (a buffer that is not saved): the
    # loaded model must not keep the copy of its own random initialisation
    model = build_model("litemedsam", pretrained=False)
    with torch.no_grad():
        for name, p in model.sam.image_encoder.named_parameters():
            if name.endswith("attention_biases"):
                p.normal_()
    model.eval()
    path = tmp_path / "m.ckpt"
    save_model(model, path)
    images = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        expected = model.sam.image_encoder(images)
        for again in (load_model(path), build_model("litemedsam", checkpoint=str(path))):
            assert not again.training
            assert torch.allclose(again.sam.image_encoder(images), expected, atol=1e-5)


def test_a_path_without_a_file_ending_saves_and_a_folder_is_refused(tmp_path):
    model = build_model("sam_tiny", img_size=64)
    save_model(model, tmp_path / "mymodel")  # torch's zip writer names its archive after the file
    assert load_model(tmp_path / "mymodel").options == model.options
    with pytest.raises(ValueError, match="is a folder"):
        save_model(model, tmp_path)
    with pytest.raises(TypeError, match="saves a MedSeg-R model"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mymodel"]  # no partial file left


def test_a_model_wrapped_around_its_own_sam_loads_with_that_sam_given(tmp_path):
    from medseg_r import MedSegR

    wrapped = MedSegR.from_sam(build_model("sam_tiny", img_size=64).unwrap(), name="my_sam")
    with torch.no_grad():
        for g in wrapped.gates().values():
            g.normal_()
    path = tmp_path / "w.ckpt"
    save_model(wrapped, path)
    with pytest.raises(CheckpointError, match="load_model\\(path, sam=my_sam\\)"):
        load_model(path)
    again = load_model(path, sam=build_model("sam_tiny", img_size=64).unwrap())
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(wrapped(images, ["nodule in the RUL"])["masks"],
                           again(images, ["nodule in the RUL"])["masks"])
    with pytest.raises(CheckpointError, match="img_size 64"):
        load_model(path, sam=build_model("sam_tiny", img_size=128).unwrap())


def test_build_model_refuses_another_img_size_for_a_medseg_checkpoint(tmp_path):
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny", img_size=64), path)
    assert build_model("sam_tiny", checkpoint=str(path), img_size=64).img_size == 64
    with pytest.raises(ValueError, match="trained at img_size 64: leave img_size out"):
        build_model("sam_tiny", checkpoint=str(path), img_size=128)


def test_arguments_of_the_wrong_type_say_so():
    # pretrained="no" loaded the pretrained weights (a truthy string); checkpoint=123 was "not found: 123";
    # load_pretrained(None) failed in os.stat; parse_report(vocabulary="x") in a method call
    from medseg_r import load_pretrained, parse_report

    with pytest.raises(TypeError, match="pretrained must be True or False, got 'no'"):
        build_model("sam_tiny", img_size=64, pretrained="no")
    with pytest.raises(TypeError, match="checkpoint must be a path, got int"):
        build_model("sam_tiny", checkpoint=123)
    with pytest.raises(TypeError, match="shipped weights are named by text or a path"):
        load_pretrained(None)
    with pytest.raises(TypeError, match="vocabulary must be a Vocabulary"):
        parse_report("nodule", vocabulary="x")


@pytest.mark.parametrize("stored", [{"box_input": "image"}, {"box_match": True, "box_input": "image"},
                                    {"inject_at": ["neck", "neck"]}])
def test_a_checkpoint_of_an_earlier_version_with_options_that_did_nothing_still_loads(tmp_path, stored):
    # this version refuses these options when given; earlier ones stored them without effect
    path = tmp_path / "m.ckpt"
    save_model(build_model("sam_tiny", img_size=64, **({"inject_at": ["neck"]} if "inject_at" in stored else {})),
               path)
    payload = torch.load(path, weights_only=False)
    payload["options"].update(stored)
    torch.save(payload, path)
    model = load_model(str(path))
    assert model.config.box_input == "embedding" or "inject_at" in stored
    assert model.config.inject_at in (None, ("neck",))

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


def test_a_shared_decoder_is_stored_once_and_loaded_with_each_model(tmp_path, monkeypatch):
    import medseg_r.model.build as build
    from medseg_r.model.shipped import decoder_path

    original = build.build_model

    def seeded(*args, **kwargs):
        torch.manual_seed(0)
        return original(*args, **kwargs)

    monkeypatch.setattr(build, "build_model", seeded)
    out = str(tmp_path / "weights")
    models = {}
    for name, priors in (("tiny", "structured"), ("tiny_none", "none")):
        torch.manual_seed(0)
        model = build_model("sam_tiny", img_size=64, priors=priors)
        with torch.no_grad():
            for p in model.sam.mask_decoder.parameters():  # the same fine-tuned decoder
                p.add_(torch.full_like(p, 0.01))
            for gate in model.gates().values():
                gate.fill_(0.5)
        ckpt = str(tmp_path / f"{name}.ckpt")
        save_model(model, ckpt)
        path = export_shipped(ckpt, name, trained_on="unit test", recipe={}, metrics={},
                              directory=out, decoder="tiny_decoder")
        models[name] = model
        stored = torch.load(path, weights_only=False)
        assert stored["decoder"] == "tiny_decoder"
        assert not any(k.startswith("sam.mask_decoder.") for k in stored["state_dict"])
    part = torch.load(decoder_path("tiny_decoder", out), weights_only=False)["state_dict"]
    assert part and all(k.startswith("sam.mask_decoder.") for k in part)
    images = torch.rand(1, 3, 64, 64)
    for name, model in models.items():
        loaded, info = load_shipped(name, directory=out)
        assert info["decoder"] == "tiny_decoder"
        for key, value in loaded.sam.mask_decoder.state_dict().items():
            assert torch.allclose(value, model.sam.mask_decoder.state_dict()[key], atol=1e-3)
        with torch.no_grad():
            got, expected = loaded(images, [REPORT])["masks"], model.eval()(images, [REPORT])["masks"]
        assert ((got > 0) == (expected > 0)).float().mean() > 0.999
    assert sorted(os.listdir(out)) == ["decoders", "tiny.pt", "tiny_none.pt"]  # not a model file
    other = build_model("sam_tiny", img_size=64)  # seeded: the pretrained decoder ...
    with torch.no_grad():
        next(other.sam.mask_decoder.parameters()).add_(0.5)  # ... changed otherwise
    save_model(other, str(tmp_path / "other.ckpt"))
    with pytest.raises(ValueError, match="holds other weights"):
        export_shipped(str(tmp_path / "other.ckpt"), "other", trained_on="unit test", recipe={},
                       metrics={}, directory=out, decoder="tiny_decoder")
    os.remove(decoder_path("tiny_decoder", out))
    with pytest.raises(FileNotFoundError, match="tiny_decoder"):
        load_shipped("tiny", directory=out)


def test_a_file_that_names_a_decoder_is_version_2_and_unknown_versions_are_refused(tmp_path):
    out = str(tmp_path / "weights")
    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=64)
    with torch.no_grad():
        next(model.sam.mask_decoder.parameters()).add_(0.5)
    save_model(model, str(tmp_path / "m.ckpt"))
    plain = export_shipped(str(tmp_path / "m.ckpt"), "plain", trained_on="t", recipe={}, metrics={},
                           directory=out)
    shared = export_shipped(str(tmp_path / "m.ckpt"), "shared", trained_on="t", recipe={},
                            metrics={}, directory=out, decoder="d")
    assert torch.load(plain, weights_only=False)["version"] == 1
    assert torch.load(shared, weights_only=False)["version"] == 2
    payload = torch.load(shared, weights_only=False)
    payload["version"] = 3
    torch.save(payload, shipped_path("future", out))
    with pytest.raises(CheckpointError, match="version 3"):
        load_shipped("future", directory=out)


def test_a_shared_decoder_is_stored_as_int8_differences_that_restore_it_within_half_a_step(
        tmp_path, monkeypatch):
    import medseg_r.model.build as build
    from medseg_r.model.shipped import _decode_delta, _encode_delta, decoder_path

    torch.manual_seed(0)
    reference = torch.randn(8, 5, 3)
    value = reference + 0.01 * torch.randn(8, 5, 3)
    value[2] = reference[2]  # a row training left alone: scale 0, restored exactly
    encoded = _encode_delta(value, reference)
    assert encoded["q"].dtype == torch.int8 and encoded["q"].shape == value.shape
    assert encoded["scale"].shape == (8,) and encoded["scale"][2] == 0
    restored = _decode_delta(encoded, reference)
    step = encoded["scale"].view(8, 1, 1)
    assert ((restored - value).abs() <= step / 2 + 1e-7).all()
    assert torch.equal(restored[2], value[2])
    vector = _encode_delta(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.5]))  # one scale
    assert vector["scale"].shape == (1,)
    assert torch.allclose(_decode_delta(vector, torch.tensor([0.5, 2.5])), torch.tensor([1.0, 2.0]))

    original = build.build_model

    def seeded(*args, **kwargs):  # sam_tiny is random: the seed makes it the "pretrained" backbone
        torch.manual_seed(0)
        return original(*args, **kwargs)

    monkeypatch.setattr(build, "build_model", seeded)
    out = str(tmp_path / "weights")
    model = build.build_model("sam_tiny", img_size=64)
    with torch.no_grad():
        for p in model.sam.mask_decoder.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    save_model(model, str(tmp_path / "m.ckpt"))
    export_shipped(str(tmp_path / "m.ckpt"), "m", trained_on="t", recipe={}, metrics={},
                   directory=out, decoder="d")
    stored = torch.load(decoder_path("d", out), weights_only=False)
    assert stored["version"] == 2
    assert all(q.dtype == torch.int8 for q in stored["state_dict"].values())
    loaded, _ = load_shipped("m", directory=out)
    for key, value in model.sam.mask_decoder.state_dict().items():
        assert torch.allclose(loaded.sam.mask_decoder.state_dict()[key], value, atol=3e-5)
    stored["version"] = 3
    torch.save(stored, decoder_path("d", out))
    with pytest.raises(CheckpointError, match="shared-decoder version 3"):
        load_shipped("m", directory=out)


def test_a_decoder_file_keeps_integer_and_empty_tensors_exactly_and_refuses_another_reference(
        tmp_path):
    from medseg_r.model.shipped import _read_decoder, _write_decoder

    reference = {"w": torch.ones(3, 2), "steps": torch.tensor([1000, 3]), "empty": torch.zeros(3, 0)}
    state = {"w": torch.ones(3, 2) + 0.01, "steps": torch.tensor([1000, 7]), "empty": torch.zeros(3, 0)}
    out = str(tmp_path)
    _write_decoder("d", state, reference=reference, backbone="sam_tiny", trained_on="t", recipe={},
                   directory=out)
    held = _read_decoder("d", out, backbone="sam_tiny", reference=reference)
    assert torch.equal(held["steps"], state["steps"]) and held["empty"].shape == (3, 0)
    assert torch.allclose(held["w"], state["w"], atol=1e-6)
    other = {**reference, "w": torch.ones(3, 2) * 2}  # another "pretrained" decoder
    with pytest.raises(CheckpointError, match="another pretrained"):
        _read_decoder("d", out, backbone="sam_tiny", reference=other)
    with pytest.raises(CheckpointError, match="other shapes"):
        _read_decoder("d", out, backbone="sam_tiny", reference={**reference, "w": torch.ones(2, 3)})
    with pytest.raises(ValueError, match="cannot be compared"):  # written against another reference
        _write_decoder("d", state, reference=other, backbone="sam_tiny", trained_on="t", recipe={},
                       directory=out)


def test_a_version_1_decoder_file_is_read_as_it_is_and_checked_against_the_model(tmp_path):
    from medseg_r.model.shipped import DECODER_FORMAT, _read_decoder, decoder_path

    reference = {"w": torch.ones(3, 2)}
    path = decoder_path("old", str(tmp_path))
    os.makedirs(os.path.dirname(path))
    payload = {"format": DECODER_FORMAT, "version": 1, "backbone": "sam_tiny",
               "state_dict": {"w": torch.full((3, 2), 1.5).half()}}
    torch.save(payload, path)
    held = _read_decoder("old", str(tmp_path), backbone="sam_tiny", reference=reference)
    assert torch.equal(held["w"], torch.full((3, 2), 1.5).half())
    torch.save({**payload, "state_dict": {"w": torch.ones(3, 2), "extra": torch.ones(1)}}, path)
    with pytest.raises(CheckpointError, match="unknown \\['extra'\\]"):
        _read_decoder("old", str(tmp_path), backbone="sam_tiny", reference=reference)


def test_load_pretrained_gives_the_shipped_default_with_its_description(tmp_path, monkeypatch):
    import medseg_r

    model, ckpt = _trained(tmp_path)
    out = str(tmp_path / "weights")
    export_shipped(ckpt, "tiny", trained_on="unit test", recipe={"epochs": 1}, metrics={"dice": 0.5},
                   directory=out)
    loaded = medseg_r.load_pretrained("tiny", directory=out)
    assert not loaded.training and loaded.shipped_info["trained_on"] == "unit test"
    with pytest.raises(FileNotFoundError, match="no shipped weights 'nothing'"):
        medseg_r.load_pretrained("nothing", directory=out)


def test_the_shipped_default_segments_the_example_where_the_untrained_wrapper_gives_nothing():
    import medseg_r
    from medseg_r.example import EXAMPLE_REPORT, chest_like_image

    image, reference = chest_like_image()
    model = medseg_r.load_pretrained()
    assert "phantom" in model.shipped_info["trained_on"]
    mask = model.predict(image, EXAMPLE_REPORT)
    ref = reference > 0
    assert 2 * (mask & ref).sum() / (mask.sum() + ref.sum()) > 0.5


def test_load_any_takes_shipped_weights_by_name_or_by_a_copied_file_of_any_name(tmp_path):
    import shutil

    from medseg_r.model.shipped import HERE, is_shipped, load_any, shipped_names

    if "litemedsam_phantom_none" not in shipped_names():
        pytest.skip("the shipped phantom weights are not in this checkout")
    by_name, info = load_any("litemedsam_phantom_none")
    assert info["name"] == "litemedsam_phantom_none"
    lone = tmp_path / "lone" / "copy.weights"  # no decoders/ beside it
    lone.parent.mkdir()
    shutil.copy(shipped_path("litemedsam_phantom_none"), lone)
    assert is_shipped(lone) and is_shipped("litemedsam_phantom_none")
    with pytest.raises(CheckpointError, match="copy the decoders/ folder"):
        load_any(lone)
    shutil.copytree(os.path.join(HERE, "decoders"), lone.parent / "decoders")
    again, _ = load_any(lone)
    ours, theirs = by_name.state_dict(), again.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with pytest.raises(CheckpointError, match="weights for backbone 'litemedsam', not 'sam_tiny'"):
        load_any("litemedsam_phantom_none", expect_backbone="sam_tiny")
    save_model(build_model("sam_tiny", img_size=64), tmp_path / "m.pt")  # a checkpoint ending in .pt
    assert not is_shipped(tmp_path / "m.pt") and load_any(tmp_path / "m.pt")[1] is None
    assert not is_shipped(tmp_path / "not_there") and not is_shipped(tmp_path)

from collections import Counter

import numpy as np
import pytest
import torch

from medseg_r import MedSegR, Report, build_model, parse_report
from medseg_r.perception import DeformableSampling, DynamicConv, SpatialAttention
from medseg_r.model.decoder_prompts import TextTokenPrompt


def test_forward_contract_any_input_size(tiny_model_factory):
    model = tiny_model_factory()
    images = torch.rand(2, 3, 180, 240)
    reports = ["round nodule in the right upper lobe", parse_report("No focal opacity.")]
    with torch.no_grad():
        out = model(images, reports)
        single = [model(images[i:i + 1], [reports[i]]) for i in range(2)]
    assert out["masks"].shape == (2, 1, 180, 240) and out["iou"].shape == (2, 1)
    for key in ("masks", "iou", "attention"):  # a batch gives what each image gives alone
        assert torch.allclose(out[key], torch.cat([s[key] for s in single]), atol=1e-5), key
    att = out["attention"][0, 0]
    assert att.shape == (180, 240)
    # untrained, the attention follows the location map: the patient's right upper lung field is the
    # image's upper left (radiological convention)
    assert att[10:60, 20:100].mean() > att[10:60, 140:220].mean() + 0.3
    assert att[10:60, 20:100].mean() > att[130:170, 20:100].mean() + 0.3
    # nothing positive in the second report: no spatial preference inside the image
    assert float(out["attention"][1].max() - out["attention"][1].min()) < 0.2


def test_predict_returns_the_thresholded_logits_for_numpy_images(tiny_model_factory):
    from medseg_r.io import image_to_tensor

    model = tiny_model_factory()
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.5)
    for image in (np.random.randint(0, 255, (90, 120), dtype=np.uint8),
                  np.random.rand(64, 64, 3).astype(np.float32),
                  np.random.randint(0, 4000, (50, 70), dtype=np.uint16)):
        mask = model.predict(image, "hypodense lesion in the left lobe")
        with torch.no_grad():
            logits = model(image_to_tensor(image), ["hypodense lesion in the left lobe"])["masks"][0, 0]
        assert mask.dtype == bool and np.array_equal(mask, (logits > 0).numpy())


@pytest.mark.parametrize("bad", [torch.rand(3, 64, 64), torch.rand(1, 1, 64, 64), torch.zeros(1, 3, 8, 8, dtype=torch.long)])
def test_bad_images_are_value_errors(tiny_model_factory, bad):
    with pytest.raises(ValueError, match="images must be"):
        tiny_model_factory()(bad, ["nodule"])


def test_report_count_must_match_batch(tiny_model_factory):
    with pytest.raises(ValueError, match="2 report"):
        tiny_model_factory()(torch.rand(1, 3, 64, 64), ["a", "b"])


def test_predict_rejects_nan_image(tiny_model_factory):
    img = np.random.rand(32, 32).astype(np.float32)
    img[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_model_factory().predict(img, "nodule")


@pytest.mark.parametrize("call, match", [
    (lambda m, x: m(x * float("nan"), ["nodule"]), "images contain NaN or infinite values"),
    # 0-255 pixels as floats ran, 255 times too bright (and negative values too)
    (lambda m, x: m(x * 255, ["nodule"]), r"images must be intensities in \[0, 1\], got values from"),
    (lambda m, x: m(x - 5, ["nodule"]), r"images must be intensities in \[0, 1\]"),
    (lambda m, x: m(x, None), "reports must be a string, a Report or a list"),
    (lambda m, x: m(x, ["nodule"], boxes=torch.tensor([[float("nan")] * 4])), "boxes contain NaN"),
    (lambda m, x: m(x, ["nodule"], boxes=torch.rand(2, 4)), r"boxes must be a tensor \[1, 4\]"),
    (lambda m, x: m(x, ["nodule"], boxes=torch.tensor([[50.0, 50, 10, 10]])), "x1 >= x0"),
    (lambda m, x: m(x, ["nodule"], points=(torch.rand(1, 2, 2), torch.ones(2))), "points must be"),
    # accepted before, unlike predict's box, and a label 5 had no effect
    (lambda m, x: m(x, ["nodule"], boxes=torch.tensor([[300.0, 400, 500, 600]])), "outside the 64 x 64 image"),
    (lambda m, x: m(x, ["nodule"], points=(torch.rand(1, 1, 2), torch.tensor([[5]]))),
     r"point labels must be 1 \(include\), 0 \(exclude\) or -1"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", box=[1, 2, 3]), "box must be four numbers"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", threshold=float("nan")), "finite logit"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", threshold="0.5"), "threshold must be"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", threshold=None), "threshold must be"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", box=5), "box must be four numbers"),
    (lambda m, x: m.predict(np.zeros((64, 64)), "nodule", box="0 0 10 10"), "box must be four"),
    (lambda m, x: m.predict(np.zeros((40, 60)), "nodule", box=(500, 500, 600, 600)),
     "outside the 60 x 40 image"),
    (lambda m, x: m.predict(np.zeros((40, 60)), "nodule", box=(60, 10, 70, 20)),
     "outside the 60 x 40 image"),  # touching the edge is no overlap
    (lambda m, x: m.predict(np.zeros((64, 64), np.complex64), "nodule"), "real numbers"),
])
def test_bad_inputs_and_prompts_are_value_errors_not_nan_masks(tiny_model_factory, call, match):
    model = tiny_model_factory().eval()
    with pytest.raises(ValueError, match=match):
        call(model, torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize("cast", ["half", "bfloat16", "double"])
def test_a_model_cast_to_another_dtype_is_told_to_use_autocast(tiny_model_factory, cast):
    # it failed deep inside the prior encoder ("expected m1 and m2 to have the same dtype")
    model = getattr(tiny_model_factory().eval(), cast)()
    with pytest.raises(ValueError, match="weights must stay float32.*torch.autocast"):
        model.predict(np.full((64, 64), 100, np.uint8), "nodule")


def test_a_reference_box_on_the_first_column_is_not_outside_the_image():
    # validation with reference boxes: a 1 px wide lesion in column 0 gives the box (0, y0, 0, y1)
    from medseg_r.model.inputs import check_prompts

    check_prompts(torch.tensor([[0.0, 10, 0, 19], [63.0, 0, 63, 5]]), None, 2, shape=(64, 64))
    with pytest.raises(ValueError, match="outside the 64 x 64 image"):
        check_prompts(torch.tensor([[0.0, 70, 5, 80]]), None, 1, shape=(64, 64))


def test_float64_images_give_what_float32_images_give(tiny_model_factory):
    model = tiny_model_factory().eval()
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(x, ["nodule"])["masks"], model(x.float(), ["nodule"])["masks"])


@pytest.mark.parametrize("box", [torch.tensor([1.0, 2.0, 30.0, 40.0]), np.array([1, 2, 30, 40]),
                                 (np.float32(1), np.float64(2), np.int64(30), 40)])
def test_a_box_may_be_a_tensor_an_array_or_numpy_numbers(tiny_model_factory, box):
    model = tiny_model_factory().eval()
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    expected = model.predict(image, "nodule", box=(1.0, 2.0, 30.0, 40.0))
    assert np.array_equal(model.predict(image, "nodule", box=box), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_on_a_cpu_are_read_as_float32(tiny_model_factory, dtype):
    model = tiny_model_factory().eval()
    x = torch.rand(1, 3, 64, 64).to(dtype)
    with torch.no_grad():
        assert torch.equal(model(x, ["nodule"])["masks"], model(x.float(), ["nodule"])["masks"])


def test_predict_gives_an_empty_mask_for_an_all_negative_report_as_the_command_line_does(
        tiny_model_factory):
    model = tiny_model_factory().eval()
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    assert model.predict(image, "nodule", threshold=-20.0).any()  # the model runs: it marks pixels
    for report in ("No nodule. No effusion.", "The lungs are clear.", parse_report("No mass.")):
        mask = model.predict(image, report, threshold=-20.0, box=(10, 10, 40, 40))
        assert mask.shape == (64, 64) and not mask.any()


@pytest.mark.parametrize("kwargs, match", [
    ({"prior_dim": "192"}, "prior_dim must be a whole number"),  # a config file's string
    ({"box_threshold": "0.3"}, "box_threshold must be a finite number"),
    ({"spatial_attention": "no"}, "spatial_attention must be true or false"),
    ({"module_grid": 3.5}, "module_grid must be a whole number"),
    ({"inject_at": "neck"}, "inject_at must be a list of site names"),
    ({"inject_at": 5}, "inject_at must be a list of site names"),
    ({"fusion_depth": -1}, "fusion_depth and max_findings must be >= 1"),
    ({"img_size": "256"}, "img_size must be a whole number of pixels"),
    ({"img_size": 0}, "img_size must be a whole number of pixels"),
    ({"prior_dim": 190}, "prior_dim must be a multiple of 4"),
    ({"bottleneck": 3}, "bottleneck must be a multiple of 4"),
    # accepted before (a bad decoder_prior was even stored in checkpoints), or named an inner value
    ({"priors": "none", "matched_capacity": False, "decoder_prior": "bogus"}, "decoder_prior must be one of"),
    ({"inject_at": ["neck", "neck"]}, "inject_at names a site twice"),
    ({"box_match": True, "box_input": "image"}, "need report_box=True"),
    ({"box_input": "image"}, "need report_box=True"),
    ({"img_size": 40, "report_box": True, "box_input": "image"}, "needs img_size of a multiple of 16"),
    ({"module_grid": 0}, "module_grid must be positive, got 0"),
    ({"box_stem": -1}, "box_stem must be >= 0, got -1"),
])
def test_option_types_are_checked_when_the_model_is_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model("sam_tiny", **kwargs)


@pytest.mark.parametrize("kwargs", [{"bottleneck": 6, "deformable": False},
                                    {"bottleneck": 6, "prior_dim": 66, "priors": "none",
                                     "matched_capacity": False}])
def test_widths_that_no_module_divides_are_allowed(kwargs):
    # the multiple-of-4 checks apply only where the fusion or deformable sampling is built
    build_model("sam_tiny", img_size=64, **kwargs)


def test_numpy_scalars_and_report_series_are_taken_as_python_ones():
    assert build_model("sam_tiny", img_size=np.int64(64)).img_size == 64
    model = build_model("sam_tiny", img_size=64, prior_dim=np.int64(64), box_threshold=np.float32(0.3),
                        spatial_attention=np.bool_(True))
    assert model.config.prior_dim == 64
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64), (r for r in ["nodule", "mass"]))  # any iterable of reports
    assert out["masks"].shape[0] == 2


@pytest.mark.parametrize("kwargs, match", [({"priors": "words"}, "priors must be"), ({"freeze": "all"}, "freeze must"),
                                           ({"decoder_prior": "x"}, "decoder_prior"),
                                           ({"inject_at": ["blocks.99"]}, "unknown injection site"),
                                           ({"orientation": "upside"}, "orientation")])
def test_bad_options_are_value_errors(tiny_model_factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model_factory(**kwargs)


def _calls(model, images, reports):
    seen = Counter()
    hooks = [m.register_forward_hook(lambda mod, i, o: seen.update([type(mod).__name__]))
             for m in model.modules() if isinstance(m, (SpatialAttention, DynamicConv, DeformableSampling, TextTokenPrompt))]
    with torch.no_grad():
        model(images, reports)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("options, expected", [
    ({}, {"SpatialAttention": 3, "DynamicConv": 3, "DeformableSampling": 3}),
    ({"spatial_attention": False}, {"DynamicConv": 3, "DeformableSampling": 3}),
    ({"dynamic_conv": False}, {"SpatialAttention": 3, "DeformableSampling": 3}),
    ({"deformable": False}, {"SpatialAttention": 3, "DynamicConv": 3}),
    ({"inject_at": ["patch_embed"]}, {"SpatialAttention": 1, "DynamicConv": 1, "DeformableSampling": 1}),
    # capacity-matched baselines run the same modules, fed a constant or the report text
    ({"priors": "none"}, {"SpatialAttention": 3, "DynamicConv": 3, "DeformableSampling": 3}),
    ({"priors": "text_token"}, {"SpatialAttention": 3, "DynamicConv": 3, "DeformableSampling": 3}),
    # the bare baselines of format-1 checkpoints
    ({"priors": "none", "matched_capacity": False}, {}),
    ({"priors": "text_token", "matched_capacity": False}, {"TextTokenPrompt": 1}),
])
def test_each_ablation_switch_changes_which_modules_run(tiny_model_factory, options, expected):
    model = tiny_model_factory(**options)
    assert dict(_calls(model, torch.rand(1, 3, 64, 64), ["round nodule, right upper lobe"])) == expected


def test_location_map_switch(tiny_model_factory):
    with_map = tiny_model_factory()
    without = tiny_model_factory(location_map=False)
    out = without(torch.rand(1, 3, 64, 64), ["nodule right upper lobe"])
    assert out["location_map"] is None
    assert with_map(torch.rand(1, 3, 64, 64), ["nodule right upper lobe"])["location_map"] is not None
    assert not any(m.use_map for m in without.modules() if isinstance(m, SpatialAttention))


@pytest.mark.parametrize("mode, gates", [("both", {"dense_gate", "token_gate"}), ("dense", {"dense_gate"}),
                                         ("token", {"token_gate"}), ("extra_token", {"extra_token_gate"}),
                                         ("none", set())])
def test_decoder_prior_modes(tiny_model_factory, mode, gates):
    model = tiny_model_factory(decoder_prior=mode, spatial_attention=False, dynamic_conv=False, deformable=False)
    found = {n.split(".")[-1]: g for n, g in model.gates().items() if n.startswith("decoder_prompts")}
    assert set(found) == gates
    image, report = torch.rand(1, 3, 64, 64), ["nodule in the right upper lobe"]
    with torch.no_grad():
        closed = model(image, report)["masks"]
        plain = model(image, [""])["masks"]
        assert torch.equal(closed, plain)  # zero gates: the report has no effect yet
        for gate in found.values():
            gate.fill_(0.5)
        opened = model(image, report)["masks"]
    if gates:  # each decoder path, once open, changes the masks
        assert (opened - closed).abs().max() > 1e-3
    else:
        assert torch.equal(opened, closed)


def test_bare_baselines_have_no_prior_modules(tiny_model_factory):
    none = tiny_model_factory(priors="none", matched_capacity=False)
    assert none.parameter_summary()["added"] == 0
    text = tiny_model_factory(priors="text_token", matched_capacity=False)
    assert len(text.perception) == 0 and text.gates() == {}
    added = text.parameter_summary()["added"]
    assert added == sum(p.numel() for p in text.text_prompt.parameters())


def test_freezing_reports_trainable_parameters(tiny_model_factory):
    frozen = tiny_model_factory(freeze="image_encoder").parameter_summary()
    backbone_only = tiny_model_factory(freeze="backbone").parameter_summary()
    everything = tiny_model_factory(freeze="none").parameter_summary()
    assert everything["trainable"] == everything["total"]
    assert backbone_only["trainable"] == backbone_only["added"]
    assert backbone_only["trainable"] < frozen["trainable"] < everything["trainable"]
    model = tiny_model_factory(freeze="image_encoder")
    assert not any(p.requires_grad for p in model.sam.image_encoder.parameters())
    assert all(p.requires_grad for p in model.perception.parameters())


def test_outputs_depend_on_the_report_after_training(tiny_model_factory):
    """Priors are really wired in: after a few steps, the same image gives different masks for two reports
    whose targets are in opposite halves of the image."""
    model = tiny_model_factory()
    image = torch.rand(1, 3, 64, 64)
    left_half = torch.zeros(1, 1, 64, 64)
    left_half[..., :32] = 1.0
    reports = ["round nodule in the left upper lobe", "round nodule in the right upper lobe"]
    targets = [1.0 - left_half, left_half]  # radiological: patient's left is on the image's right
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    with torch.no_grad():
        before = [model(image, [r])["masks"] for r in reports]
    assert (before[0] - before[1]).abs().max() < 1e-5  # zero gates: the report cannot matter yet
    for _ in range(12):
        for report, target in zip(reports, targets):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(image, [report])["masks"], target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        after = [model(image, [r])["masks"] for r in reports]
    assert (after[0] - after[1]).abs().mean() > 0.1
    right_of_image = (after[0][..., 32:].mean() - after[0][..., :32].mean()).item()
    assert right_of_image > 0  # "left" lung lesion is predicted on the image's right
    assert any(float(g.detach().abs().max()) > 0 for g in model.gates().values())


def test_from_sam_rejects_non_sam_modules():
    with pytest.raises(ValueError, match="image_encoder"):
        MedSegR.from_sam(torch.nn.Linear(2, 2))


def test_from_sam_checks_the_normalisation():
    sam = build_model("sam_tiny", img_size=64).unwrap()
    with pytest.raises(ValueError, match="normalize must be 'sam' or 'unit'"):
        MedSegR.from_sam(sam, normalize="xyz")
    del sam.pixel_mean
    with pytest.raises(ValueError, match="needs the model's pixel_mean"):
        MedSegR.from_sam(sam, normalize="sam")


def test_report_objects_and_strings_give_the_same_output(tiny_model_factory):
    model = tiny_model_factory().eval()
    images = torch.rand(1, 3, 64, 64)
    text = "spiculated mass in the left lower lobe"
    with torch.no_grad():
        a = model(images, [text])["masks"]
        b = model(images, [Report.from_dict(parse_report(text).to_dict())])["masks"]
    assert torch.equal(a, b)


def test_a_frozen_image_encoder_stays_in_eval_mode_when_training():
    model = build_model("litemedsam", freeze="image_encoder", pretrained=False)
    model.train()
    assert model.training and model.sam.mask_decoder.training and model.perception.training
    assert not any(m.training for m in model.sam.image_encoder.modules())
    before = {k: v.clone() for k, v in model.sam.image_encoder.state_dict().items() if "running" in k}
    assert before  # TinyViT has batch norms
    model(torch.rand(2, 3, 256, 256), ["nodule in the right upper lobe"] * 2)
    after = model.sam.image_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # pretrained statistics kept
    unfrozen = build_model("litemedsam", freeze="none", pretrained=False).train()
    assert all(m.training for m in unfrozen.sam.image_encoder.modules())


def test_matched_baselines_read_only_what_their_source_gives(tiny_model_factory):
    """``none`` ignores the report entirely; ``text_token`` reads the words but gets no parsed
    location (a flat map)."""
    images = torch.rand(1, 3, 64, 64)
    none = tiny_model_factory(priors="none")
    text = tiny_model_factory(priors="text_token")
    with torch.no_grad():
        for model in (none, text):
            for gate in model.gates().values():
                gate.fill_(0.5)
        a = none(images, ["nodule in the right upper lobe"])
        b = none(images, ["mass in the left lower lobe"])
        assert torch.equal(a["masks"], b["masks"])
        c = text(images, ["nodule in the right upper lobe"])
        d = text(images, ["mass in the left lower lobe"])
        assert (c["masks"] - d["masks"]).abs().max() > 1e-4
        assert torch.equal(c["location_map"], torch.full_like(c["location_map"], 0.5))

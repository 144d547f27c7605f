"""The web app's caches change nothing: the split forward and both caches give exactly the tensors
of MedSegR.forward, and predict_case writes byte-identical masks through either predictor."""

import numpy as np
import pytest
import torch
from PIL import Image

from medseg_r import build_model
from medseg_r.inference import PredictOptions, Predictor, predict_case
from medseg_r.serve.engine import LRU, PrefixCache, SessionPredictor, decode_stage, encode_stage

from .conftest import noise_png

REPORTS = [
    "A 2 cm round dense nodule in the right upper lobe.",
    "Patchy opacity in the left lower zone.",
]
BOX = torch.tensor([[20.0, 30.0, 110.0, 100.0]])
POINTS = (torch.tensor([[[40.0, 50.0], [90.0, 80.0]]]), torch.tensor([[1, 0]]))


def _model(**options):
    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=96, **options)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.3)
    return model


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"inject_at": ["neck"]},
        {"inject_at": ["blocks.2"]},
        {"report_box": True},
        {"decoder_prior": "extra_token"},
        {"priors": "text_token"},
        {"priors": "none"},
    ],
)
def test_split_forward_with_caches_equals_forward(options):
    model = _model(**options)
    images = torch.rand(1, 3, 150, 120)
    prefix = PrefixCache()
    for report, boxes, points in [
        (REPORTS[0], None, None),
        (REPORTS[1], BOX, None),
        (REPORTS[0], None, POINTS),
    ]:
        with torch.no_grad():
            expected = model(images, [report], boxes=boxes, points=points)
            got = decode_stage(
                model, encode_stage(model, images, [report], prefix), boxes=boxes, points=points
            )
        assert torch.equal(got["masks"], expected["masks"]) and torch.equal(
            got["iou"], expected["iou"]
        )
        if expected["attention"] is None:
            assert got["attention"] is None
        else:
            assert torch.equal(got["attention"], expected["attention"])
    assert prefix.misses == 1 and prefix.hits == 2  # one image: its prefix is computed once


def test_a_changed_image_misses_the_prefix_cache():
    model, prefix = _model(), PrefixCache()
    images = torch.rand(1, 3, 128, 128)
    other = images.clone()
    other[0, 0, 3, 3] += 0.25
    encode_stage(model, images, REPORTS[:1], prefix)
    encode_stage(model, other, REPORTS[:1], prefix)
    encode_stage(model, images, REPORTS[1:], prefix)
    assert (prefix.misses, prefix.hits) == (2, 1)


def test_lru_bounds_entries_and_bytes():
    store = LRU(max_entries=2, max_bytes=100)
    store.put("a", 1, 40)
    store.put("b", 2, 40)
    store.put("c", 3, 40)  # over both bounds: "a" goes
    assert store.get("a") is None and store.get("b") == 2 and len(store) == 2
    store.put("big", 4, 101)  # larger than the whole store: not kept
    assert store.get("big") is None and store.get("c") == 3


@pytest.mark.parametrize("max_side", [2048, 64])  # 64: the input is downscaled for the model
def test_predict_case_writes_identical_files_through_the_session_predictor(
    tmp_path, serve_model, max_side
):
    image = noise_png(tmp_path / "case.png", seed=3, size=100)
    plain = Predictor(serve_model, device="cpu", max_side=max_side)
    session = SessionPredictor(serve_model, device="cpu", max_side=max_side)
    prefix, memo = PrefixCache(), LRU(4, 2**30)
    for i, (report, box) in enumerate(
        [
            (REPORTS[0], None),
            (REPORTS[0], (10.0, 12.0, 60.0, 70.0)),
            (REPORTS[1], (10.0, 12.0, 60.0, 70.0)),
            (REPORTS[0], None),
        ]
    ):
        options = PredictOptions(box=box, progress=False)
        predict_case(plain, image, report, str(tmp_path / f"plain{i}"), options=options)
        call = session.for_call(prefix=prefix, memo=memo)
        predict_case(call, image, report, str(tmp_path / f"served{i}"), options=options)
        with (
            open(tmp_path / f"plain{i}" / "case_mask.png", "rb") as a,
            open(tmp_path / f"served{i}" / "case_mask.png", "rb") as b,
        ):
            assert a.read() == b.read()
        assert call.last is not None and call.last.prob.shape == (100, 100)
        assert call.encoder_runs == (
            0 if i in (1, 3) else 1
        )  # box change and the repeat: decoder only
    assert memo.hits == 2 and prefix.hits == 1  # the new report reused the prefix of the same image


def test_points_reach_the_model_scaled_like_boxes(tmp_path, serve_model):
    from medseg_r.io.images import image_to_tensor
    from medseg_r.report import parse_report

    pixels = np.asarray(Image.open(noise_png(tmp_path / "p.png", 5, 96)))
    predictor = SessionPredictor(serve_model, device="cpu", max_side=64)  # scale 2/3
    call = predictor.for_call(prefix=None, memo=None, points=[(30.0, 45.0, 1), (60.0, 15.0, 0)])
    got = call.predict_image(pixels, parse_report(REPORTS[0])).prob
    small = torch.nn.functional.interpolate(
        image_to_tensor(pixels), size=(64, 64), mode="bilinear", align_corners=False, antialias=True
    )
    points = (torch.tensor([[[20.0, 30.0], [40.0, 10.0]]]), torch.tensor([[1, 0]]))
    with torch.no_grad():
        logits = serve_model(small, [REPORTS[0]], points=points)["masks"][:, :1]
    logits = torch.nn.functional.interpolate(
        logits, size=(96, 96), mode="bilinear", align_corners=False
    )
    assert np.array_equal(got, torch.sigmoid(logits[0, 0]).numpy())
    plain = (
        Predictor(serve_model, device="cpu", max_side=64)
        .predict_image(pixels, parse_report(REPORTS[0]))
        .prob
    )
    assert not np.array_equal(got, plain)  # the points changed the answer

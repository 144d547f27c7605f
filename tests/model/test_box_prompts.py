"""Report -> box prompts: the head's boxes, its training targets and losses, and decoding with them."""

import torch

from medseg_r import build_model
from medseg_r.model.box_prompts import box_map_loss, boxes_from_map, map_target

REPORT = ["round nodule in the right upper lobe"]


def test_a_new_box_head_predicts_no_box_so_the_model_is_the_plain_sam():
    torch.manual_seed(0)
    with_head = build_model("sam_tiny", img_size=128, report_box=True)
    plain = build_model("sam_tiny", img_size=128, report_box=False)
    plain.load_state_dict({k: v for k, v in with_head.state_dict().items() if not k.startswith("box_head.")})
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a = with_head(images, REPORT * 2)
        b = plain(images, REPORT * 2)
    assert [len(x) for x in a["boxes"]] == [0, 0]
    assert torch.allclose(torch.sigmoid(a["box_map"]), torch.full_like(a["box_map"], 0.01))
    assert torch.equal(a["masks"], b["masks"])


def test_boxes_from_map_reads_regions():
    logits = torch.full((1, 1, 16, 16), -10.0)
    logits[0, 0, 4:6, 6:9] = 3.0  # rows 4-5, columns 6-8: a 3 x 2 cell region
    logits[0, 0, 12, 2] = 1.0  # a one-cell region, weaker
    boxes = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4)[0]
    # cells are 4 px; one cell of margin around each region; the stronger region first
    assert torch.allclose(boxes[0], torch.tensor([20.0, 12.0, 40.0, 28.0]))
    assert torch.allclose(boxes[1], torch.tensor([4.0, 44.0, 16.0, 56.0]))
    assert len(boxes_from_map(logits, canvas=64, threshold=0.9, max_boxes=4)[0]) == 1
    assert len(boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=1)[0]) == 1
    empty = boxes_from_map(torch.full((1, 1, 8, 8), -5.0), canvas=64, threshold=0.5, max_boxes=4)[0]
    assert empty.shape == (0, 4)


def test_map_target_keeps_small_lesions():
    masks = torch.zeros(1, 1, 64, 64)
    masks[0, 0, 9, 41] = 1  # one pixel
    masks[0, 0, 40:48, 4:12] = 1
    target = map_target(masks, (16, 16))
    assert target[0, 0, 2, 10] == 1 and target[0, 0, 10:12, 1:3].sum() == 4 and target.sum() == 5


def test_box_map_loss_is_lower_for_the_right_answer():
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0, 8:16, 40:48] = 1
    target = map_target(masks, (16, 16))
    right = torch.where(target == 1, 12.0, -12.0)
    wrong = torch.roll(right, shifts=5, dims=-1)
    good, bad = float(box_map_loss(right, masks)), float(box_map_loss(wrong, masks))
    assert good < 0.01 and bad > 1.0


def test_decoding_with_a_predicted_box_is_decoding_with_that_box():
    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=128, report_box=True, spatial_attention=False,
                        dynamic_conv=False, deformable=False, decoder_prior="none")
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert model(image, REPORT, decode_masks=False)["boxes"][0].shape == (0, 4)
        hook = model.box_head.register_forward_hook(lambda m, i, o: _region(o))
        out = model(image, REPORT)
        hook.remove()
        (box,) = out["boxes"][0]
        assert torch.allclose(box, torch.tensor([24.0, 32.0, 56.0, 56.0]))  # cells of 8 px
        given = model(image, REPORT, boxes=box[None])
    assert torch.equal(out["masks"], given["masks"])


def _region(logits):
    out = torch.full_like(logits, -20.0)
    out[..., 5:6, 4:6] = 5.0  # row 5, columns 4-5
    return out


def test_matched_baselines_have_the_same_parameters_as_medseg_r():
    counts = {}
    for priors in ("structured", "none", "text_token"):
        model = build_model("sam_tiny", img_size=128, priors=priors, report_box=True)
        counts[priors] = model.parameter_summary()
        assert model.perception and model.box_head is not None
    assert counts["none"] == counts["structured"] == counts["text_token"]
    bare = build_model("sam_tiny", img_size=128, priors="none", matched_capacity=False)
    assert bare.parameter_summary()["added"] == 0


def test_fallback_takes_the_peak_when_the_report_names_a_lesion():
    logits = torch.full((2, 1, 8, 8), -6.0)
    logits[:, 0, 2, 5] = -2.0  # a weak peak (p 0.12): below the threshold of 0.3
    logits[:, 0, 6, 1] = -4.0  # weaker still (p 0.018)
    plain = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4)
    assert [len(b) for b in plain] == [0, 0]
    named = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4, at_least=[1, 0],
                           fallback=0.5)
    assert len(named[0]) == 1 and len(named[1]) == 0  # no finding named: no box
    assert named[0][0].tolist() == [32.0, 8.0, 56.0, 32.0]  # the peak's cell (5, 2) plus a margin
    two = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4, at_least=[2, 2], fallback=0.1)
    assert [len(b) for b in two] == [2, 2]
    off = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4, at_least=[1, 1], fallback=0.0)
    assert [len(b) for b in off] == [0, 0]


def test_fallback_never_boxes_a_flat_map():
    flat = torch.full((1, 1, 8, 8), -4.6)  # the head at initialisation: p 0.01 everywhere
    assert len(boxes_from_map(flat, canvas=64, threshold=0.3, max_boxes=4, at_least=[1],
                              fallback=0.5)[0]) == 0

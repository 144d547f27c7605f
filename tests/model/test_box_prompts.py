"""Report -> box prompts: the head's boxes, its training targets and losses, and decoding with them."""

import pytest
import torch

from medseg_r import build_model, parse_report
from medseg_r.model.box_prompts import BoxHead, box_map_loss, boxes_from_map, map_target

REPORT = ["round nodule in the right upper lobe"]


def _maps(where=None, extent=None, grid=16):
    """Head logits [1, 2, grid, grid] from cell -> value dicts (else a low constant)."""
    logits = torch.full((1, 2, grid, grid), -10.0)
    for channel, cells in ((0, where or {}), (1, extent or {})):
        for (r, c), value in cells.items():
            logits[0, channel, r, c] = value
    return logits


def test_a_new_box_head_predicts_no_box_so_the_model_is_the_plain_sam():
    torch.manual_seed(0)
    for priors in ("structured", "none"):
        with_head = build_model("sam_tiny", img_size=128, report_box=True, priors=priors)
        plain = build_model("sam_tiny", img_size=128, report_box=False, priors=priors)
        plain.load_state_dict({k: v for k, v in with_head.state_dict().items()
                               if not k.startswith("box_head.")})
        images = torch.rand(2, 3, 128, 128)
        with torch.no_grad():
            a = with_head(images, REPORT * 2)
            b = plain(images, REPORT * 2)
        assert [len(x) for x in a["boxes"]] == [0, 0]
        assert torch.allclose(torch.sigmoid(a["box_map"][:, 1]), torch.full((2, 16, 16), 0.01))
        assert torch.equal(a["masks"], b["masks"])


def test_reader_less_models_box_every_extent_region_above_the_threshold():
    extent = {(4, 6): 3.0, (4, 7): 3.0, (4, 8): 3.0, (5, 6): 3.0, (5, 7): 3.0, (5, 8): 3.0,
              (12, 2): 1.0}
    logits = _maps(extent=extent)
    boxes = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4)[0]
    # cells are 4 px; one cell of margin around each region; the stronger region first
    assert torch.allclose(boxes[0], torch.tensor([20.0, 12.0, 40.0, 28.0]))
    assert torch.allclose(boxes[1], torch.tensor([4.0, 44.0, 16.0, 56.0]))
    assert len(boxes_from_map(logits, canvas=64, threshold=0.9, max_boxes=4)[0]) == 1
    assert len(boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=1)[0]) == 1
    empty = boxes_from_map(_maps(), canvas=64, threshold=0.5, max_boxes=4)[0]
    assert empty.shape == (0, 4)


def test_each_finding_takes_the_peak_inside_its_own_location_prior():
    # two candidate lesions: a strong one on the left of the grid, a weaker one on the right
    where = {(3, 2): 6.0, (10, 12): 4.0}
    extent = {(3, 2): 2.0, (3, 3): 2.0, (10, 12): 2.0, (11, 12): 2.0}
    logits = _maps(where, extent)
    right_half = torch.zeros(1, 16, 16)
    right_half[0, :, 8:] = 1.0
    (box,) = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4,
                            findings=[(right_half, [1])])[0]
    assert box.tolist() == [44.0, 36.0, 56.0, 52.0]  # rows 10-11, column 12, one cell of margin
    anywhere = torch.ones(1, 16, 16)
    (box,) = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4,
                            findings=[(anywhere, [1])])[0]
    assert box.tolist() == [4.0, 8.0, 20.0, 20.0]  # the stronger peak, rows 3, columns 2-3
    # two findings (or "two nodules") take two different lesions, never the same cells twice
    two = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4,
                         findings=[(torch.ones(2, 16, 16), [1, 1])])[0]
    counted = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4,
                             findings=[(anywhere, [2])])[0]
    assert two.tolist() == counted.tolist() == [[4.0, 8.0, 20.0, 20.0], [44.0, 36.0, 56.0, 52.0]]


def test_a_finding_is_boxed_even_when_the_head_is_unsure_and_no_finding_gives_no_box():
    logits = _maps(where={(6, 6): 1.0}, extent={(6, 6): -3.0})  # extent p 0.05: below threshold
    assert len(boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4)[0]) == 0
    named = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4,
                           findings=[(torch.ones(1, 16, 16), [1])])[0]
    assert named.tolist() == [[20.0, 20.0, 32.0, 32.0]]  # the peak's cell plus a margin
    none_named = boxes_from_map(logits, canvas=64, threshold=0.3, max_boxes=4,
                                findings=[(torch.zeros(0, 16, 16), [])])[0]
    assert none_named.shape == (0, 4)


def test_a_flat_map_never_gives_a_box():
    flat = torch.zeros(1, 2, 8, 8)
    flat[:, 1] = -4.6  # the head at initialisation
    assert len(boxes_from_map(flat, canvas=64, threshold=0.3, max_boxes=4,
                              findings=[(torch.ones(1, 8, 8), [1])])[0]) == 0


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
    right = torch.where(target == 1, 12.0, -12.0).repeat(1, 2, 1, 1)
    wrong = torch.roll(right, shifts=5, dims=-1)
    good, bad = float(box_map_loss(right, masks)), float(box_map_loss(wrong, masks))
    assert good < 0.01 and bad > 1.0
    # the where term alone: a peak on the lesion beats a peak beside it
    only_where = box_map_loss(right, masks, where_weight=1.0) - box_map_loss(right, masks, where_weight=0.0)
    beside = box_map_loss(wrong, masks, where_weight=1.0) - box_map_loss(wrong, masks, where_weight=0.0)
    assert float(only_where) < 0.01 < float(beside)


def test_box_head_shapes_and_bad_arguments():
    head = BoxHead(channels=8, hidden=8, stem=4)
    out = head(torch.rand(2, 8, 16, 16), None, torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 2, 16, 16)
    with pytest.raises(ValueError):
        BoxHead(channels=8, hidden=0)
    with pytest.raises(ValueError):
        build_model("sam_tiny", img_size=128, report_box=True, box_stem=-1)


def test_fine_head_modulation_runs_at_the_full_grid_and_starts_as_the_identity():
    torch.manual_seed(0)
    models = {at: build_model("sam_tiny", img_size=128, report_box=True, module_grid=4,
                              box_modulation=at) for at in ("coarse", "fine")}
    with torch.no_grad():
        models["coarse"].box_head.out.weight.normal_()  # it starts at zero: give the head a say
    models["fine"].load_state_dict(models["coarse"].state_dict())  # same parameters, same names
    seen = {at: [] for at in models}

    def grid_of(at):
        def hook(module, inputs, output):
            seen[at].append(tuple(inputs[0].shape[1:3]))  # channels-last [B, h, w, C]
        return hook

    for at, model in models.items():
        model.box_head.modulator.register_forward_hook(grid_of(at))
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        maps = {at: m(images, REPORT, decode_masks=False)["box_map"] for at, m in models.items()}
        for at, model in models.items():  # zero gates: the same map as with no modulator at all
            modulator, model.box_head.modulator = model.box_head.modulator, None
            plain = model(images, REPORT, decode_masks=False)["box_map"]
            model.box_head.modulator = modulator
            assert torch.equal(maps[at], plain), at
        fine = models["fine"].box_head
        fine.modulator.gate["deformable"].fill_(1.0)
        moved = models["fine"](images, REPORT, decode_masks=False)["box_map"]
    assert seen == {"coarse": [(8, 8)], "fine": [(16, 16), (16, 16)]}  # once per forward: half the
    assert fine.modulator.max_grid >= 16  # 16 x 16 grid, and all of it; module_grid (4) does not pool it
    assert not torch.allclose(moved, maps["fine"])  # an open gate acts at the fine site
    with pytest.raises(ValueError):
        build_model("sam_tiny", img_size=128, report_box=True, box_modulation="middle")
    with pytest.raises(ValueError):
        BoxHead(channels=8, modulate_at="middle")


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
        # the right upper lobe is the image's upper left: the peak at row 3, column 4 is in it
        assert torch.allclose(box, torch.tensor([24.0, 16.0, 56.0, 40.0]))  # cells of 8 px
        given = model(image, REPORT, boxes=box[None])
    assert torch.equal(out["masks"], given["masks"])


def _region(logits):
    out = torch.full_like(logits, -20.0)
    out[:, 0, 3, 4] = 5.0  # where: row 3, column 4
    out[:, 1, 3, 4:6] = 5.0  # extent: row 3, columns 4-5
    return out


def test_finding_priors_follow_the_report_and_the_location_map_option():
    from medseg_r.model.encoding import finding_priors
    from medseg_r.model.geometry import Frame

    frame = Frame(height=128, width=128, size=128)
    reports = [parse_report("Two nodules in the right upper lobe. A mass in the left lower lobe."),
               parse_report("No nodule.")]
    model = build_model("sam_tiny", img_size=128, report_box=True)
    (maps, counts), (none, no_counts) = finding_priors(model, reports, frame, (16, 16))
    assert maps.shape == (2, 16, 16) and counts == [2, 1]
    assert maps[0, 3, 4] > 0.9 > 0.1 > maps[0, 12, 11] and maps[1, 12, 11] > 0.9
    assert none.shape == (0, 16, 16) and no_counts == []
    flat = build_model("sam_tiny", img_size=128, report_box=True, location_map=False)
    (maps, _), _ = finding_priors(flat, reports, frame, (16, 16))
    assert torch.equal(maps, torch.ones(2, 16, 16))
    baseline = build_model("sam_tiny", img_size=128, report_box=True, priors="text_token")
    assert finding_priors(baseline, reports, frame, (16, 16)) is None


def test_matched_baselines_have_the_same_parameters_as_medseg_r():
    counts = {}
    for priors in ("structured", "none", "text_token"):
        model = build_model("sam_tiny", img_size=128, priors=priors, report_box=True)
        counts[priors] = model.parameter_summary()
        assert model.perception and model.box_head is not None
    assert counts["none"] == counts["structured"] == counts["text_token"]
    bare = build_model("sam_tiny", img_size=128, priors="none", matched_capacity=False)
    assert bare.parameter_summary()["added"] == 0


def test_a_weak_finding_does_not_take_the_lesion_of_a_stronger_one():
    # lesion B (strong) lies outside finding A's prior, lesion A (weak) inside it; report order A, B
    where = {(3, 2): 8.0, (12, 12): 4.0}
    extent = {(3, 2): 2.0, (12, 12): 2.0}
    prior = torch.zeros(2, 16, 16)
    prior[0, 8:, 8:] = 1.0  # finding A: the lower right, where the weak lesion is
    prior[1, :8, :8] = 1.0  # finding B: the upper left
    boxes = boxes_from_map(_maps(where, extent), canvas=64, threshold=0.5, max_boxes=4,
                           findings=[(prior, [1, 1])])[0]
    # 0.1 * p(B) > p(A) inside A's prior: in report order A would take B; greedy gives each its own
    assert sorted(boxes.tolist()) == [[4.0, 8.0, 16.0, 20.0], [44.0, 44.0, 56.0, 56.0]]


def test_an_undecided_choice_boxes_both_candidates_and_a_clear_one_does_not():
    # two lesions of one zone: where cannot tell them apart (equal peaks), the fits can or cannot
    where = {(3, 3): 5.0, (3, 11): 5.0}
    extent = {(3, 3): 2.0, (3, 11): 2.0}
    logits = _maps(where, extent)
    zone = torch.ones(1, 16, 16)

    def boxes(fits, hedge):
        return boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4, hedge=hedge,
                              findings=[(zone, [1], fits)])[0].tolist()

    undecided = torch.ones(1, 16, 16)
    clear = torch.ones(1, 16, 16)
    clear[0, :, 8:] = 0.2  # the finding's codes fit the right lesion poorly
    left, right = [8.0, 8.0, 20.0, 20.0], [40.0, 8.0, 52.0, 20.0]  # a cell plus a margin
    assert len(boxes(undecided, 0.0)) == 1  # off: one bet
    assert sorted(boxes(undecided, 0.7)) == [left, right]  # undecided: both
    assert boxes(clear, 0.7) == [left]  # the right one scores 0.2 of the left: not boxed
    assert sorted(boxes(clear, 0.15)) == [left, right]


def test_a_hedge_never_boxes_what_is_no_lesion_or_the_same_lesion_twice():
    # the finding's peak on a lesion with a faint tail (p 0.4, outside the peak's own region and
    # rim) whose far end scores high in `where`, and a cell of high `where` but no extent
    where = {(5, 5): 6.0, (5, 11): 5.9, (12, 12): 5.9}
    extent = {(r, c): 3.0 for r in range(4, 7) for c in range(4, 7)}
    extent.update({(5, c): -0.4 for c in range(7, 13)})
    extent[(12, 12)] = -4.0
    maps = _maps(where, extent)
    boxes = boxes_from_map(maps, canvas=64, threshold=0.3, max_boxes=4, hedge=0.5,
                           findings=[(torch.ones(1, 16, 16), [1])])[0]
    assert boxes.tolist() == [[12.0, 12.0, 32.0, 32.0]]  # rows/columns 4-6 plus a margin
    # readers that cannot read (no findings) are unaffected by hedge
    plain = boxes_from_map(maps, canvas=64, threshold=0.3, max_boxes=4)[0]
    assert plain.tolist() == boxes_from_map(maps, canvas=64, threshold=0.3, max_boxes=4,
                                            hedge=0.9)[0].tolist()


def test_a_hedge_of_a_finding_naming_two_lesions_is_measured_on_its_weaker_peak_and_shares_room():
    # "two nodules": peaks of where 6.0 and 5.0 are its two lesions; a third candidate at 4.8 scores
    # 0.82 of the weaker peak (boxed at hedge 0.7) but only 0.30 of the stronger one
    where = {(3, 3): 6.0, (3, 11): 5.0, (11, 3): 4.8}
    extent = {cell: 2.0 for cell in where}
    maps = _maps(where, extent)
    zone = torch.ones(1, 16, 16)

    def count(max_boxes, hedge=0.7):
        return len(boxes_from_map(maps, canvas=64, threshold=0.5, max_boxes=max_boxes, hedge=hedge,
                                  findings=[(zone, [2])])[0])

    assert count(4, hedge=0.0) == 2 and count(4) == 3
    assert count(2) == 2  # the named lesions use every box: no room for a hedge


def test_box_hedge_is_checked():
    from medseg_r.model.options import ModelOptions

    with pytest.raises(ValueError, match="box_hedge"):
        ModelOptions(box_hedge=1.5)
    with pytest.raises(ValueError, match="box_hedge"):
        ModelOptions(box_hedge=-0.1)


def test_the_hedge_acts_at_inference_only(box_choice_calls):
    """``box_hedge`` is an inference option: a model in training mode (e.g. a row that fine-tunes
    the decoder on its predicted boxes) is given one box per named lesion."""
    model = build_model("sam_tiny", img_size=128, report_box=True, box_input="image", box_hedge=0.7)
    images, reports = torch.rand(1, 3, 128, 128), ["nodule in the right upper lobe"]
    with torch.no_grad():
        model.eval()(images, reports, decode_masks=False)
        model.train()(images, reports, decode_masks=False)
    assert [call["hedge"] for call in box_choice_calls] == [0.7, 0.0]

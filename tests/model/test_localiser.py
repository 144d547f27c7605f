"""The image localiser (box_input="image"): identity at initialisation, no encoder pass when only
its maps are needed, gradients, matched capacity, bad arguments."""

import pytest
import torch

from medseg_r import build_model
from medseg_r.model.box_prompts import box_map_loss
from medseg_r.model.localiser import ImageLocaliser

REPORTS = ["round nodule in the right upper lobe", "ground-glass opacity in the left lower zone"]
IMAGE_HEAD = {"report_box": True, "box_input": "image"}


def test_a_new_localiser_gives_no_box_so_the_model_is_the_plain_sam():
    torch.manual_seed(0)
    with_head = build_model("sam_tiny", img_size=128, **IMAGE_HEAD)
    plain = build_model("sam_tiny", img_size=128, report_box=False)
    plain.load_state_dict({k: v for k, v in with_head.state_dict().items()
                           if not k.startswith("box_head.")})
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, b = with_head(images, REPORTS), plain(images, REPORTS)
    assert a["box_map"].shape == (2, 6, 32, 32)
    assert [len(x) for x in a["boxes"]] == [0, 0]
    assert torch.equal(a["masks"], b["masks"])


def test_its_maps_need_no_encoder_pass(monkeypatch):
    model = build_model("sam_tiny", img_size=128, **IMAGE_HEAD)

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder ran")

    monkeypatch.setattr(model.adapter, "run", refuse)
    monkeypatch.setattr(model.sam.image_encoder, "forward", refuse)
    out = model(torch.rand(2, 3, 128, 128), REPORTS, decode_masks=False)
    assert out["box_map"].shape == (2, 6, 32, 32)
    assert out["attention"].shape == (2, 1, 128, 128)  # the localiser's own location attention
    with pytest.raises(AssertionError, match="the encoder ran"):
        model(torch.rand(1, 3, 128, 128), REPORTS[:1])  # masks need the embedding


def test_the_map_loss_trains_the_network_and_the_prior_modules():
    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=128, freeze="backbone", **IMAGE_HEAD).train()
    masks = torch.zeros(2, 1, 128, 128)
    masks[0, 0, 20:30, 40:52] = 1.0
    head = model.box_head
    out = model(torch.rand(2, 3, 128, 128), REPORTS, decode_masks=False)
    box_map_loss(out["box_map"], masks).backward()
    assert head.out.weight.grad.abs().sum() > 0  # the zero output layer learns first
    with torch.no_grad():  # as after a first step: the gradient then reaches the modulated features
        head.out.weight.normal_(0, 0.01)
    model.zero_grad()
    out = model(torch.rand(2, 3, 128, 128), REPORTS, decode_masks=False)
    box_map_loss(out["box_map"], masks).backward()
    assert head.stem[0].weight.grad.abs().sum() > 0
    assert all(g.grad is not None and g.grad.abs().sum() > 0
               for g in head.modulator.gate.values())
    assert not any(p.grad is not None for p in model.sam.parameters())


def test_the_baselines_have_the_same_parameters():
    counts = {p: build_model("sam_tiny", img_size=128, priors=p, **IMAGE_HEAD).parameter_summary()
              for p in ("structured", "none", "text_token")}
    assert counts["none"] == counts["structured"] == counts["text_token"]


def test_a_larger_canvas_is_localised_at_the_working_size():
    head = ImageLocaliser(work_size=64)
    logits = head(None, None, torch.rand(1, 3, 128, 128))
    assert logits.shape == (1, 6, 16, 16) and head.grid == (16, 16)


@pytest.mark.parametrize("kwargs", [{"hidden": 0}, {"widths": (8, 16, 32)}, {"work_size": 100},
                                    {"widths": (8, 0, 16, 32)}])
def test_bad_localiser_arguments_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        ImageLocaliser(**kwargs)


def test_an_unknown_box_input_is_a_value_error():
    with pytest.raises(ValueError, match="box_input"):
        build_model("sam_tiny", img_size=128, report_box=True, box_input="pixels")


def test_the_finding_match_starts_neutral_and_follows_each_positive_finding():
    from medseg_r.model.localiser import FindingMatch

    match = FindingMatch(channels=8, prior_dim=4, dim=6)
    y = torch.rand(2, 8, 5, 5)
    tokens = torch.rand(2, 3, 4, 4)
    positive = torch.tensor([[True, True, False], [False, False, False]])
    out = match(y, tokens, positive)
    assert out.shape == (2, 1, 5, 5)
    assert torch.allclose(out[0], torch.full((1, 5, 5), float(torch.log(torch.tensor(2.0)))))
    assert torch.equal(out[1], torch.zeros(1, 5, 5))  # no positive finding: nothing added
    with torch.no_grad():
        match.query.weight.normal_()
    out = match(y, tokens, positive)
    changed = tokens.clone()
    changed[0, 2] += 5.0  # a finding that is not positive does not count
    assert torch.allclose(match(y, changed, positive), out)
    changed[0, 0] += 5.0
    assert not torch.allclose(match(y, changed, positive)[0], out[0])


def test_box_match_needs_the_image_localiser():
    with pytest.raises(ValueError, match="box_match"):
        build_model("sam_tiny", img_size=128, report_box=True, box_match=True)
    model = build_model("sam_tiny", img_size=128, box_match=True, **IMAGE_HEAD)
    assert model.box_head.match is not None


def test_decoding_inputs_encoded_without_the_embedding_is_a_clear_error():
    model = build_model("sam_tiny", img_size=64, report_box=True, box_input="image")
    encoded = model.encode_inputs(torch.rand(1, 3, 64, 64), REPORTS[:1], need_embedding=False)
    with pytest.raises(ValueError, match="need_embedding"):
        model.decode_encoded(encoded)


def _trained_looking(model):
    """Random values in every parameter outside SAM (zero-initialised gates, output layer and match
    included), so that the maps depend on the image and on every prior."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("sam."):
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _mirror(maps):
    sign = torch.ones(maps.shape[1])
    sign[2] = -1.0  # a box's horizontal centre offset
    return maps.flip(-1) * sign[None, :, None, None]


def test_the_test_time_flip_makes_the_localiser_mirror_equivariant():
    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, box_match=True,
                                         attribute_head=True, **IMAGE_HEAD))
    images = torch.rand(2, 3, 128, 128)
    mirrored = ["round nodule in the left upper lobe", "ground-glass opacity in the right lower zone"]
    with torch.no_grad():
        maps = model(images, REPORTS, decode_masks=False)["box_map"]
        maps_of_mirror = model(images.flip(-1), mirrored, decode_masks=False)["box_map"]
        model.config = model.config.replace(box_flip=False)
        once = model(images, REPORTS, decode_masks=False)["box_map"]
        once_of_mirror = model(images.flip(-1), mirrored, decode_masks=False)["box_map"]
    assert maps.shape == (2, 6 + 36, 32, 32)
    assert torch.allclose(maps_of_mirror, _mirror(maps), atol=1e-5)
    assert torch.allclose(maps, (once + _mirror(once_of_mirror)) / 2, atol=1e-5)
    assert not torch.allclose(once_of_mirror, _mirror(once), atol=1e-2)  # one reading is not


def test_the_test_time_flip_keeps_a_single_reading_where_it_cannot_mirror():
    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, **IMAGE_HEAD))
    reports = ["round nodule in the right upper lobe", "hypodense lesion in the liver"]  # no mirror

    def maps(images, flip, train=False):
        model.config = model.config.replace(box_flip=flip)
        model.train(train)
        with torch.no_grad():
            return model(images, reports, decode_masks=False)["box_map"]

    square = torch.rand(2, 3, 128, 128)
    both, once = maps(square, True), maps(square, False)
    assert not torch.allclose(both[0], once[0], atol=1e-3)  # mirrored and averaged
    assert torch.equal(both[1], once[1])  # the liver has no mirror image
    narrow = torch.rand(2, 3, 128, 96)  # padded on the right of the canvas: the flip would move it
    assert torch.equal(maps(narrow, True), maps(narrow, False))
    assert torch.equal(maps(square, True, train=True), maps(square, False, train=True))  # training


def test_the_test_time_flip_of_a_model_that_reads_no_report_ignores_the_report():
    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, priors="none", **IMAGE_HEAD))
    wide = torch.rand(2, 3, 96, 128)  # padded below on the canvas: the flip still applies
    reports = ["round nodule in the right upper lobe", "hypodense lesion in the liver"]
    with torch.no_grad():
        both = model(wide, reports, decode_masks=False)["box_map"]
        model.config = model.config.replace(box_flip=False)
        once = model(wide, reports, decode_masks=False)["box_map"]
    assert not torch.allclose(both[0], once[0], atol=1e-3)
    assert not torch.allclose(both[1], once[1], atol=1e-3)  # a liver report is mirrored too: unread


def test_positional_keys_give_the_finding_match_a_position():
    from medseg_r.model.localiser import FindingMatch

    torch.manual_seed(0)
    y = torch.ones(1, 8, 6, 6)  # the same features everywhere
    tokens = torch.rand(1, 2, 4, 4)
    positive = torch.tensor([[True, False]])
    plain, positional = (FindingMatch(channels=8, prior_dim=4, dim=6, positional=p)
                         for p in (False, True))
    for match in (plain, positional):
        with torch.no_grad():
            match.query.weight.normal_()
    out = plain(y, tokens, positive)
    assert torch.allclose(out, out[0, 0, 0, 0].expand_as(out))
    assert float(positional(y, tokens, positive).detach().std()) > 1e-3


def test_positional_keys_train_and_keep_the_baselines_matched():
    options = {**IMAGE_HEAD, "box_match": True, "positional_keys": True}
    counts = {p: build_model("sam_tiny", img_size=128, priors=p, **options).parameter_summary()
              for p in ("structured", "none", "text_token")}
    assert counts["none"] == counts["structured"] == counts["text_token"]
    plain = build_model("sam_tiny", img_size=128, priors="structured", **IMAGE_HEAD, box_match=True)
    assert counts["structured"]["trainable"] > plain.parameter_summary()["trainable"]
    model = build_model("sam_tiny", img_size=128, **options)
    head = model.box_head
    assert head.match.position is not None
    assert head.modulator.blocks["spatial_attention"].position is not None
    with pytest.raises(ValueError, match="positional_keys"):
        build_model("sam_tiny", img_size=128, positional_keys=True, spatial_attention=False)


def test_a_report_read_as_nothing_is_boxed_from_the_image_alone(box_choice_calls):
    from medseg_r.model.box_prompts import boxes_from_map

    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, box_match=True,
                                         attribute_head=True, box_threshold=0.5, **IMAGE_HEAD))
    with torch.no_grad():
        model.box_head.out.bias[1] = 0.0  # extent about 0.5: regions on either side of threshold
    reports = ["Note is made of a smudgy spot.",  # no word the reader knows as a finding
               "No nodule or mass.",  # every finding negated
               "round nodule in the left upper lobe",
               "Heart size is normal. The lungs are clear."]  # a normal study, no finding
    with torch.no_grad():
        out = model(torch.rand(4, 3, 128, 128), reports, decode_masks=False)
    given = box_choice_calls[-1]["findings"]
    assert given[0] is None and all(g is not None for g in given[1:])
    alone = boxes_from_map(out["box_map"][:1], canvas=128, threshold=0.5, max_boxes=4)[0]
    assert len(alone) > 0 and torch.equal(out["boxes"][0], alone)  # every region above threshold
    assert len(out["boxes"][1]) == 0  # "no nodule" still asks for an empty mask
    assert len(out["boxes"][2]) > 0
    assert len(out["boxes"][3]) == 0  # so does a normal study stated without a finding


def test_points_refine_the_boxes_of_a_report_read_and_replace_those_of_one_read_as_nothing():
    """Points replaced the model's boxes: one include point on a nodule the report had boxed gave a
    mask of a few pixels (LiteMedSAM was trained with boxes), an exclude point in a corner none."""
    from medseg_r.model.decoding import points_for_boxes
    from medseg_r.model.geometry import from_canvas

    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, box_match=True,
                                         attribute_head=True, box_threshold=0.5, **IMAGE_HEAD))
    with torch.no_grad():
        model.box_head.out.bias[1] = 0.0  # extent about 0.5: several regions above threshold
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        unread = model.encode_inputs(images, [""])  # read as nothing: boxed from the image alone
        read = model.encode_inputs(images, ["two nodules in the left lung"])
    assert unread.unread == [True] and read.unread == [False] and len(read.boxes[0]) > 1
    box = read.boxes[0][0]
    inside = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    points = (torch.tensor([[[float(inside[0]), float(inside[1])], [1.0, 1.0]]]), torch.tensor([[1, 0]]))
    with torch.no_grad():
        with_points = model.decode_encoded(unread, points=points)["masks"]
        alone = model.decode(unread.embeddings, frame=unread.frame, priors=unread.priors,
                             location_map=unread.location_map, points=points)[0]
        assert torch.equal(with_points, from_canvas(alone, unread.frame))  # the points alone
        refined = model.decode_encoded(read, points=points)["masks"]
        by_hand = model.decode(read.embeddings, frame=read.frame, priors=read.priors,
                               location_map=read.location_map, points=points, box_prompts=read.boxes)[0]
        assert torch.equal(refined, from_canvas(by_hand, read.frame))
        assert not torch.equal(refined, model.decode_encoded(read)["masks"])  # the points count
    # which points each box gets: the exclude point all, the include point the box around it
    per_box, extra = points_for_boxes(read.boxes[0], *points)
    coords, labels = per_box
    assert labels[0].tolist() == [1, 0] and all(sorted(row.tolist()) in ([-1, 0], [0, 1])
                                                for row in labels[1:])
    assert extra is None
    outside = (torch.tensor([[[127.0, 0.0], [1.0, 1.0]]]), torch.tensor([[1, 0]]))
    tight = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    per_box, extra = points_for_boxes(tight, *outside)
    assert per_box[1].tolist() == [[0]] and extra[1].tolist() == [[1, 0]]  # a prompt of its own


def test_a_point_in_one_box_leaves_the_other_boxes_masks_as_they_were():
    # boxes without a point of their own were padded with "not a point" tokens, which moved their masks
    torch.manual_seed(0)
    model = _trained_looking(build_model("sam_tiny", img_size=128, box_match=True,
                                         attribute_head=True, box_threshold=0.5, **IMAGE_HEAD))
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        encoded = model.encode_inputs(images, ["two nodules in the left lung"])
        boxes = torch.tensor([[10.0, 10, 40, 40], [80, 80, 110, 110]])
        points = (torch.tensor([[[20.0, 20]]]), torch.tensor([[1]]))

        def decode(box_rows, pts):
            return model.decode(encoded.embeddings, frame=encoded.frame, priors=encoded.priors,
                                location_map=encoded.location_map, points=pts, box_prompts=[box_rows])

        both, _ = decode(boxes, points)
        first, _ = decode(boxes[:1], points)
        second, _ = decode(boxes[1:], None)
    assert torch.allclose(both, torch.maximum(first, second), atol=1e-6)


def test_a_model_that_reads_no_report_takes_points_alone():
    # the baselines box every image from the image alone: points replace those boxes (README)
    model = _trained_looking(build_model("sam_tiny", img_size=128, priors="none", box_threshold=0.5,
                                         **IMAGE_HEAD))
    with torch.no_grad():
        encoded = model.encode_inputs(torch.rand(1, 3, 128, 128), ["round nodule in the left upper lobe"])
    assert encoded.unread == [True]


def test_training_steps_do_not_box_a_report_read_as_nothing(box_choice_calls):
    model = _trained_looking(build_model("sam_tiny", img_size=128, **IMAGE_HEAD)).train()
    with torch.no_grad():
        model(torch.rand(2, 3, 128, 128), ["", "round nodule in the left upper lobe"],
              decode_masks=False)
    given = box_choice_calls[-1]["findings"]
    assert given[0] is not None and len(given[0][1]) == 0  # no finding: no box, as before

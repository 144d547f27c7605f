"""The attribute head (texture and shape of the lesion at each cell): label maps, loss, the
likelihood a finding's codes give each cell, and how it steers which candidate gets the box."""

import numpy as np
import pytest
import torch

from medseg_r import build_model
from medseg_r.model.attributes import (ATTRIBUTE_CHANNELS, LIKELIHOOD_FLOOR, N_TEXTURE,
                                       AttributeHead, attribute_loss, cell_labels,
                                       finding_likelihood, label_map, share_seen)
from medseg_r.model.box_prompts import ATTRIBUTES, boxes_from_map
from medseg_r.report.schema import SHAPE_CODES, TEXTURE_CODES

TEX = {c: i for i, c in enumerate(TEXTURE_CODES)}
SHP = {c: i for i, c in enumerate(SHAPE_CODES)}


def test_label_map_fills_each_box_with_its_codes_smaller_on_top():
    lesions = [{"bbox": [0, 0, 9, 9], "texture": "solid", "shape": "round"},
               {"bbox": [2, 2, 4, 4], "texture": "calcified", "shape": "spiculated"},
               {"bbox": [12, 12, 13, 13], "texture": "not-a-code", "shape": "oval"},
               {"texture": "solid"}]  # no box: skipped
    labels = label_map(lesions, 16, 16)
    assert labels.shape == (2, 16, 16) and labels.dtype == np.int64
    assert labels[0, 0, 0] == TEX["solid"] + 1 and labels[1, 0, 0] == SHP["round"] + 1
    assert labels[0, 3, 3] == TEX["calcified"] + 1 and labels[1, 3, 3] == SHP["spiculated"] + 1
    assert labels[0, 9, 9] == TEX["solid"] + 1 and labels[0, 10, 10] == 0
    assert labels[0, 12, 12] == 0 and labels[1, 12, 12] == SHP["oval"] + 1  # unknown texture: unset


def test_label_map_sets_no_shape_where_the_record_says_the_image_hides_it():
    lesions = [{"bbox": [0, 0, 3, 3], "texture": "solid", "shape": "round", "shape_shown": False},
               {"bbox": [5, 5, 8, 8], "texture": "solid", "shape": "lobulated",
                "shape_shown": True},
               {"bbox": [10, 10, 12, 12], "texture": "calcified", "shape": "oval"}]  # unsaid: kept
    labels = label_map(lesions, 16, 16)
    assert labels[0, 1, 1] == TEX["solid"] + 1 and labels[1, 1, 1] == 0
    assert labels[1, 6, 6] == SHP["lobulated"] + 1 and labels[1, 11, 11] == SHP["oval"] + 1


def test_cell_labels_reads_each_cells_centre():
    labels = torch.zeros(1, 2, 8, 8, dtype=torch.long)
    labels[0, 0, 3, 7] = 5  # cell (1, 3) of 2 px cells spans rows 2-3, columns 6-7; its centre: (3, 7)
    cells = cell_labels(labels, (4, 4))
    assert cells.shape == (1, 2, 4, 4)
    assert cells[0, 0, 1, 3] == 5 and int(cells.sum()) == 5


def test_the_loss_is_cross_entropy_on_labelled_cells_and_marks_the_codes_seen():
    head = AttributeHead(channels=4)
    logits = torch.zeros(1, ATTRIBUTE_CHANNELS, 4, 4, requires_grad=True)
    labels = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    assert float(attribute_loss(logits, labels, head)) == 0.0 and not head.seen.any()
    labels[0, 0, 1, 1] = TEX["ground_glass"] + 1
    labels[0, 1, 1, 1] = SHP["lobulated"] + 1
    loss = attribute_loss(logits, labels, head)
    expected = np.log(len(TEXTURE_CODES)) + np.log(len(SHAPE_CODES))  # uniform logits
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    grad = logits.grad[0].abs().sum(0)
    assert grad[1, 1] > 0 and float(grad.sum() - grad[1, 1]) == 0.0  # only the labelled cell
    assert head.seen.nonzero().flatten().tolist() == [TEX["ground_glass"],
                                                      N_TEXTURE + SHP["lobulated"]]


def _logits_two_candidates():
    """Cell (0, 0): a calcified round lesion, cell (0, 1): a ground-glass spiculated one."""
    logits = torch.zeros(ATTRIBUTE_CHANNELS, 1, 2)
    logits[TEX["calcified"], 0, 0] = logits[TEX["ground_glass"], 0, 1] = 8.0
    logits[N_TEXTURE + SHP["round"], 0, 0] = logits[N_TEXTURE + SHP["spiculated"], 0, 1] = 8.0
    return logits


def test_a_findings_codes_favour_the_cells_whose_lesion_has_them():
    logits = _logits_two_candidates()
    seen = torch.ones(ATTRIBUTE_CHANNELS, dtype=torch.bool)
    calcified = finding_likelihood(logits, seen, ["calcified"], [])
    assert calcified[0, 0] > 0.9 and calcified[0, 1] < 0.11
    spiculated = finding_likelihood(logits, seen, [], ["spiculated", "well_defined"])  # max of codes
    assert spiculated[0, 1] > 0.9 and spiculated[0, 0] < 0.11
    both = finding_likelihood(logits, seen, ["ground_glass"], ["round"])  # a mismatch on each cell
    assert both.max() < 0.15 and both.min() >= LIKELIHOOD_FLOOR ** 2 - 1e-6


def test_codes_the_head_never_saw_or_no_codes_leave_the_location_prior_alone():
    logits = _logits_two_candidates()
    seen = torch.zeros(ATTRIBUTE_CHANNELS, dtype=torch.bool)
    assert torch.equal(finding_likelihood(logits, seen, ["calcified"], ["round"]), torch.ones(1, 2))
    seen[:] = True
    assert torch.equal(finding_likelihood(logits, seen, [], []), torch.ones(1, 2))
    assert torch.equal(finding_likelihood(logits, seen, ["no-such-code"], []), torch.ones(1, 2))


def test_the_fit_decides_between_two_equal_candidates_of_one_zone():
    maps = torch.full((1, 2, 16, 16), -10.0)  # where, extent
    for x, peak in ((3, 6.0), (12, 5.0)):  # two lesions, the left one a little more likely
        maps[0, 0, 6:9, x - 1:x + 2] = peak
        maps[0, 1, 6:9, x - 1:x + 2] = 5.0
    prior = torch.ones(1, 16, 16)  # one finding, the whole zone

    def box(fits=None):
        given = (prior, [1]) if fits is None else (prior, [1], fits)
        out = boxes_from_map(maps, canvas=64, threshold=0.3, max_boxes=4, findings=[given])[0]
        assert out.shape == (1, 4)
        return out[0]

    assert box()[2] < 32  # by `where` alone: the left one
    fits = torch.full((1, 16, 16), LIKELIHOOD_FLOOR)
    fits[0, :, 8:] = 1.0  # the right-hand candidate has the finding's codes
    assert box(fits)[0] > 32
    assert box(torch.flip(fits, dims=[-1]))[2] < 32


def test_the_localiser_outputs_the_attribute_logits_and_medseg_r_reads_them():
    torch.manual_seed(0)
    options = {"report_box": True, "box_input": "image", "box_match": True, "attribute_head": True}
    model = build_model("sam_tiny", img_size=128, **options)
    out = model(torch.rand(2, 3, 128, 128), ["calcified round nodule in the right upper lobe",
                                            "no focal lesion"], decode_masks=False)
    assert out["box_map"].shape == (2, 6 + ATTRIBUTE_CHANNELS, 32, 32)
    assert out["box_map"][:, ATTRIBUTES].shape[1] == ATTRIBUTE_CHANNELS
    from medseg_r.model.encoding import finding_priors
    from medseg_r.model.geometry import Frame
    from medseg_r.report import parse_report

    reports = [parse_report("calcified round nodule in the right upper lobe"),
               parse_report("no focal lesion")]
    model.box_head.attributes.seen[TEX["calcified"]] = True
    given = finding_priors(model, reports, Frame(height=128, width=128, size=128), (32, 32),
                           out["box_map"])
    assert given[0][2].shape == (1, 32, 32) and given[1][2] is None
    baseline = build_model("sam_tiny", img_size=128, priors="text_token", **options)
    assert finding_priors(baseline, reports, Frame(height=128, width=128, size=128), (32, 32),
                          out["box_map"]) is None
    n = [sum(p.numel() for p in m.parameters() if p.requires_grad) for m in (model, baseline)]
    assert n[0] == n[1]


def test_the_attribute_head_needs_the_image_localiser():
    with pytest.raises(ValueError, match="attribute_head"):
        build_model("sam_tiny", img_size=128, report_box=True, attribute_head=True)
    with pytest.raises(ValueError, match="attribute_head"):
        build_model("sam_tiny", img_size=128, attribute_head=True)


def test_encode_inputs_chooses_with_the_fits_and_the_task_loss_trains_the_head(box_choice_calls):
    from medseg_r.engine.task import SegmentationTask

    torch.manual_seed(0)
    options = {"report_box": True, "box_input": "image", "box_match": True, "attribute_head": True,
               "freeze": "backbone"}
    task = SegmentationTask(backbone="sam_tiny", img_size=128, pretrained=False,
                            model_options=options, objective="localisation")
    model = task.model
    model.box_head.attributes.seen[TEX["calcified"]] = True
    images = torch.rand(2, 3, 128, 128)
    reports = ["calcified nodule in the right upper lobe", "round nodule in the left lower zone"]
    out = model(images, reports, decode_masks=False)
    first, second = box_choice_calls[0]["findings"]
    assert len(first) == 3 and first[2].shape == (1, 32, 32)
    expected = finding_likelihood(out["box_map"][0, ATTRIBUTES], model.box_head.attributes.seen,
                                  ["calcified"], [])
    assert torch.allclose(first[2][0], expected)
    assert torch.equal(second[2], torch.ones(1, 32, 32))  # "round" never seen: location alone

    masks = torch.zeros(2, 1, 128, 128)
    masks[0, 0, 20:30, 40:52] = 1.0
    labels = torch.zeros(2, 2, 128, 128, dtype=torch.long)
    labels[0, 0, 20:30, 40:52] = TEX["ground_glass"] + 1
    model.box_head.attributes.seen.zero_()
    loss = task._box_loss(out, masks, labels, training=False)
    assert not model.box_head.attributes.seen.any()  # validation batches mark nothing
    loss = task._box_loss(out, masks, labels)
    assert model.box_head.attributes.seen.nonzero().flatten().tolist() == [TEX["ground_glass"]]
    without = task._box_loss(out, masks)
    assert float(loss.detach()) > float(without.detach())  # the cross-entropy is added
    loss.backward()
    assert model.box_head.attributes.body[-1].weight.grad.abs().sum() > 0


def _share_in_process(rank: int, world: int, init: str, codes, result) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        head = AttributeHead(channels=4)
        head.seen[codes[rank]] = True
        share_seen(head)
        result[rank] = head.seen.nonzero().flatten().tolist()
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_share_the_codes_each_has_seen(tmp_path):
    """DDP broadcasts buffers from rank 0: a code met only on rank 1 must reach rank 0's ``seen``
    (two gloo processes on the CPU)."""
    import torch.multiprocessing as mp

    manager = mp.Manager()
    result = manager.dict()
    codes = [[0, 3], [3, ATTRIBUTE_CHANNELS - 1]]
    mp.spawn(_share_in_process, args=(2, f"file://{tmp_path / 'rendezvous'}", codes, result),
             nprocs=2, join=True)
    assert result[0] == result[1] == [0, 3, ATTRIBUTE_CHANNELS - 1]


def test_share_seen_is_a_no_op_in_one_process():
    head = AttributeHead(channels=4)
    head.seen[2] = True
    share_seen(head)
    assert head.seen.nonzero().flatten().tolist() == [2]

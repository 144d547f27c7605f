"""Regressed prompt boxes: targets, loss, and the boxes the maps give."""

import numpy as np
import torch

from medseg_r.model.box_prompts import boxes_from_map
from medseg_r.model.box_regression import (box_regression_loss, box_targets, component_boxes,
                                           regressed_box)


def _masks():
    masks = torch.zeros(1, 1, 64, 64)
    masks[0, 0, 10:17, 21:30] = 1.0  # box (21, 10, 29, 16): 9 x 7 px
    masks[0, 0, 40:42, 50:51] = 1.0  # box (50, 40, 50, 41): 1 x 2 px
    return masks


def test_component_boxes_are_inclusive_pixel_bounds():
    boxes = sorted(b for _, b in component_boxes(_masks()[0, 0].numpy() > 0))
    assert boxes == [(21, 10, 29, 16), (50, 40, 50, 41)]


def test_the_targets_give_back_each_lesion_box_exactly():
    masks = _masks()
    target, weight = box_targets(masks, (16, 16))  # 4 px cells
    assert target.shape == (1, 4, 16, 16) and weight.shape == (1, 1, 16, 16)
    cells = weight[0, 0].numpy() > 0
    assert cells.sum() == 3 * 3 + 1  # the 9 x 7 box touches 3 x 3 cells, the tiny one 1
    large = np.zeros_like(cells)
    large[2:5, 5:8] = True
    assert (cells & large).sum() == 9
    box = regressed_box(target[0].numpy(), large, np.ones((16, 16)), 4.0)
    assert np.allclose(box, [21, 10, 29, 16], atol=1e-4)
    tiny = np.zeros_like(cells)
    tiny[10, 12] = True
    assert np.allclose(regressed_box(target[0].numpy(), tiny, np.ones((16, 16)), 4.0),
                       [50, 40, 50, 41], atol=1e-4)


def test_a_cell_two_lesions_touch_takes_the_smaller_one():
    masks = torch.zeros(1, 1, 32, 32)
    masks[0, 0, 0:3, 0:3] = 1.0  # 3 x 3
    masks[0, 0, 4:5, 0:1] = 1.0  # 1 x 1, in the same 8 px cell (rows 0-7) as the first
    target, weight = box_targets(masks, (4, 4))
    assert weight[0, 0, 0, 0] == 1
    assert torch.allclose(target[0, 2:, 0, 0], torch.log(torch.tensor([1 / 8, 1 / 8])))


def test_the_loss_is_zero_at_the_targets_and_positive_elsewhere():
    masks = _masks()
    target, _ = box_targets(masks, (16, 16))
    logits = torch.zeros(1, 6, 16, 16)
    logits[:, 2:] = target
    assert float(box_regression_loss(logits, masks)) == 0.0
    assert float(box_regression_loss(torch.zeros(1, 6, 16, 16), masks)) > 0.1
    assert float(box_regression_loss(torch.zeros(1, 6, 16, 16), torch.zeros(1, 1, 64, 64))) == 0.0


def test_maps_with_regression_give_the_regressed_box_not_the_cells():
    masks = _masks()
    target, weight = box_targets(masks, (16, 16))
    logits = torch.full((1, 6, 16, 16), -10.0)
    logits[:, 2:] = target
    logits[0, 1][weight[0, 0] > 0] = 5.0  # extent on both lesions
    logits[0, 0, 3, 6] = 8.0  # where: the large lesion
    reader_less = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4)[0]
    assert sorted(np.round(reader_less.numpy(), 3).tolist()) == [[21, 10, 29, 16], [50, 40, 50, 41]]
    (box,) = boxes_from_map(logits, canvas=64, threshold=0.5, max_boxes=4,
                            findings=[(torch.ones(1, 16, 16), [1])])[0]
    assert np.allclose(box.numpy(), [21, 10, 29, 16], atol=1e-3)


def test_a_box_regressed_below_one_pixel_is_never_inside_out():
    boxes = np.zeros((4, 8, 8), dtype=np.float32)
    boxes[2:] = -3.0  # log size: 0.05 cells = 0.2 px at 4 px cells
    cells = np.zeros((8, 8), dtype=bool)
    cells[3, 3] = True
    x0, y0, x1, y1 = regressed_box(boxes, cells, np.ones((8, 8)), 4.0)
    assert x1 >= x0 and y1 >= y0

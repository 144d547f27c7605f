"""medseg_r.model.decoding.fullest_outputs (box_fill): which of SAM's outputs a predicted box keeps."""
import pytest
import torch

from medseg_r.model import ModelOptions
from medseg_r.model.decoding import fullest_outputs


def _outputs(fills, size=16, box=(4, 4, 11, 11)):
    """Four outputs whose masks fill the given share of the box's rows, from its top."""
    low = torch.full((1, 4, size, size), -5.0)
    x0, y0, x1, y1 = box
    rows = y1 - y0 + 1
    for k, f in enumerate(fills):
        low[0, k, y0:y0 + int(round(f * rows)), x0:x1 + 1] = 5.0
    return low, torch.tensor([[0.9, 0.5, 0.4, 0.3]])


def test_a_single_output_that_fills_its_box_is_kept():
    low, iou = _outputs([0.75, 1.0, 0.5, 0.25])
    out, out_iou = fullest_outputs(low, iou, torch.tensor([[4.0, 4.0, 11.0, 11.0]]), fill=0.45, canvas=16)
    assert out.shape == (1, 1, 16, 16) and torch.equal(out[0, 0], low[0, 0]) and out_iou.item() == pytest.approx(0.9)


def test_an_underfilled_box_takes_the_output_that_fills_it_most():
    low, iou = _outputs([0.25, 0.5, 1.0, 0.75])
    out, out_iou = fullest_outputs(low, iou, torch.tensor([[4.0, 4.0, 11.0, 11.0]]), fill=0.45, canvas=16)
    assert torch.equal(out[0, 0], low[0, 2]) and out_iou.item() == pytest.approx(0.4)


def test_boxes_are_in_canvas_pixels_and_each_box_chooses_for_itself():
    low, iou = _outputs([0.25, 1.0, 0.5, 0.5], size=16)
    low = torch.cat([low, _outputs([1.0, 0.25, 0.25, 0.25], size=16)[0]])
    iou = torch.cat([iou, iou])
    boxes = torch.tensor([[16.0, 16.0, 47.0, 47.0]] * 2)  # a 64 px canvas: 4 canvas px per mask cell
    out, _ = fullest_outputs(low, iou, boxes, fill=0.45, canvas=64)
    assert torch.equal(out[0, 0], low[0, 1]) and torch.equal(out[1, 0], low[1, 0])


def test_box_fill_is_checked():
    with pytest.raises(ValueError, match="box_fill"):
        ModelOptions(box_fill=1.0)
    with pytest.raises(ValueError, match="box_fill"):
        ModelOptions(box_fill=-0.1)


def test_decode_takes_each_predicted_boxs_mask_by_box_fill_and_only_at_inference(monkeypatch):
    import medseg_r.model.medseg_r as medseg_r_module
    from medseg_r import build_model
    from medseg_r.model.decoding import decode
    from medseg_r.model.geometry import Frame

    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=64).eval()
    sam = model.sam
    frame = Frame(height=64, width=64, size=64)
    with torch.no_grad():
        embeddings = sam.image_encoder(torch.rand(1, 3, 64, 64))
        boxes = torch.tensor([[8.0, 8.0, 40.0, 30.0], [30.0, 30.0, 60.0, 60.0]])
        single, _ = decode(sam, embeddings, frame=frame, box_prompts=[boxes])
        chosen, chosen_iou = decode(sam, embeddings, frame=frame, box_prompts=[boxes], box_fill=0.99)
        sparse, dense = sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        every, every_iou = sam.mask_decoder.predict_masks(
            image_embeddings=embeddings, image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
        expected, expected_iou = fullest_outputs(every, every_iou, boxes, fill=0.99, canvas=64)
    assert torch.allclose(single, every[:, :1].amax(0, keepdim=True), atol=1e-5)  # box_fill 0: SAM's own
    assert torch.allclose(chosen, expected.amax(0, keepdim=True), atol=1e-5)
    assert not torch.allclose(chosen, single)  # some box here took another output
    assert torch.allclose(chosen_iou, expected_iou.amax(0, keepdim=True), atol=1e-5)
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs["box_fill"])
        return decode(*args, **kwargs)

    monkeypatch.setattr(medseg_r_module, "decode", spy)
    with torch.no_grad():
        model.decode(embeddings, frame=frame, box_prompts=[boxes])
        model.train()
        model.decode(embeddings, frame=frame, box_prompts=[boxes])
    assert calls == [model.config.box_fill, 0.0]  # training decodes SAM's single output

"""Boxes around the reference lesions for fine-tuning the mask decoder (objective reference_boxes)."""
import os

import pytest
import torch

from medseg_r.engine.reference_boxes import JITTER, jittered, reference_box_batch
from medseg_r.model.box_regression import component_boxes


def _masks():
    masks = torch.zeros(3, 1, 64, 64)
    masks[0, 0, 10:20, 30:50] = 1  # one lesion, 20 wide and 10 high
    masks[1, 0, 5:9, 5:9] = 1  # a small lesion and a larger one
    masks[1, 0, 40:60, 20:36] = 1
    return masks  # the third image has no lesion (a negative report)


def test_components_and_their_inclusive_boxes():
    found = component_boxes(_masks()[1, 0].numpy() > 0.5, diagonal=False)
    assert [box for _, box in found] == [(5, 5, 8, 8), (20, 40, 35, 59)]
    assert len(found) == 2 and found[1][0].sum() == 20 * 16
    corner = torch.zeros(4, 4, dtype=torch.bool)
    corner[0, 0] = corner[1, 1] = True  # two pixels that touch at a corner
    assert len(component_boxes(corner.numpy(), diagonal=False)) == 2  # as evaluate counts lesions
    assert len(component_boxes(corner.numpy())) == 1


def test_without_a_generator_each_image_gives_its_largest_lesion_and_exact_box():
    kept, boxes, targets = reference_box_batch(_masks(), generator=None)
    assert kept == [0, 1]  # the lesion-free image is left out
    assert boxes.tolist() == [[30.0, 10.0, 49.0, 19.0], [20.0, 40.0, 35.0, 59.0]]
    assert targets.shape == (2, 1, 64, 64)
    assert targets[1].sum() == 20 * 16 and targets[1, 0, 5:9, 5:9].sum() == 0  # that lesion alone


def test_jitter_stays_within_its_share_of_the_box_and_the_image():
    generator = torch.Generator().manual_seed(0)
    box = (30, 10, 49, 19)
    for _ in range(200):
        x0, y0, x1, y1 = jittered(box, size=(64, 64), jitter=JITTER, generator=generator)
        assert abs(x0 - 30) <= JITTER * 20 + 1 and abs(x1 - 49) <= JITTER * 20 + 1
        assert abs(y0 - 10) <= JITTER * 10 + 1 and abs(y1 - 19) <= JITTER * 10 + 1
        assert 0 <= x0 < x1 <= 63 and 0 <= y0 < y1 <= 63
    corner = jittered((0, 0, 2, 2), size=(64, 64), jitter=0.5, generator=generator)
    assert corner[0] >= 0 and corner[1] >= 0 and corner[2] >= corner[0] + 1


def test_drawn_lesions_vary_and_a_seeded_generator_replays_them():
    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return [reference_box_batch(_masks(), generator=generator)[1] for _ in range(20)]

    first, again = draw(3), draw(3)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    picked = {int(b[1, 0] < 15) for b in first}  # image 1: the small lesion (x0 near 5) or the large
    assert picked == {0, 1}
    assert any(not torch.equal(first[0], b) for b in first[1:])  # boxes are jittered


def test_a_batch_without_lesions_gives_nothing():
    kept, boxes, targets = reference_box_batch(torch.zeros(2, 1, 8, 8), generator=None)
    assert kept == [] and boxes.shape == (0, 4) and targets.shape == (0, 1, 8, 8)


@pytest.mark.filterwarnings("ignore:.*self.trainer. reference is not registered")  # no Trainer here
def test_the_objective_trains_the_decoder_alone_on_boxed_lesions():
    from medseg_r.engine.task import SegmentationTask

    options = {"inject_at": [], "priors": "none", "matched_capacity": False,
               "freeze": "image_encoder"}
    task = SegmentationTask(backbone="sam_tiny", img_size=64, model_options=options,
                            objective="reference_boxes", seed=2)
    batch = {"image": torch.rand(3, 3, 64, 64), "mask": _masks(), "report": [""] * 3}
    loss = task.training_step(batch, 0)
    loss.backward()
    trained = {n for n, p in task.model.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith("sam.mask_decoder.") for n in trained)
    empty = {"image": torch.rand(2, 3, 64, 64), "mask": torch.zeros(2, 1, 64, 64),
             "report": [""] * 2}
    nothing = task.training_step(empty, 1)  # a batch without a lesion: a zero loss, every rank steps
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_the_objective_needs_a_decoder_that_trains():
    from medseg_r.engine.task import SegmentationTask

    with pytest.raises(ValueError, match="trains the mask decoder"):
        SegmentationTask(backbone="sam_tiny", img_size=64, objective="reference_boxes",
                         model_options={"inject_at": [], "freeze": "backbone"})
    with pytest.raises(ValueError, match="reads no report"):  # MedSeg-R's modules would train too
        SegmentationTask(backbone="sam_tiny", img_size=64, objective="reference_boxes")
    bare = {"inject_at": [], "priors": "none", "matched_capacity": False, "freeze": "image_encoder"}
    with pytest.raises(ValueError, match="shift_augment"):
        SegmentationTask(backbone="sam_tiny", img_size=64, objective="reference_boxes",
                         model_options=bare, shift_augment=2)


def test_train_fine_tunes_the_decoder_through_the_feature_cache(tiny_phantom, tmp_path):
    from medseg_r.checkpoint import load_model
    from medseg_r.engine.train import TrainConfig, train

    options = {"inject_at": [], "priors": "none", "matched_capacity": False,
               "freeze": "image_encoder"}
    result = train(TrainConfig(data=tiny_phantom, out=str(tmp_path / "run"), backbone="sam_tiny",
                               img_size=64, model_options=options, epochs=1, batch_size=4,
                               objective="reference_boxes", feature_cache=str(tmp_path / "cache"),
                               augment=False, progress=False))
    metrics = open(os.path.join(str(tmp_path / "run"), "logs", "version_0", "metrics.csv")).read()
    assert "train/loss" in metrics and "val/dice" in metrics
    tuned = load_model(result["model"])
    assert tuned.config.freeze == "image_encoder" and tuned.config.priors == "none"
    assert os.listdir(str(tmp_path / "cache"))  # the frozen encoder's features were cached

import pytest
import torch

from medseg_r.engine.task import SegmentationTask, build_loss, iou_per_sample


def _batch():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 64, 64)
    masks = (torch.rand(4, 1, 64, 64) > 0.9).float()
    return images, masks, ["round nodule in the right upper lobe"] * 4


def test_iou_per_sample():
    logits = torch.full((3, 1, 4, 4), -1.0)
    logits[0, 0, :2] = 1  # 8 px predicted
    target = torch.zeros(3, 1, 4, 4)
    target[0, 0, :1] = 1  # 4 px true, all inside the prediction
    target[1, 0, 0, 0] = 1  # missed
    assert iou_per_sample(logits, target).tolist() == [0.5, 0.0, 1.0]  # third: empty vs empty


def test_iou_loss_trains_the_iou_head_only():
    task = SegmentationTask(backbone="sam_tiny", img_size=64, model_options={"freeze": "none"})
    with torch.no_grad():
        for gate in task.model.gates().values():
            gate.fill_(0.3)
    images, masks, reports = _batch()

    def grads(with_iou: bool):
        task.zero_grad()
        out = task.model(images, reports)
        loss = task.loss_fn(out["masks"], masks)
        if with_iou:
            loss = loss + task._iou_loss(out, masks)
        loss.backward()
        return {n: p.grad for n, p in task.model.named_parameters() if p.grad is not None}

    plain, both = grads(False), grads(True)
    changed = {n for n in both if n not in plain or not torch.equal(plain[n], both[n])}
    assert changed and all(".iou_prediction_head." in n for n in changed)


def test_iou_head_learns_the_real_iou():
    task = SegmentationTask(backbone="sam_tiny", img_size=64, model_options={"freeze": "none"})
    images, masks, reports = _batch()
    opt = torch.optim.Adam(task.model.sam.mask_decoder.iou_prediction_head.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = task._iou_loss(task.model(images, reports), masks)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_bad_task_arguments_are_value_errors():
    with pytest.raises(ValueError, match="schedule"):
        SegmentationTask(backbone="sam_tiny", img_size=64, schedule="step")
    with pytest.raises(ValueError, match="loss"):
        build_loss("dice_hinge")


def test_shifted_training_steps_read_the_cache_and_shift_the_target(tmp_path):
    from medseg_r.model.feature_cache import FeatureCache

    options = {"inject_at": ["neck"], "report_box": True, "freeze": "backbone"}
    task = SegmentationTask(backbone="sam_tiny", img_size=64, model_options=options,
                            objective="localisation", shift_augment=2, seed=1)
    task.model.feature_cache = FeatureCache(str(tmp_path / "cache"))
    images, masks, reports = _batch()
    batch = {"image": images, "mask": masks, "report": reports}
    with torch.no_grad():
        task.model(images, reports, decode_masks=False)  # fills the cache
    misses = task.model.feature_cache.misses
    moved, out = task._shifted_forward(batch, decode=False)
    assert task.model.feature_cache.misses == misses  # shifted images cost no encoder pass
    dy, dx = next((dy, dx) for dy in range(-16, 17, 8) for dx in range(-16, 17, 8)
                  if torch.equal(moved["mask"], masks.roll((dy, dx), dims=(-2, -1))))
    assert (dy, dx) != (0, 0)  # this seed draws a real shift (16, -16)
    assert torch.equal(moved["image"], images.roll((dy, dx), dims=(-2, -1)))
    assert out["box_map"].shape == (4, 2, 8, 8)
    with pytest.raises(ValueError, match="shift_augment"):
        SegmentationTask(backbone="sam_tiny", img_size=64, shift_augment=-1)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer: steps called by hand
def test_image_augment_needs_an_image_localiser_and_warps_its_training_batches():
    with pytest.raises(ValueError, match="image_augment"):
        SegmentationTask(backbone="sam_tiny", img_size=64, image_augment=-0.5)
    with pytest.raises(ValueError, match="image_augment"):  # an encoder-fed model: not allowed
        SegmentationTask(backbone="sam_tiny", img_size=64, image_augment=1.0)
    with pytest.raises(ValueError, match="image_augment"):  # a box head on the embedding
        SegmentationTask(backbone="sam_tiny", img_size=64, objective="localisation", image_augment=1.0,
                         model_options={"inject_at": ["neck"], "report_box": True, "freeze": "backbone"})
    options = {"inject_at": [], "report_box": True, "box_input": "image", "freeze": "backbone",
               "decoder_prior": "none", "module_grid": 8}
    task = SegmentationTask(backbone="sam_tiny", img_size=64, model_options=options,
                            objective="localisation", image_augment=1.0, seed=2)
    images, masks, reports = _batch()
    seen = []
    task.model.forward = lambda im, rep, decode_masks=True: seen.append(im) or {
        "box_map": torch.zeros(len(rep), 6, 16, 16, requires_grad=True)}
    batch = {"image": images, "mask": masks, "report": reports}
    task.training_step(batch, 0)
    task.training_step(batch, 1)  # the next micro-batch of the same step: a draw of its own
    assert seen[0].shape == images.shape and not torch.equal(seen[0], images)
    assert not torch.equal(seen[0], seen[1])


@pytest.mark.parametrize("cases, world, batch", [(5, 2, 2), (7, 3, 2), (4, 2, 1), (9, 2, 4)])
def test_validation_counts_each_case_once_across_processes(cases, world, batch):
    # a DistributedSampler repeats the first cases to even out the shares: counted, they biased
    # the validation Dice (0.5 on two processes where one gave 0.6) and the choice of best.ckpt
    from types import SimpleNamespace

    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    task = SegmentationTask(backbone="sam_tiny", img_size=64, pretrained=False)
    counted = []
    for rank in range(world):
        sampler = DistributedSampler(range(cases), num_replicas=world, rank=rank, shuffle=False)
        loader = DataLoader(range(cases), batch_size=batch, sampler=sampler)
        task._trainer = SimpleNamespace(world_size=world, global_rank=rank, val_dataloaders=loader)
        for batch_idx, indices in enumerate(loader):
            real = task._real_cases(batch_idx, len(indices))
            counted += [int(i) for i, keep in zip(indices, real) if keep]
    assert sorted(counted) == list(range(cases))

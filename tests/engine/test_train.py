import dataclasses
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from medseg_r.checkpoint import load_model
from medseg_r.engine.train import TrainConfig, train

ARGS = ["--backbone", "sam_tiny", "--img-size", "64", "--options", '{"freeze": "none"}', "--batch-size", "4",
        "--lr", "1e-3", "--seed", "0"]


def _cli(*args):
    return [sys.executable, "-m", "medseg_r.cli", *args]


def test_train_writes_checkpoints_logs_and_model(tiny_phantom, tmp_path):
    out = str(tmp_path / "run")
    result = train(TrainConfig(data=tiny_phantom, out=out, backbone="sam_tiny", img_size=64,
                               model_options={"freeze": "none"}, epochs=2, batch_size=4, progress=False))
    names = sorted(os.listdir(os.path.join(out, "checkpoints")))
    assert {"epoch000.ckpt", "epoch001.ckpt", "last.ckpt", "best.ckpt"} <= set(names)
    assert result["steps"] == 2 * 7  # 28 training cases, batch 4
    metrics = open(os.path.join(out, "logs", "version_0", "metrics.csv")).read()
    assert "train/loss" in metrics and "val/dice" in metrics
    model = load_model(result["model"])
    assert model.backbone_name == "sam_tiny" and model.img_size == 64
    # what a resume takes from the run, and refuses to change
    from medseg_r.engine.train_checks import LOADER_KEY, RUN_KEY

    last = torch.load(os.path.join(out, "checkpoints", "last.ckpt"), weights_only=False)
    assert last[LOADER_KEY]["processes"] == 1
    assert {k: last[RUN_KEY][k] for k in ("accelerator", "devices", "num_nodes", "strategy")} == \
        {"accelerator": "auto", "devices": "auto", "num_nodes": 1, "strategy": "auto"}
    # every setting readable in the run folder (hparams.yaml has the task's alone), and trainable again
    import yaml

    settings = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    assert (settings["data"], settings["epochs"], settings["batch_size"], settings["precision"]) == \
        (os.path.abspath(tiny_phantom), 2, 4, None)  # the precision as given: the machine's default
    assert TrainConfig(**settings).model_options == {"freeze": "none"} and "resume" not in settings


def test_a_launched_rank_resuming_a_run_not_yet_saved_trains(tiny_phantom, tmp_path, monkeypatch, capsys):
    # a process Lightning launches for rank 1 runs the command again; with --resume auto before any
    # checkpoint exists it crashed (os.path.isfile(None))
    from medseg_r.cli import main

    monkeypatch.setenv("LOCAL_RANK", "1")
    out = str(tmp_path / "run")
    assert main(["train", "--data", tiny_phantom, "--out", out, "--epochs", "1", "--resume", "auto",
                 "--limit-train-batches", "1", *ARGS]) == 0
    assert "note:" not in capsys.readouterr().err  # the first process says it, once


# Runs `medseg-r train` and SIGKILLs itself right after training step 10 (in epoch 2 of 3: 7 steps per
# epoch), so where the kill lands never depends on how busy the machine is.
_KILLED_AT_STEP_10 = """
import os, signal, sys
import lightning.pytorch as pl
from medseg_r.engine import train as T

class KillAtStep10(T._EpochToDataset):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 10:
            os.kill(os.getpid(), signal.SIGKILL)

T._EpochToDataset = KillAtStep10
from medseg_r.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # 1-2 minutes on 2 cores: CI runs it after the default run
def test_resume_after_kill_in_epoch_two_finishes_exactly(tiny_phantom, tmp_path):
    full, broken = str(tmp_path / "full"), str(tmp_path / "broken")
    subprocess.run(_cli("train", "--data", tiny_phantom, "--out", full, "--epochs", "3", *ARGS), check=True,
                   capture_output=True)
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_STEP_10, "train", "--data", tiny_phantom, "--out",
                             broken, "--epochs", "3", *ARGS], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    checkpoints = sorted(os.listdir(os.path.join(broken, "checkpoints")))
    assert checkpoints == ["best.ckpt", "epoch000.ckpt", "last.ckpt"]  # epoch 2 never finished
    assert not os.path.exists(os.path.join(broken, "model.ckpt"))
    subprocess.run(_cli("train", "--data", tiny_phantom, "--out", broken, "--epochs", "3", "--resume", "auto", *ARGS),
                   check=True, capture_output=True)
    last = [torch.load(os.path.join(d, "checkpoints", "last.ckpt"), weights_only=False) for d in (full, broken)]
    assert [c["global_step"] for c in last] == [21, 21]
    a, b = last[0]["state_dict"], last[1]["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # same samples, same flips, same order: same weights
    # one log, the uninterrupted run's: the killed run's rows of epoch 2 (steps 7-10) are not repeated
    logs = [open(os.path.join(d, "logs", "version_0", "metrics.csv")).read() for d in (full, broken)]
    assert logs[0] == logs[1] and os.listdir(os.path.join(broken, "logs")) == ["version_0"]


def test_ddp_two_processes_on_cpu_with_gloo(tiny_phantom, tmp_path):
    out = str(tmp_path / "ddp")
    proc = subprocess.run(_cli("train", "--data", tiny_phantom, "--out", out, "--epochs", "1", "--devices", "2",
                               "--accelerator", "cpu", "--strategy", "ddp", "--limit-train-batches", "2", *ARGS),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert "All distributed processes registered. Starting with 2 processes" in proc.stderr + proc.stdout
    ckpt = torch.load(os.path.join(out, "checkpoints", "last.ckpt"), weights_only=False)
    assert ckpt["global_step"] == 2
    assert os.path.isfile(os.path.join(out, "model.ckpt"))


def test_ddp_keeps_the_attribute_codes_every_rank_met(tiny_phantom, tmp_path):
    """The attribute head's ``seen`` buffer is shared across ranks each step (DDP would otherwise
    keep rank 0's alone): with two gloo processes the per-step collective runs on both ranks without
    a hang and the saved head knows codes (that rank 1's codes arrive is
    ``tests/model/test_attributes.py``'s check)."""
    out = str(tmp_path / "ddp_attr")
    options = '{"freeze": "none", "report_box": true, "box_input": "image", "box_match": true, ' \
              '"attribute_head": true}'
    args = [a if a != '{"freeze": "none"}' else options for a in ARGS]
    proc = subprocess.run(_cli("train", "--data", tiny_phantom, "--out", out, "--epochs", "1", "--devices", "2",
                               "--accelerator", "cpu", "--strategy", "ddp", "--limit-train-batches", "2",
                               "--objective", "both", *args),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = torch.load(os.path.join(out, "model.ckpt"), weights_only=False)["state_dict"]
    assert saved["box_head.attributes.seen"].sum() >= 2


def test_train_cli_bad_options_are_one_line_errors(tiny_phantom, tmp_path):
    proc = subprocess.run(_cli("train", "--data", tiny_phantom, "--out", str(tmp_path / "x"), "--options", "[1]"),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "must be a JSON object" in proc.stderr
    proc = subprocess.run(_cli("train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x")),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_a_split_without_cases_is_named_and_no_run_folder_is_left(tiny_phantom, tmp_path):
    out = tmp_path / "run"
    # the splits it has are listed ("Val" or "test " for "val" / "test" was a guess for the user)
    with pytest.raises(ValueError, match=r"split 'test_only' of .* has no case \(its splits: train \d+, "
                                         r"val \d+, test \d+\): validation needs them; give --val-data, "
                                         r"or set 'validate: false'"):
        train(TrainConfig(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64,
                          val_split="test_only", epochs=1, progress=False))
    with pytest.raises(ValueError, match=r"split 'none' of .* has no case: training needs cases "
                                         r"whose split is 'none' \(its splits: train"):
        train(TrainConfig(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64,
                          train_split="none", epochs=1, progress=False))
    with pytest.raises(ValueError, match=r"has no case \(its splits: .*\): validation needs them; set "
                                         r"'validate: false'"):
        train(TrainConfig(data=tiny_phantom, val_data=tiny_phantom, out=str(out), backbone="sam_tiny",
                          img_size=64, val_split="test_only", epochs=1, progress=False))
    assert not out.exists()


def _weights_after_three_steps(data, out, deterministic):
    result = train(TrainConfig(data=data, out=out, backbone="sam_tiny", img_size=256, model_options={"freeze": "none"},
                               epochs=1, batch_size=2, limit_train_batches=3, progress=False,
                               deterministic=deterministic))
    return torch.load(result["last"], weights_only=False)["state_dict"]


def test_cpu_training_repeats_exactly(tiny_phantom, tmp_path):
    # At 256 px SAM's global-attention blocks look up relative positions on a 32x32 grid; without
    # deterministic kernels the multi-threaded backward of that lookup sums in a varying order.
    # (the thread count is restored afterwards: a later test compares this process's masks with a
    # server's, bit for bit, and a changed count changes the sums' order)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        a = _weights_after_three_steps(tiny_phantom, str(tmp_path / "a"), None)
        b = _weights_after_three_steps(tiny_phantom, str(tmp_path / "b"), None)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_model_weights_best_or_last(tiny_phantom, tmp_path):
    out = str(tmp_path / "last")
    result = train(TrainConfig(data=tiny_phantom, out=out, backbone="sam_tiny", img_size=64, epochs=2, batch_size=8,
                               limit_train_batches=1, progress=False, model_weights="last"))
    saved = torch.load(result["model"], weights_only=False)
    assert saved["extra"]["weights_from"].endswith("last.ckpt") and saved["extra"]["global_step"] == 2
    with pytest.raises(ValueError, match="model_weights"):
        train(TrainConfig(data=tiny_phantom, out=str(tmp_path / "bad"), model_weights="median"))


def _manifest_copy(src, dst, edit):
    """The phantom's manifest.jsonl, each line passed through ``edit``, written beside its images."""
    import json

    lines = [edit(json.loads(line)) for line in open(os.path.join(src, "manifest.jsonl"))]
    path = os.path.join(src, dst)
    with open(path, "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in lines if r is not None)
    return path


def test_an_earlier_run_is_never_replaced_without_resume(tiny_phantom, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "model.ckpt").write_bytes(b"the user's trained model")
    cfg = dict(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64, epochs=1, progress=False)
    with pytest.raises(ValueError, match="already holds a training run .* --resume auto"):
        train(TrainConfig(**cfg))
    assert (out / "model.ckpt").read_bytes() == b"the user's trained model"
    assert os.listdir(out / "checkpoints") == []
    (out / "model.ckpt").unlink()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"x")  # an interrupted run: checkpoints only
    with pytest.raises(ValueError, match="already holds a training run"):
        train(TrainConfig(**cfg))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        train(TrainConfig(**{**cfg, "out": str(tmp_path / "file")}))


def test_missing_files_are_named_before_training_or_the_run_folder(tiny_phantom, tmp_path):
    broken = []

    def break_one(record):
        if record["split"] == "train" and not broken:
            broken.append(record["id"])
            record["image"] = "images/not_there.png"
        return record

    data = _manifest_copy(tiny_phantom, "missing_image.jsonl", break_one)
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=r"1 file\(s\) of the train cases not found: .*not_there.png"):
        train(TrainConfig(data=data, out=str(out), backbone="sam_tiny", img_size=64, epochs=1, progress=False))
    assert not out.exists()


def test_unreadable_images_and_masks_of_another_size_are_named_before_training(tiny_phantom, tmp_path):
    from PIL import Image

    with open(os.path.join(tiny_phantom, "images", "not_an_image.png"), "w") as handle:
        handle.write("a text file with an image's ending")
    Image.fromarray(np.zeros((50, 64), np.uint8)).save(os.path.join(tiny_phantom, "masks", "short_mask.png"))
    edits = {}

    def break_two(record):
        if record["split"] == "train" and len(edits) < 2:
            key = "image" if not edits else "mask"
            edits[record["id"]] = key
            record[key] = "images/not_an_image.png" if key == "image" else "masks/short_mask.png"
        return record

    data = _manifest_copy(tiny_phantom, "broken_files.jsonl", break_two)
    out = tmp_path / "run"
    first, second = list(edits)
    with pytest.raises(ValueError, match=rf"train cases: 1 file\(s\) are not readable images: {first}: "
                                         rf".*not_an_image.png is not a readable image .*; 1 mask\(s\) differ in "
                                         rf"size from their image: {second}: image 64x64, mask \(masks/short_mask.png\) 64x50"):
        train(TrainConfig(data=data, out=str(out), backbone="sam_tiny", img_size=64, epochs=1, progress=False))
    assert not out.exists()


def test_a_jpeg_training_mask_is_cut_at_half_its_range(tiny_phantom):
    from PIL import Image

    from medseg_r.data.datasets import SegmentationDataset
    from medseg_r.data.readers import read_dataset

    records, root = read_dataset(tiny_phantom, split="train")
    rec = next(r for r in records if r.lesions)
    png = np.asarray(Image.open(os.path.join(root, rec.mask)))
    Image.fromarray(png).save(os.path.join(root, "masks", "lossy.jpg"), quality=50)
    assert (np.asarray(Image.open(os.path.join(root, "masks", "lossy.jpg"))) > 0).sum() > (png > 0).sum()
    as_png, as_jpeg = (SegmentationDataset([r], root=root, size=64, native=True)[0]["native_mask"]
                       for r in (rec, dataclasses.replace(rec, mask="masks/lossy.jpg")))
    assert as_png.sum() > 0
    assert int((as_png ^ as_jpeg).sum()) <= max(3, int(0.1 * as_png.sum()))


def test_data_without_splits_warns_that_validation_is_on_training_cases(tiny_phantom, tmp_path, capsys):
    from medseg_r.cli import main
    from medseg_r.data.readers import DataWarning
    from medseg_r.engine.train import make_loaders

    data = _manifest_copy(tiny_phantom, "no_split.jsonl", lambda r: {k: v for k, v in r.items() if k != "split"})
    cfg = TrainConfig(data=data, out=str(tmp_path / "run"), backbone="sam_tiny", img_size=64, progress=False)
    with pytest.warns(DataWarning, match="40 of the 40 validation cases are also training cases"):
        make_loaders(cfg)
    with_split = TrainConfig(data=tiny_phantom, out=str(tmp_path / "run"), backbone="sam_tiny", img_size=64)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        make_loaders(with_split)  # a data set with splits: no warning
    assert main(["train", "--data", data, "--out", str(tmp_path / "cli"), "--epochs", "1",
                 "--limit-train-batches", "1", *ARGS]) == 0
    err = capsys.readouterr().err
    assert "medseg-r: warning: 40 of the 40 validation cases are also training cases" in err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "cli" / "model.ckpt"), "--data", data,
                 "--out", str(tmp_path / "eval")]) == 0
    assert "has no split column: all its 40 cases are scored" in capsys.readouterr().err


def test_a_run_that_keeps_no_epoch_checkpoints_can_still_resume_after_each_epoch(tiny_phantom, tmp_path,
                                                                                    monkeypatch):
    from medseg_r.engine import train as T

    out = str(tmp_path / "run")
    seen = []

    class Spy(T._EpochToDataset):
        def on_train_epoch_start(self, trainer, pl_module):
            super().on_train_epoch_start(trainer, pl_module)
            folder = os.path.join(out, "checkpoints")
            seen.append(sorted(os.listdir(folder)) if os.path.isdir(folder) else [])

    monkeypatch.setattr(T, "_EpochToDataset", Spy)
    train(TrainConfig(data=tiny_phantom, out=out, backbone="sam_tiny", img_size=64, epochs=3,
                      batch_size=8, validate=False, model_weights="last",
                      keep_epoch_checkpoints=False, progress=False))
    assert seen == [[], ["epoch000.ckpt", "last.ckpt"], ["epoch001.ckpt", "last.ckpt"]]
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["epoch002.ckpt", "last.ckpt"]
    last = os.path.join(out, "checkpoints", "last.ckpt")
    if os.path.islink(last):  # a link, not a second copy (a copy where links cannot be made)
        assert os.readlink(last) == "epoch002.ckpt"


def test_a_resumed_run_keeps_last_ckpt_on_its_newest_epoch(tiny_phantom, tmp_path):
    # the first epoch's file records no last_model_path; a resume from it must still move
    # last.ckpt on (not link a last-v1.ckpt beside it and leave last.ckpt on epoch 0)
    out = str(tmp_path / "run")
    config = dict(data=tiny_phantom, out=out, backbone="sam_tiny", img_size=64, batch_size=8,
                  validate=False, model_weights="last", progress=False, limit_train_batches=1)
    train(TrainConfig(epochs=1, **config))
    result = train(TrainConfig(epochs=3, resume="auto", **config))
    folder = os.path.join(out, "checkpoints")
    assert sorted(os.listdir(folder)) == ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt", "last.ckpt"]
    last = os.path.join(folder, "last.ckpt")
    if os.path.islink(last):
        assert os.readlink(last) == "epoch002.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == result["steps"] == 3


def test_an_epoch_checkpoint_holds_the_best_score_of_its_own_epoch(tiny_phantom, tmp_path):
    out = str(tmp_path / "run")
    config = dict(data=tiny_phantom, out=out, backbone="sam_tiny", img_size=64, batch_size=8,
                  progress=False, limit_train_batches=1)
    train(TrainConfig(epochs=1, **config))
    folder = os.path.join(out, "checkpoints")
    saved = torch.load(os.path.join(folder, "epoch000.ckpt"), weights_only=False)["callbacks"]
    (state,) = [v for k, v in saved.items() if "val/dice" in k]
    assert state["best_model_path"].endswith("best.ckpt")  # this epoch's score, not the one before
    train(TrainConfig(epochs=2, resume="auto", **config))
    assert not [name for name in os.listdir(folder) if "-v" in name]  # no best-v1.ckpt, last-v1.ckpt


def test_resume_point_is_last_ckpt_or_the_latest_epoch_where_the_link_dangles(tmp_path):
    from medseg_r.engine.train import resume_point

    import torch

    def save(name):
        torch.save({"state_dict": {}, "epoch": 0}, folder / name)

    folder = tmp_path / "checkpoints"
    assert resume_point(str(folder)) is None
    folder.mkdir()
    for name in ("epoch000.ckpt", "epoch001.ckpt", "best.ckpt"):
        save(name)
    assert resume_point(str(folder)).endswith("epoch001.ckpt")
    os.symlink("epoch002.ckpt", folder / "last.ckpt")  # dangling: epoch 2's file is gone
    assert resume_point(str(folder)).endswith("epoch001.ckpt")
    save("epoch1000.ckpt")  # by epoch number, not by name
    save("epoch999.ckpt")
    assert resume_point(str(folder)).endswith("epoch1000.ckpt")
    save("epoch002.ckpt")
    assert resume_point(str(folder)) == str(folder / "last.ckpt")


def test_a_truncated_resume_point_falls_back_to_the_latest_readable_epoch(tmp_path):
    import torch

    from medseg_r.engine.train import resume_point

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("epoch000.ckpt", "epoch001.ckpt"):
        torch.save({"state_dict": {"w": torch.zeros(100)}, "epoch": 0}, folder / name)
    whole = (folder / "epoch001.ckpt").read_bytes()
    (folder / "epoch001.ckpt").write_bytes(whole[: len(whole) // 2])  # killed while saving
    os.symlink("epoch001.ckpt", folder / "last.ckpt")
    with pytest.warns(UserWarning, match="cannot read .*last.ckpt.*resuming from .*epoch000.ckpt"):
        assert resume_point(str(folder)).endswith("epoch000.ckpt")
    (folder / "epoch000.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        resume_point(str(folder))


@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, "epochs must be a whole number >= 1"),
    ({"epochs": "1"}, "epochs must be a whole number >= 1"),  # a config file's string
    ({"accumulate": 0}, "accumulate must be"),
    ({"lr": "fast"}, "lr must be a number > 0"),
    ({"lr": 0.0}, "lr must be a number > 0"),
    ({"img_size": 0}, "img_size must be"),
    ({"limit_train_batches": 0}, "limit_train_batches must be"),
    ({"limit_train_batches": -1}, "limit_train_batches must be"),
    ({"devices": 0}, "devices must be"),
    ({"devices": "-1"}, "on the CPU, devices is a number of processes"),  # GPU indices need a GPU
    ({"devices": "0,1"}, "on the CPU, devices is a number of processes"),
    ({"model_options": [1]}, "model_options must be a mapping"),
    ({"feature_cache": "FILE"}, "is a file, not a folder"),
    ({"resume": "FILE"}, "not a PyTorch checkpoint file"),
    ({"validate": "false"}, "validate must be true or false"),  # a config file's string
    ({"augment": "no"}, "augment must be true or false"),
    ({"deterministic": "false"}, "deterministic must be true, false or left out"),
    ({"accelerator": "tpu"}, "accelerator must be one of auto, cpu, gpu, cuda, mps"),
    ({"accelerator": "mps"}, "no Apple-silicon GPU"),
    ({"checkpoint": "missing.pth"}, "checkpoint missing.pth: no such file"),
    ({"checkpoint": "litemedsam_phantom"}, "the shipped MedSeg-R weights do not start a training run"),
    ({"strategy": "deepspeed", "devices": 2, "accelerator": "cpu"}, "DeepSpeed"),  # not installed
    ({"precision": "foo"}, "Precision 'foo' is invalid"),  # Lightning's check, before the folder
    ({"model_options": {"priors": "none", "matched_capacity": False, "inject_at": [],
                        "freeze": "backbone"}}, "nothing to train"),
])
def test_bad_options_are_refused_before_the_run_folder_is_made(tiny_phantom, tmp_path, change, message):
    (tmp_path / "file.png").write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    change = {k: str(tmp_path / "file.png") if v == "FILE" else v for k, v in change.items()}
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(data=tiny_phantom, out=str(out), backbone="sam_tiny", progress=False,
                          **{"img_size": 64, "epochs": 1, **change}))
    assert not out.exists()


def test_a_gpu_run_without_a_gpu_is_refused(tiny_phantom, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        train(TrainConfig(data=tiny_phantom, out=str(tmp_path / "run"), accelerator="gpu"))


def test_resume_refuses_a_model_file_other_settings_and_a_folder_with_nothing_to_resume(tiny_phantom,
                                                                                           tmp_path):
    out = tmp_path / "run"
    cfg = dict(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64, epochs=1, batch_size=4,
               limit_train_batches=1, progress=False)
    train(TrainConfig(**cfg))
    model = str(out / "model.ckpt")
    with pytest.raises(ValueError, match=r"is a trained model \(model.ckpt\), not a training checkpoint"):
        train(TrainConfig(**{**cfg, "out": str(tmp_path / "other"), "resume": model}))
    # the same run continued with another learning rate or other model options is not an exact resume
    # (and its config.yaml still says how it was trained: a refused resume rewrote it)
    settings = (out / "config.yaml").read_text()
    for change, what in (({"lr": 0.01}, "lr 0.001 -> 0.01"),
                         ({"model_options": {"priors": "none"}}, "model_options {} -> {'priors': 'none'}"),
                         ({"batch_size": 8}, "batch_size 4 -> 8"),
                         ({"limit_train_batches": None}, "limit_train_batches 1 -> None"),
                         ({"augment": False}, "augment True -> False")):
        with pytest.raises(ValueError, match=f"trained with other settings \\({re.escape(what)}\\)"):
            train(TrainConfig(**{**cfg, **change, "epochs": 2, "resume": "auto"}))
        assert (out / "config.yaml").read_text() == settings
    with pytest.raises(ValueError, match=r"dataset option\(s\) empty_fraction do not apply"):
        train(TrainConfig(**{**cfg, "dataset_options": {"empty_fraction": 0.5}, "epochs": 2,
                             "resume": "auto"}))
    # other cases: another data set, or another split of it
    with pytest.raises(ValueError, match=r"training cases '\d+ cases, \w+' -> '\d+ cases, \w+'"):
        train(TrainConfig(**{**cfg, "train_split": "test", "epochs": 2, "resume": "auto"}))
    before = os.path.getmtime(model)
    # the same settings spelled out (the backbone's default size, an option at its default): fine
    train(TrainConfig(**{**cfg, "epochs": 2, "resume": "auto", "model_options": {"spatial_attention": True}}))
    assert os.path.getmtime(model) > before
    with pytest.raises(ValueError, match=r"has finished 2 epoch\(s\): --epochs must be at least 2"):
        train(TrainConfig(**{**cfg, "epochs": 1, "resume": "auto"}))
    # a finished run whose checkpoints are gone: --resume auto would train anew over its model
    for name in os.listdir(out / "checkpoints"):
        os.remove(out / "checkpoints" / name)
    with pytest.raises(ValueError, match="holds a model.ckpt but no epoch checkpoint to resume from"):
        train(TrainConfig(**{**cfg, "resume": "auto"}))


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # Lightning's own note for the copy
def test_a_copied_run_folder_resumes_with_its_best_score_and_leaves_the_original_alone(tiny_phantom,
                                                                                       tmp_path):
    import shutil
    import warnings

    first = tmp_path / "run"
    cfg = dict(data=tiny_phantom, backbone="sam_tiny", img_size=64, batch_size=4,
               limit_train_batches=1, progress=False)
    train(TrainConfig(**cfg, out=str(first), epochs=1))
    original = {n: os.path.getmtime(first / "checkpoints" / n)
                for n in os.listdir(first / "checkpoints")}
    copy = tmp_path / "copy"
    shutil.copytree(first, copy, symlinks=True)
    best_before = torch.load(copy / "checkpoints" / "best.ckpt", weights_only=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(TrainConfig(**cfg, out=str(copy), epochs=3, resume="auto"))
    # Lightning's own ModelCheckpoint drops the copied best score here, with this warning
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    assert sorted(n for n in os.listdir(copy / "checkpoints") if n.startswith("best")) == ["best.ckpt"]
    assert {n: os.path.getmtime(first / "checkpoints" / n)
            for n in os.listdir(first / "checkpoints")} == original  # nothing of the original touched
    last = torch.load(copy / "checkpoints" / "last.ckpt", weights_only=False)
    assert all(k.startswith("ModelCheckpoint{") for k in last["callbacks"])  # Lightning's own keys
    state = next(v for k, v in last["callbacks"].items() if "val/dice" in k)
    scores = [float(v) for v in state["best_k_models"].values()]
    old = next(v for k, v in best_before["callbacks"].items() if "val/dice" in k)["best_model_score"]
    assert float(state["best_model_score"]) >= float(old)  # the copied best score still counted
    assert all(os.path.dirname(p) == str(copy / "checkpoints") for p in state["best_k_models"])
    assert scores and max(scores) == float(state["best_model_score"])
    # a checkpoint resumed into a new, empty folder: its best starts afresh there (it used to name
    # a best.ckpt the new folder never got, and the run failed at its end)
    fresh = tmp_path / "fresh"
    result = train(TrainConfig(**cfg, out=str(fresh), epochs=2,
                               resume=str(first / "checkpoints" / "last.ckpt")))
    assert os.path.isfile(result["model"]) and os.path.isfile(fresh / "checkpoints" / "best.ckpt")


def test_reports_that_describe_no_finding_are_warned_about(tiny_phantom, tmp_path):
    import warnings

    from medseg_r.data.readers import DataWarning
    from medseg_r.engine.train import make_loaders

    data = _manifest_copy(tiny_phantom, "negative.jsonl", lambda r: {**r, "report": "No nodule. No effusion."})
    cfg = TrainConfig(data=data, out=str(tmp_path / "run"), backbone="sam_tiny", img_size=64, progress=False)
    with pytest.warns(DataWarning, match="none of the 28 training reports read describes a finding"):
        make_loaders(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        make_loaders(TrainConfig(data=tiny_phantom, out=str(tmp_path / "run"), backbone="sam_tiny", img_size=64))


def test_resuming_another_runs_checkpoint_into_a_finished_run_is_refused(tiny_phantom, tmp_path):
    cfg = dict(data=tiny_phantom, backbone="sam_tiny", img_size=64, epochs=1, batch_size=4,
               limit_train_batches=1, progress=False)
    train(TrainConfig(**cfg, out=str(tmp_path / "a")))
    train(TrainConfig(**cfg, out=str(tmp_path / "b")))
    before = os.path.getmtime(tmp_path / "b" / "model.ckpt")
    with pytest.raises(ValueError, match="already holds another training run"):
        train(TrainConfig(**{**cfg, "epochs": 2}, out=str(tmp_path / "b"),
                          resume=str(tmp_path / "a" / "checkpoints" / "epoch000.ckpt")))
    assert os.path.getmtime(tmp_path / "b" / "model.ckpt") == before


def test_a_resume_takes_the_runs_own_epochs_precision_and_model_weights_and_goes_on_in_its_log(
        tiny_phantom, tmp_path):
    import csv

    from medseg_r.cli import main

    out = str(tmp_path / "run")
    base = ["--data", tiny_phantom, "--out", out, "--backbone", "sam_tiny", "--img-size", "64",
            "--batch-size", "4", "--limit-train-batches", "1"]
    assert main(["train", *base, "--epochs", "2", "--precision", "32-true", "--model-weights",
                 "last"]) == 0
    log = os.path.join(out, "logs", "version_0", "metrics.csv")
    before = list(csv.DictReader(open(log)))
    assert [(r["epoch"], r["step"], r["val/dice"] != "") for r in before] == \
        [("0", "0", False), ("0", "0", True), ("1", "1", False), ("1", "1", True)]
    os.remove(os.path.join(out, "model.ckpt"))
    os.remove(os.path.join(out, "checkpoints", "epoch001.ckpt"))  # as if stopped late in epoch 2
    assert main(["train", "--data", tiny_phantom, "--out", out, "--resume", "auto"]) == 0
    saved = torch.load(os.path.join(out, "model.ckpt"), map_location="cpu", weights_only=False)
    config = saved["extra"]["train_config"]
    assert (config["epochs"], config["precision"], config["model_weights"]) == (2, "32-true", "last")
    assert saved["extra"]["global_step"] == 2 and saved["extra"]["weights_from"].endswith("last.ckpt")
    # the resumed run goes on in the run's log (it started logs/version_1: one curve in two files),
    # without a second copy of the rows of the epoch the stop interrupted
    assert os.listdir(os.path.join(out, "logs")) == ["version_0"]
    after = list(csv.DictReader(open(log)))
    assert [(r["epoch"], r["step"], r["val/dice"] != "") for r in after] == \
        [(r["epoch"], r["step"], r["val/dice"] != "") for r in before]
    assert after[:2] == before[:2]  # the first epoch's rows as they were


def test_a_run_stopped_by_sigterm_says_so_and_exits_143(tiny_phantom, tmp_path, monkeypatch, capsys):
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from medseg_r.cli import main

    def stopped(self, *args, **kwargs):
        raise SIGTERMException(0)  # what Lightning raises (a SystemExit) when SIGTERM arrives

    monkeypatch.setattr(L.Trainer, "fit", stopped)
    assert main(["train", "--data", tiny_phantom, "--out", str(tmp_path / "run"), "--backbone",
                 "sam_tiny", "--img-size", "64", "--epochs", "1"]) == 143
    err = capsys.readouterr().err
    assert "training stopped by SIGTERM" in err and "--resume auto" in err


def test_reference_boxes_with_lesion_free_validation_cases_is_refused_before_training(tiny_phantom,
                                                                                      tmp_path):
    import json

    from PIL import Image

    root = tiny_phantom
    rows = [json.loads(line) for line in open(os.path.join(tiny_phantom, "manifest.jsonl"))]
    for row in rows:
        if row["split"] == "val":
            mask = os.path.join(str(tmp_path), os.path.basename(row["mask"]))
            Image.fromarray(np.zeros_like(np.asarray(Image.open(os.path.join(root, row["mask"]))))).save(mask)
            row["mask"] = mask
        row["image"] = os.path.join(root, row["image"])
        row["mask"] = row["mask"] if os.path.isabs(row["mask"]) else os.path.join(root, row["mask"])
    data = tmp_path / "manifest.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match="none of the .* validation cases has a lesion"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="sam_tiny", img_size=64,
                          objective="reference_boxes", progress=False,
                          model_options={"priors": "none", "matched_capacity": False, "inject_at": []}))
    assert not (tmp_path / "run").exists()


def test_a_run_stopped_by_ctrl_c_exits_130_and_other_exits_pass_through(tiny_phantom, tmp_path,
                                                                        monkeypatch, capsys):
    import lightning as L

    from medseg_r.cli import main

    def interrupted(self, *args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)  # what Lightning does after its graceful shutdown

    argv = ["train", "--data", tiny_phantom, "--backbone", "sam_tiny", "--img-size", "64", "--epochs", "1"]
    monkeypatch.setattr(L.Trainer, "fit", interrupted)
    assert main([*argv, "--out", str(tmp_path / "a")]) == 130
    assert "training stopped by Ctrl-C" in capsys.readouterr().err
    monkeypatch.setattr(L.Trainer, "fit", lambda self, *a, **k: sys.exit(3))
    with pytest.raises(SystemExit) as caught:  # not a stop by the user: as it came
        main([*argv, "--out", str(tmp_path / "b")])
    assert caught.value.code == 3


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn", "ddp_fork"])
def test_every_ddp_launcher_looks_for_unused_parameters(strategy):
    # ddp_spawn and ddp_fork crashed on --objective localisation (parameters without a gradient)
    from medseg_r.engine.train import resolve_strategy

    cfg = TrainConfig(data="d", out="o", devices=2, accelerator="cpu", strategy=strategy)
    assert resolve_strategy(cfg) == f"{strategy}_find_unused_parameters_true"


def test_the_progress_bar_can_be_pickled():
    # ddp_spawn pickles the callbacks: a class defined inside a function cannot be
    import pickle

    from medseg_r.engine.train import _progress_bar

    assert type(pickle.loads(pickle.dumps(_progress_bar()))) is type(_progress_bar())


def test_a_run_resumed_with_another_number_of_processes_is_refused(tmp_path):
    # the processes share out the batches: a resume in one process went on with other steps,
    # schedule and best epoch without a word
    from medseg_r.engine.train_checks import LOADER_KEY, check_same_settings

    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": {}, LOADER_KEY: {"batch_size": 2, "processes": 2}, "epoch": 0}, path)
    check_same_settings(str(path), {}, loader={"batch_size": 2, "processes": 2})
    with pytest.raises(ValueError, match="processes 2 -> 1"):
        check_same_settings(str(path), {}, loader={"batch_size": 2, "processes": 1})


def test_a_resume_takes_the_runs_devices_and_strategy(tmp_path):
    from medseg_r.engine.train_checks import RUN_KEY, run_settings

    path = tmp_path / "last.ckpt"
    torch.save({RUN_KEY: {"devices": 2, "strategy": "ddp", "num_nodes": 1, "accelerator": "cpu"}}, path)
    assert run_settings(str(path)) == {"devices": 2, "strategy": "ddp", "num_nodes": 1,
                                       "accelerator": "cpu"}


def test_epochs_added_to_a_finished_run_are_said_to_barely_train(tmp_path):
    # 30 -> 33 epochs resumed "successfully" at 0.3 % of the peak rate: the weights moved 0.001
    import warnings

    import torch

    from medseg_r.engine.task import lr_factor
    from medseg_r.engine.train_checks import RUN_KEY, check_same_settings

    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": {"schedule": "cosine", "warmup_fraction": 0.05}, "epoch": 29,
                "global_step": 300, RUN_KEY: {"epochs": 30}}, path)
    with pytest.warns(UserWarning, match=r"finished 30 of its 30 epoch\(s\) of its cosine schedule: laid "
                                         r"over 33 epochs, the added ones start at 2\.\d % of the peak"):
        check_same_settings(str(path), {}, epochs=33)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_same_settings(str(path), {}, epochs=60)  # doubled: they start at half the peak
        check_same_settings(str(path), {}, epochs=30)
        # a run of 10 epochs stopped after 9, resumed as its stop message says: no epoch is added
        torch.save({"hyper_parameters": {"schedule": "cosine", "warmup_fraction": 0.05}, "epoch": 8,
                    "global_step": 90, RUN_KEY: {"epochs": 10}}, path)
        check_same_settings(str(path), {}, epochs=10)
    # resumed with 11: the added one starts where the planned tenth ends, not at the ninth's end
    with pytest.warns(UserWarning, match=r"finished 9 of its 10 epoch\(s\).* start at 2\.\d %"):
        check_same_settings(str(path), {}, epochs=11)
    assert lr_factor(0, 100, warmup_fraction=0.05, schedule="cosine") == 0.2
    assert lr_factor(100, 100, warmup_fraction=0.05, schedule="cosine") == 0.0


def _captured_config(monkeypatch):
    """Run the train command up to the training itself: the TrainConfig it would train with."""
    import medseg_r.engine.train as engine_train

    seen = []

    def capture(cfg):
        seen.append(cfg)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(engine_train, "train", capture)
    return seen


def test_train_cli_config_typos_dataset_options_and_checkpoint_backbone(tiny_phantom, tmp_path,
                                                                        monkeypatch, capsys):
    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.cli import main

    (tmp_path / "c.yaml").write_text(f"data: {tiny_phantom}\nepoch: 3\n")
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r0")]) == 2
    assert "unknown training option 'epoch' in" in (err := capsys.readouterr().err)
    assert "(did you mean 'epochs'?)" in err  # was "TrainConfig.__init__() got an unexpected keyword"
    seen = _captured_config(monkeypatch)
    (tmp_path / "c.yaml").write_text(f"data: {tiny_phantom}\ndataset_options: {{prompt: p1}}\n")
    main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r1"), "--dataset-options",
          '{"window": [-600, 1500]}', "--no-keep-epoch-checkpoints"])
    assert seen[-1].dataset_options == {"prompt": "p1", "window": [-600, 1500]}
    assert seen[-1].keep_epoch_checkpoints is False
    # a model.ckpt of another backbone: its backbone and size, as predict takes them (it was refused:
    # "trained on backbone 'litemedsam', not 'sam_tiny'")
    save_model(build_model("litemedsam", pretrained=False), str(tmp_path / "lite.ckpt"))
    main(["train", "--data", tiny_phantom, "--out", str(tmp_path / "r2"), "--checkpoint",
          str(tmp_path / "lite.ckpt")])
    assert (seen[-1].backbone, seen[-1].img_size) == ("litemedsam", 256)
    assert "note: backbone litemedsam at 256 px, as" in capsys.readouterr().err
    main(["train", "--data", tiny_phantom, "--out", str(tmp_path / "r3"), "--checkpoint",
          str(tmp_path / "lite.ckpt"), "--backbone", "sam_tiny"])
    assert seen[-1].backbone == "sam_tiny"  # said: the training's own check refuses the mismatch


@pytest.mark.parametrize("precision", ["64", "16-true", "bf16-true"])
def test_a_precision_that_casts_the_weights_is_refused_before_anything_is_written(tiny_phantom, tmp_path,
                                                                                 precision):
    # it failed in the first step, "weights must stay float32 (they are torch.float64)", after
    # RUN/logs/version_0 was made
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"precision '{precision}' casts the weights.*give 32-true, "
                                         f"bf16-mixed or 16-mixed"):
        train(TrainConfig(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64,
                          precision=precision, epochs=1, progress=False))
    assert not out.exists()


def test_a_feature_cache_inside_a_file_is_refused_before_anything_is_written(tiny_phantom, tmp_path):
    # it failed with "Not a directory" after RUN/logs was written, without naming the option
    out = tmp_path / "run"
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(ValueError, match=r"feature_cache .*notes.txt/cache: .* is a "
                                         r"file, so no folder can be made there"):
        train(TrainConfig(data=tiny_phantom, out=str(out), backbone="sam_tiny", img_size=64,
                          feature_cache=str(tmp_path / "notes.txt" / "cache"), epochs=1, progress=False))
    assert not out.exists()


def test_several_nodes_without_a_launcher_say_what_the_run_waits_for(tiny_phantom, tmp_path, monkeypatch,
                                                                     capsys):
    # --num-nodes 2 hung at "MEMBER: 1/2" without a word
    from medseg_r.cli import main

    for name in ("MASTER_ADDR", "NODE_RANK", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    _captured_config(monkeypatch)
    main(["train", "--data", tiny_phantom, "--out", str(tmp_path / "r"), "--num-nodes", "2"])
    assert "note: --num-nodes 2: training waits until every node has joined" in capsys.readouterr().err
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    main(["train", "--data", tiny_phantom, "--out", str(tmp_path / "r"), "--num-nodes", "2"])
    assert "waits until every node" not in capsys.readouterr().err


def test_the_run_config_names_its_folders_from_anywhere(tmp_path, monkeypatch):
    # a relative feature cache that did not exist yet stayed relative: the config run elsewhere
    # built a new cache there
    import yaml

    from medseg_r.engine.train import _write_config
    from medseg_r.engine.train_checks import _shipped_argument

    monkeypatch.chdir(tmp_path)
    os.makedirs("run")
    _write_config(TrainConfig(data="data/manifest.jsonl", out="run", feature_cache="fc",
                              checkpoint="litemedsam_phantom"))
    settings = yaml.safe_load(open(tmp_path / "run" / "config.yaml"))
    assert settings["feature_cache"] == str(tmp_path / "fc")
    assert settings["data"] == str(tmp_path / "data" / "manifest.jsonl")
    assert settings["checkpoint"] == "litemedsam_phantom" and "resume" not in settings
    # the fine-tune hint names shipped weights the package has, else the default model
    assert _shipped_argument("litemedsam_phantom_none") == "'litemedsam_phantom_none'"
    assert _shipped_argument("custom_tuned") == ""

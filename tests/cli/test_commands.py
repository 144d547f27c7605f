import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main


def test_parse_report_json(capsys):
    assert main(["parse-report", "2 cm round nodule in the right upper lobe", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["location"]["side"] == "right"


def test_parse_report_file_keeps_order(tmp_path, capsys):
    src = tmp_path / "reports.txt"
    src.write_text("No effusion.\n\nSpiculated mass in the left upper lobe.\n")
    assert main(["parse-report", "--input", str(src), "--json"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
    assert [l["report"] for l in lines] == ["No effusion.", "", "Spiculated mass in the left upper lobe."]
    assert lines[0]["findings"][0]["negated"] and lines[1]["findings"] == []


def test_parse_report_summary_highlights_spans(capsys):
    assert main(["parse-report", "Hypoechoic mass in the left breast", "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\033[1;33mHypoechoic\033[0m" in out and "texture: hypoechoic" in out


@pytest.mark.parametrize("argv, message", [
    (["parse-report"], "either TEXT or --input"),
    (["parse-report", "--input", "/nonexistent/file.txt"], "not found"),
    (["parse-report", "--input", "OUTDIR"], "is a folder: give a text, .jsonl or .csv file"),
    (["export", "--checkpoint", "OUTDIR", "--format", "onnx", "--out", "OUT"], "is a folder, not a checkpoint file"),
    (["predict", "--image", "GOOD", "--report-file", "OUTDIR", "--out", "OUT", "--backbone", "sam_tiny"],
     "is a folder: give a text file"),
    (["predict", "--image", "/nonexistent.png", "--report", "nodule", "--out", "OUT", "--backbone", "sam_tiny"],
     "input not found"),
    (["predict", "--image", "CORRUPT", "--report", "nodule", "--out", "OUT", "--backbone", "sam_tiny"],
     "not a readable image|could not be decoded"),
    (["predict", "--image", "GOOD", "--report", "nodule", "--out", "OUT", "--checkpoint", "CORRUPT"],
     "cannot read checkpoint"),
    (["predict", "--image", "GOOD", "--report", "nodule", "--out", "OUT", "--backbone", "nosuch"],
     "nosuch"),
    (["predict", "--image", "GOOD", "--report", "nodule", "--out", "GOOD", "--backbone", "sam_tiny"],
     "is a file, not a folder"),
    (["predict", "--image", "GOOD", "--report", "nodule", "--out", "OUT", "--window", "-600", "0"],
     "WIDTH must be positive"),
    (["predict", "--example", "--report", "", "--out", "OUT", "--backbone", "sam_tiny"], "empty"),
    (["predict", "--example", "--image", "GOOD", "--out", "OUT"], "leave out --image"),
    (["predict", "--image", "GOOD", "--report", "nodule", "--out", "OUT", "--backbone", "sam_tiny",
      "--reference", "/nonexistent_ref.png"], "reference mask not found: /nonexistent_ref.png"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(good)
    (tmp_path / "folder").mkdir()
    argv = [str(corrupt) if a == "CORRUPT" else str(good) if a == "GOOD" else str(tmp_path / "out") if a == "OUT"
            else str(tmp_path / "folder") if a == "OUTDIR" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medseg-r: error:") and re.search(message, err) and len(err.splitlines()) == 1
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


def test_predict_example_writes_mask_overlay_and_priors(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--example", "--backbone", "sam_tiny", "--out", str(out)]) == 0
    names = sorted(os.listdir(out))
    assert names == ["example.png", "example_mask.png", "example_overlay.png", "example_prediction.json"]
    summary = json.loads((out / "example_prediction.json").read_text())
    assert summary["report"]["findings"][0]["location"]["segment"] == "upper lobe"
    assert summary["model"]["trained_priors"] is False
    mask = np.array(Image.open(out / "example_mask.png"))
    assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 255}
    assert np.array(Image.open(out / "example_overlay.png")).ndim == 3
    assert main(["predict", "--example", "--backbone", "sam_tiny", "--out", str(out)]) == 0  # its own: again
    failed = tmp_path / "failed"  # a model that cannot load: nothing is written
    assert main(["predict", "--example", "--out", str(failed), "--checkpoint", str(tmp_path / "none.ckpt")]) == 2
    assert not failed.exists() or not os.listdir(failed)
    stopped = tmp_path / "stopped"  # a first run that stopped after writing the example image
    stopped.mkdir()
    (stopped / "example.png").write_bytes((out / "example.png").read_bytes())
    assert main(["predict", "--example", "--backbone", "sam_tiny", "--out", str(stopped)]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "example.png").write_bytes(b"the user's picture")
    capsys.readouterr()
    assert main(["predict", "--example", "--backbone", "sam_tiny", "--out", str(mine)]) == 2
    assert "exists and is not an earlier example's" in capsys.readouterr().err
    assert (mine / "example.png").read_bytes() == b"the user's picture"


def test_commands_whose_extra_is_missing_say_how_to_install_it(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("uvicorn", "onnxscript") else real(name, *a))
    assert main(["serve", "--backbone", "sam_tiny"]) == 2
    assert "pip install 'medseg-r[serve]'" in capsys.readouterr().err
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"unused")
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx"]) == 2
    assert "pip install 'medseg-r[export]'" in capsys.readouterr().err


def test_parse_report_reads_the_report_of_each_jsonl_row(tmp_path, capsys):
    rows = [{"id": "a", "image": "a.png", "report": "2 cm nodule in the right upper lobe."},
            {"id": "b", "image": "b.png", "report": "No focal lesion."}, ["not", "a", "row"],
            {"id": "c", "image": "c.png"}]
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    assert main(["parse-report", "--input", str(path), "--json"]) == 1
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 4 and out[0]["findings"][0]["location"]["side"] == "right"  # the blank line skipped
    assert (out[0]["id"], out[0]["line"], out[1]["id"], out[1]["line"]) == ("a", 1, "b", 3)
    assert out[1]["findings"] == [] or all(f["negated"] for f in out[1]["findings"])
    assert out[2] == {"error": "expected a JSON object, got list", "line": 4}
    assert out[3] == {"error": "a .jsonl line must be a JSON object with a 'report' text", "line": 5, "id": "c"}


def test_train_help_states_the_defaults_train_uses():
    import dataclasses

    from medseg_r.cli import TRAIN_DEFAULTS
    from medseg_r.engine.train import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert TRAIN_DEFAULTS == {k: defaults[k] for k in TRAIN_DEFAULTS}


def test_every_option_of_every_command_is_explained(capsys):
    import argparse

    from medseg_r.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [f"{name} {action.option_strings or action.dest}"
            for name, sub in commands.choices.items() for action in sub._actions
            if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not bare


def _phantom_cli(out, n=3):
    return main(["make-data", "phantom", str(out), "--n", str(n), "--size", "64"])


def test_make_data_keeps_a_folder_that_is_not_its_own(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "manifest.jsonl").write_text('{"id": "a"}\n')
    (mine / "images" / "case_00000.png").write_bytes(b"the user's image")
    assert _phantom_cli(mine) == 2
    assert "not empty and not an earlier make-data's folder (it holds manifest.jsonl)" in capsys.readouterr().err
    assert (mine / "manifest.jsonl").read_text() == '{"id": "a"}\n'
    assert (mine / "images" / "case_00000.png").read_bytes() == b"the user's image"
    ours = tmp_path / "ours"
    assert _phantom_cli(ours) == 0 and _phantom_cli(ours) == 0  # its own, same settings: reused
    capsys.readouterr()
    assert _phantom_cli(ours, n=4) == 2  # other settings would leave a mix of two generations
    assert "holds a phantom of --n 3" in capsys.readouterr().err
    (tmp_path / "stopped" / "images").mkdir(parents=True)  # a generation killed before its manifest
    (tmp_path / "stopped" / "images" / "case_00001.png").write_bytes(b"x")
    assert _phantom_cli(tmp_path / "stopped") == 0
    (ours / "dataset.json").unlink()  # killed between its manifest and its dataset.json
    (ours / ".partial-abc.json").write_text("")
    assert _phantom_cli(ours) == 0 and (ours / "dataset.json").exists()


def test_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["make-data", "phantom", str(tmp_path / "file" / "data"), "--n", "2", "--size", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medseg-r: error: Not a directory:") and len(err.splitlines()) == 1


def test_evaluate_replaces_only_an_earlier_evaluate(tmp_path, capsys):
    from medseg_r.model import build_model, save_model

    data = tmp_path / "data"
    assert _phantom_cli(data, n=20) == 0
    ckpt = tmp_path / "model.ckpt"
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    out = tmp_path / "ev"
    run = ["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--split", "val", "--out", str(out)]
    assert main(run + ["--overlays", "2"]) == 0 and len(os.listdir(out / "overlays")) == 2
    assert main(run) == 0 and not (out / "overlays").exists()  # no overlay left of the earlier run
    (out / "overlays").mkdir()  # as an earlier version's interrupted evaluate left it: overlays,
    (out / "summary.json").unlink()  # no summary
    (out / "overlays" / "case_00001.png").write_bytes(b"x")
    assert main(run) == 0 and not (out / "overlays").exists()
    (out / "summary.json").write_text('{"mine": 1}')
    capsys.readouterr()
    err_ok = main(run) == 2 and "a summary.json evaluate did not write" in capsys.readouterr().err
    assert err_ok and (out / "summary.json").read_text() == '{"mine": 1}'
    assert main(run[:-1] + [str(tmp_path / "ev2"), "--overlays", "-1"]) == 2


def _evaluate_setup(tmp_path):
    from medseg_r.model import build_model, save_model

    image = np.zeros((64, 64), np.uint8)
    image[20:30, 10:20] = 200
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray((image > 0).astype(np.uint8)).save(tmp_path / "m.png")
    ckpt = tmp_path / "model.ckpt"
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    return ckpt


def test_evaluate_refuses_a_case_id_with_a_folder_part_before_writing(tmp_path, capsys):
    # "../../img" wrote its overlay over the user's own image
    ckpt = _evaluate_setup(tmp_path)
    before = (tmp_path / "img.png").read_bytes()
    for case in ("../../img", "sub/x"):
        (tmp_path / "c.csv").write_text(f'id,image,mask,report\n{case},img.png,m.png,"nodule RUL"\n')
        assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "c.csv"),
                     "--out", str(tmp_path / "out" / "ev"), "--overlays", "1"]) == 2
        assert "must be a plain file name" in capsys.readouterr().err
    assert (tmp_path / "img.png").read_bytes() == before and not (tmp_path / "out").exists()


def test_evaluate_keeps_a_manifest_named_cases_csv_in_its_out_folder(tmp_path, capsys):
    ckpt = _evaluate_setup(tmp_path)
    manifest = 'image,mask,report\n../img.png,../m.png,"nodule RUL"\n'
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "cases.csv").write_text(manifest)  # the folder holds nothing else
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "mine" / "cases.csv"),
                 "--out", str(tmp_path / "mine")]) == 2
    assert "a cases.csv evaluate did not write" in capsys.readouterr().err
    assert (tmp_path / "mine" / "cases.csv").read_text() == manifest


def test_an_interrupted_evaluate_leaves_the_earlier_results_whole(tmp_path, monkeypatch, capsys):
    import medseg_r.engine.evaluate as ev

    ckpt = _evaluate_setup(tmp_path)
    (tmp_path / "c.csv").write_text('id,image,mask,report\na,img.png,m.png,"nodule RUL"\n')
    run = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "c.csv"),
           "--out", str(tmp_path / "ev"), "--overlays", "1"]
    assert main(run) == 0
    before = {n: (tmp_path / "ev" / n).read_bytes() for n in ("cases.csv", "summary.json")}
    def stopped(*args, out_dir=None, **kwargs):
        with open(os.path.join(out_dir, "cases.csv"), "w") as handle:  # half written, then Ctrl-C
            handle.write("id,tags,dice,iou,hd95\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate", stopped)
    assert main(run) == 130
    assert {n: (tmp_path / "ev" / n).read_bytes() for n in before} == before
    assert sorted(os.listdir(tmp_path / "ev")) == ["cases.csv", "overlays", "summary.json"]


def test_predict_keeps_the_prediction_of_another_image_of_the_same_name(tmp_path, capsys):
    image = np.zeros((64, 64), np.uint8)
    image[20:30, 10:20] = 200
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        Image.fromarray(image).save(tmp_path / folder / "scan.png")
    out = tmp_path / "out"
    run = ["predict", "--backbone", "sam_tiny", "--untrained", "--quiet", "--report",
           "nodule in the right upper lobe", "--out", str(out), "--image"]
    assert main(run + [str(tmp_path / "a" / "scan.png")]) == 0
    assert main(run + [str(tmp_path / "a" / "scan.png")]) == 0  # the same image again: replaced
    capsys.readouterr()
    assert main(run + [str(tmp_path / "b" / "scan.png")]) == 2
    assert "holds the prediction of another image of the same name" in capsys.readouterr().err
    summary = json.loads((out / "scan_prediction.json").read_text())
    assert summary["input"] == str(tmp_path / "a" / "scan.png")
    (out / "scan_prediction.json").write_text('{"mine": 1}')  # a file of the user's with that name
    assert main(run + [str(tmp_path / "a" / "scan.png")]) == 2
    assert "is not an earlier prediction's summary" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("strip", "is a strip"),
    ("long_report", "characters long; the limit is 200,000"),
    ("float_reference", "holds non-integer values"),
])
def test_predict_input_errors_are_one_line(tmp_path, capsys, case, message):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(good)
    argv = ["predict", "--backbone", "sam_tiny", "--untrained", "--out", str(tmp_path / "out"),
            "--image", str(good), "--report", "nodule in the right upper lobe"]
    if case == "strip":
        Image.fromarray(np.zeros((8, 2000), np.uint8)).save(tmp_path / "strip.png")
        argv[argv.index("--image") + 1] = str(tmp_path / "strip.png")
    elif case == "long_report":
        (tmp_path / "long.txt").write_text("nodule in the right upper lobe. " * 7000)
        argv = argv[:-2] + ["--report-file", str(tmp_path / "long.txt")]
    else:
        Image.fromarray(np.full((64, 64), 0.37, np.float32)).save(tmp_path / "ref.tif")
        argv += ["--reference", str(tmp_path / "ref.tif")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medseg-r: error:") and message in err[-1]


def test_a_train_config_that_is_no_mapping_is_one_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("- data: x\n- out: y\n")
    assert main(["train", str(config), "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "must be a mapping of option: value, got a list" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_unread_report_segmented_without_priors_gives_the_image_alone_mask(tmp_path, capsys):
    # the default backbone with its shipped weights: before, "--no-finding segment" asked the
    # localiser for no box at all and the mask was empty (0 px)
    example = tmp_path / "example"
    assert main(["predict", "--example", "--out", str(example), "--quiet"]) == 0
    described = np.array(Image.open(example / "example_mask.png")) > 0
    unread = ["predict", "--image", str(example / "example.png"), "--report",
              "Note is made of a smudgy spot.", "--out", str(tmp_path / "unread"), "--quiet"]
    assert main(unread) == 2  # by default the user is asked to rephrase
    assert main(unread + ["--no-finding", "segment"]) == 0
    summary = json.loads((tmp_path / "unread" / "example_prediction.json").read_text())
    assert summary["report"]["findings"] == []
    mask = np.array(Image.open(tmp_path / "unread" / "example_mask.png")) > 0
    assert described.sum() > 50 and (mask & described).sum() > 0.8 * described.sum()


@pytest.mark.parametrize("backbone, noted", [(None, True), ("litemedsam", False)])
def test_train_says_when_it_starts_from_random_weights(tmp_path, capsys, backbone, noted):
    argv = ["train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "run")]
    assert main(argv + (["--backbone", backbone] if backbone else [])) == 2  # the data is missing
    assert ("sam_tiny is a small SAM built from random weights" in capsys.readouterr().err) == noted


def test_a_reader_that_leaves_the_pipe_early_gets_no_traceback(tmp_path):
    import subprocess
    import sys

    reports = tmp_path / "reports.txt"
    reports.write_text("A 2 cm nodule in the right upper lobe. No effusion.\n" * 3000)
    proc = subprocess.Popen([sys.executable, "-m", "medseg_r.cli", "parse-report", "--input",
                             str(reports)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"A 2 cm")
    proc.stdout.close()  # as "| head -1" does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err


@pytest.mark.parametrize("device, message", [("banana", "is not a device"),
                                             ("mps", "runs on cpu or cuda")])
def test_a_bad_device_is_refused_before_anything_is_written(tmp_path, capsys, device, message):
    out = tmp_path / "out"
    assert main(["predict", "--example", "--out", str(out), "--device", device]) == 2
    assert message in capsys.readouterr().err and not out.exists()
    pytest.importorskip("starlette")  # serve's extra; without it serve stops earlier, for that
    assert main(["serve", "--device", device, "--port", "0"]) == 2
    assert message in capsys.readouterr().err


def test_cuda_without_a_gpu_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["predict", "--example", "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "no CUDA GPU is available here" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--threshold", "2"], ["--box", "5", "5", "1", "1"],
                                 ["--window", "40", "-5"], ["--largest", "-1"]])
def test_bad_predict_options_are_refused_before_torch_is_imported(tmp_path, bad):
    import subprocess
    import sys

    argv = ["predict", "--example", "--out", str(tmp_path / "o"), *bad]
    code = (f"import sys; from medseg_r.cli import main; rc = main({argv!r}); "
            f"print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stderr[-500:]
    assert "medseg-r: error:" in out.stderr and not (tmp_path / "o").exists()


def test_a_broken_pipe_is_the_output_s_only_when_its_reader_left(monkeypatch):
    import io
    import os

    from medseg_r.cli import _stdout_closed

    read, write = os.pipe()
    out = io.TextIOWrapper(io.FileIO(write, "w"))
    monkeypatch.setattr("sys.stdout", out)
    try:
        assert not _stdout_closed()  # a reader is there: another pipe broke, the error is raised
        os.close(read)
        assert _stdout_closed()
    finally:
        monkeypatch.undo()
        out.close()


@pytest.mark.parametrize("argv", [["demo", "--seed", "-5", "--out", "OUT"],
                                  ["make-data", "phantom", "OUT", "--seed", "-1"],
                                  ["train", "--data", "OUT", "--out", "OUT", "--seed", "-3"]])
def test_a_negative_seed_is_a_usage_error_before_anything_is_written(tmp_path, capsys, argv):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and "--seed: must be >= 0" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


def test_shipped_weights_are_taken_by_name_or_file_where_a_checkpoint_is(tmp_path, capsys):
    import medseg_r
    from medseg_r.model.shipped import shipped_names

    if "litemedsam_phantom_none" not in shipped_names():
        pytest.skip("the shipped phantom weights are not in this checkout")
    shipped_file = os.path.join(os.path.dirname(medseg_r.__file__), "weights", "litemedsam_phantom_none.pt")
    for i, value in enumerate(("litemedsam_phantom_none", shipped_file)):
        out = tmp_path / f"p{i}"
        assert main(["predict", "--example", "--checkpoint", value, "--out", str(out)]) == 0
        summary = json.loads((out / "example_prediction.json").read_text())
        assert summary["model"]["trained_priors"] is True
        assert summary["model"]["shipped_weights"]["name"] == "litemedsam_phantom_none"
        assert "not for clinical use" in capsys.readouterr().err


def test_a_lightning_checkpoint_or_untrained_with_a_checkpoint_is_one_line(tmp_path, capsys):
    import torch

    ckpt = tmp_path / "last.ckpt"
    torch.save({"pytorch-lightning_version": "2.6.6",
                "state_dict": {"model.sam.mask_decoder.x": torch.zeros(1)}}, ckpt)
    out = tmp_path / "out"
    assert main(["predict", "--example", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is neither a MedSeg-R model nor backbone weights: it is a Lightning training checkpoint" in err and "model.ckpt" in err
    assert len(err.splitlines()) == 1 and not out.exists()
    assert main(["predict", "--example", "--untrained", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "--untrained and --checkpoint exclude each other" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_scores_shipped_weights_by_name(tmp_path, capsys):
    from medseg_r.model.shipped import shipped_names

    if "litemedsam_phantom" not in shipped_names():
        pytest.skip("the shipped phantom weights are not in this checkout")
    data, out = tmp_path / "data", tmp_path / "eval"
    assert main(["make-data", "phantom", str(data), "--n", "10", "--seed", "5", "--splits", "test"]) == 0
    assert main(["evaluate", "--checkpoint", "litemedsam_phantom", "--data", str(data),
                 "--out", str(out)]) == 0
    assert "not for clinical use" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["overall"]["n"] >= 1


@pytest.mark.parametrize("pack, message", [
    ("context:\n  negation_pre: [no, absent]\n", "is not text"),
    ("a: [b\n", "is not valid YAML"),
    (None, "vocabulary pack not found"),
    ("FOLDER", "Is a directory"),
])
def test_a_bad_vocabulary_pack_is_one_line_before_the_command_starts(tmp_path, capsys, monkeypatch,
                                                                     pack, message):
    from medseg_r.report.vocab import default_vocabulary

    path = tmp_path / "pack.yaml"
    if pack == "FOLDER":
        path.mkdir()
    elif pack is not None:
        path.write_text(pack)
    monkeypatch.setenv("MEDSEG_R_VOCAB", str(path))
    default_vocabulary.cache_clear()
    try:
        image, mask = tmp_path / "i.png", tmp_path / "m.png"
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
        Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 12)).save(mask)
        for argv in (["parse-report", "Nodule in the RUL."],
                     ["describe", "--image", str(image), "--mask", str(mask)]):
            assert main(argv) == 2
            captured = capsys.readouterr()
            err = captured.err.strip()
            assert err.startswith("medseg-r: error: MEDSEG_R_VOCAB:") and message in err
            assert len(err.splitlines()) == 1 and "mask" not in err and not captured.out
    finally:
        monkeypatch.delenv("MEDSEG_R_VOCAB")
        default_vocabulary.cache_clear()


def test_a_config_whose_model_options_are_no_mapping_is_one_line_with_options(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("model_options: abc\n")
    argv = ["train", str(config), "--data", "d.jsonl", "--out", str(tmp_path / "run"),
            "--options", '{"deformable": false}']
    assert main(argv) == 2
    assert "model_options in" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_evaluate_reads_the_data_with_the_run_s_dataset_options_unless_told_otherwise(tmp_path, capsys):
    from medseg_r import build_model
    from medseg_r.checkpoint import save_model

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    items = []
    for i in range(2):
        Image.fromarray(np.full((64, 64), 90 + i, np.uint8)).save(tmp_path / "images" / f"c{i}.png")
        Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 28)).save(tmp_path / "masks" / f"c{i}.png")
        items.append({"img_name": f"c{i}.png", "mask_name": f"c{i}.png", "split": "test",
                      "prompts": {"p5": "nodule in the right upper lobe"}})  # no p0
    (tmp_path / "d.json").write_text(json.dumps(items))
    checkpoint = tmp_path / "model.ckpt"
    save_model(build_model("sam_tiny", img_size=64), checkpoint,
               extra={"train_config": {"dataset_options": {"prompt": "p5"}}})
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "d.json")]
    assert main(argv + ["--out", str(tmp_path / "e1")]) == 0
    assert "with the run's dataset options {'prompt': 'p5'}" in capsys.readouterr().err
    assert main(argv + ["--out", str(tmp_path / "e2"), "--dataset-options", '{"prompt": "p0"}']) == 2
    assert "no prompt 'p0'" in capsys.readouterr().err


def test_a_resumed_run_takes_the_settings_its_command_leaves_out_from_the_run(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["make-data", "phantom", str(data), "--n", "20", "--seed", "4", "--size", "64"]) == 0
    first = ["train", "--data", str(data), "--out", str(run), "--img-size", "64", "--epochs", "1",
             "--batch-size", "4", "--lr", "0.002", "--limit-train-batches", "1"]
    assert main(first) == 0
    # --batch-size, --lr, --img-size and --limit-train-batches left out: the run's own, not defaults
    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "auto", "--epochs", "2"]) == 0
    capsys.readouterr()
    # a setting given anew that differs is still refused
    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "auto", "--epochs", "3",
                 "--batch-size", "8"]) == 2
    assert "batch_size 4 -> 8" in capsys.readouterr().err


def test_make_data_refuses_a_size_beyond_its_limit_before_writing(tmp_path, capsys):
    assert main(["make-data", "phantom", str(tmp_path / "out"), "--n", "1", "--size", "100000"]) == 2
    assert "size from 64 to 4096 pixels" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


def test_predict_on_a_folder_given_as_dot_names_its_outputs_after_the_folder(tmp_path, capsys,
                                                                              monkeypatch):
    from tests.data.test_volumes import _volume, _write_dicom_series

    vol, _ = _volume()
    _write_dicom_series(str(tmp_path / "series_a"), vol)
    monkeypatch.chdir(tmp_path / "series_a")
    out = tmp_path / "out"
    assert main(["predict", "--backbone", "sam_tiny", "--untrained", "--quiet", "--report",
                 "nodule in the right lung", "--image", ".", "--out", str(out)]) == 0
    assert "series_a_mask.nii.gz" in os.listdir(out)
    assert not any(name.startswith(".") for name in os.listdir(out))


def test_untrained_without_a_box_warns_that_the_mask_will_be_empty(tmp_path, capsys):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "scan.png")
    assert main(["predict", "--backbone", "sam_tiny", "--untrained", "--quiet", "--report",
                 "nodule in the right upper lobe", "--image", str(tmp_path / "scan.png"),
                 "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "needs a prompt to segment: without --box" in err
    assert "plain sam_tiny (random weights: it ships none; give --checkpoint)" in err  # it said nothing


def test_a_png_reference_scores_a_prediction_on_a_2d_nifti(tmp_path, capsys):
    import nibabel as nib

    picture = np.zeros((64, 48), np.uint8)
    picture[20:30, 10:20] = 200
    reference = (picture > 0).astype(np.uint8) * 255
    Image.fromarray(reference).save(tmp_path / "ref.png")
    # stored as a 2-D NIfTI whose display (radiological, RAS+) is the picture itself
    nib.save(nib.Nifti1Image(picture[::-1, ::-1].T.astype(np.float32), np.diag([0.8, 0.8, 3.0, 1.0])),
             str(tmp_path / "scan.nii.gz"))
    assert main(["predict", "--backbone", "sam_tiny", "--untrained", "--quiet", "--report",
                 "nodule in the right upper lobe", "--image", str(tmp_path / "scan.nii.gz"),
                 "--reference", str(tmp_path / "ref.png"), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "scan_prediction.json").read_text())
    assert summary["reference"]["reference_pixels"] == 100
    Image.fromarray(reference[:, :40]).save(tmp_path / "small.png")
    assert main(["predict", "--backbone", "sam_tiny", "--untrained", "--quiet", "--report",
                 "nodule in the right upper lobe", "--image", str(tmp_path / "scan.nii.gz"),
                 "--reference", str(tmp_path / "small.png"), "--out", str(tmp_path / "out2")]) == 2
    assert "is 40x64 pixels but the image is 48x64 as displayed" in capsys.readouterr().err


def test_make_data_counts_each_split_and_warns_of_an_empty_one(tmp_path, capsys):
    assert _phantom_cli(tmp_path / "three") == 0
    out, err = capsys.readouterr()
    assert "3 of 3 cases (3 train, 0 val, 0 test)" in out and "no val or test case among 3" in err
    assert _phantom_cli(tmp_path / "thirty", n=30) == 0
    out, err = capsys.readouterr()
    assert "30 of 30 cases (21 train, 3 val, 6 test)" in out and "warning" not in err
    # the splits a folder already held are counted too ("9 of 10 cases (7 train)" left out 2 test)
    part = tmp_path / "part"
    assert main(["make-data", "phantom", str(part), "--n", "10", "--size", "64", "--splits", "test"]) == 0
    assert main(["make-data", "phantom", str(part), "--n", "10", "--size", "64", "--splits", "train"]) == 0
    assert "9 of 10 cases (7 train, 2 test)" in capsys.readouterr().out


def test_a_fraction_of_the_batches_is_taken_on_the_command_line():
    from medseg_r.cli import build_parser

    args = build_parser().parse_args(["train", "--limit-train-batches", "0.5"])
    assert args.limit_train_batches == 0.5
    assert build_parser().parse_args(["train", "--limit-train-batches", "3"]).limit_train_batches == 3


def test_a_manifest_with_capitalised_columns_names_the_columns_it_has(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("Image,Mask,Report,split\na.png,b.png,x,train\n")
    assert main(["train", "--data", str(tmp_path / "m.csv"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "missing image, mask, report (its columns: Image, Mask, Report, split;" in err


def test_evaluate_checks_its_device_before_loading(tmp_path, capsys):
    ckpt = _evaluate_setup(tmp_path)
    (tmp_path / "c.csv").write_text('id,image,mask,report\na,img.png,m.png,"nodule RUL"\n')
    run = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "c.csv"), "--out", str(tmp_path / "ev")]
    assert main(run + ["--device", "tpu"]) == 2
    assert "--device 'tpu'" in capsys.readouterr().err
    assert main(run + ["--device", "cpu"]) == 0


def test_evaluate_keeps_a_folder_of_the_users_named_like_its_staging(tmp_path, capsys):
    ckpt = _evaluate_setup(tmp_path)
    (tmp_path / "c.csv").write_text('id,image,mask,report\na,img.png,m.png,"nodule RUL"\n')
    mine = tmp_path / "ev" / ".evaluate-notes"
    mine.mkdir(parents=True)
    (mine / "n.txt").write_text("mine")
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "c.csv"),
                 "--out", str(tmp_path / "ev")]) == 2
    assert "not empty and not an earlier evaluate's folder" in capsys.readouterr().err
    assert (mine / "n.txt").read_text() == "mine"

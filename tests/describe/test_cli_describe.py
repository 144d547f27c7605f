import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main


@pytest.fixture
def files(tmp_path, chest):
    image, mask = chest
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    return tmp_path


def test_describe_prints_the_report(files, capsys):
    assert main(["describe", "--image", str(files / "x.png"), "--mask", str(files / "m.png"),
                 "--spacing", "1.3671875"]) == 0
    out = capsys.readouterr().out.strip()
    assert re.search(r"2\.\d cm|2\d mm", out) and "right lung" in out and "upper zone" in out


def test_describe_json(files, capsys):
    assert main(["describe", "--image", str(files / "x.png"), "--mask", str(files / "m.png"),
                 "--json", "--style", "attribute", "--seed", "4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["style"] == "attribute" and data["seed"] == 4 and data["round_trip"]
    assert data["findings"][0]["location"]["side"] == "right"


@pytest.mark.parametrize("argv, message", [
    (["describe", "--image", "X"], "needs --mask"),
    (["describe"], "give one of --image"),
    (["describe", "--manifest", "M.jsonl"], "--manifest needs --out"),
    (["describe", "--data", "M.jsonl", "--out", "OUT"], "no manifest.jsonl"),
    (["describe", "--image", "X", "--mask", "SMALL"], "does not match"),
    (["describe", "--image", "/nonexistent.png", "--mask", "SMALL"], "not found"),
    (["describe", "--manifest", "/nonexistent.csv", "--out", "OUT"], "manifest not found"),
    (["describe", "--image", "X", "--mask", "CORRUPT"], "is not a readable image"),
    (["describe", "--image", "X", "--mask", "EMPTY"], "is not a readable image"),
    (["describe", "--image", "X", "--mask", "MASK", "--seed", "-5"], "--seed must be >= 0"),
    (["describe", "--image", "X", "--mask", "MASK", "--out", "OUT"], "--out is for --manifest"),
    (["describe", "--manifest", "M.jsonl", "--out", "OUT", "--json"], "--json is for --image"),
])
def test_errors_are_one_line_exit_2_nothing_written(files, capsys, argv, message):
    (files / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (files / "empty.png").write_bytes(b"")
    names = {"X": files / "x.png", "SMALL": files / "small.png", "M.jsonl": files / "m.jsonl",
             "OUT": files / "out" / "r.jsonl", "CORRUPT": files / "corrupt.png",
             "EMPTY": files / "empty.png", "MASK": files / "m.png"}
    argv = [str(names.get(a, a)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medseg-r: error:") and message in err and len(err.splitlines()) == 1
    assert not os.path.exists(files / "out")


def test_data_folder_gets_a_described_copy(tmp_path, chest, capsys):
    image, mask = chest
    (tmp_path / "d" / "images").mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "d" / "images" / "c.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "d" / "images" / "m.png")
    row = {"id": "c", "image": "images/c.png", "mask": "images/m.png", "report": "old",
           "split": "train"}
    (tmp_path / "d" / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "d" / "dataset.json").write_text(json.dumps({"mm_per_px": 350 / 256}))
    assert main(["describe", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    written = json.loads((tmp_path / "o" / "manifest.jsonl").read_text())
    assert written["report_original"] == "old" and "right lung" in written["report"]
    assert "1 described" in capsys.readouterr().out


def test_a_report_that_does_not_read_back_is_noted_on_stderr(files, capsys):
    assert main(["describe", "--image", str(files / "x.png"), "--mask", str(files / "m.png"),
                 "--target", "widget"]) == 0
    captured = capsys.readouterr()
    assert "widget" in captured.out
    assert "note: the report does not read back to the described findings" in captured.err


def test_data_out_that_is_a_file_is_a_one_line_error(tmp_path, chest, capsys):
    image, mask = chest
    (tmp_path / "d").mkdir()
    Image.fromarray(image).save(tmp_path / "d" / "c.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "d" / "m.png")
    (tmp_path / "d" / "manifest.jsonl").write_text(json.dumps({"id": "c", "image": "c.png", "mask": "m.png"}) + "\n")
    (tmp_path / "afile").write_text("mine")
    assert main(["describe", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "afile"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medseg-r: error: --out") and "must be a folder" in err and len(err.splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "mine"


def test_data_refuses_target_and_organ_which_it_would_ignore(tmp_path, capsys):
    # describe --data never passed them on: --organ liver or --target mass did nothing without a word
    for extra in (["--target", "mass"], ["--organ", "liver", "--domain", "abdomen"]):
        assert main(["describe", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *extra]) == 2
        assert "--target and --organ are for --image and --manifest" in capsys.readouterr().err

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main
from medseg_r.inference import InputError, read_manifest

from .conftest import chest, listing, write_png


def _manifest(tmp_path, rows):
    path = tmp_path / "cases.csv"
    with open(path, "w", newline="") as handle:
        extra = [k for row in rows for k in row if k not in ("id", "image", "report", "reference", "box")]
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "report", "reference", "box",
                                                    *dict.fromkeys(extra)])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _cases(tmp_path):
    write_png(tmp_path / "a.png", chest())
    write_png(tmp_path / "a_ref.png", ((chest() > 200) * 255).astype(np.uint8))  # a mask of the image
    write_png(tmp_path / "b.png", chest()[::-1].copy())
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return _manifest(tmp_path, [
        {"id": "a", "image": "a.png", "report": "Nodule in the right upper lobe.", "reference": "a_ref.png"},
        {"id": "b", "image": "b.png", "report": "Mass in the left lower lobe.", "box": "5 5 40 40"},
        {"id": "bad", "image": "broken.png", "report": "Nodule in the left lung."},
    ])


def _run(manifest, out, ckpt):
    return main(["predict", "--manifest", manifest, "--checkpoint", ckpt, "--out", str(out), "--quiet"])


def test_batch_predicts_reports_failures_and_resumes(tmp_path, tiny_checkpoint, capsys):
    manifest, out = _cases(tmp_path), tmp_path / "out"
    assert _run(manifest, out, tiny_checkpoint) == 1  # one case failed
    captured = capsys.readouterr()
    assert "bad: error:" in captured.err and "2 predicted, 0 already done (skipped), 1 failed" in captured.out
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["done"] == ["a", "b"] and summary["failed"][0]["id"] == "bad"
    reference = json.loads((out / "a_prediction.json").read_text())["reference"]
    written = np.array(Image.open(out / "a_mask.png")) > 0
    truth = chest() > 200  # the case's reference mask
    inter = np.logical_and(written, truth).sum()
    assert reference["dice"] == pytest.approx(2 * inter / (written.sum() + truth.sum()), abs=1e-6)
    assert json.loads((out / "b_prediction.json").read_text())["options"]["box"] == [5, 5, 40, 40]
    assert not any(n.startswith(".partial-") for n in listing(out))
    mtime = os.path.getmtime(out / "a_mask.png")
    assert _run(manifest, out, tiny_checkpoint) == 1
    assert "0 predicted, 2 already done (skipped), 1 failed" in capsys.readouterr().out
    assert os.path.getmtime(out / "a_mask.png") == mtime


def test_killed_run_leaves_no_partial_file_and_resume_finishes(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    """Interrupt while the second case writes its overlay: nothing half-written stays, the first case is kept,
    and the next run predicts only what is missing."""
    from PIL import Image

    manifest, out = _cases(tmp_path), tmp_path / "out"
    original = Image.Image.save
    saves = []

    def dying_save(self, fp, *args, **kwargs):
        saves.append(str(fp))
        if len(saves) == 4:  # case a: mask, overlay; case b: mask, then die while writing its overlay
            raise KeyboardInterrupt
        return original(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dying_save)
    assert _run(manifest, out, tiny_checkpoint) == 130
    names = listing(out)
    assert not any(n.startswith(".partial-") for n in names)
    assert "a_prediction.json" in names and "b_prediction.json" not in names
    monkeypatch.setattr(Image.Image, "save", original)
    capsys.readouterr()
    assert json.loads((out / "batch_summary.json").read_text())["interrupted"] is True
    assert _run(manifest, out, tiny_checkpoint) == 1
    assert "1 predicted, 1 already done (skipped), 1 failed" in capsys.readouterr().out
    assert "b_prediction.json" in listing(out)
    assert "interrupted" not in json.loads((out / "batch_summary.json").read_text())


def test_a_case_whose_outputs_cannot_be_written_fails_alone(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import medseg_r.inference.batch as batch

    manifest, out = _cases(tmp_path), tmp_path / "out"
    real = batch.predict_case

    def disk_full_for_a(predictor, image, report, out_dir, **kwargs):
        if kwargs["stem"] == "a":
            raise OSError(28, "No space left on device")
        return real(predictor, image, report, out_dir, **kwargs)

    monkeypatch.setattr(batch, "predict_case", disk_full_for_a)
    assert _run(manifest, out, tiny_checkpoint) == 1
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["done"] == ["b"] and [f["id"] for f in summary["failed"]] == ["a", "bad"]
    assert "No space left" in summary["failed"][0]["error"]


@pytest.mark.parametrize("rows, message", [
    ([], "no rows"),
    ([{"id": "x", "image": "a.png", "report": ""}], "neither 'report' nor 'report_file'"),
    ([{"id": "x", "image": "a.png", "report": "r"}, {"id": "x", "image": "b.png", "report": "r"}],
     r"duplicate case id 'x' \(each row's 'id' must be its own\)"),
    ([{"image": "a/x.png", "report": "r"}, {"image": "b/x.png", "report": "r"}],
     r"duplicate case id 'x' \(two images of one file name: add an 'id' column\)"),
    ([{"id": "x", "image": "a.png", "report": "r", "box": "1 2 3"}], "four numbers"),
    ([{"id": "x", "image": "a.png", "report": "r", "box": "50 50 20 20"}], "x1 > x0 and y1 > y0"),  # reversed
    ([{"id": "../escaped", "image": "a.png", "report": "r"}], "plain file name"),
    ([{"id": "..", "image": "a.png", "report": "r"}], "plain file name"),
    ([{"id": "scans\\case1", "image": "a.png", "report": "r"}], "plain file name"),  # a Windows folder
    # a misspelt or capitalised optional column was dropped without a word
    ([{"image": "a.png", "report": "r", "refrence": "m.png"}], "'refrence' \\(did you mean 'reference'\\?\\)"),
    ([{"image": "a.png", "report": "r", "Box": "1 2 3 4"}], "'Box' \\(did you mean 'box'\\?\\)"),
])
def test_bad_manifests_are_rejected_before_any_work(tmp_path, rows, message):
    path = _manifest(tmp_path, rows)
    with pytest.raises(InputError, match=message):
        read_manifest(path)


def test_a_duplicate_id_is_listed_beside_another_fault_of_the_first_row(tmp_path):
    # only the bad box was listed; the duplicate id showed up on the next run, after the box was fixed
    rows = [{"id": "x", "image": "a.png", "report": "r", "box": "1 2 3"},
            {"id": "x", "image": "a.png", "report": "r"}]
    with pytest.raises(InputError, match=r"2 bad row\(s\).*row 2: box.*row 3: duplicate case id 'x'"):
        read_manifest(_manifest(tmp_path, rows))


def test_every_bad_row_is_listed_at_once_and_a_wrong_header_is_named(tmp_path):
    rows = [{"id": "a", "image": "a.png", "report": "r"}, {"id": "b", "image": "b.png", "report": ""},
            {"id": "c", "image": "c.png", "report": "r", "box": "1 2"}]
    with pytest.raises(InputError, match=r"2 bad row\(s\), nothing predicted: row 3: neither .*; row 4: box"):
        read_manifest(_manifest(tmp_path, rows))
    (tmp_path / "h.csv").write_text("Image,Report\na.png,Nodule.\n")
    with pytest.raises(InputError, match="no 'image' column \\(columns: 'Image', 'Report'; names are lower case\\)"):
        read_manifest(str(tmp_path / "h.csv"))


def test_a_csv_report_longer_than_the_csv_modules_default_field_limit_is_read(tmp_path):
    long = "Nodule in the right upper lobe. " * 5000  # 160,000 characters: under the parser's limit
    (tmp_path / "m.csv").write_text(f"id,image,report\na,a.png,{long}\n")
    (case,) = read_manifest(str(tmp_path / "m.csv"))
    assert case["report"] == long


def test_jsonl_manifest_with_report_files(tmp_path):
    (tmp_path / "r.txt").write_text("Nodule in the right lung.")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "sub/a.png", "report_file": "r.txt"}) + "\n")
    (case,) = read_manifest(str(tmp_path / "m.jsonl"))
    assert case["id"] == "a" and case["image"] == str(tmp_path / "sub" / "a.png")
    assert case["report_file"] == str(tmp_path / "r.txt")


def test_a_spreadsheet_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbf" + b"id,image,report\nzz,x.png,Nodule in the right upper lobe.\n")
    (case,) = read_manifest(str(tmp_path / "m.csv"))
    assert case["id"] == "zz"
    (tmp_path / "s.csv").write_text("id;image;report\nzz;x.png;Nodule.\n")
    with pytest.raises(InputError, match="looks semicolon-separated"):
        read_manifest(str(tmp_path / "s.csv"))
    (tmp_path / "l.jsonl").write_text('["x.png", "Nodule."]\n')
    with pytest.raises(InputError, match="expected a JSON object, got list"):
        read_manifest(str(tmp_path / "l.jsonl"))


def test_a_jsonl_box_may_be_a_list(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "x.png", "report": "Nodule.", "box": [10, 10, 100, 90]}) + "\n")
    (case,) = read_manifest(str(tmp_path / "m.jsonl"))
    assert case["box"] == [10.0, 10.0, 100.0, 90.0]


def test_a_resumed_batch_predicts_again_a_case_asked_otherwise(tmp_path, tiny_checkpoint, capsys):
    # it skipped any case whose JSON existed: another image or threshold left stale results
    manifest, out = _cases(tmp_path), tmp_path / "out"
    _run(manifest, out, tiny_checkpoint)
    capsys.readouterr()
    assert main(["predict", "--manifest", manifest, "--checkpoint", tiny_checkpoint, "--out", str(out),
                 "--quiet", "--threshold", "0.9"]) == 1
    captured = capsys.readouterr()
    assert "2 predicted, 0 already done (skipped), 1 failed" in captured.out
    assert "a: its earlier prediction was made of another report, reference, options" in captured.err
    assert json.loads((out / "a_prediction.json").read_text())["options"]["threshold"] == 0.9
    rows = list(csv.DictReader(open(manifest)))
    rows[0]["image"] = "b.png"  # the row of id a now names another image: refused as predict refuses it
    _manifest(tmp_path, rows)
    assert main(["predict", "--manifest", manifest, "--checkpoint", tiny_checkpoint, "--out", str(out),
                 "--quiet", "--threshold", "0.9"]) == 1
    captured = capsys.readouterr()
    assert "holds the prediction of another image of the same name" in captured.err
    assert "predicted again" not in captured.err  # it was refused, not predicted
    assert json.loads((out / "a_prediction.json").read_text())["input"] == str(tmp_path / "a.png")


def test_a_resumed_batch_predicts_again_a_case_whose_image_changed(tmp_path, tiny_checkpoint, capsys):
    # a replaced (or flipped) image under the same name kept its stale mask: "1 already done (skipped)"
    manifest, out = _cases(tmp_path), tmp_path / "out"
    _run(manifest, out, tiny_checkpoint)
    capsys.readouterr()
    written = (out / "a_prediction.json").stat().st_mtime_ns
    image = np.array(Image.open(tmp_path / "a.png"))
    Image.fromarray(np.ascontiguousarray(image[:, ::-1])).save(tmp_path / "a.png")
    os.utime(tmp_path / "a.png", ns=(written + 10**9, written + 10**9))  # modified after the prediction
    main(["predict", "--manifest", manifest, "--checkpoint", tiny_checkpoint, "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert "a: its earlier prediction was made of another report" in captured.err
    assert "or its files changed since or are missing: predicted again" in captured.err


@pytest.mark.parametrize("extra", [["--report", "nodule"], ["--reference", "a.png"],
                                   ["--box", "0", "0", "20", "20"]])
def test_per_case_options_are_refused_beside_a_manifest(tmp_path, tiny_checkpoint, capsys, extra):
    # --report and --reference were ignored without a word, --box was applied to every row
    manifest = _cases(tmp_path)
    assert main(["predict", "--manifest", manifest, "--checkpoint", tiny_checkpoint,
                 "--out", str(tmp_path / "out")] + extra) == 2
    assert "with --manifest each row gives its own" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_batch_summary_of_the_users_is_not_replaced(tmp_path, tiny_checkpoint, capsys):
    manifest, out = _cases(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "batch_summary.json").write_text('{"my": "own notes"}')
    assert _run(manifest, out, tiny_checkpoint) == 2
    assert "is not an earlier batch's summary" in capsys.readouterr().err
    assert (out / "batch_summary.json").read_text() == '{"my": "own notes"}'
    assert sorted(os.listdir(out)) == ["batch_summary.json"]


@pytest.mark.parametrize("change", ["earlier_version", "mask_deleted"])
def test_a_resumed_batch_predicts_again_an_earlier_versions_or_an_incomplete_result(
        tmp_path, tiny_checkpoint, capsys, change):
    # a DICOM radiograph predicted before its PatientOrientation was read kept its mask of the other
    # lung, and no stored-order PNG; a deleted mask stayed missing ("already done")
    manifest, out = _cases(tmp_path), tmp_path / "out"
    _run(manifest, out, tiny_checkpoint)
    capsys.readouterr()
    if change == "earlier_version":
        held = json.loads((out / "a_prediction.json").read_text())
        del held["result_version"]  # as every version before it wrote
        (out / "a_prediction.json").write_text(json.dumps(held))
    else:
        os.remove(out / "a_mask.png")
    _run(manifest, out, tiny_checkpoint)
    captured = capsys.readouterr()
    assert "1 already done (skipped)" in captured.out  # b; a predicted again
    assert "a: its earlier prediction was made of another report" in captured.err
    assert (out / "a_mask.png").exists()
    assert json.loads((out / "a_prediction.json").read_text())["result_version"] >= 2

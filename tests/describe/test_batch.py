import json
import os

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main
from medseg_r.describe import DescribeError, describe_dataset, describe_manifest, fill_missing_reports

from .conftest import disc_mask


def _write_case(folder, name, centre, radius, size=96):
    rng = np.random.default_rng(len(name))
    image = rng.integers(80, 120, (size, size)).astype(np.uint8)
    mask = disc_mask((size, size), centre, radius) if radius else np.zeros((size, size), bool)
    image[mask] = 200
    os.makedirs(folder / "images", exist_ok=True)
    os.makedirs(folder / "masks", exist_ok=True)
    Image.fromarray(image).save(folder / "images" / f"{name}.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{name}.png")
    return {"id": name, "image": f"images/{name}.png", "mask": f"masks/{name}.png"}


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    rows = [_write_case(folder, "a", (20, 20), 8), _write_case(folder, "b", (70, 30), 6),
            _write_case(folder, "c", (48, 48), 0)]
    for row, split in zip(rows, ("train", "train", "val")):
        row.update(split=split, report="", tags=["x"], kind="phantom-like")
    with open(folder / "manifest.jsonl", "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    return folder


def _lines(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def test_manifest_batch_writes_a_training_manifest(data, tmp_path):
    out = tmp_path / "out" / "reports.jsonl"
    summary = describe_manifest(str(data / "manifest.jsonl"), str(out), domain="image",
                                progress=False)
    assert summary == {"out": str(out), "written": 3, "skipped": 0, "failed": []}
    rows = _lines(out)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    priors = [r["describe"]["priors"] for r in rows]
    assert priors[0][0]["location"]["image_region"] == "top_left"
    assert priors[1][0]["location"]["image_region"] == "bottom_left"
    assert priors[2][0]["negated"] and rows[0]["tags"] == ["x"]
    from medseg_r.data.readers import read_dataset

    records, root = read_dataset(str(out))
    assert [r.report for r in records] == [r["report"] for r in rows]
    assert os.path.isfile(os.path.join(root, records[0].image))
    assert not os.path.exists(str(out) + ".partial")


def test_batch_resumes_and_drops_a_torn_line(data, tmp_path):
    out = tmp_path / "reports.jsonl"
    first = describe_manifest(str(data / "manifest.jsonl"), str(out), domain="image",
                              progress=False)
    lines = open(out).read().splitlines(keepends=True)
    with open(str(out) + ".partial", "w") as handle:  # as left by a killed run
        handle.write(lines[0] + lines[1][:20])
    os.unlink(out)
    again = describe_manifest(str(data / "manifest.jsonl"), str(out), domain="image",
                              progress=False)
    assert (again["written"], again["skipped"]) == (2, 1)
    assert open(out).read().splitlines(keepends=True) == lines
    assert first["written"] == 3


def test_bad_case_is_one_stderr_line_and_exit_1(data, tmp_path, capsys):
    os.unlink(data / "masks" / "b.png")
    out = tmp_path / "reports.jsonl"
    code = main(["describe", "--manifest", str(data / "manifest.jsonl"), "--out", str(out),
                 "--domain", "image", "--quiet"])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("medseg-r")]
    assert len(err) == 1 and err[0].startswith("medseg-r: case b: mask:")
    assert [r["id"] for r in _lines(out)] == ["a", "c"]


def test_describe_dataset_references_the_original_files(data, tmp_path):
    with open(data / "dataset.json", "w") as handle:
        json.dump({"kind": "phantom", "mm_per_px": 2.0, "augment_flip": False}, handle)
    out = tmp_path / "described"
    describe_dataset(str(data), str(out), domain="image", progress=False)
    rows = _lines(out / "manifest.jsonl")
    assert rows[0]["image"] == os.path.join("..", "data", "images", "a.png")
    assert rows[0]["describe"]["priors"][0]["size_mm"] == pytest.approx(17 * 2.0, abs=2.0)
    assert rows[0]["kind"] == "phantom-like"  # the row's own fields are kept
    info = json.load(open(out / "dataset.json"))
    assert info["reports"] == "described" and info["augment_flip"] is False
    assert not os.path.exists(out / "images")


def test_fill_missing_reports_keeps_written_ones(data):
    from medseg_r.data.readers import read_dataset

    records, root = read_dataset(str(data))
    records[0].report = "Keep this nodule."
    filled = fill_missing_reports(records, root=root)
    assert filled[0].report == "Keep this nodule."
    assert filled[1].report and filled[2].report
    assert all(r.report == "" for r in records[1:])  # the input is not changed


def test_train_describe_missing_fills_reports(data, tmp_path):
    from medseg_r.engine.train import TrainConfig, make_loaders

    with open(data / "dataset.json", "w") as handle:
        json.dump({"domain": "image"}, handle)  # the domain describe uses for this data set
    from medseg_r.data.readers import DataWarning

    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), describe_missing=True,
                      batch_size=2)
    with pytest.warns(DataWarning, match=r"described 3 case\(s\) with an empty report .*; 1 of them "
                                         r"validation cases"):
        train, val = make_loaders(cfg)
    texts = [r.report for r in train.dataset.records]
    assert len(texts) == 2 and all("of the image" in t for t in texts), texts
    assert val.dataset.records[0].report.startswith("No ")
    # what was written is kept in the run folder (it was nowhere): one row per described case
    from medseg_r.engine.train import DESCRIBED_REPORTS, _write_described

    os.makedirs(cfg.out)
    _write_described(cfg, train, val)
    rows = [json.loads(line) for line in open(os.path.join(cfg.out, DESCRIBED_REPORTS))]
    assert [(r["split"], r["report"]) for r in rows] == [("train", t) for t in texts] + [
        ("val", val.dataset.records[0].report)]
    with pytest.warns(DataWarning, match=r"3 case\(s\) have an empty report .*--describe-missing"):
        plain = make_loaders(TrainConfig(data=str(data), out=str(tmp_path / "run")))[0]
    assert [r.report for r in plain.dataset.records] == ["", ""]


def test_an_output_describe_did_not_write_is_refused_untouched(data, tmp_path):
    manifest = str(data / "manifest.jsonl")
    for name, content in [("mine.jsonl", '{"id": "a", "image": "x.png"}\n'), ("victim.jsonl", "\x89PNG binary"),
                          ("notes.jsonl", "free text\n")]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(DescribeError, match="is not an earlier output of medseg-r describe"):
            describe_manifest(manifest, str(path), domain="image", progress=False)
        assert path.read_text() == content and not os.path.exists(str(path) + ".partial")
    for bad in (tmp_path / "other.csv", tmp_path):
        with pytest.raises(DescribeError, match="give a .jsonl file"):
            describe_manifest(manifest, str(bad), domain="image", progress=False)


def test_a_rerun_with_other_options_or_files_describes_again(data, tmp_path, capsys):
    manifest, out = str(data / "manifest.jsonl"), str(tmp_path / "reports.jsonl")
    first = describe_manifest(manifest, out, domain="image", progress=False)
    same = describe_manifest(manifest, out, domain="image", progress=False)
    assert (first["written"], same["written"], same["skipped"]) == (3, 0, 3)
    other = describe_manifest(manifest, out, domain="image", style="qata", progress=False)
    assert (other["written"], other["skipped"]) == (3, 0)
    assert "3 case(s) of" in capsys.readouterr().err
    assert all(r["describe"]["options"]["style"] == "qata" for r in _lines(out))
    rows = [json.loads(line) for line in open(manifest)]
    rows[0]["mask"] = rows[1]["mask"]  # case a now has another mask
    (data / "moved.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    moved = describe_manifest(str(data / "moved.jsonl"), str(tmp_path / "moved_out.jsonl"), domain="image",
                              style="qata", progress=False)
    again = describe_manifest(str(data / "moved.jsonl"), out, domain="image", style="qata", progress=False)
    assert moved["written"] == 3 and (again["written"], again["skipped"]) == (1, 2)


def test_the_output_of_another_manifest_is_refused_not_cut_down(data, tmp_path):
    manifest, out = str(data / "manifest.jsonl"), tmp_path / "reports.jsonl"
    describe_manifest(manifest, str(out), domain="image", progress=False)
    before = out.read_text()
    rows = [json.loads(line) for line in open(manifest)]
    (data / "first.jsonl").write_text(json.dumps(rows[0]) + "\n")  # a manifest without b and c
    with pytest.raises(DescribeError, match=r"holds 2 described case\(s\) that are not in .* \(e.g. b, c\)"):
        describe_manifest(str(data / "first.jsonl"), str(out), domain="image", progress=False)
    assert out.read_text() == before and not os.path.exists(str(out) + ".partial")


def test_csv_manifests_as_spreadsheets_save_them(data, tmp_path):
    rows = [json.loads(line) for line in open(data / "manifest.jsonl")]
    header = "id,image,mask,spacing\n"
    body = "".join(f"{r['id']},{r['image']},{r['mask']},0.7\n" for r in rows)
    (data / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (header + body).encode())  # Excel's "CSV UTF-8"
    out = tmp_path / "bom.jsonl"
    result = describe_manifest(str(data / "bom.csv"), str(out), domain="image", progress=False)
    assert result["written"] == 3 and [r["id"] for r in _lines(out)] == ["a", "b", "c"]
    assert all("\ufeffid" not in r for r in _lines(out))
    assert _lines(out)[0]["describe"]["lesions"][0]["size"]["unit"] == "mm"  # one number: both axes
    (data / "semi.csv").write_text(header.replace(",", ";") + body.replace(",", ";"))
    with pytest.raises(DescribeError, match="looks semicolon-separated"):
        describe_manifest(str(data / "semi.csv"), str(tmp_path / "semi.jsonl"), domain="image", progress=False)
    (data / "dup.csv").write_text(header + body + body.splitlines(keepends=True)[0])
    with pytest.raises(DescribeError, match=r"case ids are not unique \(a\): give each row its own id"):
        describe_manifest(str(data / "dup.csv"), str(tmp_path / "dup.jsonl"), domain="image", progress=False)
    (data / "list.jsonl").write_text('["images/a.png", "masks/a.png"]\n')
    with pytest.raises(DescribeError, match="line 1: expected a JSON object, got list"):
        describe_manifest(str(data / "list.jsonl"), str(tmp_path / "list.jsonl"), domain="image", progress=False)


def test_manifest_errors_name_the_files_line_and_the_right_hint(data, tmp_path):
    (data / "gap.jsonl").write_text('{"image": "images/a.png", "mask": "masks/a.png"}\n\n\n{"image": "images/b.png"}\n')
    with pytest.raises(DescribeError, match="line 4: missing mask"):
        describe_manifest(str(data / "gap.jsonl"), str(tmp_path / "g.jsonl"), domain="image", progress=False)
    (data / "noid.csv").write_text("image,mask\nimages/a.png,masks/a.png\nimages/a.png,masks/b.png\n")
    with pytest.raises(DescribeError, match="not unique .*add an id column"):
        describe_manifest(str(data / "noid.csv"), str(tmp_path / "n.jsonl"), domain="image", progress=False)


def test_describe_dataset_refuses_a_dataset_json_it_did_not_write(data, tmp_path):
    out = tmp_path / "described"
    out.mkdir()
    (out / "dataset.json").write_text('{"mine": true}')
    with pytest.raises(DescribeError, match=r"dataset.json exists and is not an earlier output of medseg-r describe"):
        describe_dataset(str(data), str(out), domain="image", progress=False)
    assert (out / "dataset.json").read_text() == '{"mine": true}' and os.listdir(out) == ["dataset.json"]
    (out / "dataset.json").unlink()
    describe_dataset(str(data), str(out), domain="image", progress=False)
    again = describe_dataset(str(data), str(out), domain="image", progress=False)  # its own: rerun
    assert again["skipped"] == 3 and json.load(open(out / "dataset.json"))["reports"] == "described"


def test_a_rerun_describes_again_a_case_whose_mask_changed(data, tmp_path, capsys):
    manifest, out = str(data / "manifest.jsonl"), str(tmp_path / "reports.jsonl")
    describe_manifest(manifest, out, domain="image", progress=False)
    assert not _lines(out)[0]["describe"]["priors"][0]["negated"]
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(data / "masks" / "a.png")  # a's mask emptied
    again = describe_manifest(manifest, out, domain="image", progress=False)
    assert (again["written"], again["skipped"]) == (1, 2)
    assert _lines(out)[0]["describe"]["priors"][0]["negated"]  # no longer the old lesion
    assert "1 case(s) of" in capsys.readouterr().err
    rows = _lines(out)
    del rows[1]["describe"]["files"]  # a row of an earlier version: the contents were not recorded
    with open(out, "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    third = describe_manifest(manifest, out, domain="image", progress=False)
    assert (third["written"], third["skipped"]) == (1, 2) and "files" in _lines(out)[1]["describe"]
    assert "earlier version, which did not record the image and mask contents" in capsys.readouterr().err


def test_a_rerun_of_unchanged_files_reads_none_of_them_again(data, tmp_path, monkeypatch):
    # every rerun hashed every image and mask (a finished NIfTI manifest was read whole again)
    from medseg_r.describe import batch

    manifest, out = str(data / "manifest.jsonl"), str(tmp_path / "reports.jsonl")
    describe_manifest(manifest, out, domain="image", progress=False)

    def no_reading(*args):
        raise AssertionError("a file was hashed again")

    monkeypatch.setattr(batch.hashlib, "sha256", no_reading)
    again = describe_manifest(manifest, out, domain="image", progress=False)
    assert (again["written"], again["skipped"]) == (0, 3)


def test_a_spacing_with_a_decimal_comma_is_refused_with_how_to_write_it(data, tmp_path, capsys):
    header = "id,image,mask,spacing\n"
    (data / "comma.csv").write_text(header + 'a,images/a.png,masks/a.png,"1,5"\n'
                                    'b,images/b.png,masks/b.png,"0.7,0.7"\n'
                                    'c,images/c.png,masks/c.png,"1,1"\n')
    out = tmp_path / "comma.jsonl"
    result = describe_manifest(str(data / "comma.csv"), str(out), domain="image", progress=False)
    assert [f["id"] for f in result["failed"]] == ["a"] and "decimal comma" in result["failed"][0]["error"]
    assert 'write 1.5 mm as "1.5" (or "1.5 1.5")' in capsys.readouterr().err
    assert [r["id"] for r in _lines(out)] == ["b", "c"]  # a point or equal values: two axes, as before
    assert _lines(out)[0]["describe"]["lesions"][0]["size"]["unit"] == "mm"


def test_batch_says_when_reports_do_not_read_back(data, tmp_path, capsys):
    manifest = str(data / "manifest.jsonl")
    describe_manifest(manifest, str(tmp_path / "w.jsonl"), domain="image", target="widget", progress=False)
    err = capsys.readouterr().err
    assert "2 case(s) of" in err and "round_trip false" in err and "'widget' is not a finding word" in err
    assert [r["describe"]["round_trip"] for r in _lines(tmp_path / "w.jsonl")] == [False, False, True]
    describe_manifest(manifest, str(tmp_path / "t.jsonl"), domain="image", target="tumour", progress=False)
    assert "round_trip" not in capsys.readouterr().err  # "tumour" reads back as the code "tumor"
    assert all(r["describe"]["round_trip"] for r in _lines(tmp_path / "t.jsonl"))


def test_an_organ_outside_the_abdomen_or_unknown_is_refused_before_any_work(data, tmp_path):
    manifest, out = str(data / "manifest.jsonl"), tmp_path / "o.jsonl"
    with pytest.raises(DescribeError, match=r"unknown organ 'banana'; known: liver, kidney"):
        describe_manifest(manifest, str(out), domain="abdomen", organ="banana", progress=False)
    with pytest.raises(DescribeError, match=r"organ 'liver' is for the abdomen domain, not image"):
        describe_manifest(manifest, str(out), domain="image", organ="liver", progress=False)
    assert not os.path.exists(out) and not os.path.exists(str(out) + ".partial")

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main
from medseg_r.inference import PredictOptions, predict_case
from medseg_r.report import parse_report
from medseg_r.report.transform import slice_report
from tests.data.test_volumes import _write_dicom_series

from .conftest import chest, ct_volume, listing, write_nifti, write_png

REPORT = "2 cm round nodule in the right upper lobe."


def _predict(argv, tmp_path, ckpt):
    return main(["predict", *argv, "--checkpoint", ckpt, "--out", str(tmp_path / "out"), "--quiet"])


@pytest.mark.parametrize("name, array, mask_name", [
    ("grey8.png", chest(), "grey8_mask.png"),
    ("rgb.jpg", np.dstack([chest()] * 3), "rgb_mask.png"),
    ("grey16.tif", chest(dtype=np.uint16), "grey16_mask.tif"),
])
def test_predict_2d_writes_mask_overlay_and_json(tmp_path, tiny_checkpoint, name, array, mask_name, capsys):
    Image.fromarray(array).save(tmp_path / name)
    assert _predict(["--image", str(tmp_path / name), "--report", REPORT], tmp_path, tiny_checkpoint) == 0
    stem = name.split(".")[0]
    assert listing(tmp_path / "out") == sorted([mask_name, f"{stem}_overlay.png", f"{stem}_prediction.json"])
    mask = np.array(Image.open(tmp_path / "out" / mask_name))
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
    summary = json.loads((tmp_path / "out" / f"{stem}_prediction.json").read_text())
    assert summary["report"]["findings"][0]["location"]["side"] == "right"
    assert summary["statistics"]["total"]["area_px"] == int((mask > 0).sum())
    assert len(summary["statistics"]["findings"]) == 1 and summary["model"]["trained_priors"] is True
    assert 0 <= summary["confidence"]["max_probability"] <= 1
    printed = capsys.readouterr().out
    assert f"mask: {summary['statistics']['total']['area_px']} px" in printed
    assert f"predicted IoU {summary['confidence']['predicted_iou']:.2f}" in printed
    if summary["confidence"]["mean_probability_inside"] is not None:
        assert f"confidence: mean probability {summary['confidence']['mean_probability_inside']:.2f}" in printed
    overlay = np.array(Image.open(tmp_path / "out" / f"{stem}_overlay.png"))
    assert overlay.ndim == 3 and overlay.shape[1] >= 640


def test_volume_prediction_keeps_geometry_and_maps_zones_to_slices(tmp_path, tiny_checkpoint, predictor):
    import nibabel as nib

    vol, mask = ct_volume()
    affine = np.array([[-0.8, 0, 0, 10], [0, -0.8, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]])
    path = write_nifti(tmp_path / "ct.nii.gz", vol[::-1, ::-1].copy(), affine)
    write_nifti(tmp_path / "ref.nii.gz", mask[::-1, ::-1].astype(np.uint8).copy(), affine)
    argv = ["--image", path, "--report", REPORT, "--window", "-600", "1500", "--reference",
            str(tmp_path / "ref.nii.gz"), "--largest", "1", "--fill-holes"]
    assert _predict(argv, tmp_path, tiny_checkpoint) == 0
    out = tmp_path / "out"
    assert listing(out) == ["ct_mask.nii.gz", "ct_overlay.png", "ct_prediction.json", "ct_sheet.png"]
    written = nib.load(str(out / "ct_mask.nii.gz"))
    assert written.shape == vol.shape and np.allclose(written.affine, affine)
    summary = json.loads((out / "ct_prediction.json").read_text())
    # "upper lobe" -> only the cranial third of the 10 slices is segmented (z/(Z-1) >= 0.64: z = 6..9)
    assert summary["slices"] == {"total": 10, "described": 4, "with_mask": summary["slices"]["with_mask"],
                                 "nan_voxels_replaced": 0}
    data = np.asarray(written.dataobj)
    assert not data[..., :6].any()
    timing = summary["timing"]
    assert timing["slices_run"] == 4
    assert timing["seconds_per_slice"] == pytest.approx(timing["seconds"] / 4, abs=1e-3)
    assert "volume_ml" in summary["statistics"]["total"] and "dice" in summary["reference"]
    assert summary["pixel_spacing_mm"] == pytest.approx([0.8, 0.8]) and summary["slice_spacing_mm"] == 2.5


def test_slice_report_keeps_findings_by_cranio_caudal_zone():
    report = parse_report("Nodule in the right upper lobe. Mass in the left lower lobe. No effusion.")
    top, bottom, middle = slice_report(report, 0.9), slice_report(report, 0.1), slice_report(report, 0.5)
    assert [f.location.side for f in top.positive_findings] == ["right"]
    assert [f.location.side for f in bottom.positive_findings] == ["left"]
    assert middle.positive_findings == [] and len(middle.findings) == 1  # the negated effusion stays
    assert top.positive_findings[0].location.zones == []  # in-plane prior now uses side + organ only
    with pytest.raises(ValueError):
        slice_report(report, 1.5)


def test_dicom_series_prediction_writes_nifti_with_series_geometry(tmp_path, tiny_checkpoint):
    import nibabel as nib

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    assert _predict(["--image", str(tmp_path / "series"), "--report", "Nodule in the right lung.", "--no-z-zones"],
                    tmp_path, tiny_checkpoint) == 0
    written = nib.load(str(tmp_path / "out" / "series_mask.nii.gz"))
    assert written.shape == vol.shape
    assert np.allclose(np.abs(np.diag(written.affine))[:3], [0.8, 0.8, 2.5])
    assert nib.aff2axcodes(written.affine) == ("R", "A", "S")
    summary = json.loads((tmp_path / "out" / "series_prediction.json").read_text())
    assert summary["format"] == "dicom" and summary["slices"]["described"] == 10


@pytest.mark.parametrize("report, warned", [("Nodule in the right upper lobe.", True),
                                             ("Nodule in the right lung.", False)])
def test_one_ct_slice_warns_that_the_report_zones_are_not_used(tmp_path, tiny_checkpoint, report,
                                                                warned):
    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)  # Modality CT
    assert _predict(["--image", str(tmp_path / "series" / "003.dcm"), "--report", report],
                    tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / "003_prediction.json").read_text())
    assert any("one axial slice" in w for w in summary.get("warnings", [])) == warned
    # the statistics place the mask's parts by the report the mask was made from: without zones
    assert [f["location"]["zones"] for f in summary["statistics"]["findings"]] == [[]]


def test_all_negative_report_gives_an_empty_mask_without_running_the_model(tmp_path, tiny_checkpoint):
    image = write_png(tmp_path / "x.png", chest())
    assert _predict(["--image", image, "--report", "No nodule. No effusion."], tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / "x_prediction.json").read_text())
    assert summary["all_negative"] and "empty mask" in summary["rule"] and summary["timing"]["slices_run"] == 0
    assert not np.array(Image.open(tmp_path / "out" / "x_mask.png")).any()


@pytest.mark.parametrize("kind", ["image", "volume"])
def test_a_normal_study_without_a_finding_gives_an_empty_mask(tmp_path, tiny_checkpoint, kind):
    import nibabel as nib

    if kind == "image":
        path, stem = write_png(tmp_path / "x.png", chest()), "x"
    else:
        path, stem = write_nifti(tmp_path / "ct.nii.gz", ct_volume()[0]), "ct"
    report = "Heart size is normal. The lungs are clear. No acute disease."
    assert _predict(["--image", path, "--report", report], tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / f"{stem}_prediction.json").read_text())
    assert summary["all_negative"] and summary["timing"]["slices_run"] == 0
    assert summary["rule"] == "a normal study stated, no finding: empty mask, model not run"
    assert summary["report"]["normal_statements"] == [[26, 41], [43, 59]]
    if kind == "image":
        assert not np.array(Image.open(tmp_path / "out" / "x_mask.png")).any()
    else:
        assert not np.asarray(nib.load(str(tmp_path / "out" / "ct_mask.nii.gz")).dataobj).any()


def test_a_box_alone_is_segmented_without_report_priors(tmp_path, tiny_checkpoint, capsys):
    image = write_png(tmp_path / "x.png", chest())
    assert main(["predict", "--image", image, "--box", "10", "10", "40", "40", "--checkpoint",
                 tiny_checkpoint, "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "x_prediction.json").read_text())
    assert summary["rule"] == "no finding parsed: model run without report priors"
    assert summary["options"]["box"] == [10.0, 10.0, 40.0, 40.0] and summary["report"]["findings"] == []
    assert "mask:" in capsys.readouterr().out
    assert _predict(["--image", image], tmp_path, tiny_checkpoint) == 2  # no box: a report is needed
    assert "give exactly one of --report TEXT or --report-file FILE (or --box alone)" in \
        capsys.readouterr().err


def test_a_box_on_a_volume_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from medseg_r.cli import common

    def no_model(args):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(common, "model_from_args", no_model)
    volume = write_nifti(tmp_path / "v.nii.gz", ct_volume()[0])
    assert main(["predict", "--image", volume, "--box", "1", "1", "20", "20", "--out",
                 str(tmp_path / "out")]) == 2
    assert "--box is for 2-D images" in capsys.readouterr().err


def test_a_one_slice_volume_takes_a_box_as_an_image_does(tmp_path, predictor):
    # a DICOM radiograph or a 2-D NIfTI is read as a one-slice volume: --box was refused for it
    from medseg_r.inference import InputError

    picture = chest().astype(np.float32)
    one = write_nifti(tmp_path / "cxr.nii.gz", picture[:, :, None])
    summary = predict_case(predictor, one, REPORT, str(tmp_path / "out"),
                           options=PredictOptions(progress=False, box=(10.0, 10.0, 60.0, 60.0)))
    assert list(summary["options"]["box"]) == [10.0, 10.0, 60.0, 60.0] and summary["timing"]["slices_run"] == 1
    several = write_nifti(tmp_path / "ct.nii.gz", ct_volume()[0])
    with pytest.raises(InputError, match="a volume of several slices is segmented from the report alone"):
        predict_case(predictor, several, REPORT, str(tmp_path / "out2"),
                     options=PredictOptions(progress=False, box=(1.0, 1.0, 20.0, 20.0)))


def test_a_blank_input_is_predicted_with_a_warning(tmp_path, tiny_checkpoint, capsys):
    blank = write_png(tmp_path / "blank.png", np.zeros((64, 64), np.uint8))
    assert _predict(["--image", blank, "--report", REPORT], tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / "blank_prediction.json").read_text())
    assert summary["warnings"] == ["the input is blank (one value everywhere): its mask means nothing"]
    assert "warning: the input is blank" in capsys.readouterr().err
    image = write_png(tmp_path / "x.png", chest())
    assert _predict(["--image", image, "--report", REPORT], tmp_path, tiny_checkpoint) == 0
    assert "warnings" not in json.loads((tmp_path / "out" / "x_prediction.json").read_text())


def test_no_finding_segments_only_when_asked(tmp_path, tiny_checkpoint, capsys):
    image = write_png(tmp_path / "x.png", chest())
    assert _predict(["--image", image, "--report", "Heart size normal."], tmp_path, tiny_checkpoint) == 2
    assert "no finding" in capsys.readouterr().err and listing(tmp_path / "out") == []
    assert _predict(["--image", image, "--report", "Heart size normal.", "--no-finding", "segment"],
                    tmp_path, tiny_checkpoint) == 0
    assert "without report priors" in json.loads((tmp_path / "out" / "x_prediction.json").read_text())["rule"]


def test_huge_image_is_downscaled_for_the_model_and_masked_at_full_size(predictor, tmp_path):
    big = np.zeros((10000, 10000), np.uint8)
    big[4000:6000, 5000:7000] = 200
    summary = predict_case(predictor, write_png(tmp_path / "big.png", big), REPORT, str(tmp_path / "out"),
                           options=PredictOptions(progress=False))
    assert summary["shape"] == [10000, 10000]
    with Image.open(tmp_path / "out" / "big_mask.png") as mask:
        assert mask.size == (10000, 10000)


@pytest.mark.parametrize("case, message", [
    ("missing", "input not found"),
    ("corrupt", "not a readable image|could not be decoded"),
    ("one_pixel", "too small"),
    ("mismatched_reference", "reference mask .* is 32x32 pixels but the image is 64x64"),
    ("reference_on_another_grid", r"not on its image's voxel grid \(origin \(5.00, 0.00, 0.00\) mm"),
    ("other_backbone", "trained on backbone 'sam_tiny', not 'litemedsam'"),
    ("no_finding", "no finding"),
    ("empty_report", "report is empty"),
    ("box_on_volume", "--box is for 2-D images"),
    ("bad_box", "x1 > x0"),
    ("box_outside", r"box \(0, 0, 500, 500\) is not inside the 64 x 64 image"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, tiny_checkpoint, capsys, case, message):
    image = write_png(tmp_path / "x.png", chest())
    argv = ["--image", image, "--report", REPORT]
    if case == "missing":
        argv[1] = str(tmp_path / "nope.png")
    elif case == "corrupt":
        (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
        argv[1] = str(tmp_path / "bad.png")
    elif case == "one_pixel":
        argv[1] = write_png(tmp_path / "tiny.png", np.zeros((1, 1), np.uint8))
    elif case == "mismatched_reference":
        argv += ["--reference", write_png(tmp_path / "ref.png", np.zeros((32, 32), np.uint8))]
    elif case == "reference_on_another_grid":
        vol, truth = ct_volume()
        argv[1] = write_nifti(tmp_path / "v.nii.gz", vol)
        shifted = np.diag([0.8, 0.8, 2.5, 1.0])
        shifted[0, 3] = 5.0
        argv += ["--reference", write_nifti(tmp_path / "ref.nii.gz", truth, shifted)]
    elif case == "other_backbone":
        argv += ["--backbone", "litemedsam"]
    elif case == "no_finding":
        argv[3] = "Heart size is normal."  # no finding; "Unremarkable study." states a normal one
    elif case == "empty_report":
        argv[3] = "   "
    elif case == "box_on_volume":
        argv[1] = write_nifti(tmp_path / "v.nii.gz", ct_volume()[0])
        argv += ["--box", "1", "1", "20", "20"]
    elif case == "bad_box":
        argv += ["--box", "20", "1", "10", "20"]
    elif case == "box_outside":
        argv += ["--box", "0", "0", "500", "500"]
    assert _predict(argv, tmp_path, tiny_checkpoint) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medseg-r: error:") and re.search(message, err[0]), err
    assert listing(tmp_path / "out") == []


def test_checkpoint_errors_are_one_line(tmp_path, capsys):
    image = write_png(tmp_path / "x.png", chest())
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    for ckpt, message in ((str(tmp_path / "missing.ckpt"), "not found|No such file"), (str(bad), "cannot read")):
        code = main(["predict", "--image", image, "--report", REPORT, "--checkpoint", ckpt, "--backbone", "sam_tiny",
                     "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and re.search(message, err[0]), err


def test_predictor_batch_size_defaults_to_one_on_cpu_and_rejects_zero(tiny_checkpoint):
    from medseg_r.checkpoint import load_model
    from medseg_r.inference import Predictor

    model = load_model(tiny_checkpoint)
    assert Predictor(model, device="cpu").batch_size == 1
    assert Predictor(model, batch_size=3, device="cpu").batch_size == 3
    with pytest.raises(ValueError, match="batch_size"):
        Predictor(model, batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        Predictor(model, batch_size=1.5, device="cpu")
    with pytest.raises(ValueError, match="model must be a MedSeg-R model"):
        Predictor(None)
    with pytest.raises(ValueError, match=r"box must be four numbers \(x0, y0, x1, y1\), got \(1, 2, 3\)"):
        Predictor(model, device="cpu").predict_image(chest(), REPORT, box=(1, 2, 3))
    for report in (None, [REPORT]):
        with pytest.raises(ValueError, match="report must be a string or a Report, got"):
            Predictor(model, device="cpu").predict_image(chest(), report)
    # a report given as text is read as predict_case reads it
    pixels = chest()
    as_text = Predictor(model, device="cpu").predict_image(pixels, REPORT)
    parsed = Predictor(model, device="cpu").predict_image(pixels, parse_report(REPORT))
    assert np.array_equal(as_text.prob, parsed.prob)


def test_outputs_never_replace_the_users_files_but_a_rerun_replaces_its_own(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    out.mkdir()
    image = write_png(out / "scan.png", chest())
    truth = write_png(out / "scan_mask.png", (chest() > 200).astype(np.uint8) * 255)  # the user's reference
    before = (out / "scan_mask.png").read_bytes()
    argv = ["--image", image, "--report", REPORT]
    assert _predict([*argv, "--reference", truth], tmp_path, tiny_checkpoint) == 2
    err = capsys.readouterr().err
    assert "would overwrite an input of this prediction" in err and "scan_mask.png" in err
    assert _predict(argv, tmp_path, tiny_checkpoint) == 2  # the same file, not named as the reference
    assert "is not an earlier prediction's output" in capsys.readouterr().err
    assert (out / "scan_mask.png").read_bytes() == before and listing(out) == ["scan.png", "scan_mask.png"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    image = write_png(elsewhere / "scan.png", chest())
    assert _predict(["--image", image, "--report", REPORT], tmp_path / "second", tiny_checkpoint) == 0
    assert _predict(["--image", image, "--report", REPORT], tmp_path / "second", tiny_checkpoint) == 0  # its own
    done = tmp_path / "second" / "out"
    assert listing(done) == ["scan_mask.png", "scan_overlay.png", "scan_prediction.json"]
    # a prediction stopped while writing leaves its marker (naming its image), and a rerun on that
    # image may replace its files; one on another image of the same name may not
    (done / "scan_prediction.json").unlink()
    (done / "scan_prediction.json.pending").write_text(str(tmp_path / "out" / "scan.png"))
    assert _predict(["--image", image, "--report", REPORT], tmp_path / "second", tiny_checkpoint) == 2
    assert "holds the prediction of another image of the same name" in capsys.readouterr().err
    (done / "scan_prediction.json.pending").write_text(os.path.abspath(image))
    assert _predict(["--image", image, "--report", REPORT], tmp_path / "second", tiny_checkpoint) == 0
    assert listing(done) == ["scan_mask.png", "scan_overlay.png", "scan_prediction.json"]


@pytest.mark.parametrize("report, message", [
    ("12 mm solid round nodule in the lfet lower lobe.", "has a zone but no side the report reader understood"),
    ("Rundherd im rechten Unterlappen, 12 mm.", "has no location the report reader understood"),
])
def test_a_location_the_reader_missed_is_a_warning_even_when_quiet(tmp_path, tiny_checkpoint, capsys, report, message):
    image = write_png(tmp_path / "x.png", chest())
    assert _predict(["--image", image, "--report", report], tmp_path, tiny_checkpoint) == 0
    err = capsys.readouterr().err
    assert "warning: finding 1 (" in err and message in err
    summary = json.loads((tmp_path / "out" / "x_prediction.json").read_text())
    assert any(message in w for w in summary["warnings"])
    assert _predict(["--image", image, "--report", REPORT], tmp_path / "clean", tiny_checkpoint) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_json_gives_the_volumes_own_shape_and_its_ras_shape(tmp_path, tiny_checkpoint):
    vol, _ = ct_volume()  # [X, Y, Z] = 40 x 36 x 10
    stored = np.ascontiguousarray(vol.transpose(2, 1, 0))  # stored as [Z, Y, X]
    affine = np.array([[0, 0, 0.8, 0], [0, 0.8, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]])
    path = write_nifti(tmp_path / "perm.nii.gz", stored, affine)
    assert _predict(["--image", path, "--report", REPORT], tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / "perm_prediction.json").read_text())
    assert summary["shape"] == [10, 36, 40] and summary["shape_ras"] == [40, 36, 10]


def test_a_jpeg_reference_is_read_at_half_its_range(tmp_path, tiny_checkpoint):
    image = write_png(tmp_path / "x.png", chest())
    truth = np.zeros((64, 64), np.uint8)
    truth[20:32, 12:24] = 255
    Image.fromarray(truth).save(tmp_path / "ref.jpg", quality=60)
    assert int((np.asarray(Image.open(tmp_path / "ref.jpg")) > 0).sum()) > 160  # lossy edges
    assert _predict(["--image", image, "--report", REPORT, "--reference", str(tmp_path / "ref.jpg")],
                    tmp_path, tiny_checkpoint) == 0
    summary = json.loads((tmp_path / "out" / "x_prediction.json").read_text())
    assert abs(summary["reference"]["reference_pixels"] - 144) <= 8


def test_a_ct_window_on_a_2d_image_is_named_as_unused(tmp_path, tiny_checkpoint, capsys):
    image = write_png(tmp_path / "scan.png", chest())
    assert _predict(["--image", image, "--report", REPORT, "--window", "-600", "1500"], tmp_path,
                    tiny_checkpoint) == 0
    assert "--window is a CT window for volumes" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "scan_prediction.json").read_text())
    assert any("--window" in w for w in summary["warnings"])


def test_a_volume_without_voxel_size_is_predicted_with_a_warning(tmp_path, tiny_checkpoint, capsys):
    import nibabel as nib

    image = nib.Nifti1Image(ct_volume()[0], None)  # no sform or qform: the header's pixdims alone
    image.header.set_zooms((0.0, 0.8, 2.5))
    nib.save(image, str(tmp_path / "v.nii.gz"))
    assert _predict(["--image", str(tmp_path / "v.nii.gz"), "--report", REPORT], tmp_path,
                    tiny_checkpoint) == 0
    assert "warning: the NIfTI gives no voxel size (pixdim 0)" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "v_prediction.json").read_text())
    assert [w for w in summary["warnings"] if "NIfTI" in w] == [
        "the NIfTI gives no voxel size (pixdim 0): 1 mm was taken, so its mm, mm2 and ml figures "
        "are not real sizes", "the NIfTI gives no orientation (qform and sform codes 0): its axes "
        "were taken as stored, so sides and upper/lower slices may be swapped; check the overlay"]


@pytest.mark.parametrize("options, match", [
    ({"largest": 1.5}, "largest must be a whole number >= 0"),
    ({"sheet_tiles": 0}, "sheet_tiles must be a whole number >= 1"),
    ({"window": (float("nan"), 100)}, "window must be"),
    ({"window": (40, 0)}, "window must be"),
    ({"box": (float("nan"), 0, 10, 10)}, "box must be four finite numbers"),
])
def test_predict_options_are_checked_when_made(options, match):
    with pytest.raises(ValueError, match=match):
        PredictOptions(**options)


def test_a_case_name_with_a_folder_part_or_a_file_as_output_folder_is_refused(predictor, tmp_path):
    from medseg_r.inference import InputError

    image = write_png(tmp_path / "scan.png", chest())
    with pytest.raises(InputError, match="must be a plain file name"):
        predict_case(predictor, image, REPORT, str(tmp_path / "out"), stem="../../escaped",
                     options=PredictOptions(progress=False))
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        predict_case(predictor, image, REPORT, str(tmp_path / "file"), options=PredictOptions(progress=False))
    assert sorted(os.listdir(tmp_path)) == ["file", "scan.png"]


def test_a_2d_reference_is_read_once(tmp_path, tiny_checkpoint, monkeypatch):
    import PIL.Image

    image = write_png(tmp_path / "x.png", chest())
    truth = np.zeros((64, 64), np.uint8)
    truth[20:32, 12:24] = 255
    ref = str(tmp_path / "ref.png")
    Image.fromarray(truth).save(ref)
    opened = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda fp, *a, **k: (opened.append(str(fp)), real_open(fp, *a, **k))[1])
    assert _predict(["--image", image, "--report", REPORT, "--reference", ref], tmp_path, tiny_checkpoint) == 0
    assert opened.count(ref) == 1
    summary = json.loads((tmp_path / "out" / "x_prediction.json").read_text())
    assert summary["reference"]["reference_pixels"] == 144


def test_a_reference_with_nan_is_refused_by_name(tmp_path, tiny_checkpoint, capsys):
    import tifffile

    image = write_png(tmp_path / "x.png", chest())
    truth = np.zeros((64, 64), np.float32)
    truth[20:32, 12:24] = 1.0
    truth[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "ref.tif", truth)
    assert _predict(["--image", image, "--report", REPORT, "--reference", str(tmp_path / "ref.tif")],
                    tmp_path, tiny_checkpoint) == 2
    assert "ref.tif contains NaN or infinite values" in capsys.readouterr().err


def test_the_image_itself_given_as_its_reference_is_refused(tmp_path, tiny_checkpoint, capsys):
    # it was scored: "Dice 0.009", exit 0
    image = write_png(tmp_path / "x.png", chest())
    assert _predict(["--image", image, "--report", REPORT, "--reference", image], tmp_path, tiny_checkpoint) == 2
    assert "different values: an image, not a mask?" in capsys.readouterr().err


def _corner_run(predictor, monkeypatch):
    """The predictor's model marks the displayed picture's top-left corner (10 x 20 pixels)."""
    def run(images, reports, box=None):
        prob = np.zeros((images.shape[0],) + images.shape[-2:], np.float32)
        prob[:, :10, :20] = 1.0
        return prob, None, np.ones(images.shape[0], np.float32)

    monkeypatch.setattr(predictor, "_run", run)


@pytest.mark.parametrize("orientation", [None, ["R", "F"], ["F", "L"]])
def test_a_dicom_radiographs_mask_is_also_written_in_its_stored_pixel_order(tmp_path, predictor,
                                                                           monkeypatch, orientation):
    # the NIfTI mask is in RAS+ (or turned) voxel order; a radiograph user reads the stored pixel array
    import nibabel as nib

    from medseg_r.data.volumes import display_slice
    from tests.data.test_projection import write_radiograph

    stored = (chest(dtype=np.uint16)[:, :48])  # not square: a quarter turn shows
    path = write_radiograph(tmp_path / "cxr.dcm", stored, orientation)
    _corner_run(predictor, monkeypatch)
    summary = predict_case(predictor, path, REPORT, str(tmp_path / "out"), options=PredictOptions(progress=False))
    assert summary["outputs"]["stored_mask"] == "cxr_mask.png"
    assert summary["shape"] == [64, 48]  # the pixel array's rows and columns
    assert (summary["shape_ras"] is None) == (orientation is not None)  # a turned grid is not RAS+
    assert len(summary["voxel_axes"]) == 3
    png = np.asarray(Image.open(tmp_path / "out" / "cxr_mask.png")) > 0
    assert png.shape == stored.shape
    shown = display_slice(np.asarray(nib.load(tmp_path / "out" / "cxr_mask.nii.gz").dataobj), 0) > 0
    corner = {None: png[:10, :20], ("R", "F"): png[:10, -20:], ("F", "L"): png[:20, :10]}
    assert corner[tuple(orientation) if orientation else None].all() and png.sum() == 200 == shown.sum()
    assert shown[:10, :20].all()  # the NIfTI's display is the model's
    # either mask given back as the reference is the prediction itself, whatever the turn
    for reference in ("cxr_mask.png", "cxr_mask.nii.gz"):
        again = predict_case(predictor, path, REPORT, str(tmp_path / reference.replace(".", "_")),
                             reference=str(tmp_path / "out" / reference),
                             options=PredictOptions(progress=False))
        assert again["reference"]["dice"] == 1.0, reference


def test_a_series_or_an_image_file_writes_no_stored_order_png(tmp_path, predictor, monkeypatch):
    _corner_run(predictor, monkeypatch)
    _write_dicom_series(str(tmp_path / "series"), ct_volume()[0][..., :2])
    image = write_png(tmp_path / "cxr.png", chest())
    for path, out in ((str(tmp_path / "series"), "out_series"), (image, "out_image")):
        summary = predict_case(predictor, path, REPORT, str(tmp_path / out), options=PredictOptions(progress=False))
        assert "stored_mask" not in summary["outputs"]
        assert sorted(os.listdir(tmp_path / out)) == sorted(summary["outputs"].values())

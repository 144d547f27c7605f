"""Uploads are checked by kind and unpacked safely; what the page shows is computed right."""

import os
import zipfile

import numpy as np
import pytest

from medseg_r.report import parse_report
from medseg_r.serve.cases import UploadError, open_upload, safe_name, unpack_dicom_zip, upload_kind
from medseg_r.serve.views import equivalent_diameter, mask_layer, report_view, z_range

from .conftest import write_dicom_series


@pytest.mark.parametrize(
    "name, kind",
    [
        ("a.PNG", "image"),
        ("b.tiff", "image"),
        ("ct.nii.gz", "nifti"),
        ("x.dcm", "dicom"),
        ("series.zip", "zip"),
        ("IM000020", "dicom"),  # DICOM files often have no ending: read if the header says DICM
        ("1.2.840.113619.2.55.3.6046", "dicom"),  # or are named by their UID
    ],
)
def test_upload_kinds(name, kind):
    assert upload_kind(name) == kind


@pytest.mark.parametrize("name", ["notes.txt", "scan.pdf", "archive.tar.gz", "scan.dat"])
def test_other_kinds_are_refused_with_415(name):
    with pytest.raises(UploadError, match="wrong kind of file") as caught:
        upload_kind(name)
    assert caught.value.status == 415


def test_safe_names_stay_in_the_folder():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\my scan (1).png") == "my_scan_1.png"
    assert safe_name("..") == "upload" and len(safe_name("a" * 500 + ".png")) == 120
    # a name of characters the folder does not take keeps its ending (its kind)
    assert safe_name("胸片.png") == "upload.png" and safe_name("é.nii.gz") == "upload.nii.gz"
    assert safe_name("a" * 500 + ".nii.gz").endswith("a.nii.gz")


def test_a_nifti_over_the_voxel_limit_is_refused_before_its_data_is_read(tmp_path):
    import nibabel as nib

    from medseg_r.serve.cases import UploadError, open_upload

    nib.save(nib.Nifti1Image(np.zeros((20, 30, 4), np.uint8), np.eye(4)), str(tmp_path / "ct.nii.gz"))
    with pytest.raises(UploadError, match="20 x 30 x 4 voxels; this server takes volumes of at most") as exc:
        open_upload(str(tmp_path / "ct.nii.gz"), str(tmp_path), max_bytes=2**20, max_voxels=2000)
    assert exc.value.status == 413
    assert open_upload(str(tmp_path / "ct.nii.gz"), str(tmp_path), max_bytes=2**20).source.kind == "volume"


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def test_zip_members_are_flattened_inside_the_target(tmp_path):
    archive = _zip(
        tmp_path / "s.zip",
        {
            "../../evil.dcm": b"x",
            "/abs/path.dcm": b"y",
            "sub/dir/c.dcm": b"z",
            "DICOMDIR": b"index",
            "sub/.hidden": b"h",
        },
    )
    out = unpack_dicom_zip(archive, str(tmp_path / "series"), max_bytes=10**6)
    names = sorted(os.listdir(out))
    assert names == ["00000_evil.dcm", "00001_path.dcm", "00002_c.dcm"]
    assert not os.path.exists(tmp_path / "evil.dcm")


def test_zip_bombs_and_broken_zips_are_refused(tmp_path):
    archive = _zip(tmp_path / "big.zip", {"a.dcm": b"\0" * 5000})
    with pytest.raises(UploadError, match="unpacks to more than") as caught:
        unpack_dicom_zip(archive, str(tmp_path / "out"), max_bytes=4000)
    assert caught.value.status == 413
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UploadError, match="not a readable zip"):
        unpack_dicom_zip(str(broken), str(tmp_path / "out2"), max_bytes=10**6)


def test_a_zipped_dicom_series_reads_like_its_folder(tmp_path):
    from medseg_r.inference.sources import load_source

    hu = np.full((24, 20, 6), -800.0, np.float32)
    hu[14:18, 5:9, 3:5] = 40.0
    folder = write_dicom_series(tmp_path / "orig", hu)
    archive = tmp_path / "upload" / "chest.zip"
    os.makedirs(archive.parent)
    with zipfile.ZipFile(archive, "w") as zf:
        for name in os.listdir(folder):
            zf.write(os.path.join(folder, name), f"chest/{name}")
    case = open_upload(str(archive), str(tmp_path / "upload"), max_bytes=10**7)
    direct = load_source(folder)
    assert case.kind == "volume" and case.path.endswith("chest") and not archive.exists()
    assert np.array_equal(case.source.voxels, direct.voxels) and np.allclose(
        case.source.affine, direct.affine
    )
    info = case.info()
    assert (info["width"], info["height"], info["slices"], info["ct"]) == (24, 20, 6, True)


def test_report_view_marks_evidence_and_negation():
    view = report_view(parse_report("Spiculated mass in the left upper lobe. No pleural effusion."))
    text = "".join(p["text"] for p in view["pieces"])
    assert text == "Spiculated mass in the left upper lobe. No pleural effusion."
    kinds = {p["text"]: (p["kind"], p.get("negated")) for p in view["pieces"] if p["kind"]}
    assert kinds["Spiculated"] == ("shape", False) and kinds["left upper lobe"] == (
        "location",
        False,
    )
    assert kinds["pleural effusion"] == ("target", True)
    first = view["findings"][0]
    assert (first["side"], first["zones"], first["negated"]) == ("left", ["upper"], False)
    assert view["findings"][1]["negated"] and view["positive"] == 1


def test_z_range_follows_predicts_zones():
    upper = parse_report("nodule in the right upper lobe").findings[0]
    anywhere = parse_report("nodule in the right lung").findings[0]
    assert z_range(upper, 26) == [16, 25]  # fractions 0.64 .. 1.0 of 25 steps
    assert z_range(anywhere, 26) == [0, 25]


def test_mask_layer_fills_and_outlines_only_the_mask():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    layer = mask_layer(mask)
    assert layer.shape == (20, 20, 4) and (layer[..., 3] > 0).sum() == 100
    assert layer[5, 5, 3] == 255 and layer[10, 10, 3] == 110 and layer[0, 0, 3] == 0


def test_equivalent_diameter_uses_millimetres_when_known():
    assert equivalent_diameter({"area_mm2": np.pi * 25}) == {"value": 10.0, "unit": "mm"}
    assert equivalent_diameter({"volume_ml": 4 / 3 * np.pi * 0.125}) == {
        "value": 10.0,
        "unit": "mm",
    }
    assert equivalent_diameter({"area_px": np.pi * 4}) == {"value": 4.0, "unit": "px"}
    assert equivalent_diameter({"area_px": 0}) is None


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    import medseg_r.io.images as images
    from medseg_r.serve.cases import UploadError, open_upload

    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(UploadError, match="30 x 20 pixels; this server takes images of at most") as exc:
        open_upload(str(tmp_path / "wide.png"), str(tmp_path), max_bytes=2**20, max_pixels=500)
    assert exc.value.status == 413
    assert open_upload(str(tmp_path / "wide.png"), str(tmp_path), max_bytes=2**20).source.pixels.shape == (20, 30)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    monkeypatch.setattr(images, "MAX_PIXELS", 500)  # the readers' own limit, checked from the header too
    with pytest.raises(ValueError, match="is larger than 500 pixels"):
        images.read_image(str(tmp_path / "wide.png"))


def test_a_file_without_an_ending_that_is_not_dicom_is_refused_by_name(tmp_path):
    path = tmp_path / "IM000021"
    path.write_bytes(b"\0" * 200)
    with pytest.raises(Exception, match="IM000021: unknown input type"):
        open_upload(str(path), str(tmp_path), max_bytes=2**20)


def test_a_zip_without_dicom_is_named_as_the_zip_and_limits_in_readable_mb(tmp_path):
    archive = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", "not a slice " * 100)
    with pytest.raises(Exception) as caught:
        open_upload(str(archive), str(tmp_path), max_bytes=2**20)
    assert str(caught.value).startswith("junk.zip:") and str(tmp_path) not in str(caught.value)
    with zipfile.ZipFile(tmp_path / "big.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dcm", b"\0" * 200_000)
    with pytest.raises(UploadError, match="unpacks to more than 0.05 MB"):
        unpack_dicom_zip(str(tmp_path / "big.zip"), str(tmp_path / "big"), max_bytes=int(0.05 * 2**20))


def test_one_dicom_slice_has_no_slice_spacing(tmp_path):
    folder = write_dicom_series(tmp_path / "one", np.full((40, 36, 1), -700.0))
    path = os.path.join(folder, sorted(os.listdir(folder))[0])
    info = open_upload(path, str(tmp_path), max_bytes=2**24).info()
    assert info["slices"] == 1 and info["slice_mm"] is None

import os

import numpy as np
import pytest
from PIL import Image

from medseg_r.inference.predictor import display_to_ras
from medseg_r.inference.sources import InputError, load_source
from medseg_r.inference.writers import write_mask
from tests.data.test_volumes import _write_dicom_series

from .conftest import chest, ct_volume, write_nifti, write_png


@pytest.mark.parametrize("name, array", [
    ("grey8.png", chest()), ("grey16.png", chest(dtype=np.uint16)), ("rgb.png", np.dstack([chest()] * 3)),
    ("photo.jpg", np.dstack([chest()] * 3)), ("grey16.tif", chest(dtype=np.uint16)), ("grey.bmp", chest()),
])
def test_2d_formats_load_with_native_shape(tmp_path, name, array):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    src = load_source(path)
    assert src.kind == "image" and src.pixels.shape[:2] == (64, 64) and src.n_slices == 1
    if name == "grey16.tif":
        assert src.pixels.dtype == np.uint16 and src.format == "tiff"


def test_nifti_mask_round_trips_to_the_input_voxel_order(tmp_path):
    """A NIfTI stored in LPS voxel order: mask written back must line up voxel by voxel with the input."""
    import nibabel as nib

    vol, mask = ct_volume()
    lps_affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # voxel axes run toward L and P
    path = write_nifti(tmp_path / "ct.nii.gz", vol[::-1, ::-1].copy(), lps_affine)
    src = load_source(path)
    assert src.format == "nifti" and src.voxels.shape == (40, 36, 10)
    assert np.allclose(np.abs(np.diag(src.affine))[:3], [0.8, 0.8, 2.5]) and np.allclose(src.pixel_spacing, (0.8, 0.8))
    # what the pipeline does: display slices -> display stack -> RAS -> the input's own order
    ref_ras = mask.astype(np.float32)  # the lesion in RAS order
    stack = np.stack([src.display(z, normalised=ref_ras) for z in range(10)]) > 0
    write_mask(src, display_to_ras(stack), str(tmp_path / "mask.nii.gz"))
    back = nib.load(str(tmp_path / "mask.nii.gz"))
    assert np.allclose(back.affine, lps_affine) and back.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(back.dataobj), mask[::-1, ::-1])


def test_a_nifti_mask_does_not_keep_the_inputs_display_range_or_intent(tmp_path):
    import nibabel as nib

    vol, mask = ct_volume()
    image = nib.Nifti1Image(vol, np.diag([0.8, 0.8, 2.5, 1.0]))
    image.header["cal_min"], image.header["cal_max"] = -1000.0, 2000.0  # a CT window for viewers
    image.header.set_intent("estimate")
    nib.save(image, str(tmp_path / "ct.nii.gz"))
    src = load_source(tmp_path / "ct.nii.gz")
    write_mask(src, mask.astype(bool), str(tmp_path / "mask.nii.gz"))
    header = nib.load(str(tmp_path / "mask.nii.gz")).header
    assert (float(header["cal_min"]), float(header["cal_max"])) == (0.0, 1.0)
    assert header.get_intent()[0] == "none"
    nib.save(nib.Nifti2Image(vol, np.diag([0.8, 0.8, 2.5, 1.0])), str(tmp_path / "ct2.nii.gz"))
    src = load_source(tmp_path / "ct2.nii.gz")
    write_mask(src, mask.astype(bool), str(tmp_path / "mask2.nii.gz"))
    back = nib.load(str(tmp_path / "mask2.nii.gz"))  # NIfTI-2 in, NIfTI-2 out
    assert isinstance(back, nib.Nifti2Image) and np.array_equal(np.asarray(back.dataobj), mask)


def test_display_puts_the_patients_right_on_the_image_left(tmp_path):
    vol, _ = ct_volume()
    src = load_source(write_nifti(tmp_path / "ct.nii.gz", vol))
    slice_ = src.display(7, normalised=src.normalised(window=(40, 400)))
    cols = np.nonzero(slice_.max(axis=0) > 0.4)[0]
    assert cols.max() < slice_.shape[1] / 2  # lesion at high RAS x (patient's right) -> image left


def test_dicom_series_and_single_file(tmp_path):
    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    series = load_source(tmp_path / "series")
    assert series.format == "dicom" and series.voxels.shape == vol.shape
    assert np.allclose(series.voxels, vol, atol=1)
    assert np.allclose(np.abs(np.diag(series.affine))[:3], [0.8, 0.8, 2.5])
    single = load_source(tmp_path / "series" / "003.dcm")
    assert single.voxels.shape == (40, 36, 1) and np.allclose(single.voxels[..., 0], vol[..., 3], atol=1)


def _strip_pixels(path):
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)


@pytest.mark.parametrize("case, message", [
    ("missing", "input not found"),
    ("corrupt_png", "not a readable image|could not be decoded"),
    ("truncated_png", "could not be decoded|not a readable image|truncated"),
    ("one_pixel", "too small"),
    ("dicom_no_pixels", "without pixel data"),
    ("not_dicom", "not a readable DICOM file"),
    ("all_nan_nifti", "no finite value"),
    ("four_d_nifti", "4-D NIfTI"),
    ("truncated_nifti", "not a readable NIfTI"),
    ("unknown_type", "unknown input type"),
])
def test_bad_inputs_raise_one_line_errors(tmp_path, case, message):
    import re

    path = tmp_path / "input"
    if case == "corrupt_png":
        path = tmp_path / "x.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif case == "truncated_png":
        full = tmp_path / "full.png"
        write_png(full, (np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8))
        path = tmp_path / "x.png"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "one_pixel":
        path = tmp_path / "x.png"
        write_png(path, np.zeros((1, 1), np.uint8))
    elif case == "dicom_no_pixels":
        _write_dicom_series(str(tmp_path / "s"), ct_volume()[0][..., :2])
        path = tmp_path / "s" / "000.dcm"
        _strip_pixels(str(path))
    elif case == "not_dicom":  # a .dcm of random bytes: pydicom reads anything by force
        path = tmp_path / "x.dcm"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    elif case == "all_nan_nifti":
        path = tmp_path / "x.nii.gz"
        write_nifti(path, np.full((16, 16, 3), np.nan, np.float32))
    elif case == "four_d_nifti":
        path = tmp_path / "x.nii.gz"
        write_nifti(path, np.zeros((16, 16, 3, 2), np.float32))
    elif case == "truncated_nifti":
        full = write_nifti(tmp_path / "full.nii", ct_volume()[0])
        path = tmp_path / "x.nii"
        path.write_bytes(open(full, "rb").read()[:2000])
    elif case == "unknown_type":
        path = tmp_path / "x.txt"
        path.write_text("hello")
    with pytest.raises(InputError) as info:
        load_source(path)
    assert re.search(message, str(info.value)) and "\n" not in str(info.value)


def test_nifti_nans_are_counted_and_replaced(tmp_path):
    vol, _ = ct_volume()
    vol[0, 0, :] = np.nan
    src = load_source(write_nifti(tmp_path / "x.nii.gz", vol))
    assert src.nan_voxels == 10 and np.isfinite(src.normalised()).all()


def test_a_complex_nifti_is_refused_rather_than_cut_to_its_real_part(tmp_path):
    path = write_nifti(tmp_path / "x.nii.gz", np.ones((16, 16, 3), np.complex64))
    with pytest.raises(InputError, match="complex-valued NIfTI"):
        load_source(path)


def test_a_nifti_without_voxel_size_or_orientation_says_what_was_assumed(tmp_path, capfd):
    import nibabel as nib

    vol, _ = ct_volume()
    assert load_source(write_nifti(tmp_path / "ok.nii.gz", vol)).notes == ()
    image = nib.Nifti1Image(vol, None)  # no affine: qform and sform codes 0
    image.header.set_zooms((0.8, 0.0, 2.5))
    path = str(tmp_path / "bare.nii.gz")
    nib.save(image, path)
    capfd.readouterr()
    notes = load_source(path).notes
    assert len(notes) == 2 and "no voxel size (pixdim 0)" in notes[0] and "no orientation" in notes[1]
    assert "pixdim" not in capfd.readouterr().err  # nibabel's own line repeated the note on stderr
    image = nib.Nifti1Image(vol, np.diag([0.8, 0.8, 2.5, 1.0]))  # an sform gives the voxel size
    image.header.set_zooms((0.8, 0.0, 2.5))
    nib.save(image, path)
    source = load_source(path)
    assert source.notes == () and source.pixel_spacing == pytest.approx((0.8, 0.8))


def test_a_2d_nifti_in_any_axial_orientation_is_read_and_its_mask_restored(tmp_path):
    import nibabel as nib

    pixels = np.zeros((20, 16), np.float32)
    pixels[2, 3] = 100.0
    lps = np.diag([-0.7, -0.7, 1.0, 1.0])  # voxel axes run to the patient's left and back (LPS)
    path = str(tmp_path / "slice.nii.gz")
    nib.save(nib.Nifti1Image(pixels, lps), path)
    source = load_source(path)
    assert source.voxels.shape == (20, 16, 1) and source.voxels[17, 12, 0] == 100.0  # RAS: flipped
    assert np.array_equal(source.restore(source.voxels), pixels) and source.notes == ()
    coronal = np.array([[0.7, 0, 0, 0], [0, 0, 1.0, 0], [0, 0.7, 0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(pixels, coronal), path)
    with pytest.raises(InputError, match="2-D NIfTI whose plane is not axial"):
        load_source(path)


def test_a_2d_nifti_of_hounsfield_units_is_an_axial_ct_slice(tmp_path):
    # it was read as a radiograph: "right upper lobe" placed the mask at the slice's top (anterior)
    import nibabel as nib

    hu = np.full((32, 24), -800.0, np.float32)
    hu[10:14, 8:12] = 40.0
    nib.save(nib.Nifti1Image(hu, np.diag([0.7, 0.7, 1.0, 1.0])), str(tmp_path / "ct.nii.gz"))
    assert load_source(str(tmp_path / "ct.nii.gz")).axial_slice
    picture = np.clip(hu + 1000, 0, 255) / 255  # intensities, as a radiograph's: keeps its zones
    nib.save(nib.Nifti1Image(picture, np.diag([0.7, 0.7, 1.0, 1.0])), str(tmp_path / "cxr.nii.gz"))
    assert not load_source(str(tmp_path / "cxr.nii.gz")).axial_slice


@pytest.mark.parametrize("modality, image_type, axial", [
    ("CT", None, True), ("MR", None, True), ("DX", None, False), ("CR", None, False),
    ("CT", ["ORIGINAL", "PRIMARY", "LOCALIZER"], False)])  # a CT scout is a projection
def test_one_axial_slice_of_a_scan_is_told_from_a_radiograph_by_its_modality(tmp_path, modality,
                                                                             image_type, axial):
    import pydicom

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    path = tmp_path / "series" / "003.dcm"
    ds = pydicom.dcmread(path)
    ds.Modality = modality
    if image_type:
        ds.ImageType = image_type
    ds.save_as(path)
    single = load_source(path)
    assert single.axial_slice == axial
    assert not load_source(tmp_path / "series").axial_slice  # a series has levels of its own


@pytest.mark.parametrize("orientation, axial", [
    ([1, 0, 0, 0, 1, 0], True), ([1, 0, 0, 0, 0, -1], False), ([0, 1, 0, 0, 0, -1], False)])
def test_one_coronal_or_sagittal_slice_keeps_its_zones(tmp_path, orientation, axial):
    # upper and lower lie in the plane of a coronal or sagittal slice: it is no axial one
    import pydicom

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    path = tmp_path / "series" / "003.dcm"
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = orientation
    ds.save_as(path)
    assert load_source(path).axial_slice == axial


def test_one_axial_slice_without_the_dicom_preamble_is_told_too(tmp_path):
    # read by force, as load_dicom reads a single file
    import pydicom

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    path = tmp_path / "series" / "003.dcm"
    ds = pydicom.dcmread(path)
    bare = tmp_path / "bare.dcm"
    pydicom.dcmwrite(bare, ds, enforce_file_format=False)
    with open(bare, "rb") as handle:
        data = handle.read()
    with open(bare, "wb") as handle:  # no 128-byte preamble, no "DICM"
        handle.write(data[132:] if data[128:132] == b"DICM" else data)
    assert pydicom.dcmread(bare, force=True).preamble is None
    assert load_source(bare).axial_slice
    # a series folder of such files (some exports leave the preamble out) loads too
    (tmp_path / "bare_series").mkdir()
    for name in sorted(os.listdir(tmp_path / "series")):
        with open(tmp_path / "series" / name, "rb") as handle:
            data = handle.read()
        with open(tmp_path / "bare_series" / name, "wb") as handle:
            handle.write(data[132:])
    (tmp_path / "bare_series" / "notes.txt").write_text("not a DICOM file")
    series = load_source(tmp_path / "bare_series")
    assert np.array_equal(series.voxels, load_source(tmp_path / "series").voxels)
    assert series.notes == ()  # its pixel spacing read from a file without the preamble


def _reports_seen(predictor, monkeypatch) -> list:
    """The reports the predictor's model is asked with (it returns empty maps, nothing run)."""
    seen = []

    def run(images, reports, box=None):
        seen.extend(reports)
        n = images.shape[0]
        return np.zeros((n,) + images.shape[-2:], np.float32), None, np.zeros(n, np.float32)

    monkeypatch.setattr(predictor, "_run", run)
    return seen


def test_one_axial_slice_is_segmented_without_the_report_zones(tmp_path, predictor, monkeypatch):
    from medseg_r import parse_report

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    seen = _reports_seen(predictor, monkeypatch)
    report = parse_report("A 2 cm nodule in the right upper lobe.")
    predictor.predict_volume(load_source(tmp_path / "series" / "003.dcm"), report, progress=False)
    assert [(f.location.side, f.location.zones) for f in seen[0].findings] == [("right", [])]
    seen.clear()
    predictor.predict_volume(load_source(tmp_path / "series" / "003.dcm"), report, z_zones=False,
                             progress=False)
    assert seen[0].findings[0].location.zones == ["upper"]  # asked for: the report unchanged


def test_a_multi_page_tiff_says_that_only_its_first_page_was_read(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "stack.tif", np.stack([chest(), chest()[::-1]]))
    src = load_source(tmp_path / "stack.tif")
    assert src.pixels.shape == (64, 64) and "holds 2 images" in " ".join(src.notes)
    Image.fromarray(chest()).save(tmp_path / "one.tif")
    assert load_source(tmp_path / "one.tif").notes == ()


def test_a_dicom_without_pixel_spacing_says_that_1_mm_was_taken(tmp_path):
    import pydicom

    vol, _ = ct_volume()
    _write_dicom_series(str(tmp_path / "series"), vol)
    path = tmp_path / "series" / "003.dcm"
    assert load_source(path).notes == ()
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    ds.save_as(path)
    assert "no pixel spacing" in " ".join(load_source(path).notes)


def test_an_exif_orientation_is_said_not_to_be_applied(tmp_path):
    picture = Image.fromarray(np.dstack([chest()] * 3))
    exif = picture.getexif()
    exif[0x0112] = 6  # viewers turn it 90 degrees
    picture.save(tmp_path / "turned.jpg", exif=exif)
    src = load_source(tmp_path / "turned.jpg")
    assert src.pixels.shape[:2] == (64, 64) and "EXIF orientation" in " ".join(src.notes)
    picture.save(tmp_path / "upright.jpg")
    assert load_source(tmp_path / "upright.jpg").notes == ()


@pytest.mark.parametrize("save", [
    lambda path, a: Image.fromarray(a).save(path, format="PNG"),
    lambda path, a: Image.fromarray(a).save(path, format="JPEG"),
    lambda path, a: Image.fromarray(a).save(path, format="TIFF"),
    lambda path, a: Image.fromarray(a).save(path, format="BMP"),
])
def test_an_image_file_without_an_ending_is_read_by_its_signature(tmp_path, save):
    # a PACS export named IM0001 went to the DICOM reader: "unknown input type"
    picture = (np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)
    save(tmp_path / "IM0001", picture)
    source = load_source(str(tmp_path / "IM0001"))
    assert source.kind == "image" and source.pixels.shape[:2] == (40, 50)


def test_one_coronal_slice_stored_as_a_volume_says_what_it_is(tmp_path):
    # a (64, 1, 20) NIfTI was "an image of 1x64 pixels, too small"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((64, 1, 20), np.float32), np.eye(4)), str(tmp_path / "cor.nii.gz"))
    with pytest.raises(InputError, match="one coronal or sagittal slice stored as a volume.*PNG or TIFF"):
        load_source(str(tmp_path / "cor.nii.gz"))


def test_a_mirrored_radiograph_is_turned_upright_for_the_model_and_said_so(tmp_path, predictor,
                                                                            monkeypatch):
    # PatientOrientation R\F: the stored image's left is the patient's left; read as stored, a report's
    # "left upper zone" was placed on the image's right, the other lung
    from tests.data.test_projection import write_radiograph

    stored = chest(dtype=np.uint16)
    src = load_source(write_radiograph(tmp_path / "cxr.dcm", stored, ["R", "F"]))
    plain = load_source(write_radiograph(tmp_path / "plain.dcm", stored, ["L", "F"]))
    assert np.array_equal(src.display(0), plain.display(0)[:, ::-1])  # what the model and figure see
    assert "PatientOrientation R\\F" in " ".join(src.notes) and "mirrored" in " ".join(src.notes)
    assert not src.lateral_view and plain.notes == ()


def test_a_lateral_radiograph_is_segmented_without_the_reports_sides(tmp_path, predictor, monkeypatch):
    from medseg_r import parse_report
    from tests.data.test_projection import write_radiograph

    src = load_source(write_radiograph(tmp_path / "lat.dcm", chest(dtype=np.uint16), ["P", "F"]))
    assert src.lateral_view and "lateral view" in " ".join(src.notes)
    seen = _reports_seen(predictor, monkeypatch)
    predictor.predict_volume(src, parse_report("A 2 cm nodule in the right upper lobe."), progress=False)
    assert [(f.location.side, f.location.zones) for f in seen[0].findings] == [(None, ["upper"])]

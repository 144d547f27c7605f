import json
import os

import numpy as np
import pytest

from medseg_r.data.projection import ProjectionView, projection_view, upright
from medseg_r.data.volumes import display_slice, load_dicom, read_volume_folder


def write_radiograph(path, stored: np.ndarray, orientation=None, *, modality="DX") -> str:
    """A projection radiograph as stored pixels ``[rows, columns]`` (no ImageOrientationPatient),
    with ``PatientOrientation`` when given."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = modality
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImagerPixelSpacing = [0.5, 0.25]
    if orientation is not None:
        ds.PatientOrientation = orientation
    ds.PixelData = np.ascontiguousarray(stored.astype(np.uint16)).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return str(path)


class _Header(dict):
    def get(self, key, default=None):
        return super().get(key, default)


@pytest.mark.parametrize("value, expected", [
    (["L", "F"], (False, False, False, False)),  # the conventional display: nothing to do
    (["R", "F"], (False, False, True, False)),   # mirrored
    (["L", "H"], (False, False, False, True)),   # upside down
    (["R", "H"], (False, False, True, True)),    # half a turn
    (["F", "L"], (False, True, False, False)),   # a quarter turn: rows run toward the left
    (["H", "R"], (False, True, True, True)),
    ("L\\F", (False, False, False, False)),       # one string as some readers give it
    (["LF", "FR"], (False, False, False, False)),  # oblique: the first letter leads
    (["A", "F"], (True, False, False, False)),   # lateral: left and right overlap
    (["P", "H"], (True, False, False, True)),
    (["F", "A"], (True, True, False, False)),
])
def test_patient_orientation_is_read_as_a_turn_to_the_conventional_display(value, expected):
    view = projection_view(_Header(PatientOrientation=value))
    assert (view.lateral, view.transpose, view.flip_columns, view.flip_rows) == expected
    assert view.turned == any(expected[1:])


@pytest.mark.parametrize("header", [
    {}, {"PatientOrientation": ["L", "P"]},  # no frontal or lateral plane
    {"PatientOrientation": ["LE", "V"]},  # veterinary terms
    {"PatientOrientation": ["L"]}, {"PatientOrientation": ["", ""]},
    {"PatientOrientation": ["R", "F"], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0]},  # a slice
    # a scan's slice (its plane is ImageOrientationPatient's, default axial) and a mammogram's view
    {"PatientOrientation": ["P", "F"], "Modality": "MR"}, {"PatientOrientation": ["R", "F"], "Modality": "CT"},
    {"PatientOrientation": ["A", "FR"], "Modality": "MG"},
])
def test_no_orientation_is_taken_from_what_it_does_not_say(header):
    assert projection_view(_Header(header)) is None
    assert projection_view(None) is None


@pytest.mark.parametrize("orientation, expected", [
    (["L", "F"], lambda s: s), (["R", "F"], lambda s: s[:, ::-1]), (["L", "H"], lambda s: s[::-1]),
    (["R", "H"], lambda s: s[::-1, ::-1]), (["F", "L"], lambda s: s.T), (["F", "R"], lambda s: s.T[:, ::-1]),
    (["A", "F"], lambda s: s), (["P", "H"], lambda s: s[::-1]),
])
def test_a_radiograph_is_displayed_upright_and_keeps_each_pixels_position(tmp_path, orientation, expected):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4000, size=(6, 9))
    plain, plain_affine = load_dicom(write_radiograph(tmp_path / "plain.dcm", stored))
    turned, affine = load_dicom(write_radiograph(tmp_path / "turned.dcm", stored, orientation))
    assert np.array_equal(display_slice(plain, 0), stored)  # no PatientOrientation: as stored
    assert np.array_equal(display_slice(turned, 0), expected(stored))
    # every stored pixel keeps its position: the same value at the same place in both grids
    for i, j in np.ndindex(turned.shape[:2]):
        where = affine @ [i, j, 0, 1]
        source = np.linalg.solve(plain_affine, where)[:2].round().astype(int)
        assert turned[i, j, 0] == plain[source[0], source[1], 0]
    # the pixel size follows a quarter turn: display columns keep their spacing
    spacing = np.linalg.norm(affine[:3, :2], axis=0)  # voxel x = display columns, y = display rows
    assert np.allclose(spacing, [0.5, 0.25] if orientation[0] in "FH" else [0.25, 0.5])


def test_upright_leaves_an_image_without_a_turn_as_it_is():
    voxels, affine = np.arange(12, dtype=np.float32).reshape(3, 4, 1), np.diag([2.0, 3.0, 1.0, 1.0])
    view = ProjectionView(stored="L\\F", lateral=False, transpose=False, flip_columns=False,
                          flip_rows=False)
    same, same_affine = upright(voxels, affine, view)
    assert np.array_equal(same, voxels) and np.array_equal(same_affine, affine)


def test_a_mirrored_radiograph_and_its_nifti_mask_train_as_predict_reads_them(tmp_path):
    # a NIfTI mask is read as RAS+; the turned radiograph is not: the mask is put on its axes
    import nibabel as nib

    stored = np.zeros((20, 30))
    stored[4:8, 2:6] = 1000  # a lesion at the stored image's top left: the patient's top left
    image = write_radiograph(tmp_path / "cxr.dcm", stored, ["R", "F"])
    plain, plain_affine = load_dicom(write_radiograph(tmp_path / "plain.dcm", stored))
    nib.save(nib.Nifti1Image((plain > 0).astype(np.uint8), plain_affine), str(tmp_path / "mask.nii.gz"))
    with open(tmp_path / "cases.jsonl", "w") as handle:
        handle.write(json.dumps({"image": os.path.basename(image), "mask": "mask.nii.gz",
                                 "report": "Nodule in the left upper zone."}) + "\n")
    (record,) = read_volume_folder(str(tmp_path))
    assert record.image[4:8, 24:28].min() == 1.0  # upright: the lesion on the image's right
    assert np.array_equal(record.mask > 0, record.image > 0)  # the mask follows it
    assert not record.lateral and not record.axial


def test_a_lateral_radiograph_trains_without_its_reports_sides(tmp_path):
    import nibabel as nib

    from medseg_r.data.datasets import SegmentationDataset

    stored = np.zeros((20, 30))
    stored[4:8, 2:6] = 1000
    write_radiograph(tmp_path / "lat.dcm", stored, ["A", "F"])
    voxels, affine = load_dicom(str(tmp_path / "lat.dcm"))
    nib.save(nib.Nifti1Image((voxels > 0).astype(np.uint8), affine), str(tmp_path / "mask.nii.gz"))
    with open(tmp_path / "cases.jsonl", "w") as handle:
        handle.write(json.dumps({"image": "lat.dcm", "mask": "mask.nii.gz",
                                 "report": "Nodule in the right upper lobe."}) + "\n")
    records = read_volume_folder(str(tmp_path))
    assert records[0].lateral
    sample = SegmentationDataset(records, size=32)[0]
    (finding,) = sample["report"].positive_findings
    assert finding.location.side is None and finding.location.zones == ["upper"]


@pytest.mark.parametrize("orientation", [["L", "F"], ["R", "F"], ["L", "H"], ["R", "H"], ["F", "L"],
                                         ["H", "R"], ["A", "F"], ["P", "H"], ["F", "P"]])
def test_as_stored_undoes_the_turn(tmp_path, orientation):
    from medseg_r.data.projection import as_stored

    stored = np.random.default_rng(1).integers(0, 4000, size=(5, 7))
    path = write_radiograph(tmp_path / "cxr.dcm", stored, orientation)
    import pydicom

    view = projection_view(pydicom.dcmread(path))
    assert np.array_equal(as_stored(display_slice(load_dicom(path)[0], 0), view), stored)


def test_an_empty_image_orientation_is_none_given(tmp_path):
    # present but empty: load_dicom failed with "'NoneType' object is not iterable"
    import pydicom

    stored = np.arange(30).reshape(5, 6) * 100
    path = write_radiograph(tmp_path / "cxr.dcm", stored, ["R", "F"])
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = None
    ds.save_as(path)
    assert projection_view(pydicom.dcmread(path)).flip_columns
    assert np.array_equal(display_slice(load_dicom(path)[0], 0), stored[:, ::-1])

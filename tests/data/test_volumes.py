import json
import os

import numpy as np
import pytest

from medseg_r.data.datasets import SegmentationDataset
from medseg_r.data.readers import read_dataset
from medseg_r.data.volumes import load_volume, normalise


def _volume(shape=(24, 20, 6)):
    vol = np.full(shape, -800.0, np.float32)  # air-like lung
    mask = np.zeros(shape, np.uint8)
    mask[4:9, 6:12, 2:4] = 1  # lesion in slices 2 and 3
    vol[mask > 0] = 40.0
    return vol, mask


def _write_nifti(path, data, spacing=(0.8, 0.8, 2.5)):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)


def _write_dicom_series(folder, vol):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    os.makedirs(folder, exist_ok=True)
    pixels = (vol + 1024).astype(np.uint16)
    for z in range(vol.shape[2]):
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = FileDataset(os.path.join(folder, f"{z}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality = "CT"
        # pixel rows/cols are LPS: the RAS voxel x axis runs toward the patient's right (columns reversed)
        plane = pixels[::-1, ::-1, z].T
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelSpacing = [0.8, 0.8]
        ds.SliceThickness = 2.5
        ds.ImagePositionPatient = [0, 0, 2.5 * z]
        ds.InstanceNumber = z + 1
        ds.PixelData = np.ascontiguousarray(plane).tobytes()
        ds.save_as(os.path.join(folder, f"{z:03d}.dcm"), enforce_file_format=True)


@pytest.mark.parametrize("kind", ["nifti", "dicom"])
def test_volume_folder_trains_slice_wise(tmp_path, kind):
    import nibabel as nib

    vol, mask = _volume()
    if kind == "nifti":
        _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
        image = "ct.nii.gz"
    else:
        _write_dicom_series(str(tmp_path / "series"), vol)
        image = "series"
    # the mask on the image's own world grid (as a converter such as dcm2niix writes it)
    nib.save(nib.Nifti1Image(mask.astype(np.float32), load_volume(str(tmp_path / image))[1]),
             str(tmp_path / "mask.nii.gz"))
    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": image, "mask": "mask.nii.gz", "split": "train",
                                                      "report": "Solid nodule in the right lower lobe."}))
    loaded, _ = load_volume(str(tmp_path / image))
    assert np.allclose(loaded, vol, atol=1)
    records, root = read_dataset(str(tmp_path), split="train", window=(-600, 1500), empty_fraction=1.0, seed=0)
    lesion = [r for r in records if "negative_slice" not in r.tags]
    assert len(lesion) == 2 and len(records) == 4  # two lesion slices + as many empty ones
    sample = SegmentationDataset(records, root=root, size=32)[0]
    assert sample["image"].shape == (3, 32, 32)
    assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0


def test_display_orientation_puts_patient_right_on_image_left(tmp_path):
    vol, mask = _volume()
    mask[:] = 0
    mask[18:22, 8:12, 2] = 1  # high x = patient's right in RAS
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "m.nii.gz"), mask.astype(np.float32))
    (tmp_path / "cases.csv").write_text("image,mask,report\nct.nii.gz,m.nii.gz,nodule\n")
    records, _ = read_dataset(str(tmp_path), empty_fraction=0.0)
    cols = np.nonzero(records[0].mask.any(0))[0]
    assert cols.max() < records[0].mask.shape[1] / 2


def test_normalise_window_percentiles_and_nans():
    vol = np.array([[[-1000.0, 0.0, np.nan, 400.0]]])
    out = normalise(vol, window=(-600, 1500))  # window [-1350, 150]: NaN -> the window's low end
    assert np.allclose(out[0, 0], [350 / 1500, 1350 / 1500, 0.0, 1.0])
    assert normalise(vol)[0, 0, 3] == 1.0
    with pytest.raises(ValueError, match="no finite"):
        normalise(np.full((2, 2, 2), np.nan))


def test_dicom_without_pixel_data_is_a_clear_error(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(tmp_path / "x.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "CT"
    ds.save_as(str(tmp_path / "x.dcm"), enforce_file_format=True)
    with pytest.raises(ValueError, match="without pixel data"):
        load_volume(str(tmp_path / "x.dcm"))


def test_a_mask_on_another_grid_is_refused_with_how_it_differs(tmp_path):
    vol, mask = _volume()
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "mask.nii.gz"), mask.astype(np.float32), spacing=(0.8, 0.8, 3.0))
    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": "ct.nii.gz", "mask": "mask.nii.gz", "split": "train",
                                                      "report": "Solid nodule in the right lower lobe."}))
    with pytest.raises(ValueError, match=r"not on its image's voxel grid .*spacing \(0.80, 0.80, 3.00\) "
                                         r"against \(0.80, 0.80, 2.50\)"):
        read_dataset(str(tmp_path), split="train")


def test_a_coronal_dicom_series_is_reordered_so_that_z_is_superior(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rows, cols, n = 12, 10, 6  # stored rows run downward (inferior), slices step posterior
    for k in range(n):
        plane = np.zeros((rows, cols), np.uint16)
        plane[1:3, 2:4] = 1000  # near the top of each coronal image: superior
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = FileDataset(str(tmp_path / f"{k}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality, ds.Rows, ds.Columns = "CT", rows, cols
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [0, 3.0 * k, 0]
        ds.InstanceNumber = k + 1
        ds.PixelData = plane.tobytes()
        ds.save_as(str(tmp_path / f"{k:03d}.dcm"), enforce_file_format=True)
    single = tmp_path / "one"
    single.mkdir()
    (single / "000.dcm").write_bytes((tmp_path / "000.dcm").read_bytes())
    assert load_volume(str(single / "000.dcm"))[0].shape == (cols, rows, 1)  # one image: as stored
    voxels, affine = load_volume(str(tmp_path))
    assert voxels.shape == (cols, n, rows)  # x: right-left columns, y: the slices, z: the image rows
    assert np.all(np.diag(affine)[:3] > 0) and np.allclose(np.abs(np.diag(affine)[:3]), [0.7, 3.0, 0.7])
    lesion_z = np.nonzero(voxels.max(axis=(0, 1)) > 0)[0]
    assert set(lesion_z) == {rows - 3, rows - 2}  # stored rows 1-2 from the top: the top of z


def _edit_slices(folder, edit):
    import pydicom

    for name in sorted(os.listdir(folder)):
        ds = pydicom.dcmread(os.path.join(folder, name))
        edit(int(name.split(".")[0]), ds)
        ds.save_as(os.path.join(folder, name))


@pytest.mark.parametrize("damage, message", [
    # two series in one folder (a second acquisition copied beside the first): not one volume
    (lambda z, ds: setattr(ds, "SeriesInstanceUID", "1.2.3" if z < 2 else "1.2.4"), "holds 2 DICOM series"),
    # a slice missing in the middle: an even grid would put every later slice at the wrong height
    (lambda z, ds: setattr(ds, "ImagePositionPatient", [0, 0, 2.5 * z + (5.0 if z >= 2 else 0)]),
     "not evenly spaced"),
    # a damaged orientation (all zero): no directions to build an affine from
    (lambda z, ds: setattr(ds, "ImageOrientationPatient", [0, 0, 0, 0, 0, 0]),
     "not two perpendicular unit directions"),
    # a pixel spacing of zero: no voxel size to build an affine from
    (lambda z, ds: setattr(ds, "PixelSpacing", [0, 0]), "pixel spacing 0 x 0 mm is not a size"),
    # one slice of another plane or pixel size, or without its position: named, not stacked
    (lambda z, ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0, -1]) if z == 3 else None,
     "003.dcm: its ImageOrientationPatient .* differs"),
    (lambda z, ds: setattr(ds, "PixelSpacing", [0.5, 0.5]) if z == 2 else None,
     "002.dcm: its pixel spacing .* differs"),
    (lambda z, ds: delattr(ds, "ImagePositionPatient") if z == 1 else None,
     "001.dcm: no ImagePositionPatient"),
])
def test_dicom_series_that_one_grid_cannot_hold_are_refused(tmp_path, damage, message):
    vol, _ = _volume()
    folder = str(tmp_path / "series")
    _write_dicom_series(folder, vol[..., :5])
    _edit_slices(folder, damage)
    with pytest.raises(ValueError, match=message):
        load_volume(folder)


def test_dicom_series_with_one_uid_and_even_gaps_loads(tmp_path):
    vol, _ = _volume()
    folder = str(tmp_path / "series")
    _write_dicom_series(folder, vol[..., :5])
    _edit_slices(folder, lambda z, ds: setattr(ds, "SeriesInstanceUID", "1.2.3"))
    voxels, affine = load_volume(folder)
    assert voxels.shape[2] == 5 and np.isclose(abs(affine[2, 2]), 2.5)


def test_an_evenly_spaced_series_from_a_tilted_gantry_loads(tmp_path):
    """Tilted 30 degrees, the table steps 2.5 mm along z: the gaps along the slice normal are even
    (2.5 cos 30), though the step between positions leans."""
    vol, _ = _volume()
    folder = str(tmp_path / "series")
    _write_dicom_series(folder, vol[..., :5])
    tilt = np.radians(30)
    _edit_slices(folder, lambda z, ds: setattr(ds, "ImageOrientationPatient",
                                               [1, 0, 0, 0, float(np.cos(tilt)), float(np.sin(tilt))]))
    voxels, _ = load_volume(folder)
    assert voxels.size == vol[..., :5].size


@pytest.mark.parametrize("report, kept", [
    # slices 2 and 3 of 6 (levels 0.4, 0.6): in the middle third; the empty ones at levels 0-1
    ("Solid nodule in the right mid zone.", {"lesion": True, "level 0.0": False, "level 1.0": False}),
    # the words place it lower: the lesion slices keep the finding (their mask is the truth), zones
    # cleared; the empty caudal slice keeps it too, the cranial one does not (as predict tells them)
    ("Solid nodule in the right lower lobe.", {"lesion": True, "level 0.0": True, "level 1.0": False}),
    ("Solid nodule in the right lung.", {"lesion": True, "level 0.0": True, "level 1.0": True}),
])
def test_volume_slices_read_upper_and_lower_as_levels_as_predict_does(tmp_path, report, kept):
    vol, mask = _volume()
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "mask.nii.gz"), mask.astype(np.float32))
    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": "ct.nii.gz", "mask": "mask.nii.gz",
                                                      "split": "train", "report": report}))
    records, root = read_dataset(str(tmp_path), split="train", empty_fraction=2.0, seed=0)
    assert [r.level for r in records] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] and all(r.axial for r in records)
    data = SegmentationDataset(records, root=root, size=32)
    told = {r.id: data[i]["report"] for i, r in enumerate(records)}
    for key, expected in kept.items():
        ids = [r.id for r in records if ("negative_slice" not in r.tags) == (key == "lesion")
               and (key == "lesion" or f"level {r.level}" == key)]
        for i in ids:
            findings = told[i].positive_findings
            assert bool(findings) == expected, (key, i)
            assert all(f.location.zones == [] and f.location.side == "right" for f in findings)


def test_a_volume_row_without_a_mask_is_named(tmp_path):
    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": "ct.nii.gz", "report": "nodule"}))
    with pytest.raises(ValueError, match="cases.jsonl: 1 of 1 case\\(s\\) cannot be used: row 1: no mask"):
        read_dataset(str(tmp_path), split="train")


def test_a_monochrome1_series_is_inverted_once_for_the_whole_series(tmp_path):
    import pydicom

    vol, _ = _volume()
    vol[0, 0, 0] = -1000.0  # one slice holds a darker pixel than the others
    _write_dicom_series(str(tmp_path / "s"), vol)
    for name in os.listdir(tmp_path / "s"):
        ds = pydicom.dcmread(tmp_path / "s" / name)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.Modality = "MR"  # a CT's values are Hounsfield units: not inverted (below)
        ds.save_as(tmp_path / "s" / name)
    data, _ = load_volume(str(tmp_path / "s"))
    lesion = data[6, 8, 2:4]  # the same tissue on two slices keeps one value
    assert lesion[0] == lesion[1]
    assert len({float(data[12, 15, z]) for z in range(data.shape[2])}) == 1  # the lung alike
    assert float(data[12, 15, 0]) > float(lesion[0])  # inverted: the air is now the bright value
    # a MONOCHROME1 CT keeps its Hounsfield units (a lung window made it blank or inverted)
    for name in os.listdir(tmp_path / "s"):
        ds = pydicom.dcmread(tmp_path / "s" / name)
        ds.Modality = "CT"
        ds.save_as(tmp_path / "s" / name)
    hu, _ = load_volume(str(tmp_path / "s"))
    assert float(hu[12, 15, 0]) < float(hu[6, 8, 2]) and float(hu.min()) == -1000.0


@pytest.mark.parametrize("affine", [np.diag([0.8, 0.8, 3.0, 1.0]), np.diag([-0.8, -0.8, 3.0, 1.0])])
def test_a_2d_nifti_and_one_with_a_trailing_singleton_axis_load_as_predict_reads_them(tmp_path,
                                                                                        affine):
    import nibabel as nib

    from medseg_r.inference.sources import load_source

    plane = np.zeros((20, 16), np.float32)
    plane[3, 4] = 100.0
    nib.save(nib.Nifti1Image(plane, affine), str(tmp_path / "two_d.nii.gz"))
    data, _ = load_volume(str(tmp_path / "two_d.nii.gz"))  # an LPS one was refused
    assert data.shape == (20, 16, 1)
    assert np.array_equal(data, load_source(str(tmp_path / "two_d.nii.gz")).voxels)
    vol, _ = _volume()
    nib.save(nib.Nifti1Image(vol[..., None], affine), str(tmp_path / "four_d.nii.gz"))
    data, _ = load_volume(str(tmp_path / "four_d.nii.gz"))
    source = load_source(str(tmp_path / "four_d.nii.gz"))
    assert data.shape == vol.shape and np.array_equal(data, source.voxels)
    assert source.restore(source.voxels).shape == vol.shape + (1,)  # the mask as the input is shaped


def test_one_slice_volumes_are_told_their_report_as_predict_tells_them(tmp_path):
    import nibabel as nib
    import pydicom

    vol, mask = _volume((24, 20, 1))
    mask[4:9, 6:12, 0] = 1
    report = "Solid nodule in the right upper zone."
    # a 2-D NIfTI and a radiograph (DX) keep their zones in the plane; an axial CT slice drops them
    nib.save(nib.Nifti1Image(vol, np.diag([0.8, 0.8, 3.0, 1.0])), str(tmp_path / "img.nii.gz"))
    nib.save(nib.Nifti1Image(mask.astype(np.float32), np.diag([0.8, 0.8, 3.0, 1.0])),
             str(tmp_path / "mask.nii.gz"))
    _write_dicom_series(str(tmp_path / "ct"), vol)
    _write_dicom_series(str(tmp_path / "dx"), vol)
    ds = pydicom.dcmread(tmp_path / "dx" / "000.dcm")
    ds.Modality = "DX"
    ds.save_as(tmp_path / "dx" / "000.dcm")
    _, on_dicom = load_volume(str(tmp_path / "ct" / "000.dcm"))
    nib.save(nib.Nifti1Image(mask.astype(np.float32), on_dicom), str(tmp_path / "dmask.nii.gz"))
    rows = [{"id": "nii", "image": "img.nii.gz", "mask": "mask.nii.gz"},
            {"id": "ct", "image": "ct/000.dcm", "mask": "dmask.nii.gz"},
            {"id": "dx", "image": "dx/000.dcm", "mask": "dmask.nii.gz"}]
    (tmp_path / "cases.jsonl").write_text("\n".join(
        json.dumps({**r, "split": "test", "report": report}) for r in rows))
    records, root = read_dataset(str(tmp_path), split="test")
    data = SegmentationDataset(records, root=root, size=32)
    zones = {r.id.split("_")[0]: data[i]["report"].positive_findings[0].location.zones
             for i, r in enumerate(records)}
    assert zones == {"nii": ["upper"], "ct": [], "dx": ["upper"]}


def test_a_dicomdir_beside_the_slices_is_passed_over_and_a_study_folder_names_its_series(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import generate_uid

    vol, _ = _volume()
    folder = tmp_path / "study" / "series_1"
    _write_dicom_series(str(folder), vol[..., :5])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    index = FileDataset(str(folder / "DICOMDIR"), {}, file_meta=meta, preamble=b"\0" * 128)
    index.PatientID = "x"
    index.save_as(str(folder / "DICOMDIR"), enforce_file_format=True)
    voxels, _ = load_volume(str(folder))
    assert voxels.shape[2] == 5
    # a one-slice folder whose DICOMDIR sorts first: the slice's header is the one read
    from medseg_r.inference.sources import load_source

    single = tmp_path / "single"
    _write_dicom_series(str(single), vol[..., :1])
    os.rename(single / "000.dcm", single / "IM00001")
    index.save_as(str(single / "DICOMDIR"), enforce_file_format=True)
    source = load_source(str(single))
    assert source.axial_slice and source.notes == ()
    (tmp_path / "study" / "series_2").mkdir()
    with pytest.raises(ValueError, match=r"holds folders \(series_1, series_2\): give one series"):
        load_volume(str(tmp_path / "study"))


def test_a_volume_mask_of_another_shape_is_named_with_its_files(tmp_path):
    vol, mask = _volume()
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "mask.nii.gz"), mask[:, :, :4].astype(np.float32))
    (tmp_path / "cases.jsonl").write_text(json.dumps({"image": "ct.nii.gz", "mask": "mask.nii.gz",
                                                      "split": "test", "report": "nodule"}))
    with pytest.raises(ValueError, match=r"row 1: mask mask.nii.gz has shape \(24, 20, 4\) but image "
                                         r"ct.nii.gz has \(24, 20, 6\)"):
        read_dataset(str(tmp_path), split="test")


def test_a_volume_folders_table_given_as_data_says_to_give_the_folder(tmp_path):
    from medseg_r.data.checks import check_files

    vol, mask = _volume()
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "mask.nii.gz"), mask.astype(np.float32))
    (tmp_path / "cases.csv").write_text("id,image,mask,report,split\na,ct.nii.gz,mask.nii.gz,nodule,test\n")
    records, root = read_dataset(str(tmp_path / "cases.csv"), split="test")
    with pytest.raises(ValueError, match="is a volume: give the folder that holds cases.jsonl"):
        check_files(records, root, "test")


def test_an_image_file_that_lost_its_pixel_data_stops_a_series(tmp_path):
    import pydicom

    vol, _ = _volume()
    folder = tmp_path / "series"
    _write_dicom_series(str(folder), vol[..., :5])
    ds = pydicom.dcmread(folder / "004.dcm")
    del ds.PixelData  # cut before its pixels: an image header without an image
    ds.save_as(folder / "004.dcm")
    with pytest.raises(ValueError, match="004.dcm: DICOM file without pixel data"):
        load_volume(str(folder))


def test_a_2d_nifti_whose_plane_is_not_axial_is_refused_as_predict_refuses_it(tmp_path):
    import nibabel as nib

    coronal = np.array([[0.8, 0, 0, 0], [0, 0, 3.0, 0], [0, 0.8, 0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.zeros((40, 30), np.float32), coronal), str(tmp_path / "c.nii.gz"))
    with pytest.raises(ValueError, match="2-D NIfTI whose plane is not axial"):
        load_volume(str(tmp_path / "c.nii.gz"))


def test_every_volume_case_that_cannot_be_used_is_listed_at_once(tmp_path):
    vol, mask = _volume()
    _write_nifti(str(tmp_path / "ct.nii.gz"), vol)
    _write_nifti(str(tmp_path / "mask.nii.gz"), mask.astype(np.float32))
    rows = [{"image": "ct.nii.gz", "mask": "mask.nii.gz"}, {"image": "gone.nii.gz", "mask": "mask.nii.gz"},
            {"image": "ct.nii.gz"}]
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps({**r, "split": "test", "report": "nodule"})
                                                   for r in rows))
    with pytest.raises(ValueError, match=r"2 of 3 case\(s\) cannot be used: row 2: volume not found: "
                                         r".*gone.nii.gz; row 3: no mask"):
        read_dataset(str(tmp_path), split="test")

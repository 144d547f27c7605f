import numpy as np
import pytest
from PIL import Image

from medseg_r.describe import DescribeError
from medseg_r.describe.inputs import load_case

from .conftest import disc_mask


def _image(path, mask):
    image = np.full(mask.shape, 90, np.uint8)
    image[mask > 0] = 200
    Image.fromarray(image).save(path)
    return str(path)


def test_a_jpeg_mask_is_binarised_not_read_as_labels(tmp_path):
    mask = disc_mask((96, 96), (30, 40), 9)
    image = _image(tmp_path / "i.png", mask)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=60)
    assert len(np.unique(np.asarray(Image.open(tmp_path / "m.jpg")))) > 10  # lossy edges: many values
    case = load_case(image, str(tmp_path / "m.jpg"), spacing=(0.7, 0.7))
    assert len(case.lesions) == 1 and abs(int(case.lesions[0].sum()) - int(mask.sum())) <= 0.1 * mask.sum()
    assert any("JPEG mask" in note for note in case.notes)


def test_a_colour_jpeg_mask_is_one_label_and_says_so(tmp_path):
    mask = disc_mask((96, 96), (30, 40), 9)
    image = _image(tmp_path / "i.png", mask)
    Image.fromarray(np.stack([mask * 255, np.zeros_like(mask), mask * 255], -1).astype(np.uint8)).save(
        tmp_path / "magenta.jpg", quality=90)
    case = load_case(image, str(tmp_path / "magenta.jpg"), spacing=(0.7, 0.7))
    assert len(case.lesions) == 1 and any("a colour JPEG: every colour is foreground" in n for n in case.notes)
    grey = np.stack([mask * 255] * 3, -1).astype(np.uint8)  # a grey mask saved as an RGB JPEG
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=60)
    notes = load_case(image, str(tmp_path / "grey.jpg"), spacing=(0.7, 0.7)).notes
    assert any("JPEG mask" in n for n in notes) and not any("colour JPEG" in n for n in notes)


def test_a_palette_png_gives_its_indices_as_labels(tmp_path):
    labels = np.zeros((96, 96), np.uint8)
    labels[disc_mask((96, 96), (25, 25), 6)] = 1
    labels[disc_mask((96, 96), (70, 60), 8)] = 3
    image = _image(tmp_path / "i.png", labels)
    palette = Image.fromarray(labels, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)  # VOC-style colours
    palette.save(tmp_path / "labels.png")
    case = load_case(image, str(tmp_path / "labels.png"), spacing=(0.7, 0.7))
    assert sorted(case.labels) == [1, 3]


def test_a_volume_mask_on_another_grid_is_refused(tmp_path):
    import nibabel as nib

    volume = np.zeros((32, 32, 8), np.float32)
    volume[10:16, 10:16, 3:5] = 100
    mask = (volume > 0).astype(np.uint8)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "ct.nii.gz"))
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / "mask.nii.gz"))
    with pytest.raises(DescribeError, match="not on its image's voxel grid"):
        load_case(str(tmp_path / "ct.nii.gz"), str(tmp_path / "mask.nii.gz"))
    nib.save(nib.Nifti1Image(mask, affine), str(tmp_path / "mask.nii.gz"))
    assert len(load_case(str(tmp_path / "ct.nii.gz"), str(tmp_path / "mask.nii.gz")).lesions) == 1


def test_a_spacing_given_for_a_file_with_its_own_is_said_to_replace_it(tmp_path):
    import nibabel as nib

    volume = np.zeros((32, 32, 8), np.float32)
    volume[10:16, 10:16, 3:5] = 100
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "ct.nii.gz"))
    nib.save(nib.Nifti1Image((volume > 0).astype(np.uint8), affine), str(tmp_path / "mask.nii.gz"))
    own = load_case(str(tmp_path / "ct.nii.gz"), str(tmp_path / "mask.nii.gz"))
    assert own.spacing == pytest.approx((0.8, 0.8, 2.5)) and not any("replaces" in n for n in own.notes)
    given = load_case(str(tmp_path / "ct.nii.gz"), str(tmp_path / "mask.nii.gz"), spacing=0.5)
    assert given.spacing == (0.5, 0.5, 0.5)
    assert "the spacing given (0.5 x 0.5 x 0.5 mm) replaces the file's own (0.8 x 0.8 x 2.5 mm)" \
        in given.notes


def test_a_2d_mask_file_is_read_once(tmp_path, monkeypatch):
    import PIL.Image

    mask = disc_mask((96, 96), (30, 40), 9)
    image = _image(tmp_path / "i.png", mask)
    path = str(tmp_path / "m.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    opened = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda fp, *a, **k: (opened.append(str(fp)), real_open(fp, *a, **k))[1])
    case = load_case(image, path, spacing=(0.7, 0.7))
    assert opened.count(path) == 1 and int(case.lesions[0].sum()) == int(mask.sum())


def test_a_mask_of_unknown_type_is_refused_by_name(tmp_path):
    mask = disc_mask((96, 96), (30, 40), 9)
    image = _image(tmp_path / "i.png", mask)
    (tmp_path / "m.xyz").write_bytes(b"not a mask")
    with pytest.raises(DescribeError, match="mask: .*unknown input type"):
        load_case(image, str(tmp_path / "m.xyz"), spacing=(0.7, 0.7))


def test_an_rgba_mask_whose_colours_differ_is_called_rgba(tmp_path):
    mask = disc_mask((64, 64), (30, 30), 8)
    image = _image(tmp_path / "i.png", mask)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 1] = 255  # green background, red lesion, opaque
    rgba[mask] = (255, 0, 0, 255)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    with pytest.raises(DescribeError, match=r"^mask: an RGBA mask whose colour channels differ"):
        load_case(image, str(tmp_path / "m.png"))
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    with pytest.raises(DescribeError, match=r"^mask: an RGB mask whose colour channels differ"):
        load_case(image, str(tmp_path / "rgb.png"))


def test_a_mask_drawn_in_the_alpha_channel_of_a_flat_colour_is_its_alpha(tmp_path):
    # README: a mask drawn only in the alpha channel of a flat colour is its alpha; a red one was refused
    mask = disc_mask((64, 64), (30, 30), 8)
    image = _image(tmp_path / "i.png", mask)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere, the lesion opaque
    rgba[..., 3] = mask * 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    case = load_case(image, str(tmp_path / "m.png"))
    assert len(case.lesions) == 1 and int(case.lesions[0].sum()) == int(mask.sum())


def test_a_turned_radiograph_and_its_mask_are_described_as_the_film_shows_them(tmp_path):
    # a mirrored film (PatientOrientation R\F) was turned for reading but its mask was not: a lesion
    # of the patient's right lung was described as the left lung's, with another lesion's texture
    import nibabel as nib

    from medseg_r.data.volumes import load_dicom
    from medseg_r.describe import describe
    from tests.data.test_projection import write_radiograph

    stored = np.full((128, 128), 400)
    stored[20:40, 80:100] = 2500  # the patient's right upper zone of a film stored mirrored
    lesion = (stored > 1000).astype(np.uint8) * 255
    mirrored = write_radiograph(tmp_path / "mirrored.dcm", stored, ["R", "F"])
    upright = write_radiograph(tmp_path / "upright.dcm", stored[:, ::-1], ["L", "F"])
    Image.fromarray(lesion).save(tmp_path / "stored_mask.png")  # drawn on the stored pixels
    Image.fromarray(np.ascontiguousarray(lesion[:, ::-1])).save(tmp_path / "upright_mask.png")
    plain, affine = load_dicom(write_radiograph(tmp_path / "plain.dcm", stored))  # the stored grid
    nib.save(nib.Nifti1Image((plain > 1000).astype(np.uint8), affine), str(tmp_path / "mask.nii.gz"))
    want = describe(upright, str(tmp_path / "upright_mask.png")).to_dict()["findings"]
    assert want[0]["location"]["side"] == "right"
    for mask in ("stored_mask.png", "mask.nii.gz"):
        assert describe(mirrored, str(tmp_path / mask)).to_dict()["findings"] == want, mask


def test_a_quarter_turned_radiograph_with_anisotropic_pixels_takes_its_nifti_mask(tmp_path):
    # the mask's pixel size was read before it was put on the image's axes: 0.5 x 0.25 against
    # 0.25 x 0.5, a false "another grid"
    import nibabel as nib

    from medseg_r.data.volumes import load_dicom
    from medseg_r.describe.inputs import load_case
    from tests.data.test_projection import write_radiograph

    stored = np.full((96, 128), 400)
    stored[20:40, 80:100] = 2500
    turned = write_radiograph(tmp_path / "turned.dcm", stored, ["F", "L"])
    plain, affine = load_dicom(write_radiograph(tmp_path / "plain.dcm", stored))
    nib.save(nib.Nifti1Image((plain > 1000).astype(np.uint8), affine), str(tmp_path / "mask.nii.gz"))
    case = load_case(turned, str(tmp_path / "mask.nii.gz"))
    assert len(case.lesions) == 1 and case.grey.shape == (128, 96)
    assert case.spacing == (0.25, 0.5)  # stored rows 0.5 mm apart, columns 0.25: turned a quarter

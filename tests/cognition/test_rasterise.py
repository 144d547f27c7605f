import pytest
import torch

from medseg_r import parse_report
from medseg_r.cognition import LocationRasteriser


def _halves(report_text, orientation="radiological"):
    m = LocationRasteriser(orientation=orientation).render([parse_report(report_text)], size=(32, 32))[0, 0]
    return m[:, :16].mean().item(), m[:, 16:].mean().item(), m


def test_patient_right_is_image_left_in_radiological_convention():
    left_img, right_img, m = _halves("Nodule in the right upper lobe.")
    assert left_img > 3 * right_img
    assert m[:10].mean() > m[22:].mean()  # upper zone


def test_neurological_convention_mirrors_patient_sides():
    left_img, right_img, _ = _halves("Nodule in the right upper lobe.", "neurological")
    assert right_img > 3 * left_img


def test_image_relative_regions_are_not_mirrored():
    for orientation in ("radiological", "neurological"):
        left_img, right_img, _ = _halves("one polyp, located in right of the image", orientation)
        assert right_img > 3 * left_img


def test_bilateral_negative_and_empty_reports():
    left_img, right_img, _ = _halves("Bilateral lower lobe opacities.")
    assert abs(left_img - right_img) < 0.05
    assert _halves("No focal opacity.")[2].max() == 0.0  # all negative: nowhere
    assert torch.allclose(_halves("")[2], torch.full((32, 32), 0.5))  # nothing said: no preference


def test_padding_region_is_zero():
    ras = LocationRasteriser()
    m = ras.render([parse_report("opacity in the right lung")], size=(32, 32), content=[(0.5, 1.0)])[0, 0]
    assert m[16:].max() == 0.0 and m[:16].max() > 0.5


def test_bad_orientation_is_a_value_error():
    with pytest.raises(ValueError, match="orientation"):
        LocationRasteriser(orientation="sideways")

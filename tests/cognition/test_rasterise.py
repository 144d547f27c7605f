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


# One report per domain pack, with the organs each pack knows (sided or not). In the neurological
# convention the whole anatomy is mirrored: the liver, spleen and heart change sides as the lungs do.
DOMAIN_REPORTS = {
    "chest": ["Nodule in the right upper lobe.", "Enlarged heart.", "Small left pleural effusion."],
    "abdomen": ["Hypodense lesion in the liver.", "Splenic cyst.", "Mass in the pancreatic tail.",
                "Cyst in the right kidney.", "Lesion in segment 7 of the liver."],
    "breast": ["Mass in the left breast, upper third."],
    "brain": ["Lesion in the right cerebral hemisphere."],
    "colonoscopy": ["A polyp in the sigmoid colon."],
}


@pytest.mark.parametrize("domain", sorted(DOMAIN_REPORTS))
def test_neurological_convention_mirrors_every_organ_of_each_domain(domain):
    radiological, neurological = LocationRasteriser(), LocationRasteriser(orientation="neurological")
    for text in DOMAIN_REPORTS[domain]:
        report = parse_report(text)
        assert report.positive_findings, text
        a = radiological.render([report], size=(40, 40))[0, 0]
        b = neurological.render([report], size=(40, 40))[0, 0]
        assert torch.allclose(b, a.flip(-1), atol=1e-5), text


@pytest.mark.parametrize("text", ["Hypodense lesion in the liver.", "Splenic cyst.", "Enlarged heart."])
def test_unsided_organs_change_sides_in_the_neurological_convention(text):
    rad_left, rad_right, _ = _halves(text)
    neu_left, neu_right, _ = _halves(text, "neurological")
    assert (rad_left > rad_right) != (neu_left > neu_right)
    assert abs(rad_left - neu_right) < 1e-5 and abs(rad_right - neu_left) < 1e-5

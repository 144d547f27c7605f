"""Mirroring a report for a flipped image: its text, its parsed sides and its location map agree."""
import pytest
import torch

from medseg_r import parse_report
from medseg_r.cognition import LocationRasteriser
from medseg_r.report.transform import flip_report, mirrored_report

MIRRORABLE = [
    ("2 cm nodule in the RUL.", "2 cm nodule in the LUL."),
    ("Spiculated mass in the left upper lobe. No right pleural effusion.",
     "Spiculated mass in the right upper lobe. No left pleural effusion."),
    ("Mass, R apex.", "Mass, L apex."),
    ("Ground-glass opacity in the lower part of the right lung.",
     "Ground-glass opacity in the lower part of the left lung."),
    ("Stellate focus in the left lung, lower zone. L1 vertebra intact.",
     "Stellate focus in the right lung, lower zone. L1 vertebra intact."),
    ("One polyp in the top left of the image.", "One polyp in the top right of the image."),
    ("Bilateral lower zone opacities.", "Bilateral lower zone opacities."),
    # no left middle lobe: the right middle lobe's mirror is the lingula, and back
    ("Solid nodule in the right middle lobe.", "Solid nodule in the lingula."),
    ("Right middle lobe consolidation. Nodule in the lingula.",
     "Lingula consolidation. Nodule in the RML."),
    ("Nodule in the middle lobe.", "Nodule in the lingula."),
]


@pytest.mark.parametrize("text, expected", MIRRORABLE)
def test_mirrored_text_parses_to_the_mirrored_sides(text, expected):
    report = parse_report(text)
    mirrored = mirrored_report(report)
    assert mirrored is not None and mirrored.text == expected
    swap = {"left": "right", "right": "left"}
    for before, after in zip(report.findings, mirrored.findings):
        assert after.location.side == swap.get(before.location.side, before.location.side)
        assert after.location.zones == before.location.zones and after.negated == before.negated
    # the parse of the mirrored text is the mirrored report: nothing to disagree
    assert parse_report(mirrored.text).to_dict() == mirrored.to_dict()


@pytest.mark.parametrize("text", [t for t, _ in MIRRORABLE])
def test_location_map_of_the_mirrored_report_is_the_mirrored_map(text):
    ras = LocationRasteriser()
    report = parse_report(text)
    before = ras.render([report], size=(32, 32))[0, 0]
    after = ras.render([mirrored_report(report)], size=(32, 32))[0, 0]
    assert torch.allclose(after, before.flip(-1), atol=1e-5)


@pytest.mark.parametrize("text", ["Hypodense lesion in the liver.", "Splenic cyst.", "Enlarged heart.",
                                  "Lesion in segment 7 of the liver."])
def test_reports_in_organs_without_a_mirror_cannot_be_flipped(text):
    assert mirrored_report(parse_report(text)) is None
    with pytest.raises(ValueError, match="cannot be mirrored"):
        flip_report(parse_report(text))


def test_a_report_whose_findings_are_not_its_texts_reading_has_no_mirror():
    from medseg_r.report.transform import slice_report

    report = parse_report("Nodule in the right upper lobe.")
    sliced = slice_report(report, 0.9)  # on an axial slice the zone is cleared: not the text's reading
    assert sliced.findings[0].location.zones == [] and mirrored_report(sliced) is None
    assert mirrored_report(report).findings[0].location.side == "left"
    assert mirrored_report(parse_report("NODULE IN THE RIGHT MIDDLE LOBE.")).text == "NODULE IN THE LINGULA."


def test_a_report_whose_mirror_would_pass_the_readers_limit_is_not_mirrored():
    # "left" -> "right" made a 199,640-character report 206,080 long: predict failed with a traceback
    from medseg_r.report.parser import MAX_REPORT_CHARS

    text = "Nodule in the left lower zone. " * 6440
    assert len(text) < MAX_REPORT_CHARS
    assert mirrored_report(parse_report(text)) is None

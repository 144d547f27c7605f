import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

import medseg_r
from medseg_r.describe import DescribeError, describe_case
from medseg_r.describe.sentences import prior_key
from medseg_r.report import parse_report

from .conftest import disc_mask

MM = 350 / 256


def test_chest_nodule_side_zone_size(chest):
    image, mask = chest
    description = describe_case(image, mask, spacing=MM)
    assert description.round_trip
    [finding] = description.report.findings
    assert finding.location.side == "right" and finding.location.zones == ["upper"]
    assert finding.location.organ == "lung" and finding.count == 1
    # the example nodule is drawn 20 mm across at the phantom's scale; describe states the largest
    # side of the mask's bounding box, which for an outline with irregular edges is a little more
    assert 19.0 <= finding.size_mm <= 24.0
    assert finding.shape == ["round"]
    assert "lung fields found: 2 of 2" in description.notes


@pytest.mark.parametrize("spacing", [1e-9, 1e3])
def test_a_spacing_that_gives_no_lesion_size_leaves_the_size_out_and_says_so(chest, spacing):
    image, mask = chest
    description = describe_case(image, mask, spacing=spacing)
    [finding] = description.report.findings
    assert finding.size_mm is None and finding.size_class is None and " mm" not in description.report.text
    assert any("not a lesion size (check the spacing): size left out" in n for n in description.notes)
    assert description.round_trip


def test_neurological_orientation_mirrors_the_side(chest):
    image, mask = chest
    finding = medseg_r.describe(image, mask, orientation="neurological").findings[0]
    assert finding.location.side == "left"
    assert finding.size_mm is None and finding.size_class is None  # no spacing: no size stated


def test_two_components_two_findings_largest_first(chest):
    image, mask = chest
    second = disc_mask(mask.shape, (190, 180), 5)  # patient's left lower lung (image right)
    description = describe_case(image, mask | second, spacing=MM)
    sides = [(f.location.side, f.location.zones) for f in description.report.findings]
    assert sides == [("right", ["upper"]), ("left", ["lower"])]
    assert description.lesions[0].size["voxels"] > description.lesions[1].size["voxels"]


def test_label_mask_gives_one_finding_per_label(chest):
    image, mask = chest
    labels = np.zeros(mask.shape, np.uint8)
    labels[mask] = 3
    labels[disc_mask(mask.shape, (190, 180), 5)] = 7
    labels[disc_mask(mask.shape, (200, 200), 3)] = 7  # label 7 in two pieces: still one finding
    description = describe_case(image, labels, spacing=MM)
    assert [d.label for d in description.lesions] == [3, 7]
    assert any("one finding per label" in note for note in description.notes)


def test_empty_mask_is_a_negative_report(chest):
    image, mask = chest
    report = medseg_r.describe(image, np.zeros_like(mask))
    assert report.all_negative and report.findings


def test_fragment_beside_a_lesion_belongs_to_it():
    image = np.full((64, 64), 100, np.uint8)
    mask = disc_mask((64, 64), (30, 30), 8)
    mask[30, 39] = True  # one pixel two pixels from the disc (its edge is column 37)
    description = describe_case(image, mask, domain="image")
    assert len(description.lesions) == 1
    mask[30, 41] = True  # four pixels away: a lesion of its own
    assert len(describe_case(image, mask, domain="image").lesions) == 2


@pytest.mark.parametrize("domain, region", [("colonoscopy", "top_right"), ("breast", "top_right"),
                                            ("image", "top_right")])
def test_image_relative_domains(domain, region):
    rng = np.random.default_rng(0)
    image = rng.integers(90, 110, (90, 90)).astype(np.uint8)
    mask = disc_mask((90, 90), (15, 75), 8)
    image[mask] = rng.integers(55, 75, int(mask.sum()))
    finding = medseg_r.describe(image, mask, domain=domain).findings[0]
    assert finding.location.image_region == region and finding.location.organ == "image"
    texture = {"colonoscopy": [], "breast": ["hypoechoic"], "image": ["hypointense"]}[domain]
    assert finding.texture == texture


def test_black_homogeneous_breast_lesion_is_anechoic():
    rng = np.random.default_rng(0)
    image = rng.integers(90, 110, (90, 90)).astype(np.uint8)
    mask = disc_mask((90, 90), (60, 30), 8)
    image[mask] = 2
    assert medseg_r.describe(image, mask, domain="breast").findings[0].texture == ["anechoic"]


def test_rgb_image_and_styles():
    rng = np.random.default_rng(1)
    image = rng.integers(100, 140, (80, 100, 3)).astype(np.uint8)
    mask = disc_mask((80, 100), (60, 20), 9)
    for style in ("radiology", "qata", "attribute"):
        description = describe_case(image, mask, domain="colonoscopy", style=style, seed=3)
        assert description.round_trip and description.style == style
        assert description.report.findings[0].target == "polyp"
        assert description.report.findings[0].location.image_region == "bottom_left"


def test_ct_volume_sides_zones_and_attenuation(ct_volume):
    hu, mask, spacing, right, left = ct_volume
    description = describe_case(hu, mask, spacing=spacing)
    by_side = {f.location.side: f for f in description.report.findings}
    assert by_side["right"].location.zones == ["upper"] and by_side["right"].texture == ["solid"]
    assert by_side["left"].location.zones == ["lower"]
    assert by_side["left"].texture == ["calcified"]
    lesion = next(d for d in description.lesions if d.finding.location.side == "right")
    assert lesion.size["volume_ml"] == pytest.approx(right.sum() * 0.8 * 0.8 * 2.5 / 1000)


def test_nifti_files_bring_their_spacing(tmp_path, ct_volume):
    nib = pytest.importorskip("nibabel")
    hu, mask, spacing, _, _ = ct_volume
    affine = np.diag([*spacing, 1.0])
    nib.save(nib.Nifti1Image(hu.astype(np.int16), affine), str(tmp_path / "ct.nii.gz"))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), str(tmp_path / "mask.nii.gz"))
    from_files = describe_case(str(tmp_path / "ct.nii.gz"), str(tmp_path / "mask.nii.gz"))
    from_arrays = describe_case(hu, mask, spacing=spacing)
    assert [prior_key(f) for f in from_files.report.findings] == \
        [prior_key(f) for f in from_arrays.report.findings]


def test_png_paths(tmp_path, chest):
    image, mask = chest
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.png")
    report = medseg_r.describe(tmp_path / "x.png", tmp_path / "m.png", spacing=MM)
    assert report.text == medseg_r.describe(image, mask, spacing=MM).text


def test_nan_pixels_are_set_to_the_minimum(chest):
    image, mask = chest
    grey = image.astype(float)
    grey[:5, :5] = np.nan
    description = describe_case(grey, mask)
    assert description.notes[0].startswith("25 NaN") and description.round_trip


@pytest.mark.parametrize("image, mask, spacing, message", [
    (np.zeros((10, 10)), np.zeros((10, 12), bool), None, "does not match"),
    (np.zeros((10, 10)), np.full((10, 10), 0.5), None, "non-integer"),
    (np.zeros((10, 10)), np.arange(100).reshape(10, 10), None, "distinct values"),
    (np.full((10, 10), np.nan), np.ones((10, 10), bool), None, "no finite value"),
    (np.zeros((8, 8, 8)), np.ones((8, 8, 8), bool), None, "needs spacing"),
    (np.zeros((8, 8)), np.ones((8, 8), bool), (1.0, -1.0), "positive"),
    ("/nonexistent/image.png", np.ones((8, 8), bool), None, "not found"),
])
def test_bad_input_is_one_line_error(image, mask, spacing, message):
    with pytest.raises(DescribeError, match=message) as caught:
        describe_case(image, mask, spacing=spacing)
    assert "\n" not in str(caught.value)


def test_unknown_domain_is_refused(chest):
    image, mask = chest
    with pytest.raises(DescribeError, match="unknown domain"):
        describe_case(image, mask, domain="knee")


def test_json_is_priors_plus_measurements(chest):
    image, mask = chest
    data = json.loads(json.dumps(describe_case(image, mask, spacing=MM).to_dict()))
    assert set(data) >= {"report", "findings", "lesions", "style", "seed", "round_trip", "notes"}
    assert parse_report(data["report"]).to_dict()["findings"] == data["findings"]
    assert data["lesions"][0]["size"]["unit"] == "mm"


def test_callable_package_and_no_torch():
    import medseg_r.describe as package

    assert callable(package) and medseg_r.describe is package  # the module, callable
    code = ("import sys, numpy as np, medseg_r; m = np.zeros((32, 32), bool); m[5:9, 5:9] = True; "
            "r = medseg_r.describe(np.ones((32, 32)), m, domain='image'); "
            "print(r.findings[0].target, 'torch' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "lesion False", out.stderr


def test_organ_is_one_the_reader_knows_and_only_for_the_abdomen(chest):
    image, mask = chest
    finding = medseg_r.describe(image, mask, domain="abdomen", organ="liver").findings[0]
    assert finding.location.organ == "liver"
    with pytest.raises(DescribeError, match=r"unknown organ 'banana'; known: liver, kidney, spleen"):
        describe_case(image, mask, domain="abdomen", organ="banana")
    with pytest.raises(DescribeError, match=r"organ 'liver' is for the abdomen domain, not chest \(its lesions lie in the lung\)"):
        describe_case(image, mask, organ="liver")
    from medseg_r.describe.core import ABDOMEN_ORGANS

    for organ in ABDOMEN_ORGANS:  # every organ it accepts reads back
        description = describe_case(image, mask, domain="abdomen", organ=organ, spacing=MM)
        assert description.round_trip and description.report.findings[0].location.organ == organ


@pytest.mark.parametrize("target, reads_back", [("tumour", True), ("widget", False),
                                                ("ground-glass opacity", False)])
def test_round_trip_compares_the_readers_codes_and_a_failure_is_noted(chest, target, reads_back):
    image, mask = chest
    description = describe_case(image, mask, spacing=MM, target=target)
    assert description.round_trip is reads_back
    noted = [n for n in description.notes if "does not read back" in n]
    assert bool(noted) is not reads_back
    if target == "widget":
        assert "'widget' is not a finding word of the report reader" in noted[0]

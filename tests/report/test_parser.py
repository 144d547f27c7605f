import json
import subprocess
import sys

import pytest

from medseg_r import parse_report
from medseg_r.report import load_vocabulary
from medseg_r.report.schema import SHAPE_CODES, TEXTURE_CODES
from medseg_r.report.vocab import default_vocabulary


def only(text):
    findings = parse_report(text).findings
    assert len(findings) == 1, [f.to_dict() for f in findings]
    return findings[0]


def test_priors_md_example():
    f = only("2 cm hypodense round lesion in the right upper lobe")
    assert (f.target, f.location.side, f.location.zones, f.location.organ) == ("lesion", "right", ["upper"], "lung")
    assert f.texture == ["hypodense"] and f.shape == ["round"] and f.size_mm == 20.0


def test_json_shape_matches_priors_contract():
    data = parse_report("A 12 x 8 mm spiculated nodule in the RUL.").to_dict()
    assert set(data) == {"report", "findings", "normal_statements"}  # the last beyond PRIORS.md
    f = data["findings"][0]
    assert set(f) == {"target", "location", "texture", "shape", "size_mm", "size_class", "count", "negated",
                      "uncertain", "spans", "diagnosis", "artefact"}
    assert set(f["location"]) == {"side", "zones", "organ", "segment", "image_region"}
    assert set(f["spans"]) == {"location", "texture", "shape", "target"}
    assert f["size_mm"] == 12.0
    json.dumps(data)


def test_spans_point_at_the_evidence():
    text = "Irregular ground-glass opacity in the left lower lobe."
    f = only(text)
    assert [text[s:e] for s, e in f.spans["target"]] == ["opacity"]
    assert [text[s:e] for s, e in f.spans["texture"]] == ["ground-glass"]
    assert [text[s:e] for s, e in f.spans["shape"]] == ["Irregular"]
    assert [text[s:e] for s, e in f.spans["location"]] == ["left lower lobe"]


@pytest.mark.parametrize("text", ["No pleural effusion.", "Without focal consolidation.", "Negative for pneumothorax.",
                                  "Free of focal opacity.", "The nodule has resolved.", "No evidence of pneumonia."])
def test_negation_triggers(text):
    assert all(f.negated for f in parse_report(text).findings) and parse_report(text).findings


@pytest.mark.parametrize("text", ["Nodule not seen in the left lung.", "Mass no longer visible.",
                                  "Previously noted mass is no longer visible.", "Resolved nodule in the RUL.",
                                  "Not seen: the previously described nodule.", "The nodule is not detected.",
                                  "No longer visible nodule in the RUL.", "Not detected nodule.",
                                  "Not seen: nodule, mass or effusion.", "Resolved effusion, consolidation and nodule."])
def test_negation_both_ways_and_no_longer_visible(text):
    findings = parse_report(text).findings
    assert findings and all(f.negated for f in findings)


@pytest.mark.parametrize("text, negated", [
    # a both-ways trigger after a finding looks back only
    ("Effusion resolved, new nodule in the right upper lobe.", [True, False]),
    ("Effusion resolved and new nodule in the right upper lobe.", [True, False]),
    ("Mass resolved or nodule in the RUL.", [True, False]),
    ("Effusion resolved: nodule in RUL.", [True, False]),
    ("Nodule not detected, mass in the RUL.", [True, False]),
    ("Resolved effusion; 2 cm nodule in the left lower lobe.", [True, False]),
    # pseudo-triggers: new since the prior study, or still there
    ("Nodule in the RUL, not seen on prior.", [False]),
    ("New nodule in the RUL not seen on the prior study.", [False]),
    ("Nodule in the RUL was not seen on prior.", [False]),
    ("Nodule not seen on earlier study.", [False]),
    ("Mass in the left lung, not previously seen.", [False]),
    ("Partially resolved consolidation in the RLL.", [False]),
    ("Nearly resolved effusion.", [False])])
def test_which_way_a_both_ways_trigger_looks_and_pseudo_triggers(text, negated):
    assert [f.negated for f in parse_report(text).findings] == negated


@pytest.mark.parametrize("text", ["Possible nodule in the right base.", "Cannot exclude pneumonia.",
                                  "Suspicious for malignant mass.", "Likely atelectasis at the left base.",
                                  "Opacity in the left lower lobe?"])
def test_uncertainty_triggers(text):
    findings = parse_report(text).findings
    assert findings and findings[0].uncertain and not findings[0].negated


@pytest.mark.parametrize("text", ["No effusion but a small nodule in the left upper lobe.",
                                  "No pneumothorax; however, there is a nodule in the left upper lobe."])
def test_negation_scope_ends_at_terminator(text):
    findings = parse_report(text).findings
    assert [f.negated for f in findings] == [True, False]


def test_all_negative_report():
    report = parse_report("No focal opacity. No pleural effusion or pneumothorax.")
    assert report.all_negative and not report.positive_findings


@pytest.mark.parametrize("text, mm", [("2 cm", 20.0), ("12 x 8 mm", 12.0), ("1.5cm", 15.0), ("3 x 2.5 x 2 cm", 30.0),
                                      ("2,5 cm", 25.0), ("15-mm", 15.0), ("4 millimeters", 4.0)])
def test_sizes(text, mm):
    assert only(f"Nodule measuring {text} in the right lung.").size_mm == mm


@pytest.mark.parametrize("text", ["99999999999999999999 mm", "0 mm", "60 cm", "-5 mm", "(\u22122 cm)"])
def test_an_impossible_size_is_not_read(text):
    finding = only(f"Nodule measuring {text} in the right lung.")
    assert finding.size_mm is None and finding.size_class is None


def test_a_range_is_read_as_its_largest_size_and_a_minus_sign_is_not_one():
    assert only("Nodule of 2-3 mm in the right lung.").size_mm == 3.0
    assert only("Nodule of 2 -3 mm in the right lung.").size_mm == 3.0
    assert only("Nodule of 1.5 cm -2 cm in the right lung.").size_mm == 20.0
    assert only("Nodule: -12 mm in the right lung.").size_mm is None
    assert only("Nodule: 12 mm in the right lung.").size_mm == 12.0


def test_size_words_and_counts():
    f = only("Two small round nodules in the left lower lobe.")
    assert (f.count, f.size_class) == (2, "small")
    assert only("Multiple nodules in the right lung.").count == 2
    assert only("A sub-centimetre nodule in the right lung.").size_class == "small"


def test_image_relative_location():
    f = only("one medium red oval polyp, located in upper left of the image")
    assert f.location.image_region == "top_left" and f.location.side is None and f.location.organ == "image"


@pytest.mark.parametrize("text, region", [
    ("Lesion at the right of the image.", "right"),
    ("Polyp in the image's top right corner.", "top_right"),
    ("On the image, a polyp at the top left.", "top_left"),  # no anatomy to place it on
])
def test_directions_the_image_owns_are_the_images(text, region):
    f = only(text)
    assert (f.location.image_region, f.location.side) == (region, None)


def test_a_side_before_an_organ_stays_the_patients_in_an_image_relative_sentence():
    f = only("Nodule in the lower right corner of the image, in the left lung.")
    assert (f.location.image_region, f.location.side) == ("bottom_right", "left")


@pytest.mark.parametrize("text, side", [
    ("Nodule in the left upper lung on the frontal view.", "left"),
    ("Round density in the right midlung on the PA view.", "right"),
    ("Nodule in the left lung on image 45.", "left"),
    ("Left breast mass seen on the screening image.", "left"),
    # a lung zone is the patient's too, and so are directions beside a view, a key or numbered image
    # or "in view of" (each read as the image's top or bottom left before)
    ("Opacity in the left upper zone on the PA view.", "left"),
    ("Left lower zone opacity, see key image.", "left"),
    ("Opacity (image 3) in the left upper zone.", "left"),
    ("Nodule in the left upper zone on today's image.", "left"),
    ("Opacity on the left on the PA view.", "left"),
    ("Right-sided pleural effusion, in view of the history likely infective.", "right"),
])
def test_a_view_or_image_named_in_passing_keeps_the_patients_side(text, side):
    # a radiograph shows the patient's left on the image's right: reading "left" as the image's
    # left put the finding on the wrong side
    f = only(text)
    assert (f.location.side, f.location.image_region) == (side, None)


@pytest.mark.parametrize("text", [
    "Nodule in the left upper lobe, not seen on the lateral view.",
    "2 cm mass in the right lower lobe, not visible on the lateral view.",
    "Small nodular opacity in the left upper zone is not seen on the lateral view.",
    "Calcified node is not identified on the PA projection.",
])
def test_a_finding_not_seen_on_one_view_is_present(text):
    # it is seen on another view of the study: "not seen on the lateral view" negated it (and an
    # all-negative report gives an empty mask without running the model)
    assert not only(text).negated


@pytest.mark.parametrize("text", [
    "The previously described nodule is not seen on the current radiograph.",
    "No nodule seen on the lateral view.",
    # absent on every view, or on the one film of a portable study
    "The nodule in the left upper lobe is not seen on the PA and lateral views.",
    "Nodule not visible on the frontal or lateral views.",
    "Nodule in the LUL not seen on PA/lateral views.",
    "Pneumothorax is not seen on the AP view.",
])
def test_a_finding_not_seen_on_the_study_stays_negated(text):
    assert only(text).negated


@pytest.mark.parametrize("text, organ", [
    ("Parenchymal scarring in the left lower lobe.", "lung"),
    ("Parenchymal hemorrhage in the left frontal lobe.", "brain"),
    ("Obscured right heart border with streaky right basilar opacity.", "lung"),
])
def test_a_named_region_decides_the_organ_over_an_organ_word(text, organ):
    assert only(text).location.organ == organ


def test_several_findings_keep_their_own_attributes():
    a, b = parse_report("A round nodule in the RUL and an irregular mass in the LLL.").findings
    assert (a.target, a.shape, a.location.side) == ("nodule", ["round"], "right")
    assert (b.target, b.shape, b.location.side) == ("mass", ["irregular"], "left")


def test_every_canonical_code_is_reachable():
    vocab = default_vocabulary()
    assert set(TEXTURE_CODES) <= set(vocab.codes("texture"))
    assert set(SHAPE_CODES) <= set(vocab.codes("shape"))
    for code in TEXTURE_CODES:
        word = vocab.terms["texture"][code][0]
        assert code in only(f"A {word} lesion.").texture, word
    for code in SHAPE_CODES:
        word = vocab.terms["shape"][code][0]
        assert code in only(f"A {word} lesion.").shape, word


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "Der Patient hat keine Befunde.", "患者无异常。", "1234 5678",
                                  "\x00\x01\x02\ufffd\ufffd binary \x7f junk", "." * 50])
def test_bad_input_never_crashes(text):
    report = parse_report(text)
    assert isinstance(report.findings, list)


def test_100_kb_of_text_is_parsed():
    text = "Small nodule in the right upper lobe. No effusion. " * 2000
    assert len(text) > 100_000
    report = parse_report(text)
    assert len(report.findings) == 4000
    assert [f.negated for f in report.findings[:4]] == [False, True, False, True]
    assert report.findings[-2].location.segment == "upper lobe"  # timings: benchmarks.parser_speed


def test_too_long_and_wrong_types_are_clear_errors():
    with pytest.raises(ValueError, match="limit"):
        parse_report("x" * 200_001)
    with pytest.raises(TypeError, match="decode"):
        parse_report(b"bytes")
    with pytest.raises(TypeError, match="expects str"):
        parse_report(None)


def test_parser_does_not_import_torch():
    code = "import sys, medseg_r; medseg_r.parse_report('nodule'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # dir() lists the lazy model API (tab completion missed build_model, MedSegR ...) without importing it
    code = ("import sys, medseg_r; names = dir(medseg_r); "
            "print(all(n in names for n in medseg_r.__all__), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_user_vocabulary_pack_adds_terms(tmp_path, monkeypatch):
    pack = tmp_path / "mine.yaml"
    pack.write_text("domain: mine\ntexture:\n  ground_glass: [frosted]\ntargets:\n  nodule: [blob]\n")
    vocab = load_vocabulary([pack])
    f = parse_report("A frosted blob in the left upper lobe.", vocabulary=vocab).findings[0]
    assert (f.target, f.texture) == ("nodule", ["ground_glass"])
    monkeypatch.setenv("MEDSEG_R_VOCAB", str(pack))
    assert load_vocabulary().terms["targets"]["nodule"][-1] == "blob"


def test_bad_vocabulary_packs_are_value_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("context:\n  negation_pre: [no]\n")  # YAML reads a bare no as false
    with pytest.raises(ValueError, match="quote"):
        load_vocabulary([bad])
    with pytest.raises(ValueError, match="not found"):
        load_vocabulary([tmp_path / "missing.yaml"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_vocabulary([broken])


@pytest.mark.parametrize("text, match", [
    ("targets:\n  nodule: nodulus\n", "targets: nodule must be a list of terms, got 'nodulus'"),
    ("context:\n  negation_pre: nein\n", "context: negation_pre must be a list of terms"),
    ("segments: [{terms: tree in bud, zones: [upper]}]\n", "segments: terms must be a list"),
    ("segments: [rul]\n", "each segment must be a mapping"),
    ("targets: [nodulus]\n", "targets must be a mapping of code -> list of terms"),
    ("target:\n  nodule: [nodulus]\n", "unknown key\\(s\\) target"),
    ("segments: [{terms: [apico segment], zones: upper}]\n", "segments: zones must be a list"),
    ("segments: [{terms: [apico segment], side: [left]}]\n", "segment side must be text"),
])
def test_a_pack_written_with_the_wrong_shape_is_a_value_error_naming_it(tmp_path, text, match):
    # a string where a list belongs was read letter by letter ("s", "n" became nodules)
    pack = tmp_path / "pack.yaml"
    pack.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_vocabulary([pack])


def test_the_later_pack_wins_a_term_two_codes_claim(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("targets:\n  opacity: [nodulus]\n")
    second.write_text("targets:\n  nodule: [nodulus, scar]\n")
    for order, target in (([first, second], "nodule"), ([second, first], "opacity")):
        vocab = load_vocabulary(order)
        assert parse_report("Nodulus in the RUL.", vocabulary=vocab).findings[0].target == target
    vocab = load_vocabulary(str(second))  # one pack given alone, not letter by letter
    assert parse_report("Scar in the RUL.", vocabulary=vocab).findings[0].target == "nodule"


@pytest.mark.parametrize("text", ["targets: []\n", "ignore: {}\n", "ignore: ''\n", "segments: {}\n"])
def test_an_empty_container_of_either_kind_is_an_empty_entry(tmp_path, text):
    pack = tmp_path / "pack.yaml"
    pack.write_text(text)
    load_vocabulary([pack])  # loaded before the checks: still loads


@pytest.mark.parametrize("text, second", [
    ("Nodule in segment 6. 8 mm cyst in the left kidney.", ("cyst", "left", None, None)),
    ("Mass at 6:00. 12 mm cyst.", ("cyst", None, None, None)),  # the clock stays with the mass
    ("Nodule in the RLL, series 3 image 45. 2 cm mass in the left upper lobe.",
     ("mass", "left", None, "upper lobe")),  # 45 is no count of the mass
])
def test_a_full_stop_after_a_number_ends_the_sentence_before_a_digit(text, second):
    findings = parse_report(text).findings
    assert len(findings) == 2
    f = findings[1]
    assert (f.target, f.location.side, f.count, f.location.segment) == second


@pytest.mark.parametrize("text", ["Left lower lobe consolidation without pleural effusion.",
                                  "RLL consolidation without effusion.",
                                  "Right middle lobe consolidation, no pleural effusion."])
def test_consolidation_before_a_negated_finding_stays_a_finding(text):
    # "consolidation" is a texture word too: read as the texture of the negated effusion, the
    # report's one positive finding was lost and the report read all-negative
    first, second = parse_report(text).findings
    assert (first.target, first.negated) == ("consolidation", False)
    assert first.location.side in ("left", "right") and first.location.zones  # its lobe stays its own
    assert (second.target, second.negated) == ("effusion", True)


@pytest.mark.parametrize("text, segment, size_mm", [
    ("Hypodense lesion in segment 2, 5 mm, likely cyst.", "segment 2", 5.0),
    ("Lesion in segment 6, 1.5 cm.", "segment 6", 15.0),
    ("Lesion in segments 2 and 3, 4 cm.", "segments 2 and 3", 40.0),
    ("Lesion in segments 2, 3 and 4.", "segments 2, 3 and 4", None),
])
def test_a_size_after_a_liver_segment_is_no_segment(text, segment, size_mm):
    # "segment 2, 5 mm" read segments 2 and 5 (both lobes: side bilateral) and no size
    f = only(text)
    assert (f.location.segment, f.size_mm) == (segment, size_mm)


@pytest.mark.parametrize("text, size_mm", [
    ("Sigmoid polyp 6 mm at 30 cm.", 6.0),
    ("Right breast: 12 mm irregular mass at 9:00, 5 cm FN.", 12.0),
    ("Liver lesion measuring 1.5 cm, previously 2 cm.", 15.0),
    ("The RUL nodule has decreased from 15 mm to 9 mm.", 9.0),
    ("A 12 mm nodule (previously 8 mm) in the RUL.", 12.0),
    ("Nodule increased from 9 to 15 mm.", 15.0),
])
def test_distances_and_earlier_sizes_are_not_the_lesions_size(text, size_mm):
    assert only(text).size_mm == size_mm


@pytest.mark.parametrize("text, side, zones, count", [
    ("Bilat. lower zone airspace opacities.", "bilateral", ["lower"], None),
    ("Lesion in the post. segment of the RUL.", "right", ["upper"], None),
    ("Mult. nodules in the LLL.", "left", ["lower"], 2),
    ("A dozen nodules in both lungs.", "bilateral", [], 12),
])
def test_abbreviations_end_no_sentence_and_counts_in_words(text, side, zones, count):
    f = only(text)
    assert (f.location.side, f.location.zones, f.count) == (side, zones, count)


def test_a_series_and_image_number_is_no_size():
    f = only("Nodule in the RUL (ser. 4 img. 56) measuring 6 mm.")
    assert (f.location.side, f.size_mm) == ("right", 6.0)


@pytest.mark.parametrize("text, texture", [
    ("High T2 signal lesion in the right frontal lobe.", "hyperintense"),
    ("Hypervascular liver lesion.", "enhancing"),
    ("Few tiny hypodensities in the liver.", "hypodense"),
])
def test_more_texture_words(text, texture):
    assert texture in only(text).texture


@pytest.mark.parametrize("text, target", [
    ("Stable 2.1 cm left adrenal adenoma.", "mass"),  # read as a polyp
    ("Focal asymmetry in the left breast at 12 o'clock.", "lesion"),  # read as nothing
    ("Architectural distortion in the right breast upper outer quadrant.", "lesion"),
    ("Tubular adenoma in the sigmoid colon.", "polyp"),
])
def test_more_targets(text, target):
    assert only(text).target == target

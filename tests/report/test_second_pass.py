"""The second pass of the report reader (issue 15): shorthand sides, zones, liver segments and clock
faces, lists, diagnosis linkers, alternatives, attribute scope and anatomy. Sentences written for
this project."""
import json
import sys

import pytest

from medseg_r import parse_report
from medseg_r.report import Finding, Report


def only(text):
    findings = parse_report(text).findings
    assert len(findings) == 1, [f.to_dict() for f in findings]
    return findings[0]


def where(f):
    return f.location.side, f.location.zones, f.location.organ, f.location.segment


# 1. Sides written as one letter, "Rt"/"Lt", "b/l" or in Latin ------------------------------------

@pytest.mark.parametrize("text, side, zones, organ, segment", [
    ("Small nodule at the R apex.", "right", ["upper"], "lung", None),
    ("Lipid-rich nodule in the L adrenal.", "left", [], "adrenal", None),
    ("Irregular mass L breast 3:00.", "left", [], "breast", "3 o'clock"),
    ("Old lacune in the R caudate nucleus.", "right", ["middle"], "brain", "caudate nucleus"),
    ("6 mm nodule, R upper third.", "right", ["upper"], None, None),
    ("Opacity at the R base.", "right", ["lower"], "lung", "lower lobe"),
    ("Rt lower lobe nodule.", "right", ["lower"], "lung", "lower lobe"),
    ("Lt. breast cyst, 5 mm.", "left", [], "breast", None),
    ("Patchy b/l lower zone opacities.", "bilateral", ["lower"], None, None),
    ("Nodule in pulmo sinister, upper lobe.", "left", ["upper"], "lung", "upper lobe"),
    ("Fatty mass in the R thigh.", "right", [], None, None),
])
def test_side_letters_and_latin(text, side, zones, organ, segment):
    assert where(only(text)) == (side, zones, organ, segment)


@pytest.mark.parametrize("text", [
    "Wedge compression of L1 with a small cyst.",
    "T2-weighted images show a small cyst.",
    "R/O small cyst.",
    "Drained 1.5 L of fluid; small residual cyst.",
])
def test_capitals_that_are_not_sides(text):
    findings = parse_report(text).findings
    assert [f.target for f in findings] == ["cyst"]
    assert findings[0].location.side is None


# 2. Zones as fractions and fields --------------------------------------------------------------

@pytest.mark.parametrize("text, side, zone", [
    ("Opacity in the left lower third.", "left", "lower"),
    ("Hazy opacity in the right upper field.", "right", "upper"),
    ("Left perihilar opacity.", "left", "middle"),
    ("Nodule in the R mid-zone.", "right", "middle"),
    ("Consolidation, right middle third.", "right", "middle"),
])
def test_zones_as_fractions_and_fields(text, side, zone):
    f = only(text)
    assert (f.location.side, f.location.zones) == (side, [zone])


# 3. Liver segments and clock faces ---------------------------------------------------------------

@pytest.mark.parametrize("text, segment, side, zones", [
    ("Hypodense lesion in seg IV.", "segment 4", "left", []),
    ("Cyst in segment 6.", "segment 6", "right", ["lower"]),
    ("Enhancing lesion S2.", "segment 2", "left", ["upper"]),
    ("Cysts in segments 2 and 3.", "segments 2 and 3", "left", ["upper", "lower"]),
    ("Lesion in hepatic segment VII.", "segment 7", "right", ["upper"]),
    ("Lesion in seg. IVa.", "segment 4a", "left", ["upper"]),
    ("Metastases in segments V-VIII.", "segments 5, 6, 7 and 8", "right", ["upper", "lower"]),
])
def test_liver_segments(text, segment, side, zones):
    f = only(text)
    assert (f.location.segment, f.location.side, f.location.zones, f.location.organ) == (
        segment, side, zones, "liver")


@pytest.mark.parametrize("text, count", [
    ("Segment 6 lesion, 1.2 cm.", None), ("Segment 8 cyst.", None), ("2 segment 6 lesions.", 2),
    ("Three cysts in segment 4b.", 3),
])
def test_a_segment_number_is_never_a_count(text, count):
    assert only(text).count == count


def test_a_numbered_lung_segment_stays_in_the_lung():
    f = only("Nodule in segment 6 of the right lower lobe.")
    assert where(f) == ("right", ["lower"], "lung", "segment 6")


@pytest.mark.parametrize("text, segment, zones", [
    ("Cyst in the left breast at 3:00.", "3 o'clock", []),
    ("Mass at 3 o'clock in the left breast.", "3 o'clock", []),
    ("Mass at the 10 o'clock position of the right breast.", "10 o'clock", ["upper"]),
    ("Cyst in the right breast at 7 o\u2019clock.", "7 o'clock", ["lower"]),
    ("Mass in the right breast, 1:30 o'clock.", "1 o'clock", ["upper"]),
])
def test_clock_faces(text, segment, zones):
    f = only(text)
    assert (f.location.segment, f.location.zones, f.location.organ) == (segment, zones, "breast")
    assert f.count in (None, 1)


def test_a_time_of_day_is_not_a_clock_face():
    f = only("Cyst in the left breast, scanned at 10:30 pm.")
    assert f.location.segment is None


# 4. Lists ---------------------------------------------------------------------------------------

def test_a_positive_list_gives_one_finding_per_target():
    findings = parse_report("LLL consolidation, small effusion and two nodules.").findings
    assert [f.target for f in findings] == ["consolidation", "effusion", "nodule"]
    assert [f.location.side for f in findings] == ["left", None, None]
    assert (findings[1].size_class, findings[2].count) == ("small", 2)
    assert not any(f.negated for f in findings)


def test_a_negated_list_negates_every_item():
    findings = parse_report("No focal consolidation, pneumothorax or pleural effusion.").findings
    assert [(f.target, f.negated) for f in findings] == [
        ("consolidation", True), ("pneumothorax", True), ("effusion", True)]


def test_a_location_after_a_list_belongs_to_every_item():
    findings = parse_report("Effusion and consolidation at the right base.").findings
    assert [(f.target, f.location.side, f.location.zones) for f in findings] == [
        ("effusion", "right", ["lower"]), ("consolidation", "right", ["lower"])]
    text = "Without effusion, pneumothorax or consolidation in the left lung."
    negated = parse_report(text).findings
    assert [(f.negated, f.location.side, f.location.organ) for f in negated] == [
        (True, "left", "lung")] * 3


def test_a_location_before_the_first_item_stays_with_it():
    first, second = parse_report("Right effusion and consolidation.").findings
    assert (first.location.side, second.location.side) == ("right", None)


# 5. Linkers: a diagnosis is an attribute, an artefact is not a target ---------------------------

@pytest.mark.parametrize("text, target, diagnosis", [
    ("Linear opacity at the left base representing scarring.", "opacity", "scarring"),
    ("Fatty mass in the right thigh, compatible with a lipoma.", "mass", "a lipoma"),
    ("Calcified nodule in the RUL in keeping with a granuloma.", "nodule", "a granuloma"),
    ("Small nodular density at the right mid lung, probably a vessel seen end-on.", "opacity",
     "a vessel seen end-on"),
    ("Bilateral perihilar opacities, likely oedema or infection.", "opacity",
     "oedema or infection"),
    ("Opacity at the left base, atelectasis versus consolidation.", "opacity",
     "atelectasis versus consolidation"),
])
def test_a_diagnosis_is_an_attribute_of_the_finding_before_it(text, target, diagnosis):
    f = only(text)
    assert (f.target, f.diagnosis, f.uncertain, f.negated) == (target, diagnosis, False, False)
    assert f.location.side is not None


def test_mass_effect_is_not_a_mass():
    f = only("Large enhancing mass with mass effect on the left lateral ventricle.")
    assert (f.target, f.size_class, f.texture) == ("mass", "large", ["enhancing"])


def test_an_artefact_is_kept_but_is_not_a_positive_finding():
    report = parse_report("Opacity at the left base related to overlying soft tissue.")
    (f,) = report.findings
    assert (f.target, f.artefact, f.location.side) == ("opacity", True, "left")
    assert report.positive_findings == [] and report.all_negative
    assert parse_report("Nipple shadow over the right lower zone.").findings == []


def test_a_hedged_target_with_a_place_of_its_own_stays_a_finding():
    text = "Retrocardiac opacity, cannot exclude left lower lobe pneumonia."
    first, second = parse_report(text).findings
    assert (first.target, first.uncertain) == ("opacity", False)
    assert (second.target, second.uncertain, second.location.segment) == (
        "infection", True, "lower lobe")
    a, b = parse_report("Nodule in the RUL and possible atelectasis at the left base.").findings
    assert (a.uncertain, b.uncertain, b.location.side) == (False, True, "left")


# 6. Alternatives and the scope of a trigger -----------------------------------------------------

def test_alternatives_are_one_uncertain_finding_with_both_candidates_attributes():
    f = only("Abscess versus necrotic tumour in segment 6.")
    assert (f.target, f.texture, f.uncertain, f.location.segment, f.location.organ) == (
        "lesion", ["necrotic"], True, "segment 6", "liver")
    assert f.diagnosis == "Abscess versus necrotic tumour"


def test_alternatives_of_one_target_leave_it_certain():
    f = only("Atelectasis or scarring at the right base.")
    assert (f.target, f.uncertain, f.location.side) == ("opacity", False, "right")


def test_a_hedge_on_an_attribute_leaves_the_target_certain():
    f = only("Possible central necrosis within the left renal mass.")
    assert (f.target, f.texture, f.uncertain, f.location.side, f.location.organ) == (
        "mass", ["necrotic"], False, "left", "kidney")


def test_a_negated_attribute_is_dropped_and_the_target_kept():
    f = only("No calcification within the right thyroid nodule.")
    assert (f.target, f.texture, f.negated, f.location.side, f.location.organ) == (
        "nodule", [], False, "right", "thyroid")


def test_no_change_is_not_a_negation():
    f = only("No change in the right upper lobe nodule.")
    assert (f.negated, f.location.segment) == (False, "upper lobe")


# 7. Anatomy -------------------------------------------------------------------------------------

def test_thalamus_is_not_the_basal_ganglia():
    f = only("Small haemorrhage in the right thalamus.")
    assert where(f) == ("right", ["middle"], "brain", "thalamus")
    assert only("Lacune in the left putamen.").location.segment == "basal ganglia"


def test_scattered_through_both_lungs_keeps_organ_and_side():
    f = only("Innumerable nodules scattered through both lungs.")
    assert (f.location.side, f.location.organ, f.count, f.shape) == (
        "bilateral", "lung", 2, ["diffuse"])


@pytest.mark.parametrize("word", ["hemopneumothorax", "haemopneumothorax", "pneumohemothorax",
                                  "pneumohaemothorax"])
def test_blood_and_air_in_the_pleural_space(word):
    f = only(f"Small right {word}.")
    assert (f.target, f.texture, f.location.side, f.location.organ) == (
        "pneumothorax", ["hemorrhagic"], "right", "lung")


# Sentences, schema, linear time -----------------------------------------------------------------

def test_abbreviations_and_numbered_lists_in_sentence_splitting():
    f = only("Atelectasis vs. scarring at the R. base.")
    assert (f.target, f.location.side) == ("opacity", "right")
    first, second = parse_report("1. Right effusion 2. No pneumothorax").findings
    assert (first.negated, second.negated) == (False, True)
    assert only("Findings: nodule in the RUL.").target == "nodule"


def test_new_fields_round_trip_and_old_json_still_loads():
    text = "Opacity at the left base, likely atelectasis. Nodule related to skin fold."
    report = parse_report(text)
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()
    assert [f.diagnosis for f in again.findings] == ["atelectasis", "skin fold"]
    old = {"target": "nodule", "location": {"side": "left"}, "negated": False}
    f = Finding.from_dict(old)
    assert (f.diagnosis, f.artefact, f.location.side) == (None, False, "left")


def _traced_events(text):
    """Python events (calls, lines, returns) while parsing ``text``: a deterministic measure of work
    that, unlike a clock, does not depend on the machine or its load."""
    events = 0

    def tracer(frame, event, arg):
        nonlocal events
        events += 1
        return tracer

    sys.settrace(tracer)
    try:
        parse_report(text)
    finally:
        sys.settrace(None)
    return events


def test_work_grows_linearly_in_a_text_without_sentence_breaks():
    parse_report("Warm-up: the vocabulary index is built on the first call.")
    clause = ("small nodule in the right upper lobe without effusion and possible haziness at the "
              "left base, ")
    short, long = clause * 50, clause * 200  # 4,800 and 19,200 characters, one sentence
    ratio = _traced_events(long) / _traced_events(short)
    assert 3.5 < ratio < 4.5, ratio  # 4 times the text, 4 times the work (the reader before: 12.8)


def test_a_list_item_with_words_of_its_own_keeps_its_place_to_itself():
    first, second = parse_report("No consolidation, and a small nodule in the LUL.").findings
    assert (first.target, first.location.side) == ("consolidation", None)
    assert (second.target, second.location.side, second.size_class) == ("nodule", "left", "small")


def test_the_hedge_of_a_diagnosis_ends_with_it():
    opacity, effusion = parse_report(
        "Opacity in the right lung base, likely atelectasis, and small effusion.").findings
    assert (opacity.diagnosis, opacity.uncertain) == ("atelectasis", False)
    assert (effusion.target, effusion.uncertain, effusion.size_class) == (
        "effusion", False, "small")

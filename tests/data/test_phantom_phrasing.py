"""Phantom report phrasings: the training bank is read by the parser, the held-out bank's
out-of-vocabulary words are not (if the vocabulary grows to cover one, a test here says so), and no
held-out phrasing leaks into train/val reports."""
import itertools
import json
import re

import numpy as np
import pytest

from medseg_r.data.phantom import make_phantom
from medseg_r.data.phantom.reports import (ABBR, KNOWN, MENTIONS, NEW, NEW_TEMPLATE_MARKERS,
                                           OOV_WORDS, ZONE_ADVERB, ZONE_HEIGHT, ZONE_NOUN,
                                           location_phrase)
from medseg_r.report.parser import parse_report

CELLS = [(side, zone) for side in ("right", "left") for zone in ("upper", "middle", "lower")]


def _one(text):
    findings = [f for f in parse_report(text).findings if not f.negated]
    assert len(findings) == 1, (text, findings)
    return findings[0]


def _word_pattern(word):
    flags = 0 if len(word) == 1 else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", flags)


def _all_locations(bank):
    out = []
    for side, zone in CELLS:
        for template in bank["location"]:
            if "{abbr}" in template and (side, zone) == ("left", "middle"):
                continue
            if (side, zone) == ("left", "middle"):
                lobe = "in the lingula"
            else:
                lobe = f"in the {side} {zone} lobe"
            text = template.format(side=side, zone=zone, lobe=lobe, abbr=ABBR.get((side, zone)),
                                   zone_adverb=ZONE_ADVERB[zone], zone_noun=ZONE_NOUN[zone],
                                   zone_height=ZONE_HEIGHT[zone])
            out.append((side, zone, text, template))
    return out


@pytest.mark.parametrize("word,code", sorted(OOV_WORDS["texture"].items()))
def test_oov_texture_words_are_unknown_to_the_parser(word, code):
    assert code not in _one(f"There is a {word} nodule in the right upper zone.").texture


@pytest.mark.parametrize("word,code", sorted(OOV_WORDS["shape"].items()))
def test_oov_shape_words_are_unknown_to_the_parser(word, code):
    assert code not in _one(f"There is a {word} nodule in the right upper zone.").shape


@pytest.mark.parametrize("word,code", sorted(OOV_WORDS["size"].items()))
def test_oov_size_words_are_unknown_to_the_parser(word, code):
    finding = _one(f"There is a {word} nodule in the right upper zone.")
    assert finding.size_class != code and finding.size_mm is None


def test_oov_location_and_noun_words_are_unknown_to_the_parser():
    for word, zone in OOV_WORDS["zone"].items():
        if word in ZONE_ADVERB.values():
            text = f"There is a nodule in the left hemithorax, {word}."
        else:
            text = f"There is a nodule {word} the left chest."
        location = _one(text).location
        assert zone not in location.zones and location.side == "left", text
    for word in OOV_WORDS["noun"]:
        assert parse_report(f"There is a {word} in the right upper zone.").findings == []


def test_new_bank_words_outside_the_oov_list_are_read():
    for kind in ("texture", "shape"):
        for code, words in NEW[kind].items():
            for word in words:
                if word not in OOV_WORDS[kind]:
                    assert code in getattr(_one(f"There is a {word} nodule."), kind), word
    for side, zone, text, template in _all_locations(NEW):
        if "{zone_adverb}" in template or "{zone_height}" in template:
            continue
        location = _one(f"There is a nodule {text}.").location
        assert (location.side, location.zones) == (side, [zone]), text


def test_known_bank_is_read_whole():
    for kind in ("texture", "shape"):
        for code, words in KNOWN[kind].items():
            for word in words:
                assert getattr(_one(f"There is a {word} nodule."), kind) == [code], word
    for code, words in KNOWN["size"].items():
        for word in words:
            assert _one(f"There is a {word} nodule.").size_class == code
    for side, zone, text, _ in _all_locations(KNOWN):
        location = _one(f"There is a nodule {text}.").location
        assert (location.side, location.zones) == (side, [zone]), text


def test_mentions_fillers_and_negatives_are_no_finding():
    rng = np.random.default_rng(0)
    for key, templates in MENTIONS.items():
        for template, (side, zone) in itertools.product(templates, CELLS):
            text = template.format(loc=location_phrase(side, zone, KNOWN, rng), side=side)
            assert [f for f in parse_report(text).findings if not f.negated] == [], text
    for bank in (KNOWN, NEW):
        for text in bank["negative"] + bank["negative_but_known"]:
            assert [f for f in parse_report(text).findings if not f.negated] == [], text


def _known_strings():
    """Every string the training bank and the shared sentences can produce parts of."""
    texts = [t for side, zone, t, _ in _all_locations(KNOWN)]
    for kind in ("texture", "shape", "size"):
        texts += [w for words in KNOWN[kind].values() for w in words]
    texts += KNOWN["noun"] + KNOWN["sentence"] + KNOWN["negative"] + KNOWN["negative_but_known"]
    texts += [t for templates in MENTIONS.values() for t in templates]
    return texts


def test_new_templates_and_oov_words_never_occur_in_the_training_bank():
    oov = [w for table in OOV_WORDS.values() for w in table]
    for text in _known_strings():
        assert not [w for w in oov if _word_pattern(w).search(text)], text
        assert not [m for m in NEW_TEMPLATE_MARKERS.values() if re.search(m, text)], text
    new_renderings = {t: text for _, _, text, t in _all_locations(NEW)}
    new_renderings.update({t: t.format(desc="small nodule", loc="in the lung", Loc="In the lung")
                           for t in NEW["sentence"]})
    assert set(new_renderings) == set(NEW_TEMPLATE_MARKERS)
    for template, text in new_renderings.items():
        assert re.search(NEW_TEMPLATE_MARKERS[template], text), template


def test_generated_train_and_val_reports_hold_no_held_out_phrasing(tmp_path):
    make_phantom(str(tmp_path), n=40, seed=2, size=64, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    oov = [w for table in OOV_WORDS.values() for w in table]
    new_seen = 0
    for row in rows:
        found = [w for w in oov if _word_pattern(w).search(row["report"])]
        markers = [m for m in NEW_TEMPLATE_MARKERS.values() if re.search(m, row["report"])]
        if row["split"] in ("train", "val"):
            assert row["phrasing"] == "known" and not found and not markers, row["report"]
        elif row["phrasing"] == "new" and row["kind"] != "negative":
            assert markers, row["report"]  # every held-out description uses a held-out template
            assert set(row["oov_words"]) == set(found)
            new_seen += 1
        assert f"phrasing_{row['phrasing']}" in row["tags"] or row["split"] != "test"
    assert new_seen >= 2

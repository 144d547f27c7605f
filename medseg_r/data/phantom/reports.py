"""Report sentences for phantom lesions, in two phrasing banks.

* ``KNOWN``: the training phrasing bank (train and val splits, and the ``phrasing_known`` half of
  the test split). Every word is in the parser's vocabulary.
* ``NEW``: used only for the ``phrasing_new`` half of the test split. Its sentence and location
  templates never occur in train/val, and it mixes in-vocabulary words that training never shows
  ("stellate", "calcific", "1.4 cm") with informal or rare words the parser does not know
  (:data:`OOV_WORDS`: "smudgy", "starburst", "superiorly", "pea-sized", "spot"...). The parser
  misses those cues, or reads a wrong one ("partly solid" -> solid): a true result.

Lesions that are present but not the target are mentioned, when at all, in words the parser does
not read as a finding (:data:`MENTIONS`, with the vocabulary's ``ignore:`` phrases such as
"calcified lymph node"), so that the parsed report names only the target lesions.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

ABBR = {("right", "upper"): "RUL", ("right", "middle"): "RML", ("right", "lower"): "RLL",
        ("left", "upper"): "LUL", ("left", "lower"): "LLL"}

KNOWN = {
    "location": ["in the {side} {zone} zone", "in the {zone} part of the {side} lung", "{lobe}",
                 "in the {abbr}", "at the {side} {zone} lung zone"],
    "texture": {"ground_glass": ["ground-glass", "hazy ground-glass"],
                "part_solid": ["part-solid", "semi-solid"], "solid": ["solid"],
                "calcified": ["calcified", "densely calcified"],
                "cavitary": ["cavitary", "cavitating"]},
    "shape": {"round": ["round", "rounded"], "oval": ["oval", "ovoid"], "lobulated": ["lobulated"],
              "spiculated": ["spiculated"], "irregular": ["irregular"]},
    "size": {"small": ["small"], "medium": ["medium-sized"], "large": ["large"]},
    "noun": ["nodule", "opacity", "lesion"],
    "sentence": ["There is a {desc} {loc}.", "A {desc} is seen {loc}.", "{Desc} {loc}."],
    "negative": ["No focal opacity.", "No nodule or mass.",
                 "Lungs are clear without focal lesion."],
    "negative_but_known": ["No new focal opacity.", "No new nodule or mass."],
}
NEW = {
    "location": ["projecting over the {side} {zone} lung field",
                 "in the {side} hemithorax, {zone_adverb}", "{zone_height} the {side} chest",
                 "near the {side} {zone_noun}"],
    "texture": {"ground_glass": ["smudgy", "faint"], "part_solid": ["partly solid", "subsolid"],
                "solid": ["soft-tissue", "solid-appearing", "solid"],
                "calcified": ["chalky", "calcific"], "cavitary": ["hollowed-out", "cavitated"]},
    "shape": {"round": ["coin-like", "circular"], "oval": ["almond-shaped", "elliptical"],
              "lobulated": ["bumpy", "multilobulated"], "spiculated": ["starburst", "stellate"],
              "irregular": ["ragged", "amorphous"]},
    "size": {"small": ["pea-sized"], "medium": ["grape-sized"], "large": ["plum-sized"]},
    "noun": ["spot", "density", "focus"],
    "sentence": ["Note is made of a {desc} {loc}.", "{Loc} a {desc} is noted.",
                 "Incidental {desc} {loc}."],
    "negative": ["No suspicious pulmonary nodule.", "No evidence of focal consolidation or mass.",
                 "Lung fields look clean."],
    "negative_but_known": ["No new suspicious pulmonary nodule.",
                           "Nothing new in the lung fields."],
}
ZONE_ADVERB = {"upper": "superiorly", "middle": "centrally", "lower": "inferiorly"}
ZONE_HEIGHT = {"upper": "high in", "middle": "halfway down", "lower": "low in"}
ZONE_NOUN = {"upper": "apex", "middle": "hilum", "lower": "base"}
# Words of the NEW bank that the parser's vocabulary does not read as the intended code, by kind.
OOV_WORDS: Dict[str, Dict[str, str]] = {
    "texture": {"smudgy": "ground_glass", "partly solid": "part_solid", "soft-tissue": "solid",
                "solid-appearing": "solid", "chalky": "calcified", "hollowed-out": "cavitary"},
    "shape": {"coin-like": "round", "almond-shaped": "oval", "bumpy": "lobulated",
              "starburst": "spiculated", "ragged": "irregular"},
    "zone": {**{word: zone for zone, word in ZONE_ADVERB.items()},
             **{words: zone for zone, words in ZONE_HEIGHT.items()}},
    "size": {"pea-sized": "small", "grape-sized": "medium", "plum-sized": "large"},
    "noun": {"spot": "lesion"},
}
_OOV = {word for table in OOV_WORDS.values() for word in table}
# The in-vocabulary words of NEW, under the name of the earlier held-out bank (the report reader's
# shorthand test, tests/report/test_phantom_shorthand.py, rewrites phantom descriptions with them).
TEST = {kind: {code: [w for w in words if w not in _OOV] for code, words in NEW[kind].items()}
        for kind in ("texture", "shape")}
TEST["noun"] = [w for w in NEW["noun"] if w not in _OOV]
# Each NEW template, and a pattern that finds it in a report (no KNOWN template matches these).
NEW_TEMPLATE_MARKERS = {
    "projecting over the {side} {zone} lung field": r"projecting over the \w+ \w+ lung field",
    "in the {side} hemithorax, {zone_adverb}": r"hemithorax, (?:superiorly|centrally|inferiorly)",
    "{zone_height} the {side} chest": r"\b(?:high in|halfway down|low in) the \w+ chest\b",
    "near the {side} {zone_noun}": r"near the (?:right|left) (?:apex|hilum|base)\b",
    "Note is made of a {desc} {loc}.": r"Note is made of",
    "{Loc} a {desc} is noted.": r" is noted\.",
    "Incidental {desc} {loc}.": r"\bIncidental ",
}
# Sentences for lesions that are present but not the target, and for incidental findings: the
# parser reads none of them as a finding (tests check this), so they never become priors.
MENTIONS = {
    "any": ["Stable post-inflammatory change {loc}, unchanged from prior.",
            "Previously characterised benign change {loc}, no follow-up needed."],
    "calcified": ["Healed granulomatous disease {loc}."],
    "solid": ["Known hamartoma {loc}, unchanged."],
    "ground_glass": ["Known atypical adenomatous hyperplasia {loc}, under surveillance."],
    "part_solid": ["Known atypical adenomatous hyperplasia {loc}, under surveillance."],
    "cavitary": ["Healed tuberculosis {loc}, stable."],
    "granulomas": ["Sequelae of prior granulomatous disease."],
    "hilar_node": ["Calcified lymph node at the {side} hilum.",
                   "Calcified lymph nodes at the {side} hilum."],
    "aortic_calcification": ["Aortic calcification.", "Calcified aorta."],
    "filler": ["Heart size is normal.", "No pleural effusion.",
               "Cardiomediastinal silhouette within normal limits."],
}


def size_class(size_mm: float) -> str:
    """The parser's convention: small below 10 mm, medium up to 30 mm, large above."""
    return "small" if size_mm < 10 else "medium" if size_mm <= 30 else "large"


def _pick(options, rng: np.random.Generator) -> str:
    return str(options[int(rng.integers(len(options)))])


def format_location(template: str, side: str, zone: str) -> Optional[str]:
    """One location template (either bank's) filled in for (side, zone); ``None`` where it does not
    exist (no lobe abbreviation for the lingula)."""
    if "{abbr}" in template and (side, zone) not in ABBR:
        return None
    lobe = "in the lingula" if (side, zone) == ("left", "middle") else f"in the {side} {zone} lobe"
    return template.format(side=side, zone=zone, lobe=lobe, abbr=ABBR.get((side, zone), ""),
                           zone_adverb=ZONE_ADVERB[zone], zone_noun=ZONE_NOUN[zone],
                           zone_height=ZONE_HEIGHT[zone])


def location_phrase(side: str, zone: str, bank: Mapping, rng: np.random.Generator) -> str:
    """A location phrase for (side, zone) from ``bank``'s location templates."""
    templates = [t for t in bank["location"] if "{abbr}" not in t or (side, zone) in ABBR]
    return str(format_location(_pick(templates, rng), side, zone))


def describe(lesion: Mapping, *, mm_per_px: float, bank: Mapping, rng: np.random.Generator,
             with_size: bool = True, with_shape: bool = True) -> Tuple[str, Dict[str, str]]:
    """One sentence describing a target ``lesion`` (side, zone, texture, shape, size_px), and the
    words used for each attribute (``location``, ``texture``, ``shape``, ``size``, ``noun``)."""
    side, zone = str(lesion["side"]), str(lesion["zone"])
    size_mm = float(lesion["size_px"]) * mm_per_px
    words = {"location": location_phrase(side, zone, bank, rng)}
    mode = int(rng.integers(3)) if with_size else 2
    if mode == 0:
        if bank is KNOWN:
            words["size"] = f"{max(1, round(size_mm))} mm"
        else:
            words["size"] = f"{size_mm / 10:.1f} cm"
    elif mode == 1:
        words["size"] = _pick(bank["size"][size_class(size_mm)], rng)
    words["texture"] = _pick(bank["texture"][str(lesion["texture"])], rng)
    if with_shape:
        words["shape"] = _pick(bank["shape"][str(lesion["shape"])], rng)
    words["noun"] = "mass" if size_mm > 30 and rng.random() < 0.5 else _pick(bank["noun"], rng)
    desc = " ".join(words[k] for k in ("size", "texture", "shape", "noun") if k in words)
    loc = words["location"]
    sentence = _pick(bank["sentence"], rng).format(desc=desc, Desc=desc[0].upper() + desc[1:],
                                                    loc=loc, Loc=loc[0].upper() + loc[1:])
    return sentence, words


def mention(lesion: Mapping, *, generic: bool, rng: np.random.Generator) -> str:
    """A sentence naming a present, non-target lesion as a known benign finding (no finding for
    the parser)."""
    options = MENTIONS["any"] if generic else MENTIONS["any"] + MENTIONS[str(lesion["texture"])]
    loc = location_phrase(str(lesion["side"]), str(lesion["zone"]), KNOWN, rng)
    return _pick(options, rng).format(loc=loc)


def oov_words_in(words: Mapping[str, str]) -> List[str]:
    """The out-of-vocabulary words among a description's words (location phrases included)."""
    found = set()
    for table in OOV_WORDS.values():
        for word in table:
            for text in words.values():
                if word in text.split() or (" " in word and word in text):
                    found.add(word)
    return sorted(found)


def compose_report(kind: str, phrasing: str, lesions: Sequence, incidental: Sequence[str],
                   mm_per_px: float, rng: np.random.Generator) -> Tuple[str, Dict[int, str], Dict]:
    """The report of a case: its text, the sentence naming each lesion (by index), and the words
    used for each target.

    Targets are described from the ``phrasing`` bank (subset cases without size words; shape words
    always in ``random`` and ``by_shape`` cases, half the time otherwise); other lesions are
    mentioned as known benign findings (generic words in subset cases, so that no other texture is
    named), unreported granulomas are sometimes summed up in one sentence without a location. The
    sentences come in random order, so that the first one is not always the target."""
    bank = NEW if phrasing == "new" else KNOWN
    subset = kind.startswith("by_")
    pieces, words = [], {}
    for i, lesion in enumerate(lesions):
        record = {"side": lesion.side, "zone": lesion.zone, "texture": lesion.texture,
                  "shape": lesion.shape, "size_px": lesion.size_px}
        if lesion.role == "target":
            with_shape = kind in ("random", "by_shape") or rng.random() < 0.5
            sentence, words[i] = describe(record, mm_per_px=mm_per_px, bank=bank, rng=rng,
                                          with_size=not subset, with_shape=with_shape)
        elif "hilar_node" in lesion.tags:
            sentence = _pick(MENTIONS["hilar_node"], rng).format(side=lesion.side)
        elif lesion.role == "mentioned":
            sentence = mention(record, generic=subset, rng=rng)
        else:
            continue
        pieces.append((sentence, i))
    named = {i: sentence for sentence, i in pieces}
    omitted = [i for i, lesion in enumerate(lesions) if lesion.role == "omitted"]
    if omitted and rng.random() < 0.5:
        sentence = _pick(MENTIONS["granulomas"], rng)
        pieces.append((sentence, omitted[0]))
        for i in omitted:
            lesions[i].role, named[i] = "mentioned", sentence
    sentences = [pieces[k][0] for k in rng.permutation(len(pieces))]
    if kind == "negative":
        known = any(lesion.role == "mentioned" for lesion in lesions)
        sentences.insert(0, _pick(bank["negative_but_known" if known else "negative"], rng))
    if incidental:
        sentences.append(_pick(MENTIONS["aortic_calcification"], rng))
    if rng.random() < 0.35:
        sentences.append(_pick(MENTIONS["filler"], rng))
    return " ".join(sentences), named, words

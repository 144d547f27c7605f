"""Report sentences for described lesions, in several styles, seeded.

Styles (:data:`STYLES`):

* ``radiology``: report prose, one sentence per finding, e.g. "There is a 12 x 8 mm solid
  spiculated nodule in the upper zone of the right lung." (sizes in mm or cm, templates,
  synonyms and word order drawn from ``rng``);
* ``qata``: the terse LViT / QaTa-COV19 style. In the chest, all findings in one sentence:
  "Bilateral pulmonary nodules, two nodules, upper left lung and lower right lung." (target,
  count, sides and zones only, as that data set's text); elsewhere one "One polyp, upper left of
  the image." per finding;
* ``attribute``: the Kvasir-SEG / BUSI attribute prompts of medvlsm, lower case, findings
  separated by "; ": "one small round hypoechoic mass, located at the upper left of the image"
  (a size word instead of millimetres).

:func:`render` returns the text and the findings it states (``expected``): reading the text
with :func:`medseg_r.report.parse_report` must give the same priors (:func:`prior_key`), which the
tests check on thousands of generated cases.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..report.schema import ZONES, Finding, Location

STYLES = ("radiology", "qata", "attribute")
TEXTURE_WORDS = {
    "ground_glass": ["ground-glass", "ground glass"], "solid": ["solid"],
    "part_solid": ["part-solid", "semi-solid", "subsolid"],
    "calcified": ["calcified", "densely calcified"], "cavitary": ["cavitary", "cavitating"],
    "heterogeneous": ["heterogeneous"], "homogeneous": ["homogeneous"],
    "hypodense": ["hypodense", "hypoattenuating", "low-attenuation"], "isodense": ["isodense"],
    "hyperdense": ["hyperdense", "hyperattenuating"], "hypointense": ["hypointense"],
    "isointense": ["isointense"], "hyperintense": ["hyperintense"],
    "hypoechoic": ["hypoechoic"], "isoechoic": ["isoechoic"], "hyperechoic": ["hyperechoic"],
    "anechoic": ["anechoic"]}
SHAPE_WORDS = {"round": ["round", "rounded", "circular"], "oval": ["oval", "ovoid", "elliptical"],
               "lobulated": ["lobulated"], "spiculated": ["spiculated"],
               "irregular": ["irregular", "irregularly shaped"]}
PLURAL = {"nodule": "nodules", "mass": "masses", "lesion": "lesions", "polyp": "polyps",
          "tumor": "tumors", "opacity": "opacities", "cyst": "cysts", "infection": "infections"}
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
REGION_WORDS = {"top_left": ["upper left", "top left"], "top_right": ["upper right", "top right"],
                "bottom_left": ["lower left", "bottom left"],
                "bottom_right": ["lower right", "bottom right"],
                "center": ["center", "centre", "middle"], "left": ["left"], "right": ["right"],
                "top": ["top", "upper part"], "bottom": ["bottom", "lower part"]}
NEGATIVES = {"chest": [("No nodule or mass.", ["nodule", "mass"]),
                       ("No focal lesion.", ["lesion"])],
             "colonoscopy": [("No polyp.", ["polyp"])],
             "breast": [("No mass.", ["mass"]), ("No focal lesion.", ["lesion"])]}
DEFAULT_NEGATIVE = [("No focal lesion.", ["lesion"]), ("No lesion is seen.", ["lesion"])]
NEGATIVE_ORGANS = {"polyp": "colon"}
MAX_BEFORE_NOUN = 34


def prior_key(finding: Finding) -> tuple:
    """The priors of a finding that a round trip must keep (spans, diagnosis left out; zones,
    textures and shapes as sets)."""
    loc = finding.location
    return (finding.target, loc.side, tuple(z for z in ZONES if z in loc.zones), loc.organ,
            loc.segment, loc.image_region, tuple(sorted(finding.texture)),
            tuple(sorted(finding.shape)), finding.size_mm, finding.size_class, finding.count,
            finding.negated, finding.uncertain)


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return str(options[int(rng.integers(len(options)))])


def _article(word: str) -> str:
    """'an' before a vowel sound ("an oval", "an 8 mm", "an 11 mm"), else 'a'."""
    head = word.split()[0].lower()
    digits = head.split(".")[0]
    if digits.isdigit():
        return "an" if digits.startswith("8") or digits in ("11", "18") or (
            len(digits) in (5, 6) and digits[:2] in ("11", "18")) else "a"
    return "an" if head[:1] in "aeio" else "a"


def _mm(value: float) -> str:
    return f"{value:g}"


def _size_phrase(finding: Finding, short_mm: Optional[float], rng: np.random.Generator) -> str:
    size = finding.size_mm
    options = [f"{_mm(size)} mm"]
    if size >= 10 and float(size).is_integer():
        options.append(f"{size / 10:g} cm")
    if short_mm is not None and short_mm < size:
        options.append(f"{_mm(size)} x {_mm(short_mm)} mm")
    return _pick(options, rng)


def _zone_list(zones: Sequence[str]) -> str:
    return " and ".join(zones) if len(zones) <= 2 else ", ".join(zones[:-1]) + " and " + zones[-1]


def _location_phrase(finding: Finding, rng: np.random.Generator) -> str:
    loc = finding.location
    if loc.image_region is not None:
        region = _pick(REGION_WORDS[loc.image_region], rng)
        if loc.image_region in ("left", "right"):
            return _pick([f"on the {region} of the image", f"in the {region} half of the image"],
                         rng)
        return _pick([f"in the {region} of the image", f"at the {region} of the image"], rng)
    zones = [z for z in ZONES if z in loc.zones]
    if loc.organ == "lung":
        if loc.side == "midline":
            return f"in the lung, in the midline, {_zone_list(zones)} third"
        plural = "zones" if len(zones) > 1 else "zone"
        return _pick([f"in the {_zone_list(zones)} {plural} of the {loc.side} lung",
                      f"in the {loc.side} lung, {_zone_list(zones)} {plural}"], rng)
    place = loc.organ or "abdomen"
    if loc.side == "midline":
        where = f"in the midline of the {place}"
    elif loc.organ is None:
        where = f"on the {loc.side} side of the abdomen"
    else:
        where = _pick([f"in the {place}, on the {loc.side}",
                       f"in the {loc.side} side of the {place}"], rng)
    if not zones:
        return where
    thirds = "thirds" if len(zones) > 1 else "third"
    return f"{where}, {_zone_list(zones)} {thirds}"


def _adjectives(finding: Finding, rng: np.random.Generator) -> Tuple[List[str], List[str]]:
    """(texture words, shape words), each in random order."""
    textures = [_pick(TEXTURE_WORDS[t], rng) for t in finding.texture]
    shapes = [_pick(SHAPE_WORDS[s], rng) for s in finding.shape]
    return ([textures[k] for k in rng.permutation(len(textures))],
            [shapes[k] for k in rng.permutation(len(shapes))])


def _noun_phrase(lead: List[str], finding: Finding,
                 rng: np.random.Generator) -> Tuple[str, Optional[str]]:
    """(words up to the noun, texture words put after it or ``None``). The reader takes a count
    word ("a", "one") only within 40 characters before its noun, so when the words before the
    noun grow longer than :data:`MAX_BEFORE_NOUN`, the textures follow the noun instead: "a 12 mm
    irregular mass, heterogeneous and hypoechoic, ..."."""
    textures, shapes = _adjectives(finding, rng)
    words = lead + textures + shapes
    order = rng.permutation(len(textures) + len(shapes)) if rng.random() < 0.5 else None
    if order is not None:
        mixed = textures + shapes
        words = lead + [mixed[k] for k in order]
    if len(" ".join(words)) <= MAX_BEFORE_NOUN or not textures:
        return " ".join(words + [finding.target]), None
    return " ".join(lead + shapes + [finding.target]), " and ".join(textures)


def _radiology(finding: Finding, short_mm: Optional[float], rng: np.random.Generator) -> str:
    loc = _location_phrase(finding, rng)
    size = _size_phrase(finding, short_mm, rng) if finding.size_mm is not None else None
    measuring = size is not None and rng.random() < 0.25
    phrase, trailing = _noun_phrase([] if measuring or size is None else [size], finding, rng)
    a = _article(phrase)
    measured = f", measuring {size}" if measuring else ""
    if trailing is not None:
        return f"{a.capitalize()} {phrase}, {trailing}, {loc}{measured}."
    if measuring:
        return f"{a.capitalize()} {phrase} {loc}{measured}."
    templates = [f"There is {a} {phrase} {loc}.", f"{a.capitalize()} {phrase} is seen {loc}.",
                 f"{a.capitalize()} {phrase} is noted {loc}.", f"{a.capitalize()} {phrase} {loc}.",
                 f"{loc[0].upper()}{loc[1:]}, {a} {phrase}."]
    return _pick(templates, rng)


def _attribute(finding: Finding, rng: np.random.Generator) -> str:
    phrase, trailing = _noun_phrase([finding.size_class] if finding.size_class else [], finding,
                                    rng)
    middle = f", {trailing}" if trailing is not None else ""
    return f"one {phrase}{middle}, located {_location_phrase(finding, rng)}"


def _without_size(finding: Finding) -> Finding:
    out = copy.deepcopy(finding)
    out.size_mm = None
    return out


def _qata_chest(findings: Sequence[Finding]) -> Tuple[str, List[Finding]]:
    targets = {f.target for f in findings}
    target = targets.pop() if len(targets) == 1 else "lesion"
    sides = {f.location.side for f in findings}
    places: List[str] = []
    for f in findings:
        zones = _zone_list([z for z in ZONES if z in f.location.zones])
        place = f"{zones} {f.location.side} lung"
        if place not in places:
            places.append(place)
    count = len(findings)
    noun = target if count == 1 else PLURAL[target]
    lateral = "Bilateral" if len(sides) > 1 else "Unilateral"
    number = NUMBERS[min(count, 10) - 1]
    text = f"{lateral} pulmonary {noun}, {number} {noun}, {_zone_list(places)}."
    zones = sorted({z for f in findings for z in f.location.zones}, key=ZONES.index)
    side = "bilateral" if len(sides) > 1 else next(iter(sides))
    merged = Finding(target=target, location=Location(side=side, zones=zones, organ="lung"),
                     count=min(count, 10))
    return text, [merged]


def render(findings: Sequence[Finding], *, style: str, domain: str, rng: np.random.Generator,
           short_axes: Optional[Sequence[Optional[float]]] = None) -> Tuple[str, List[Finding]]:
    """``(text, expected findings)`` for the lesion priors ``findings`` (count 1 each, in order)
    in ``style``; an empty list gives the domain's negative sentence. ``short_axes`` (mm, or
    ``None``) lets the radiology style write "12 x 8 mm"."""
    if style not in STYLES:
        raise ValueError(f"unknown sentence style {style!r}; known: {', '.join(STYLES)}")
    if not findings:
        text, targets = NEGATIVES.get(domain, DEFAULT_NEGATIVE)[
            int(rng.integers(len(NEGATIVES.get(domain, DEFAULT_NEGATIVE))))]
        expected = [Finding(target=t, location=Location(organ=NEGATIVE_ORGANS.get(t)), negated=True)
                    for t in targets]
        return text, expected
    short_axes = list(short_axes) if short_axes is not None else [None] * len(findings)
    if style == "qata" and all(f.location.organ == "lung" and f.location.side in ("left", "right")
                               and f.location.zones for f in findings):
        return _qata_chest(findings)
    if style == "qata":
        parts = []
        for f in findings:
            where = _location_phrase(f, rng)
            where = where[3:] if where.startswith("in ") or where.startswith("at ") else where
            parts.append(f"One {f.target}, {where}.")
        return " ".join(parts), [Finding(target=f.target, location=copy.deepcopy(f.location),
                                         count=1) for f in findings]
    if style == "attribute":
        expected = [_without_size(f) for f in findings]
        return "; ".join(_attribute(f, rng) for f in expected), expected
    sentences = [_radiology(f, s, rng) for f, s in zip(findings, short_axes)]
    return " ".join(sentences), [copy.deepcopy(f) for f in findings]

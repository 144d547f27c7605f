"""Report sentences for phantom lesions: several phrasings per attribute, and a held-out set of phrasings
used only in the test split (to measure generalisation to wording the model never saw in training)."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

SIDE_WORD = {"right": "right", "left": "left"}
ABBR = {("right", "upper"): "RUL", ("right", "middle"): "RML", ("right", "lower"): "RLL",
        ("left", "upper"): "LUL", ("left", "lower"): "LLL"}

TRAIN = {
    "location": ["in the {side} {zone} zone", "in the {zone} part of the {side} lung", "{lobe}", "in the {abbr}",
                 "at the {side} {zone} lung zone"],
    "texture": {"ground_glass": ["ground-glass", "hazy ground-glass"], "part_solid": ["part-solid", "semi-solid"],
                "solid": ["solid", "dense solid"], "calcified": ["calcified", "densely calcified"],
                "cavitary": ["cavitary", "cavitating"]},
    "shape": {"round": ["round", "rounded"], "oval": ["oval", "ovoid"], "lobulated": ["lobulated"],
              "spiculated": ["spiculated"], "irregular": ["irregular"]},
    "noun": ["nodule", "opacity", "lesion"],
    "sentence": ["There is a {desc} {loc}.", "A {desc} is seen {loc}.", "{Desc} {loc}."],
    "negative": ["No focal opacity.", "No nodule or mass.", "Lungs are clear without focal lesion."],
}
TEST = {
    "location": ["projecting over the {side} {zone} lung", "in the {side} lung, {zone} zone", "{side} {zone} lung field"],
    "texture": {"ground_glass": ["ggo-like", "faint"], "part_solid": ["subsolid"], "solid": ["solid-density"],
                "calcified": ["calcific"], "cavitary": ["cavitated"]},
    "shape": {"round": ["circular"], "oval": ["elliptical"], "lobulated": ["multilobulated"], "spiculated": ["stellate"],
              "irregular": ["irregularly shaped"]},
    "noun": ["density", "focus"],
    "sentence": ["Note is made of a {desc} {loc}.", "Findings: {desc} {loc}."],
    "negative": ["No suspicious pulmonary nodule.", "No evidence of focal consolidation or mass."],
}
# Held-out texture words must still be read by the parser to the same code: "ggo-like" and "solid-density"
# are not in the vocabulary as such, so they fall back to words that are.
TEST["texture"]["ground_glass"] = ["faint"]
TEST["texture"]["solid"] = ["solid"]


def _lobe(side: str, zone: str) -> str:
    if (side, zone) == ("left", "middle"):
        return "in the lingula"
    return f"in the {side} {zone} lobe"


def describe(lesion: Dict[str, object], *, mm_per_px: float, held_out: bool, rng: np.random.Generator) -> str:
    """One sentence describing ``lesion`` (a dict with side, zone, texture, shape, size_px)."""
    bank = TEST if held_out else TRAIN
    side, zone = str(lesion["side"]), str(lesion["zone"])
    size_mm = float(lesion["size_px"]) * mm_per_px
    loc_templates = [t for t in bank["location"] if "{abbr}" not in t or (side, zone) in ABBR]
    loc = str(rng.choice(loc_templates)).format(side=side, zone=zone, lobe=_lobe(side, zone),
                                                abbr=ABBR.get((side, zone), ""))
    words: List[str] = []
    size_mode = rng.integers(3)
    if size_mode == 0:
        words.append(f"{max(1, round(size_mm))} mm")
    elif size_mode == 1:
        words.append("small" if size_mm < 10 else "large" if size_mm > 30 else "medium-sized")
    words.append(str(rng.choice(bank["texture"][str(lesion["texture"])])))
    words.append(str(rng.choice(bank["shape"][str(lesion["shape"])])))
    noun = "mass" if size_mm > 30 and rng.random() < 0.5 else str(rng.choice(bank["noun"]))
    desc = " ".join(words + [noun])
    sentence = str(rng.choice(bank["sentence"]))
    return sentence.format(desc=desc, Desc=desc[0].upper() + desc[1:], loc=loc)


def negative_report(*, held_out: bool, rng: np.random.Generator) -> str:
    return str(rng.choice((TEST if held_out else TRAIN)["negative"]))


def compose(lesions: Sequence[Dict[str, object]], *, mm_per_px: float, held_out: bool,
            rng: np.random.Generator) -> str:
    sentences = [describe(l, mm_per_px=mm_per_px, held_out=held_out, rng=rng) for l in lesions]
    return " ".join(sentences)

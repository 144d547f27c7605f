"""Transformations of parsed reports that keep them consistent with transformed images."""
from __future__ import annotations

import copy
import re
from typing import Optional

from .schema import Report

_SIDE_SWAP = {"left": "right", "right": "left"}
_REGION_SWAP = {"left": "right", "right": "left", "top_left": "top_right", "top_right": "top_left",
                "bottom_left": "bottom_right", "bottom_right": "bottom_left"}
# Side words as reports write them, and their mirror (case kept). Only words inside a finding's
# location evidence are rewritten, so "L1 vertebra" or "T2-weighted" elsewhere are never touched.
_WORD_SWAP = {"right": "left", "left": "right", "r": "l", "l": "r", "rt": "lt", "lt": "rt",
              "dexter": "sinister", "sinister": "dexter", "dextra": "sinistra", "sinistra": "dextra",
              "rul": "lul", "lul": "rul", "rll": "lll", "lll": "rll", "rml": "lingula",
              "lingula": "rml", "ruz": "luz", "luz": "ruz", "rmz": "lmz", "lmz": "rmz", "rlz": "llz",
              "llz": "rlz"}
# A word, or the right middle lobe as a phrase: its mirror is the lingula (there is no left middle
# lobe), rewritten whole in the same pass (the lingula's own mirror is the RML)
_MIDDLE_LOBE = r"\b(?:(?:right|rt)\s+)?middle\s+lobe\b"
_WORD = re.compile(_MIDDLE_LOBE + r"|[A-Za-z]+", re.IGNORECASE)
# Organs that are not mirror-symmetric: a flipped image puts them on the wrong side of the body,
# which no report or location layout can describe (the liver on the patient's left).
UNSIDED_LATERAL_ORGANS = ("liver", "spleen", "heart", "pancreas", "stomach", "aorta")


def _mirror_words(text: str) -> str:
    def swap(match: "re.Match[str]") -> str:
        word = match.group(0)
        low = word.lower()
        if not word.isalpha():  # the middle-lobe phrase (a word has letters only)
            return "LINGULA" if word.isupper() else "Lingula" if word[0].isupper() else "lingula"
        other = _WORD_SWAP.get(low)
        if other is None:
            return word
        if other == "rml":
            return "RML"
        if low == "rml" or not word[0].isupper():
            return other
        return other.upper() if word.isupper() and len(word) > 1 or len(word) == 1 else (
            other.capitalize())

    return _WORD.sub(swap, text)


def _mirrored_text(report: Report) -> str:
    spans = sorted({tuple(s) for f in report.findings for s in f.spans.get("location", [])})
    text, out, last = report.text, [], 0
    for start, end in spans:
        if start < last:  # overlapping evidence: already rewritten
            continue
        out.append(text[last:start])
        out.append(_mirror_words(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _sides(report: Report):
    return [(f.location.side, f.location.image_region, f.negated) for f in report.findings]


def mirrored_report(report: Report) -> Optional[Report]:
    """The report as it must read for a horizontally flipped image, or ``None`` when the flip cannot
    be described consistently.

    The side words in each finding's location evidence are mirrored in the text ("right" <-> "left",
    "R" <-> "L", "RUL" <-> "LUL" ...) and the new text is parsed again, so the text, the parsed
    sides and the location map agree by construction. ``None`` when the mirrored text does not
    parse to the mirrored sides (a side the rewrite could not reach), or when a finding lies in an
    organ that is not mirror-symmetric (liver, spleen, heart ...): a flipped image would show
    impossible anatomy there. Also ``None`` for a report whose findings are not those its text reads
    as (e.g. :func:`slice_report`'s, whose zones are cleared): a mirror made from the text would
    undo that."""
    from .parser import MAX_REPORT_CHARS, parse_report

    if any(f.location.organ in UNSIDED_LATERAL_ORGANS for f in report.findings):
        return None
    if parse_report(report.text).to_dict() != report.to_dict():
        return None
    expected = [(_SIDE_SWAP.get(side, side), _REGION_SWAP.get(region, region), negated)
                for side, region, negated in _sides(report)]
    text = _mirrored_text(report)
    if len(text) > MAX_REPORT_CHARS:  # "left" -> "right" lengthens it: past the reader's limit, the
        return None  # report is not mirrored (the caller keeps its own reading), rather than refused
    flipped = parse_report(text)
    return flipped if _sides(flipped) == expected else None


def flip_report(report: Report) -> Report:
    """:func:`mirrored_report`, or a ``ValueError`` when the report cannot be mirrored."""
    out = mirrored_report(report)
    if out is None:
        raise ValueError(f"this report cannot be mirrored consistently: {report.text[:120]!r}")
    return out


# Cranio-caudal thirds of a volume as fractions of its superior-inferior extent (0 = most caudal slice,
# 1 = most cranial); they overlap a little, like the in-plane zones of the location rasteriser.
Z_ZONES = {"upper": (0.64, 1.0), "middle": (0.32, 0.68), "lower": (0.0, 0.36)}


def without_zones(report: Report) -> Report:
    """The report with the zones of its positive findings cleared (one axial slice whose level is not
    known: the in-plane location prior then uses the side and organ alone)."""
    out = copy.deepcopy(report)
    for f in out.findings:
        if not f.negated:
            f.location.zones = []
    return out


def without_sides(report: Report) -> Report:
    """The report with the patient's sides of its positive findings cleared (a lateral radiograph,
    in which left and right overlap: the location prior then uses the zone and organ alone). An
    image-relative region is kept: it names a place in the picture, not in the patient."""
    out = copy.deepcopy(report)
    for f in out.findings:
        if not f.negated:
            f.location.side = None
    return out


def slice_report(report: Report, fraction: float) -> Report:
    """The report as it applies to one axial slice at ``fraction`` of the volume's cranio-caudal extent
    (0 = caudal end, 1 = cranial end).

    On an axial slice, "upper / middle / lower" are positions along the body axis, not in the image plane:
    a positive finding is kept only on slices inside one of its zones, and its zones are then cleared so
    that the in-plane location prior uses the side and organ alone. Negated findings are kept as they are.
    A report whose positive findings all fall outside the slice therefore has none left for it."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    out = copy.deepcopy(report)
    kept = []
    for f in out.findings:
        zones = [z for z in f.location.zones if z in Z_ZONES]
        if f.negated or not zones or "all" in f.location.zones:
            if not f.negated:
                f.location.zones = []
            kept.append(f)
            continue
        if any(Z_ZONES[z][0] <= fraction <= Z_ZONES[z][1] for z in zones):
            f.location.zones = []
            kept.append(f)
    out.findings = kept
    return out


def report_on_slice(report: Report, level: Optional[float], *, shows_lesion: bool) -> Report:
    """What one axial slice of a volume is told when training or scoring on it, as ``predict`` tells
    it (:class:`~medseg_r.inference.predictor.Predictor`): :func:`slice_report` at ``level`` (the
    slice's fraction of the cranio-caudal extent), or :func:`without_zones` for a volume of one
    slice (``level`` None). A slice that shows a lesion while every positive finding is placed at
    another level by the words keeps them, zones cleared: its mask is the truth, and a report with
    no positive finding would teach the model to mark lesions it was not told of."""
    if level is None:
        return without_zones(report)
    out = slice_report(report, level)
    if shows_lesion and report.positive_findings and not out.positive_findings:
        return without_zones(report)
    return out

"""Location shorthand that a word list cannot hold: clock faces ("3:00", "10 o'clock position"),
liver segments in every usual form ("seg IV", "segment 6", "segments 2 and 3") and sides written as
a letter ("R apex", "L adrenal", "Rt breast").
"""
from __future__ import annotations

import re
from bisect import bisect_left
from typing import List, Sequence

from .mentions import Mention, TermIndex
from .sizes import DIGIT_COUNT_RE, find_sizes

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
_SEGMENT_NUMBER = r"(?:4[ab]|iv[ab]|[1-8]|viii|vii|vi|iv|v|iii|ii|i)"
_SEGMENT_JOIN = r"\s*(?:,|/|&|\+|-|\band\b|\bor\b|\bto\b)\s*"
# a number joined to the list is no segment when it is a size ("segment 2, 5 mm", "segment 6, 1.5 cm")
_NOT_A_SIZE = r"(?![.,]\d)(?!\s*(?:mm|cm|millimet|centimet|x\s*\d|\u00d7))"
LIVER_SEGMENT_RE = re.compile(
    rf"(?<![\w-])(?:(?:couinaud|hepatic|liver)\s+)?(?:segments?|segs?\.?)\s*"
    rf"({_SEGMENT_NUMBER}(?:{_SEGMENT_JOIN}{_SEGMENT_NUMBER}{_NOT_A_SIZE}(?![\w-]))*)(?![\w-])")
_NUMBER_RE = re.compile(_SEGMENT_NUMBER)
_DIGIT = re.compile(r"\d")
CLOCK_RE = re.compile(
    r"(?<![\w:.])(1[0-2]|0?[1-9])(?:"
    r"(?::(?:00|30))?\s*(?:o['’]?\s*clock|oclock)"  # 3 o'clock, 10:30 o'clock
    r"|:(?:00|30)(?!\s*(?:am|pm|a\.m|p\.m|hrs|hours|h\b))(?![\d:])"  # 3:00
    r"|h\b"  # 3h
    r"|\s+position)")  # 10 position
# "R"/"L" (capitals only) and "Rt"/"Lt" before a word: a side when that word is anatomical.
_SIDE_LETTER_RE = re.compile(r"(?<![\w/.-])(R|L|RT|LT|[Rr]t|[Ll]t)\.?(?=[ \t-]+\w)")
_SIDE_OF = {"r": "right", "l": "left"}
_ANATOMICAL = frozenset(("organs", "segments", "zones", "liver_segments", "clock", "anatomy"))
_BILATERAL_RE = re.compile(r"(?<![\w/])b/l(?![\w/])")
_SIDE_TARGETS = frozenset(("effusion", "pneumothorax"))
# a number that grades, not counts: "BI-RADS 4 mass", "TI-RADS 3 nodule", "Bosniak 2 cyst", "LR-5"
_GRADED = re.compile(r"(?:rads|category|bosniak|grade|lr|tr|deauville|acr|type|class|score|#)[\s:-]*$")


def pattern_mentions(text: str, low: str) -> List[Mention]:
    """Sizes, digit counts, clock faces and liver segments of the whole text."""
    found: List[Mention] = []
    if _DIGIT.search(low):
        found += [Mention(s, e, "size_mm", repr(mm)) for s, e, mm in find_sizes(low)]
        found += [Mention(m.start(1), m.end(1), "count_digit", m.group(1))
                  for m in DIGIT_COUNT_RE.finditer(low)
                  if not _GRADED.search(low, max(0, m.start(1) - 12), m.start(1))]
        found += clock_mentions(low)
    if "seg" in low:
        found += liver_segment_mentions(low)
    return found


def clock_mentions(low: str) -> List[Mention]:
    """Clock faces as ``Mention(start, end, "clock", hour)``."""
    return [Mention(m.start(), m.end(), "clock", str(int(m.group(1))))
            for m in CLOCK_RE.finditer(low)]


def segment_numbers(code: str) -> List[str]:
    """The segments of a ``liver_segments`` code, e.g. ``"2,3"`` -> ``["2", "3"]``."""
    return code.split(",")


def liver_segment_mentions(low: str) -> List[Mention]:
    """Liver segments as ``Mention(start, end, "liver_segments", "2,3")``; roman numerals are read
    ("seg IVa" -> "4a"). A range "segments 5-8" names every segment in it."""
    found = []
    for m in LIVER_SEGMENT_RE.finditer(low):
        numbers: List[str] = []
        previous_end = 0
        for part in _NUMBER_RE.finditer(m.group(1)):
            number = _arabic(part.group(0))
            between = m.group(1)[previous_end:part.start()]
            is_range = re.search(r"-|\bto\b", between) is not None
            if numbers and is_range and numbers[-1].isdigit() and number.isdigit():
                numbers += [str(k) for k in range(int(numbers[-1]) + 1, int(number))]
            if number not in numbers:
                numbers.append(number)
            previous_end = part.end()
        found.append(Mention(m.start(), m.end(), "liver_segments", ",".join(numbers)))
    return found


def _arabic(part: str) -> str:
    suffix = part[-1] if part[-1] in "ab" else ""  # only 4a/4b/IVa/IVb can carry one
    body = part[:-1] if suffix else part
    return str(_ROMAN.get(body, body)) + suffix


def shorthand_side_mentions(text: str, low: str, *, terms: Sequence[Mention],
                            index: TermIndex) -> List[Mention]:
    """Sides written as "R"/"L" (capitals), "Rt"/"Lt" or "b/l" directly before an anatomical
    mention in ``terms`` (sorted by start; ``anatomy`` mentions included): "R apex", "L adrenal",
    "Rt breast", "R upper third", "b/l lower zones". When the side and the words after it make a
    region of the vocabulary ("R base" = "right base", "L lobe of liver"), that region is returned
    instead. A letter before anything else ("R/O", "L1", "T2-weighted") is not a side."""
    found: List[Mention] = []
    letters = list(_SIDE_LETTER_RE.finditer(text))
    starts = [t.start for t in terms] if letters else []
    for m in letters:
        side = _SIDE_OF[m.group(1)[0].lower()]
        after = m.end()
        while after < len(text) and text[after] in " \t-":
            after += 1
        region = index.match_at(low, after, prefix=side)
        if region is not None and any(hit[1] == "segments" for hit in region[1]):
            code = next(hit[2] for hit in region[1] if hit[1] == "segments")
            found.append(Mention(m.start(), region[0], "segments", code))
            continue
        i = bisect_left(starts, after)
        while i < len(terms) and terms[i].start == after:
            if _is_anatomical(terms[i]):
                found.append(Mention(m.start(), m.start() + len(m.group(1)), "sides", side))
                break
            i += 1
    if "b/l" in low:
        found += [Mention(m.start(), m.end(), "sides", "bilateral")
                  for m in _BILATERAL_RE.finditer(low)]
    return found


def _is_anatomical(term: Mention) -> bool:
    if term.group in ("targets", "extra_targets"):
        return term.code in _SIDE_TARGETS  # "R effusion", "L PTX"
    return term.group in _ANATOMICAL

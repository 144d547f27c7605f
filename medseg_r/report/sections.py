"""Places a report gives once for the sentences after them: an organ header ("Right kidney: No
hydronephrosis. A 2 cm cyst in the upper pole.", "Left breast: ...") or a title or subheading
("LEFT BREAST ULTRASOUND. Findings: At 2 o'clock, a 1 cm hypoechoic mass."). A later finding with
no side of its own, and no organ or that organ, takes them (:mod:`.parser` applies them), up to
the next header of any kind, title or impression.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

from .assemble import segment_info
from .layout import FINDING_GROUPS
from .mentions import Mention
from .schema import Finding
from .vocab import Vocabulary

Place = Tuple[str, str]  # (side, organ)
_WORD = re.compile(r"[a-z]+")
# words of a title besides the place: "LEFT BREAST ULTRASOUND", "MAMMOGRAM, DIAGNOSTIC, RIGHT"
_TITLE_WORDS = frozenset(("ultrasound", "us", "sonography", "sonogram", "mammogram", "mammography",
                          "mri", "mr", "ct", "cta", "pet", "diagnostic", "screening", "exam",
                          "examination", "study", "view", "views", "with", "without", "and",
                          "contrast", "limited", "targeted", "imaging", "x", "ray", "radiograph",
                          "bilateral"))
_BREAST_STUDY = re.compile(r"\bmammogra(?:m|ms|phy)\b")
# subheadings of a measurement inside an organ's section ("Length: 10.8 cm."): no other section
_MEASURE_HEADERS = frozenset(("length", "size", "volume", "dimension", "dimensions", "measurement",
                              "measurements", "echotexture", "echogenicity", "cortex", "parenchyma",
                              "margins", "composition", "width", "span"))
_MAX_TITLE_CHARS = 80  # "BILATERAL DIAGNOSTIC MAMMOGRAM WITH TARGETED ULTRASOUND OF THE LEFT BREAST"
_MAX_HEADER_WORDS = 4  # "Right kidney:", "Left breast upper outer quadrant:" is not a header
# a header after which the sentences restate the whole report with places of their own
_SUMMARY = re.compile(r"\b(?:impressions?|conclusions?|opinion)\s*:", re.IGNORECASE)


def _place_of(vocab: Vocabulary, mentions: Sequence[Mention], low: str = "") -> Optional[Place]:
    sides = {m.code for m in mentions if m.group == "sides"}
    sides |= {segment_info(vocab, m.code).side for m in mentions if m.group == "segments"} - {None}
    organs = {m.code for m in mentions if m.group == "organs"}
    organs |= {segment_info(vocab, m.code).organ for m in mentions if m.group == "segments"} - {None}
    if not organs and _BREAST_STUDY.search(low):
        organs = {"breast"}  # "MAMMOGRAM, DIAGNOSTIC, RIGHT"
    if len(sides) == 1 and len(organs) == 1 and sides <= {"left", "right"}:
        return next(iter(sides)), next(iter(organs))
    return None


# a header opening a sentence: a few words and a colon, not a time ("Right breast 10:00 cyst")
_HEADER = re.compile(r"\s*[a-z][a-z /&-]{0,40}?(?<=[a-z]):(?!\d)")


def header_place(vocab: Vocabulary, low: str, start: int, end: int,
                 mentions: Sequence[Mention]) -> Optional[Place]:
    """The place an organ header opening the sentence ``[start, end)`` names ("Right kidney:"),
    ``("", "")`` for another header ("Spleen:", "Bones:", "Summary:": the section ends), ``None``
    for a sentence that opens with no header."""
    header = _HEADER.match(low, start, end)
    words = _WORD.findall(low, start, header.end()) if header is not None else []
    if header is None or len(words) > _MAX_HEADER_WORDS:
        return None
    before = [m for m in mentions if m.end <= header.end()]
    if any(m.group in FINDING_GROUPS for m in before):
        return None
    if len(words) == 1 and words[0] in _MEASURE_HEADERS:
        return None  # "Length: 10.8 cm." inside "Right kidney:"
    # "Spleen:", "Bladder:", "Other:", "Summary:": another section, with no side
    return _place_of(vocab, before) or ("", "")


def title_place(vocab: Vocabulary, low: str, start: int, end: int,
                mentions: Sequence[Mention]) -> Optional[Place]:
    """The place a title sentence names ("LEFT BREAST ULTRASOUND."): no finding, and no word but
    the place's and those of a study's name."""
    if end - start > _MAX_TITLE_CHARS or any(m.group in FINDING_GROUPS for m in mentions):
        return None
    placed = set()
    for m in mentions:
        placed.update(range(m.start, m.end))
    words = list(_WORD.finditer(low, start, end))
    if not words:
        return None
    for w in words:
        if w.start() not in placed and w.group() not in _TITLE_WORDS:
            return None
    # "BILATERAL MAMMOGRAM.": a study title of no one side ends the one before it
    return _place_of(vocab, mentions, low[start:end]) or (
        ("", "") if any(w.group() in _TITLE_WORDS for w in words) else None)


def summary_between(text: str, start: int, end: int) -> bool:
    """Whether an Impression (Conclusion, Opinion) header lies in ``text[start:end]``."""
    return _SUMMARY.search(text, start, end) is not None


def after_sentence(place: Optional[Place], read: Sequence[Finding]) -> Optional[Place]:
    """The section's place after a sentence's findings: one of its organ on another side of its
    own moves it there ("Right kidney: ... 1 cm lesion in the left kidney. Small cyst in the lower
    pole.": the cyst is the left kidney's)."""
    if not place or not place[0]:
        return place
    for f in read:  # a present one: "No mass in the left breast." leaves the right's section
        if not f.negated and f.location.organ == place[1] and f.location.side in ("left", "right") \
                and f.location.side != place[0]:
            place = (f.location.side, place[1])
    return place


def take_place(finding: Finding, place: Optional[Place]) -> None:
    """Give ``finding`` the section's side and organ when it has no side of its own and no organ or
    that one."""
    if not place or not place[0] or finding.location.side is not None or finding.location.image_region:
        return
    side, organ = place
    if finding.location.organ not in (None, organ):
        return
    finding.location.side = side
    finding.location.organ = organ

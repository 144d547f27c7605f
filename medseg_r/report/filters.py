"""Which mentions of a sentence count, before its findings are laid out (:mod:`.parser` applies
these): whether the image owns the sentence's directions, a "none" that answers a checklist item,
and the places, sizes and words that name something other than a finding ("s/p left lobectomy",
"both" of two findings, vertebral collapse, "the liver measures 18 cm").
"""
from __future__ import annotations

import re
from bisect import bisect_right
from typing import List, Sequence

from .assemble import segment_info
from .layout import FINDING_GROUPS, LOCATION_GROUPS, PLACE_GROUPS, TARGET_GROUPS
from .mentions import Mention
from .vocab import Vocabulary

_SPACES = re.compile(r"[\s-]*")


# "upper left of the image", "at the right in the breast ultrasound image", "the image's left half":
# the directions are written as the image's
_ANCHOR_OWNS = re.compile(
    r"(?:\bof|\b(?:left|right|top|bottom|cent(?:er|re)|central|middle|upper|lower|corner|side|half|part)"
    r"\s+in)\s+(?:(?:the|this|that|an?)\s+)?(?:[\w-]+\s+){0,2}$")
_PATIENT_FRAME = frozenset(("organs", "segments", "liver_segments", "clock"))
# an image of the study named in passing: a view ("the PA view"), a projection or plane before it
# ("lateral image", "axial images"), a numbered or key image ("image 45", "key image"), today's or an
# earlier one: a radiologist's directions beside it are the patient's
_STUDY_IMAGE_BEFORE = re.compile(
    r"\b(?:pa|ap|lateral|lat|frontal|oblique|decubitus|lordotic|portable|key|today'?s|prior|"
    r"previous|current|same|axial|coronal|sagittal|screening)\s+(?:chest\s+)?$")
_NUMBERED = re.compile(r"\s*(?:#|no\.?\s*)?\d")


def _study_image(low: str, anchor: Mention) -> bool:
    return (low[anchor.start:anchor.end] in ("view", "views")
            or _STUDY_IMAGE_BEFORE.search(low, max(0, anchor.start - 30), anchor.start) is not None
            or _NUMBERED.match(low, anchor.end) is not None)


def image_relative(low: str, anchors: Sequence[Mention], terms: Sequence[Mention]) -> bool:
    """Whether a sentence naming the image (``anchors``) gives its directions in the image's frame:
    an anchor that owns them ("in the upper left of the image", "at the right in the ultrasound
    image", "the image's right half"), or no anatomy to place them on ("lesion on the left, this
    picture"), unless the image is one of the study's named in passing ("on the PA view", "image
    45", "see key image"). "Nodule in the left lung on image 45", "opacity in the left upper zone on
    the PA view" or "left breast mass on the screening image" keep the patient's side: on a
    radiograph shown as usual, the patient's left is the image's right."""
    for a in anchors:
        if _ANCHOR_OWNS.search(low, max(0, a.start - 60), a.start) or low.startswith(("'s", "\u2019s"), a.end):
            return True
    if all(_study_image(low, a) for a in anchors):
        return False
    return not any(m.group in _PATIENT_FRAME or (m.group == "zones" and "zone" in low[m.start:m.end])
                   for m in terms)  # a lung zone ("left upper zone") is the patient's


_CHECKLIST = re.compile(r"[:\-\u2013\u2014]\s*$")
# "not seen on the lateral view": the finding is seen on another view of the study, not absent
# (one view of several: not "on the PA and lateral views", "on PA/lateral views", nor the single AP
# film of a portable study)
_VIEW_LIMITED = re.compile(
    r"(?:(?:is|are|was|were)\s+)?(?:not|non)[\s-]+(?:(?:well|clearly|definitely|confidently|readily)\s+)?(?:seen|visible|visualized|"
    r"visualised|evident|appreciated|identified|demonstrated|apparent|perceptible)\s+(?:on|in)\s+"
    r"(?:the\s+)?(?:pa|lateral|lat|frontal|oblique|decubitus|lordotic)\b"
    r"(?!\s*(?:and|or|/|,)\s*(?:the\s+)?(?:pa|ap|lateral|lat|frontal|oblique|decubitus|lordotic)\b)"
    r"(?!\s+(?:views|projections|radiographs|films|images)\b)")


def view_limited(low: str, context: Sequence[Mention]) -> List[Mention]:
    """The context triggers, less the negation of a finding on one view only ("nodule in the left
    upper lobe, not seen on the lateral view" is seen on the frontal one)."""
    return [m for m in context if not _VIEW_LIMITED.match(low, m.start)]



def checklist_none(low: str, context: Sequence[Mention]) -> List[Mention]:
    """The context triggers, less a "none" that answers no checklist item: "Pleural effusion: none."
    negates the effusion, "right effusion, none on the left" does not."""
    return [m for m in context if not (low.startswith("none", m.start)
                                       and not _CHECKLIST.search(low, max(0, m.start - 4), m.start))]


def sides_of_organs(low: str, terms: List[Mention]) -> List[Mention]:
    """In a sentence read in the image's frame, "left" or "right" right before an organ or a named
    region is still the patient's side: "nodule in the lower right corner of the image, in the left
    lung" keeps its left lung."""
    out = []
    for i, m in enumerate(terms):
        nxt = terms[i + 1] if i + 1 < len(terms) else None
        if (m.group == "image_regions" and m.code in ("left", "right") and nxt is not None
                and nxt.group in ("organs", "segments") and _SPACES.fullmatch(low, m.end, nxt.start)):
            m = Mention(m.start, m.end, "sides", m.code)
        out.append(m)
    return out


# "Collapse" names a finding where a lobe or a lung collapses ("right middle lobe collapse"), not
# "collapse of the L1 vertebral body" or "tracheal collapse", nor "collapse of the left lung" beside
# the pneumothorax that collapsed it (the pneumothorax is the finding).
_COLLAPSE = re.compile(r"(?:(?:atelectatic|lobar)[\s-]+)?collapsed?")


def without_other_collapse(vocab: Vocabulary, low: str, terms: List[Mention]) -> List[Mention]:
    collapse = [m for m in terms if m.group in TARGET_GROUPS and _COLLAPSE.fullmatch(low, m.start, m.end)]
    if not collapse:
        return terms
    lung = any((m.group == "segments" and segment_info(vocab, m.code).organ == "lung")
               or (m.group == "organs" and m.code == "lung") for m in terms) \
        or any(low.startswith("lobar", m.start) for m in collapse)
    if lung and not any(m.code == "pneumothorax" for m in terms):
        return terms
    return [m for m in terms if m not in collapse]


# Words that a side or region before them places, not a finding: operations, devices, stones,
# nodes, vessels and ventricles ("s/p left lower lobectomy", "right chest tube", "left renal stone",
# "right hilar lymphadenopathy", "left renal vein", "left lateral ventricle")
_OTHER_THING = re.compile(
    r"(?:(?!(?:with|and|or|of|in|on|at|to|from|by|near|for|is|are|was|were|has|have|the|an?)\b)"
    r"[\w-]+\s+){0,2}?(?:\w*ectom(?:y|ies)|resections?|tubes?|catheters?|lines?|picc|ports?|"
    r"pacemakers?|drains?|stents?|clips?|stones?|calcul(?:us|i)|(?:lymph)?adenopathy|nodes?|"
    r"ventricles?|veins?|arter(?:y|ies))\b")


# "pneumothorax along the right chest tube", "effusion around the left chest tube": a finding placed
# by the thing has its side
_BY_THE_THING = re.compile(r"\b(?:near|along|around|at|adjacent\s+to|about|surrounding|beside|next\s+to|"
                           r"tip\s+of|end\s+of|site\s+of)\s+(?:the\s+|a\s+|an\s+)?$")


def without_places_of_other_things(low: str, terms: List[Mention]) -> List[Mention]:
    """``terms`` less the places that name where something other than a finding is ("s/p left
    lower lobectomy with a new nodule in the right upper lobe": the nodule is on the right only),
    when the sentence keeps a place for its findings ("pneumothorax near the right chest tube"
    keeps its side)."""
    places = [m for m in terms if m.group in LOCATION_GROUPS]
    if len(places) < 2:
        return terms
    other, i = set(), 0
    while i < len(places):  # a run of places ("left lower", "right renal") and the word after it
        j = i
        while j + 1 < len(places) and _SPACES.fullmatch(low, places[j].end, places[j + 1].start):
            j += 1
        after = _OTHER_THING.match(low, _SPACES.match(low, places[j].end).end())
        run = places[i:j + 1]
        if after is not None and any(m.group in PLACE_GROUPS for m in run) and not any(
                places[j].end <= m.start < after.end() for m in terms if m.group in FINDING_GROUPS) \
                and not _BY_THE_THING.search(low, max(0, run[0].start - 30), run[0].start):
            other.update(m for m in run if m.group in PLACE_GROUPS)  # the organ stays
        i = j + 1
    if not other or len(other) == sum(m.group in PLACE_GROUPS for m in places):
        return terms
    return [m for m in terms if m not in other]


_WORDS_BETWEEN = re.compile(r"[\s-]+(?:[\w]+[\s-]+){0,2}")  # "both posterior costophrenic angles"


def without_both_of_findings(low: str, terms: List[Mention]) -> List[Mention]:
    """``terms`` less a "both" that places nothing: in "right breast mass and left breast mass,
    both irregular" it names the two findings, not a bilateral one ("both upper lobes", "both
    posterior costophrenic angles", "both lungs" keep it)."""
    out = []
    for i, m in enumerate(terms):
        if m.group == "sides" and low[m.start:m.end] == "both":
            nxt = terms[i + 1] if i + 1 < len(terms) else None
            if nxt is None or nxt.group not in LOCATION_GROUPS or \
                    not _WORDS_BETWEEN.fullmatch(low, m.end, nxt.start):
                continue
        out.append(m)
    return out


# "lesions up to 1.5 cm": the lesions' own size (not "cyst and 1 cm hemangioma")
_OWN_SIZE = re.compile(r"\s+(?:(?!(?:and|or|with|plus|nor)\b)[a-z]+\s+){0,3}")
_AFTER_HEADER = re.compile(r"[a-z]\s*:\s*$")
_DIMENSION = re.compile(r"\b(?:length|size|volume|dimensions?|measurements?|span|width|diameter)\s*:")
_TUBE = re.compile(r"\b(?:duct|ducts|aorta|appendix|endometrium|endometrial|bowel|loops?|caliber|"
                   r"calibre|gland|ventricles?|vessel)\b")
_REFERS = re.compile(r"\b(?:this|these|it|they|which|largest|biggest|smallest|each|one)\b")
# "the liver measures 18 cm", "the spleen is enlarged, measuring 16 cm", "the duct is dilated to 6 mm"
_MEASURED = re.compile(r"\b(?:measures?|measuring|measured|dilated\s+to)\s+(?:up\s+to\s+|about\s+|"
                       r"approximately\s+|approx\.?\s+)?$")


def _next(positions: List[int], after: int) -> float:
    """The first of the sorted ``positions`` beyond ``after`` (infinity if none)."""
    i = bisect_right(positions, after)
    return positions[i] if i < len(positions) else float("inf")


def _organs_measure(low: str, start: int, m: Mention, first: dict, starts: dict,
                    target_ends: dict) -> bool:
    """Whether the size ``m`` is an organ's or a duct's own measurement (see
    :func:`without_sizes_of_organs`; ``first``: where the sentence's first target and organ
    mentions start, ``starts``: the sorted starts of its targets and sizes, ``target_ends``: each
    target's end by its start). Looks back 80 characters at most, and bisects: linear in the text."""
    near = max(start, m.start - 80)
    if first["target"] < m.start or _REFERS.search(low, near, m.start):
        return False  # "nodule measuring 6 mm", "This measures 8 mm": a finding's size
    # the next finding comes before the next size: "Right breast: 1 cm cyst", "Right kidney: 2 cm
    # cyst, 5 mm stone", "in the left kidney, measuring 2.3 cm, is a cyst"
    target, size = _next(starts["target"], m.start), _next(starts["size"], m.start)
    finding_after = target < size and not (  # ... that has no size of its own right after it
        size < float("inf") and _OWN_SIZE.fullmatch(low, target_ends[target], int(size)))
    named = first["organ"] < m.start or bool(_TUBE.search(low, near, m.start))
    if _AFTER_HEADER.search(low, max(start, m.start - 40), m.start):
        return (named or bool(_DIMENSION.search(low, near, m.start))) and not finding_after
    verb = _MEASURED.search(low, max(start, m.start - 40), m.start)
    if not verb or not named:
        return False
    # "the liver measures 18 cm with a lesion": the liver's, as the organ is the verb's subject
    return not (verb.group().startswith("measuring") and finding_after)


def without_sizes_of_organs(low: str, start: int, terms: List[Mention]) -> List[Mention]:
    """``terms`` less a size that a sentence gives to an organ or duct before any finding is named,
    when no finding follows or the one that follows has a size of its own ("The liver measures 18
    cm and contains a 2 cm lesion": 20 mm is the lesion's; "The common bile duct measures 4 mm."
    names no lesion; "in the left kidney, measuring 2.3 cm, is a cyst" keeps the cyst's size)."""
    if not any(m.group == "size_mm" for m in terms):
        return terms
    kinds = {"target": TARGET_GROUPS, "organ": frozenset(("organs", "anatomy")), "size": {"size_mm"}}
    first = {k: min((m.start for m in terms if m.group in g), default=len(low)) for k, g in kinds.items()}
    starts = {k: sorted(m.start for m in terms if m.group in g) for k, g in kinds.items()}
    target_ends = {m.start: m.end for m in terms if m.group in TARGET_GROUPS}
    return [m for m in terms if not (
        m.group == "size_mm" and _organs_measure(low, start, m, first, starts, target_ends))]


def sentence_terms(vocab: Vocabulary, low: str, terms: List[Mention], *, start: int = 0) -> List[Mention]:
    """A sentence's term mentions less those that name no finding's word, size or place (collapse of
    something else, an organ's own measurement, the places of operations and devices, a "both" of
    two findings); ``start``: where the sentence starts."""
    terms = without_sizes_of_organs(low, start, terms)
    terms = without_other_collapse(vocab, low, terms)
    terms = without_places_of_other_things(low, terms)
    return without_both_of_findings(low, terms)

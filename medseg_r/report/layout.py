"""How the targets of one sentence become findings: repeats, alternatives, lists and diagnoses.

* Each target word anchors a finding. Repeated mentions of one target ("infection, two infected
  areas") and "nodule/mass" are one finding, unless a change of negation or uncertainty, or a
  contrast ("but", "however") followed by a place, separates them ("no nodule on the left, but a
  nodule on the right" is two; "a nodule in the RUL, but the nodule has not grown" is one).
  "Another" with a place after it names the previous target again ("a nodule in the RUL and
  another in the LLL": two nodules; :data:`ANAPHOR`; at a sentence's start, the positive target of
  the sentence before; not "one in the RUL and another in the LLL": ``parser._with_anaphors``).
* Alternatives ("abscess versus necrotic tumour", "atelectasis or consolidation" outside a negation)
  are one finding that keeps the attributes of every candidate; it is uncertain when the candidates
  are different targets (for "atelectasis or scarring" an opacity is there either way).
* A list ("consolidation, effusion and a nodule") gives one finding per target, each with the list's
  negation. A location written after the last item ("consolidation and effusion at the right base")
  belongs to every item when no item has a location of its own; one written before an item belongs
  to that item only.
* A diagnosis ("..., likely atelectasis", "representing scarring", "compatible with a lipoma",
  "probably a vessel seen end-on") is an attribute of the finding before it, not a new finding,
  unless it names a place of its own while that finding has one too ("retrocardiac opacity, cannot
  exclude left lower lobe pneumonia" stays two findings).
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .context import ScopeIndex
from .mentions import Mention

TARGET_GROUPS = frozenset(("targets", "extra_targets"))
FINDING_GROUPS = TARGET_GROUPS | {"texture", "shape", "size_mm"}  # what makes a sentence hold a finding
ATTRIBUTE_GROUPS = frozenset(("texture", "shape", "size_words", "size_mm", "count_words",
                              "count_digit"))
LOCATION_GROUPS = frozenset(("sides", "zones", "organs", "segments", "liver_segments", "clock",
                             "image_regions"))
PLACE_GROUPS = LOCATION_GROUPS - {"organs"}  # an organ alone ("pulmonary edema") is not a place
_LINKS = ("context:linkers", "context:diagnosis")
_NEGATING = ("context:negation_pre", "context:negation_near", "context:negation_post",
             "context:negation_both", "context:pseudo")
_BREAKS = ("context:terminators", "context:negation_pre", "context:negation_near",
           "context:negation_both", "context:uncertain_pre")
_TRIGGER_KINDS = ("context:negation_pre", "context:negation_near", "context:negation_post",
                  "context:negation_both", "context:uncertain_pre", "context:uncertain_post")
_STRONG_SPLIT = re.compile(r"\band\b|;|\bwhile\b|\bwhereas\b|\bas well as\b|\bplus\b")
# "right effusion has increased, left effusion has resolved", "resolved left effusion, persistent
# right effusion": a status of its own between two mentions of one target makes them two findings
_STATUS_SPLIT = re.compile(r",.*\b(?:persistent|persisting|stable|unchanged|new|increased|increasing|"
                           r"decreased|decreasing|enlarging|enlarged|growing|improving|worsening|"
                           r"resolving|residual)\b|\b(?:has|have|had|is|are|was|were|remains?|"
                           r"persists?|unchanged|stable|increased|decreased|grown|enlarged|improved|"
                           r"worsened|larger|smaller)\b.*,")
# "a nodule in the right lung but also a nodule in the left": two findings, not one target repeated
_CONTRAST = re.compile(r"\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bnevertheless\b")
_OR_SPLIT = re.compile(r"\bn?or\b")
_COMMA = re.compile(r",")
_SLASH = re.compile(r"\s*/\s*")
_BLOCKS_DIAGNOSIS = re.compile(r"\band\b|;|\bbut\b|\bhowever\b|\bwhile\b|\bwhereas\b|\balthough\b|"
                               r"\bthough\b|\bwith\b|\bplus\b|\bas well as\b")
_ALTERNATIVE_GAP = re.compile(r"[\s,]*(?P<joint>versus|vs\.?|or)\s+(?:(?:an?|the)\s+)?")
_JOINT_WORD = re.compile(r"\b(?:versus|vs|or)\b")
LIST_WORD = re.compile(r"\b(?:and|or|nor)\b")  # the words that join the items of a list
_LIST_JOINT = re.compile(r",|" + LIST_WORD.pattern)
_LIST_GAP = re.compile(r"[\s,]*(?:(?:and|or|nor|and\s*/\s*or)\s+)?(?:(?:an?|the)\s+)?")
# "a nodule in the RUL and another in the LLL": a word that names the previous target again, where a
# preposition follows it rather than a noun ("another study", "a second opinion"); the parser also
# asks for a place right after it ("another in 3 months" names nothing)
ANAPHOR = re.compile(r"\b(?:another|a\s+second|a\s+third|a\s+further)(?:\s+one)?(?=\s*(?:[,.;:)]|$|"
                     r"(?:(?:is|was|are)\s+(?:also\s+)?(?:seen|noted|present|identified)\s+)?"
                     r"(?:in|at|on|within|along|near|adjacent|involving)\b))")
_NOT_A_MODIFIER = re.compile(r"\b(?:in|of|at|on|with|within|and|or|but|to|from|by|for|the|is|are|"
                             r"was|were|has|have|seen|noted|present|consistent|compatible|likely|"
                             r"possibly|probably|without|no|not|nor|versus|vs)\b|[,;:()]")


class Sentence:
    """One sentence of a report with its mentions (sorted by start) and ConText scopes."""

    def __init__(self, text: str, low: str, *, start: int, end: int, mentions: Sequence[Mention],
                 context: Sequence[Mention], scopes: ScopeIndex) -> None:
        self.text, self.low, self.start, self.end = text, low, start, end
        self.mentions = list(mentions)
        self._starts = [m.start for m in self.mentions]
        self.context = list(context)  # sorted by start
        self._context_starts = [m.start for m in self.context]
        self.scopes = scopes
        self.diagnoses: List[Tuple[int, int]] = []  # (linker start, end) of each diagnosis
        self._matches: Dict[re.Pattern, List[int]] = {}

    def next_match(self, pattern: re.Pattern, pos: int) -> Optional[int]:
        """Where the first match of ``pattern`` at or after ``pos`` starts (``None``: none); the
        matches are found once per sentence and pattern, so asking for every item stays linear."""
        starts = self._matches.get(pattern)
        if starts is None:
            starts = self._matches[pattern] = [m.start() for m in
                                               pattern.finditer(self.low, self.start, self.end)]
        i = bisect_left(starts, pos)
        return starts[i] if i < len(starts) else None

    def within(self, a: int, b: int, groups: Optional[Iterable[str]] = None) -> List[Mention]:
        """Mentions that start in ``[a, b)`` (of ``groups`` when given)."""
        found = self.mentions[bisect_left(self._starts, a):bisect_left(self._starts, b)]
        if groups is None:
            return found
        wanted = set(groups)
        return [m for m in found if m.group in wanted]

    def links(self, a: int, b: int, kinds: Iterable[str] = _LINKS) -> List[Mention]:
        """Context mentions of ``kinds`` that start in ``[a, b)``."""
        wanted = set(kinds)
        starts = self._context_starts
        span = self.context[bisect_left(starts, a):bisect_left(starts, b)]
        return [m for m in span if m.group in wanted]

    def blank(self, a: int, b: int, groups: Iterable[str]) -> str:
        """``low[a:b]`` with the mentions of ``groups`` inside it replaced by spaces."""
        pieces, position = [], a
        for m in self.within(a, b, groups):
            end = min(m.end, b)
            pieces += [self.low[position:m.start], " " * (end - m.start)]
            position = end
        pieces.append(self.low[position:b])
        return "".join(pieces)


@dataclass
class Item:
    """The character range of one future finding and how it was read."""

    targets: List[Mention]
    start: int
    end: int
    alternatives: bool = False  # "A versus B", "A or B": one finding, both candidates' attributes
    uncertain: bool = False  # alternatives with different targets: the target itself is open
    tail: int = -1  # end of its last target, including absorbed diagnosis targets
    diagnosis_start: Optional[int] = None  # the diagnosis text runs from here to ``end``
    linker_start: Optional[int] = None  # where the words that introduce the diagnosis start
    share_from: Optional["Item"] = None  # the list item whose trailing location this one shares

    @property
    def own_end(self) -> int:
        """End of the finding's own words (its diagnosis, if any, follows)."""
        return self.end if self.diagnosis_start is None else self.diagnosis_start


def layout(sentence: Sentence) -> List[Item]:
    """The items (future findings) of ``sentence`` in order; one empty item without a target."""
    targets = resolve_targets(sentence.low, sentence.mentions)
    if not targets:
        return [Item([], sentence.start, sentence.end)]
    if len(targets) == 1:
        items = [Item(targets, sentence.start, sentence.end, tail=targets[0].end)]
    else:
        items = _absorb_diagnoses(sentence, _cut(sentence, *_group_targets(sentence, targets)))
    if sentence.context:
        for item in items:
            if item.diagnosis_start is None:
                _find_diagnosis(sentence, item)
    if len(items) > 1:
        _share_list_locations(sentence, items)
    sentence.diagnoses = [(i.linker_start, i.end) for i in items if i.linker_start is not None]
    return items


def resolve_targets(low: str, mentions: Sequence[Mention]) -> List[Mention]:
    """Target mentions. A word that is both texture and target ("consolidation") is a texture when
    it modifies the next target ("consolidation opacity"), and a target otherwise."""
    targets = [m for m in mentions if m.group in TARGET_GROUPS]
    dual = {(m.start, m.end) for m in mentions if m.group == "texture"}
    out = []
    for i, t in enumerate(targets):
        nxt = targets[i + 1] if i + 1 < len(targets) else None
        if (t.start, t.end) in dual and nxt is not None:
            gap = low[t.end:nxt.start]
            if len(gap.split()) <= 2 and not _NOT_A_MODIFIER.search(gap):
                continue
        out.append(t)
    return out


def _group_targets(sentence: Sentence, targets: List[Mention]):
    low = sentence.low
    alternative = [_is_alternative(sentence, a, b) for a, b in zip(targets, targets[1:])] + [False]
    groups: List[List[Mention]] = [[targets[0]]]
    alternatives, uncertain = [False], [False]
    for i, t in enumerate(targets[1:], 1):
        prev = groups[-1][-1]
        gap = low[prev.end:t.start]
        if alternative[i - 1]:
            groups[-1].append(t)
            alternatives[-1] = True
            # "abscess versus tumour" leaves the target open; "atelectasis or scarring" does not
            uncertain[-1] = uncertain[-1] or t.code != prev.code
        elif t.code == prev.code and not alternative[i] and not _STRONG_SPLIT.search(gap) and \
                not _status_of_its_own(sentence, prev, t) and not _another_item(sentence, prev, t) and \
                not _contrasted_place(sentence, prev, t, targets[i + 1:]) and \
                not ANAPHOR.fullmatch(low, t.start, t.end) and \
                not sentence.links(prev.end, t.start, _LINKS + _TRIGGER_KINDS) and \
                _same_status(sentence, prev, t):
            groups[-1].append(t)  # "infection, two infected areas": one target mentioned twice
        elif _SLASH.fullmatch(gap):
            groups[-1].append(t)  # "nodule/mass": one target described twice
        else:
            groups.append([t])
            alternatives.append(False)
            uncertain.append(False)
    return groups, alternatives, uncertain


_ANOTHER_ONE = re.compile(r"\b(?:also|new|newly|second|another|additional|further)\b")


# ", a 5 mm lesion in ...", ", an 8 mm one ...": a comma and an article or a number open another item
_NEW_ITEM = re.compile(r",\s*(?:and\s+)?(?:a|an|another|\d+(?:[.,]\d+)?\s*(?:mm|cm)?)\s+[^,]*$")


def _another_item(sentence: Sentence, prev: Mention, t: Mention) -> bool:
    """Whether the later of two mentions of one target opens another item of a comma list, each
    with a place of its own ("an 8 mm lesion in the left frontal lobe, a 5 mm lesion in the right
    occipital lobe": two lesions, not one bilateral; "nodule in the right lower lobe, a 6 mm solid
    nodule, unchanged" is one)."""
    gap = sentence.low[prev.end:t.start]
    item = _NEW_ITEM.search(gap)
    if item is None or not sentence.within(prev.end, prev.end + item.start(), PLACE_GROUPS):
        return False
    # and the later one a place of its own, up to the next target ("..., a 6 mm solid nodule,
    # unchanged" describes the first; "..., another 4 mm nodule, in the left lower lobe" is another)
    later = sentence.within(t.end, sentence.end, TARGET_GROUPS)
    return bool(sentence.within(t.end, later[0].start if later else sentence.end, PLACE_GROUPS))


def _status_of_its_own(sentence: Sentence, prev: Mention, t: Mention) -> bool:
    """Whether a status between two mentions of one target, and a place of the later one's own after
    the comma, make them two findings ("right effusion has increased, left effusion has resolved";
    not "opacities in the right lung, likely residual atelectasis")."""
    gap = sentence.low[prev.end:t.start]
    if not _STATUS_SPLIT.search(gap):
        return False
    comma = prev.end + gap.rindex(",")
    return bool(sentence.within(comma, t.start, PLACE_GROUPS))


def _contrasted_place(sentence: Sentence, prev: Mention, t: Mention, later: Sequence[Mention]) -> bool:
    """Whether a contrast ("but", "however") comes between two mentions of one target and a place of
    its own follows it: "a nodule in the right lung but also a nodule in the left" is two findings;
    "a nodule in the RUL, but the nodule has not grown" and "a nodule in the RUL, but the nodule in
    the RUL has not grown" (the same place again) are one, unless a word says it is another ("but
    also a new nodule in the RUL")."""
    contrast = _CONTRAST.search(sentence.low, prev.end, t.start)
    if contrast is None:
        return False
    end = later[0].start if later else sentence.end
    after = {(m.group, m.code) for m in sentence.within(contrast.end(), end, PLACE_GROUPS)}
    if after and _ANOTHER_ONE.search(sentence.low, contrast.end(), t.start):
        return True  # "nodule in the RUL, but also a (new) nodule in the RUL": a second one
    before = {(m.group, m.code) for m in sentence.within(sentence.start, contrast.start(), PLACE_GROUPS)}
    return bool(after - before)


def _same_status(sentence: Sentence, a: Mention, b: Mention) -> bool:
    """Whether two mentions lie in the same negation and uncertainty scopes: "no nodule in the left
    lung, but a nodule in the right" names two findings, not one target twice."""
    return all(sentence.scopes.covering(a.start, kind) == sentence.scopes.covering(b.start, kind)
               for kind in ("negated", "uncertain"))


def _is_alternative(sentence: Sentence, prev: Mention, nxt: Mention) -> bool:
    if not _JOINT_WORD.search(sentence.low, prev.end, nxt.start):
        return False
    match = _ALTERNATIVE_GAP.fullmatch(sentence.blank(prev.end, nxt.start, ATTRIBUTE_GROUPS))
    if match is None:
        return False
    if match.group("joint").startswith(("versus", "vs")):
        return True
    # "no A or B", "no change in A or B": a list, not alternatives
    return not sentence.links(sentence.start, prev.start, _NEGATING)


def _cut(sentence: Sentence, groups: List[List[Mention]], alternatives: List[bool],
         uncertain: List[bool]) -> List[Item]:
    """One range per group; between two groups the cut falls at the last "and"/";", else the last
    linker, else the first terminator or forward trigger ("... at the left base otherwise negative
    for ..."), else the last "or", else the last comma."""
    low, items, start = sentence.low, [], sentence.start
    for i, group in enumerate(groups):
        if i + 1 < len(groups):
            a, b = group[-1].end, groups[i + 1][0].start
            gap = low[a:b]
            cuts = ([m.start() for m in _STRONG_SPLIT.finditer(gap)]
                    or [m.start - a for m in sentence.links(a, b)]
                    or [m.start - a for m in sentence.links(a, b, _BREAKS)][:1]
                    or [m.start() for m in _OR_SPLIT.finditer(gap)]
                    or [m.start() for m in _COMMA.finditer(gap)])
            end = a + (cuts[-1] if cuts else 0)
        else:
            end = sentence.end
        items.append(Item(group, start, end, alternatives=alternatives[i], uncertain=uncertain[i],
                          tail=group[-1].end))
        start = end
    return items


def _has_place(sentence: Sentence, a: int, b: int) -> bool:
    return bool(sentence.within(a, b, PLACE_GROUPS))


def _absorb(host: Item, item: Item) -> None:
    host.end = item.end
    host.tail = item.tail


def _absorb_diagnoses(sentence: Sentence, items: List[Item]) -> List[Item]:
    low = sentence.low
    out = [items[0]]
    for item in items[1:]:
        host = out[-1]
        a, b = host.tail, item.targets[0].start
        own_place = _has_place(sentence, item.start, item.end)
        host_place = _has_place(sentence, host.start, host.own_end)
        if host.diagnosis_start is not None:
            # "likely atelectasis or scarring", "secondary to infection or developing mass": a list
            # of bare targets continues the diagnosis
            joined = _LIST_JOINT.search(low[a:b]) is not None and not sentence.within(
                a, b, ATTRIBUTE_GROUPS | PLACE_GROUPS)
            if (joined or sentence.links(a, b, ("context:diagnosis",))) and not own_place:
                _absorb(host, item)
                continue
        else:
            links = sentence.links(a, b, ("context:diagnosis",))
            if links and not _blocked(sentence, a, links[0].start) and \
                    (not _has_place(sentence, links[0].start, item.end) or not host_place):
                host.diagnosis_start, host.linker_start = links[0].end, links[0].start
                _absorb(host, item)
                continue
            comma = low.rfind(",", a, b)
            if item.alternatives and comma >= 0 and not _blocked(sentence, a, comma) and \
                    (not _has_place(sentence, comma, item.end) or not host_place):
                host.diagnosis_start = host.linker_start = comma + 1  # "opacity, A versus B"
                _absorb(host, item)
                continue
        out.append(item)
    return out


def _blocked(sentence: Sentence, a: int, b: int) -> bool:
    """Whether ``low[a:b]`` (between a finding and a diagnosis linker) starts something new: "nodule
    and possible atelectasis" is two findings, but in "opacity in the LLL and left costophrenic
    angle, which could represent scarring" the "and" only joins two places."""
    blocks = list(_BLOCKS_DIAGNOSIS.finditer(sentence.low, a, b))
    return bool(blocks) and not sentence.within(blocks[-1].end(), b, LOCATION_GROUPS)


def _find_diagnosis(sentence: Sentence, item: Item) -> None:
    """A diagnosis without a target word of its own ("compatible with a lipoma")."""
    if not item.targets:
        return
    for link in sentence.links(item.tail, item.end, ("context:diagnosis",)):
        if not _blocked(sentence, item.tail, link.start):
            if sentence.low[link.end:item.end].strip(" ,;:.()"):
                item.diagnosis_start, item.linker_start = link.end, link.start
        return


def _share_list_locations(sentence: Sentence, items: List[Item]) -> None:
    run: List[Item] = [items[0]]
    for i in range(1, len(items) + 1):
        item = items[i] if i < len(items) else None
        joined = item is not None and run[-1].diagnosis_start is None and _LIST_GAP.fullmatch(
            sentence.blank(run[-1].tail, item.targets[0].start, ATTRIBUTE_GROUPS)) is not None
        if joined:
            run.append(item)
            continue
        last = run[-1]
        # "effusion and consolidation at the right base", not "no effusion, and a nodule in the RUL"
        bare_last = not sentence.within(last.start, last.targets[0].start,
                                        LOCATION_GROUPS | ATTRIBUTE_GROUPS)
        trailing = sentence.within(last.tail, last.own_end, LOCATION_GROUPS)
        if len(run) > 1 and bare_last and trailing and not any(
                sentence.within(r.start, r.own_end, LOCATION_GROUPS) for r in run[:-1]):
            for r in run[:-1]:
                r.share_from = last
        if item is not None:
            run = [item]

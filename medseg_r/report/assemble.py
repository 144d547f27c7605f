"""One :class:`Finding` from the mentions of one laid-out item (:mod:`.layout`), in one pass."""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from .context import Cover
from .layout import LIST_WORD, PLACE_GROUPS, TARGET_GROUPS, Item, Sentence
from .mentions import Mention, term_key
from .schema import Finding
from .shorthand import segment_numbers
from .sizes import size_class_from_mm
from .vocab import Segment, Vocabulary

_TARGET_ORGAN = {"polyp": "colon", "effusion": "lung", "pneumothorax": "lung",
                 "cardiomegaly": "heart"}
_ZONE_ORDER = ("upper", "middle", "lower", "all")
_UPPER_HOURS, _LOWER_HOURS = (10, 11, 12, 1, 2), (4, 5, 6, 7, 8)
# "possible central necrosis within the mass": the trigger governs the attribute, not the target.
_ATTRIBUTE_OF = re.compile(r"\b(?:within|inside|involving)\b|\b(?:in|of)\s+(?:the|this|that)\b")
_CLAUSE_COMMA = re.compile(r"[,;]")
# ", and the effusion has resolved", ", the previous effusion ...": a comma (with or without a joining
# word) and a determiner open a new clause with a subject of its own, not an item of a list
_CLAUSE_OPENING = re.compile(r"[,;]\s*(?:(?:and|but|while|whereas)\s+(?:an?\s+)?)?(?:the|this|that|these|"
                             r"those|its|their|her|his|previous(?:ly)?|prior)\b")
# "stable nodule in the RUL, ...", "the nodule in the RUL is unchanged, ...": a finding stated in a
# clause of its own ("previously seen" describes it, states nothing)
_OWN_STATUS = re.compile(r"(?<!previously )(?<!prior )(?<!earlier )"
                         r"\b(?:stable|unchanged|persistent|persists|persisting|again|redemonstrated|"
                         r"new|newly|increased|decreased|enlarging|improved|improving|worsening|"
                         r"is|are|was|were|remains?|seen|noted|present|identified)\b")
_PLURAL_VERB = re.compile(r"\b(?:are|were|have)\b")  # "..., and the effusion are not seen": both
# "pneumonia is unlikely", "a nodule in the RUL is not likely": the finding is probably not there.
# Only right after the finding's own words (a linking verb between) and where the clause ends
# (after "in this patient", "at this time" too) or gives a reason: after "nodule in the RUL, metastasis is unlikely", "nodule, unlikely to be
# malignant" or "nodule is unlikely clinically significant" the nodule is there.
_UNLIKELY = re.compile(r"\s*(?:(?:is|are|was|were|seems?|appears?|remains?|felt|thought|considered|"
                       r"deemed|to|be|very|highly|quite|also)\s+)*(?:unlikely|not\s+likely|improbable)"
                       r"(?:\s+(?:in|at|on)\s+(?:this|the|these|that)\s+[a-z]+(?=\s*(?:[.,;:!)]|$)))?"
                       r"(?=\s*(?:[.,;:!)]|$)|\s+(?:given|because|since|and|but|though|although)\b)")
# "unlikely but cannot be excluded": a hedge, not a negation (ConText's own triggers read it)
_STILL_POSSIBLE = re.compile(r"\b(?:exclud\w*|rule[ds]?\s+out|possibl[ey]|cannot|can\s+not)\b")
# "nodule and effusion are unlikely": the items of a list before a plural verb share it
_LIST_HOP = re.compile(r"\s*(?:,\s*(?:(?:and|or)\s+)?|(?:and|or)\s+)(?:(?:an?|the)\s+)?")
_PLURAL = re.compile(r"\s*(?:are|were)\b")
_UNLIKELY_WORD = re.compile(r"\b(?:unlikely|likely|improbable)\b")
_SPACE = re.compile(r"\s*")
_FINDING_WORDS = TARGET_GROUPS | PLACE_GROUPS | frozenset(("texture", "shape", "size_words",
                                                           "size_mm"))
_ATTRIBUTE_ONLY = frozenset(("texture", "shape", "size_words", "count_words"))


class Place:
    """Location evidence gathered from mentions."""

    def __init__(self) -> None:
        self.sides: List[str] = []
        self.zones: List[str] = []
        self.organ: Optional[str] = None
        self.segment_organ: Optional[str] = None  # the organ of the first named region (read in finish())
        self.segment: Optional[str] = None
        self.region: Optional[str] = None
        self.spans: List[Tuple[int, int]] = []
        self.lung = False  # a lung word was read: numbered segments are then lung segments
        self.liver_numbers: List[Tuple[Mention, List[str]]] = []

    @property
    def has_place(self) -> bool:
        return bool(self.sides or self.zones or self.segment or self.region)

    def read(self, vocab: Vocabulary, m: Mention) -> bool:
        """Take ``m`` if it is location evidence; ``False`` otherwise."""
        group = m.group
        if group == "sides":
            self.sides.append(m.code)
        elif group == "zones":
            self.zones.append(m.code)
        elif group == "organs":
            self.organ = self.organ or m.code
            self.lung = self.lung or m.code == "lung"
        elif group == "segments":
            info = segment_info(vocab, m.code)
            self._add(info, name=info.segment)
            self.lung = self.lung or info.organ == "lung"
        elif group == "liver_segments":
            self.liver_numbers.append((m, segment_numbers(m.code)))  # read in finish()
        elif group == "clock":
            hour = int(m.code)
            self.segment = self.segment or f"{hour} o'clock"
            if hour in _UPPER_HOURS:
                self.zones.append("upper")
            elif hour in _LOWER_HOURS:
                self.zones.append("lower")
        elif group == "image_regions":
            self.region = self.region or m.code
            self.organ = self.organ or "image"
        else:
            return False
        self.spans.append((m.start, m.end))
        return True

    def finish(self, vocab: Vocabulary) -> "Place":
        """Read the numbered segments: liver segments unless the words name the lung ("segment 6 of
        the right lower lobe"). A named region's organ outranks an organ word: "parenchymal" or
        "cardiomediastinal" beside "left frontal lobe" does not move the finding."""
        for _, numbers in self.liver_numbers:
            name = f"segment {numbers[0]}" if len(numbers) == 1 else \
                f"segments {', '.join(numbers[:-1])} and {numbers[-1]}"
            if self.lung:
                self.segment = name  # finer than the lobe it is in
                continue
            for number in numbers:
                self._add(vocab.segments.get(f"segment {number}") or Segment(), name=None)
            self.organ = self.organ or "liver"
            self.segment = self.segment or name
        self.liver_numbers = []
        self.organ = self.segment_organ or self.organ
        return self

    def _add(self, info: Segment, *, name: Optional[str]) -> None:
        if name:
            self.segment = self.segment or name
        if info.side:
            self.sides.append(info.side)
        self.zones.extend(info.zones)
        self.segment_organ = self.segment_organ or info.organ


def segment_info(vocab: Vocabulary, term: str) -> Segment:
    """The vocabulary entry of a region phrase as matched ("ground-glass" spellings included)."""
    if term in vocab.segments:
        return vocab.segments[term]
    return {term_key(k): v for k, v in vocab.segments.items()}.get(term_key(term), Segment())


def attribute_scope(sentence: Sentence, item: Item,
                    kind: str) -> Tuple[Optional[Cover], List[Mention]]:
    """(cover, attributes): the ``kind`` trigger over the item's target, and the attribute mentions
    that trigger governs instead of the target ("possible central necrosis within the left renal
    mass": the necrosis is uncertain, the mass is not)."""
    if not item.targets:  # "it is not calcified": the first attribute anchors the finding (not
        own = sentence.within(item.start, item.own_end)  # a place: "left temporal lobe without
        described = [m for m in own if m.group in _ATTRIBUTE_ONLY or m.group == "size_mm"]  # nodular
        anchor = (described or own)[0].start if own else item.start  # enhancement" is negated)
        return _near_enough(sentence, sentence.scopes.covering(anchor, kind), anchor), []
    anchor = item.targets[0].start
    cover = _near_enough(sentence, sentence.scopes.covering(anchor, kind), anchor)
    if cover is not None and cover.direction == "post" and _about_a_later_finding(sentence, item, cover):
        return None, []
    if cover is None or cover.direction != "pre":
        return cover, []
    if any(start <= cover.trigger[0] and end <= anchor for start, end in sentence.diagnoses):
        return None, []  # "opacity, likely atelectasis, and small effusion": the hedge is over
    after = cover.trigger[1]
    if _negates_something_of_it(sentence, after, anchor):
        return None, []  # "no mass effect from the meningioma", "no vascularity within the cyst"
    link = _ATTRIBUTE_OF.search(sentence.low, after, anchor)
    if link is None:
        return cover, []
    between = sentence.within(after, link.start())
    if between and all(m.group in _ATTRIBUTE_ONLY for m in between) \
            and any(m.group in ("texture", "shape") for m in between):
        return None, [m for m in between if m.group in ("texture", "shape")]
    return cover, []


# what "no ... of the <finding>" may deny without denying the finding: a change of it, or an
# effect it has ("no progression of the nodule", "no mass effect of the meningioma"); any other
# word before "of" denies the finding ("no evidence today of", "no features of", "no recurrence of")
_CHANGE_OF = frozenset((
    "progression", "growth", "enlargement", "increase", "decrease", "change", "changes",
    "worsening", "extension", "spread", "invasion", "involvement", "effect", "compression",
    "displacement", "calcification", "enhancement"))
# words the finding's own may come with between "of the" and it ("the known 6 mm right nodule")
_OBJECT_WORDS = frozenset(("known", "previously", "described", "seen", "noted", "index", "dominant",
                           "same", "aforementioned", "mm", "cm"))


_ADJECTIVE = re.compile(r"[a-z-]{3,}(?:al|ar|ic|ous|ed|ent|ive|ary)")  # "retrohilar", "subpleural"


def _object_words_only(sentence: Sentence, start: int, anchor: int) -> bool:
    """Whether the words between a preposition's determiner and the finding are the finding's own:
    its size, side, place and attributes (mentions), numbers, or :data:`_OBJECT_WORDS`."""
    covered = [(m.start, m.end) for m in sentence.within(start, anchor)]
    for w in re.finditer(r"[^\s]+", sentence.low[start:anchor]):
        a, b = start + w.start(), start + w.end()
        word = w.group().strip(",")
        if "," in w.group() or word in ("or", "and", "nor"):
            return False
        if any(s <= a and b <= e for s, e in covered) or word in _OBJECT_WORDS or \
                re.fullmatch(r"\d+(?:[.,]\d+)?(?:mm|cm)?", word) or _ADJECTIVE.fullmatch(word):
            continue
        return False
    return True
# "no mass effect from the ...", "no internal flow in the ...": what a negation denies is of the
# finding written after, not the finding
_OF_THE = re.compile(r"\b(?:within|inside|along|involving)\s+(?:the|this|that|a|an)\b|"
                     r"\b(?:in|of|from|on)\s+(?:the|this|that)\b")


def _negates_something_of_it(sentence: Sentence, after: int, anchor: int) -> bool:
    """Whether words the reader does not take as a finding or an attribute come between a
    negation (ending at ``after``) and the finding (at ``anchor``), joined to it by a preposition
    and a determiner: "no mass effect from the meningioma" negates the mass effect, not the
    meningioma ("no calcification within the nodule", an attribute, is read elsewhere)."""
    link = _OF_THE.search(sentence.low, after, anchor)
    words = sentence.low[after:link.start()].split() if link is not None else []
    if not words:
        return False
    if link.group().startswith("of") and words[-1].strip(",.") not in _CHANGE_OF:
        return False  # "no evidence today of the pneumothorax", "no features of the pneumonia",
        # "no recurrence of the tumor": of the finding itself; "no progression of the nodule" is not
    if not _object_words_only(sentence, link.end(), anchor):
        return False  # "no widening of the mediastinum, pleural effusion or pneumothorax": a list;
        # "no blunting of the costophrenic angles to suggest effusion": the effusion is denied
    return not sentence.within(after, link.start())


_CLEAR_PLACE = re.compile(
    r"\b(?:the\s+)?(?:right|left)\s+(?:lung|hemithorax|chest|side)\s+(?:is\s+|are\s+|appears\s+|remains\s+)?"
    r"(?:otherwise\s+)?(?:clear|normal|unremarkable)\b(?!\s*,?\s*(?:except|apart|other than|but|save|aside))")


def _clear_places(sentence: Sentence, start: int, end: int) -> List[Tuple[int, int]]:
    """Spans in ``[start, end)`` (after a finding's target) that state a side of the chest clear
    ("left lung clear", "the right lung is otherwise clear"): a normal statement beside the
    finding, not its place (not before an exception: "left lung clear except for a nodule")."""
    return [(m.start(), m.end()) for m in _CLEAR_PLACE.finditer(sentence.low, start, end)]


def _near_enough(sentence: Sentence, cover: Optional[Cover], anchor: int) -> Optional[Cover]:
    """A near trigger ("evaluation for", "evaluate for": what a study looks for, not what it found)
    covers only a finding written right after it, at most three words on and with no comma or
    colon between ("evaluation for an effusion", "limits evaluation for pleural fluid"), not the
    findings a report goes on to give ("Evaluation for pneumonia: right lower lobe consolidation
    is present.", "Assessment for pneumonia shows ...", "evaluation for a known 2 cm mass")."""
    if cover is None or not cover.near:
        return cover
    return cover if _right_after(sentence, cover.trigger[1], anchor) else None


def _right_after(sentence: Sentence, end: int, start: int) -> bool:
    """Whether the words from ``end`` (a trigger's end) to ``start`` (a word it governs) are at most
    three, with no comma, semicolon or colon between: the trigger is about that word."""
    gap = sentence.low[end:start]
    return not re.search(r"[,;:]", gap) and len(gap.split()) <= 3


def _negated_after_target(sentence: Sentence, mention: Mention, anchor: int) -> bool:
    """Whether a texture or shape word written after its finding's target is negated by a trigger
    that also comes after the target: "nodule in the RUL without calcification", "a nodule, not
    calcified", "nodule with no spiculation" (the nodule is there, without that attribute)."""
    if mention.group not in ("texture", "shape") or mention.start <= anchor:
        return False
    cover = sentence.scopes.covering(mention.start, "negated")
    if cover is None or cover.direction != "pre" or cover.trigger[0] <= anchor:
        return False
    # the trigger right before the word ("without definite calcification", "without evidence of
    # cavitation", "no calcification or cavitation"), not a negated clause before it ("nodule, no
    # interval growth, calcified": the nodule is calcified)
    return _right_after(sentence, cover.trigger[1], mention.start)


def _about_a_later_finding(sentence: Sentence, item: Item, cover: Cover) -> bool:
    """Whether a trigger that looks back ("not seen", "has resolved") is about another finding
    written between this one and it, while this one is complete with a place of its own and a comma
    apart: in "stable nodule in the RUL, effusion and pneumothorax have resolved", "nodule in the RUL,
    previously seen effusion has resolved" and "nodule in the RUL, and the effusion has resolved"
    the nodule stays. A list keeps the trigger over every item: joined by "and"/"or" ("pneumothorax,
    effusion or consolidation is not seen"; "right effusion, left pneumothorax, and consolidation are
    no longer seen") or by a plural verb after one singular noun ("right effusion, left pneumothorax
    are no longer seen")."""
    if cover.trigger[0] < item.end or not sentence.within(item.start, item.own_end, PLACE_GROUPS):
        return False
    own = {t.code for t in item.targets}
    # the same target with a place of its own is another finding ("right effusion has increased,
    # and the left effusion has resolved")
    later = [t for t in sentence.within(item.end, cover.trigger[0], TARGET_GROUPS)
             if t.code not in own or sentence.within(item.tail, t.start, PLACE_GROUPS)]
    if not later:
        return False
    low = sentence.low
    gap = low[item.tail:later[0].start]
    if not _CLAUSE_COMMA.search(gap):
        return False  # not a comma apart
    verb = low[later[-1].end:cover.trigger[1]]  # a trigger may hold its verb: "are not seen"
    if len(later) == 1 and _PLURAL_VERB.search(verb) and not _plural_noun(low[later[0].start:later[0].end]):
        return False  # "right effusion, left pneumothorax are no longer seen": one subject of two
    between = low[item.tail:later[-1].start]  # from this finding to the last one before the trigger
    if _OWN_STATUS.search(low, item.start, min(item.own_end, later[0].start)) or \
            _CLAUSE_OPENING.search(between):
        return True  # this finding has a clause of its own, or the trigger's clause opens after it
    # a list: joined by "and"/"or" ("effusion, pneumothorax or consolidation is not seen"), or going
    # on after the next item ("right effusion, left pneumothorax, and consolidation ...")
    return not LIST_WORD.search(between)


def _said_unlikely(sentence: Sentence, item: Item) -> Optional[str]:
    """``"negated"`` when the item's own words, or the list they open before a plural verb, are
    followed by "is unlikely" (:data:`_UNLIKELY`); ``"uncertain"`` when a hedge follows that
    ("unlikely but cannot be excluded": :data:`_STILL_POSSIBLE`); ``None`` otherwise."""
    own = sentence.within(item.start, item.own_end, _FINDING_WORDS)  # not its diagnosis's words
    if not own or sentence.next_match(_UNLIKELY_WORD, own[-1].end) is None:
        return None
    low, pos = sentence.low, own[-1].end
    while True:  # over "and effusion", ", left pneumothorax" ... to the list's end
        hop = _LIST_HOP.match(low, pos, sentence.end)
        following = sentence.within(hop.end(), hop.end() + 1, _FINDING_WORDS) if hop else []
        if not following:
            break
        while following:  # the item's words one after another ("left" "pneumothorax")
            pos = following[0].end
            gap = _SPACE.match(low, pos).end()
            following = sentence.within(gap, gap + 1, _FINDING_WORDS)
    said = _UNLIKELY.match(low, pos, sentence.end)
    if said is None or (pos != own[-1].end and not _PLURAL.match(low, pos)):
        return None
    return "uncertain" if _STILL_POSSIBLE.search(low, said.end(), sentence.end) else "negated"


def _plural_noun(words: str) -> bool:
    """Whether a target's words end in a plural noun ("effusions", not "atelectasis"): a plural verb
    after it agrees with it alone and says nothing of a list."""
    last = words.split()[-1] if words.split() else ""
    return last.endswith("s") and not last.endswith(("ss", "is", "us", "os"))


def build_finding(vocab: Vocabulary, sentence: Sentence, item: Item) -> Optional[Finding]:
    """The finding of ``item``, or ``None`` when it has neither a target nor any attribute."""
    negation, dropped, uncertainty = None, [], None
    if sentence.scopes.triggers:
        negation, dropped = attribute_scope(sentence, item, "negated")
        uncertainty = None if negation else attribute_scope(sentence, item, "uncertain")[0]
    own = sentence.within(item.start, item.own_end)
    if dropped:  # "no calcification within the nodule": the nodule is there, not calcified
        own = [m for m in own if m not in dropped]
    if item.targets and sentence.scopes.triggers:  # "nodule in the RUL without calcification"
        own = [m for m in own if not _negated_after_target(sentence, m, item.targets[0].start)]
    if item.targets:  # "nodule in the right lung, left lung clear": the left lung is no place of it
        clear = _clear_places(sentence, item.targets[0].end, item.own_end)
        own = [m for m in own if not any(s <= m.start < e for s, e in clear)]
    f = Finding()
    spans = f.spans
    place = Place()
    target_spans = {(t.start, t.end) for t in item.targets}
    count_words: List[Mention] = []
    count_digits: List[Mention] = []
    sizes: List[Mention] = []
    for m in own:
        group = m.group
        if group == "targets" or group == "extra_targets":
            if (m.start, m.end) in target_spans:
                spans["target"].append((m.start, m.end))
        elif group == "texture" or group == "shape":
            codes = f.texture if group == "texture" else f.shape
            if m.code not in codes:
                codes.append(m.code)
            spans[group].append((m.start, m.end))
        elif group == "count_words":
            count_words.append(m)
        elif group == "size_words":
            f.size_class = f.size_class or m.code
            spans["shape"].append((m.start, m.end))
        elif group == "size_mm":
            f.size_mm = max(f.size_mm or 0.0, float(m.code))
            sizes.append(m)
        elif group == "count_digit":
            count_digits.append(m)
        elif group == "artefacts":
            f.artefact = True
        else:
            place.read(vocab, m)
    place.finish(vocab)
    if item.diagnosis_start is not None:
        _read_diagnosis(vocab, sentence, item, f, place)
    elif item.alternatives:  # "abscess versus necrotic tumour"
        f.diagnosis = " ".join(sentence.text[item.targets[0].start:item.targets[-1].end].split())
    if item.targets:
        f.target = item.targets[0].code
        if f.target == "consolidation" and "consolidation" not in f.texture:
            f.texture.insert(0, "consolidation")
        f.count = _count(item, count_words, count_digits)
        if f.count in (None, 1):  # "a 4 mm and a 6 mm nodule": the article is not the count
            f.count = _count_listed_sizes(sentence.text, sizes, item.targets[0].start) or f.count
    elif not (f.texture or f.shape or f.size_mm) or f.artefact:
        return None  # anatomy alone ("the lungs are clear") or an artefact alone is not a finding
    else:
        f.target = "lesion"  # "multiple coarse calcifications": the attributes anchor the finding
        described = next(m for m in own if m.group in ("texture", "shape", "size_mm"))
        f.count = _count_before(described, count_words, count_digits, item.start)
    _apply_place(f, place)
    if "bilateral" in place.sides and "lower" not in f.location.zones and \
            "bibasilar" in sentence.low[item.start:item.own_end]:
        f.location.zones.append("lower")
    if f.target == "mass" and f.location.organ == "colon" and item.targets and \
            sentence.low.startswith("adenoma", item.targets[0].start):
        f.target = "polyp"  # an adenoma of the colon is a polyp (of the adrenal or liver, a mass)
    if f.location.organ is None:
        f.location.organ = _TARGET_ORGAN.get(f.target or "")
    if f.size_class is None:
        f.size_class = size_class_from_mm(f.size_mm)
    unlikely = _said_unlikely(sentence, item)
    f.negated = negation is not None or unlikely == "negated"
    f.uncertain = not f.negated and (item.uncertain or uncertainty is not None or
                                     unlikely == "uncertain")
    return f


def _read_diagnosis(vocab: Vocabulary, sentence: Sentence, item: Item, f: Finding,
                    place: Place) -> None:
    """The diagnosis text; its artefact words; its place when the finding has none of its own."""
    assert item.diagnosis_start is not None
    words = " ".join(sentence.text[item.diagnosis_start:item.end].split())
    f.diagnosis = words.strip(" ,;:.()") or None
    theirs = sentence.within(item.diagnosis_start, item.end)
    f.artefact = f.artefact or any(m.group == "artefacts" for m in theirs)
    if not place.has_place:
        other = Place()
        for m in theirs:
            other.read(vocab, m)
        other.finish(vocab)
        if other.has_place:
            place.sides, place.zones, place.segment = other.sides, other.zones, other.segment
            place.region, place.organ = other.region, place.organ or other.organ
            place.spans += other.spans


def _count(item: Item, words: Sequence[Mention], digits: Sequence[Mention]) -> Optional[int]:
    count = _count_before(item.targets[-1], words, digits, item.start) or \
        _count_before(item.targets[0], words, digits, item.start)
    if count is None and any(int(m.code) >= 2 for m in words):
        count = 2  # "multiple nodules, the largest ..."
    return count


_SIZE_LIST_GAP = re.compile(r"\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)(?:an?\s+)?", re.I)


def _count_listed_sizes(text: str, sizes: Sequence[Mention], target_start: int) -> Optional[int]:
    """How many sizes are listed right before the target, one lesion each ("a 4 mm and a 6 mm
    nodule": 2; "6 mm, 8 mm and 1 cm nodules": 3), or None. Only sizes joined by "and" or commas
    count, the last within three words of the target ("a nodule of 12 mm, previously 10 mm" and
    "grown from 4 mm to 6 mm" are not lists)."""
    before = sorted((m for m in sizes if m.end <= target_start), key=lambda m: m.start)
    if len(before) < 2 or len(text[before[-1].end:target_start].split()) > 3:
        return None
    run = 1
    for a, b in zip(reversed(before[:-1]), reversed(before[1:])):
        if not _SIZE_LIST_GAP.fullmatch(text[a.end:b.start]):
            break
        run += 1
    return run if run >= 2 else None


def _count_before(target: Mention, words: Sequence[Mention], digits: Sequence[Mention],
                  item_start: int) -> Optional[int]:
    window_start = max(item_start, target.start - 40)
    near = [m for m in words if window_start <= m.start < target.start]
    if near:
        return int(near[-1].code)
    near = [m for m in digits if window_start <= m.start < target.start]
    if near:
        value = int(near[-1].code)
        return value if 0 < value < 100 else None
    return None


def _apply_place(f: Finding, place: Place) -> None:
    loc = f.location
    loc.side = merge_sides(place.sides)
    if place.zones:
        loc.zones = [z for z in _ZONE_ORDER if z in place.zones]
    loc.organ = place.organ
    loc.segment = place.segment
    loc.image_region = place.region
    f.spans["location"] = sorted(set(place.spans)) if len(place.spans) > 1 else place.spans


def share_location(f: Finding, source: Finding) -> None:
    """A list item without a place of its own takes the place written after the list."""
    loc, src = f.location, source.location
    loc.side, loc.zones, loc.segment = src.side, list(src.zones), src.segment
    loc.image_region = src.image_region
    loc.organ = src.organ or loc.organ
    f.spans["location"] = sorted(set(f.spans["location"]) | set(source.spans["location"]))


def merge_sides(sides: List[str]) -> Optional[str]:
    """One side for several mentions: left and right make ``bilateral``."""
    if len(sides) < 2:
        return sides[0] if sides else None
    unique = set(sides)
    if "bilateral" in unique or {"left", "right"} <= unique:
        return "bilateral"
    if len(unique) == 1:
        return sides[0]
    return next(s for s in ("left", "right", "midline") if s in unique)

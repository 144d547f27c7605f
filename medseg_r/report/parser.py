"""Free-text report -> :class:`Report` of :class:`Finding` objects (the contract of ``PRIORS.md``).

The reader is rule based and deterministic:

1. split the text into sentences (a decimal point, "vs.", "Rt." or a colon does not end a sentence;
   a numbered list "1. ... 2. ..." does);
2. find every mention (:mod:`.mentions`, :mod:`.shorthand`): vocabulary terms, ConText triggers,
   sizes, counts, clock faces, liver segments, sides written "R"/"L"; overlapping mentions keep the
   longest; image-relative regions only count when the sentence names the image and the image owns
   the directions ("upper left of the image"), or there is no anatomy to place them on ("nodule in
   the left lung on image 45" keeps the patient's left);
3. lay the targets of each sentence out as findings (:mod:`.layout`): lists, alternatives,
   diagnoses;
4. ConText scopes (:mod:`.context`) mark findings negated or uncertain; a trigger that governs an
   attribute of the target ("possible central necrosis within the mass") leaves the target alone;
5. a sentence with no finding may state a normal study ("The lungs are clear.", "No acute
   disease."): the vocabulary's ``normal_statements`` patterns, kept as spans on the report, make a
   report without findings an all-negative one (:attr:`Report.all_negative`).

Every step is linear in the length of the text.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

from .assemble import build_finding, segment_info, share_location
from .context import ScopeIndex
from .filters import checklist_none, image_relative, sentence_terms, sides_of_organs, view_limited
from .layout import ANAPHOR, FINDING_GROUPS, PLACE_GROUPS, TARGET_GROUPS, Sentence, layout
from .mentions import Mention, resolve_overlaps
from .schema import Finding, Report
from .sections import after_sentence, header_place, summary_between, take_place, title_place
from .shorthand import pattern_mentions, shorthand_side_mentions
from .vocab import Vocabulary, default_vocabulary

MAX_REPORT_CHARS = 200_000
# A colon does not end a sentence ("Rt breast: mass at 2 o'clock" keeps its side); neither does the
# full stop of an abbreviation ("vs.", "approx.", "seg.", "Rt.") nor that of a side letter before a
# lower-case word ("R. apex"). A numbered list ("1. ... 2. ...") does.
_ABBREVIATIONS = ("vs", "approx", "seg", "segs", "rt", "lt", "cf", "incl", "esp", "resp", "e.g",
                  "i.e")
_NOT_AFTER = "".join(f"(?<!\\b[{w[0].upper()}{w[0]}]{re.escape(w[1:])}\\.)" for w in _ABBREVIATIONS)
# ... and these end no sentence before a lower-case word or a number ("Bilat. lower zones", "post.
# segment", "ser. 4 img. 56"), but do before a capital ("No pneumothorax on PA and lat. Right ...")
_SOFT_ABBREVIATIONS = ("bilat", "post", "ant", "sup", "inf", "lat", "ser", "img", "mult", "diam")
_NOT_BEFORE_LOWER = "".join(f"(?!(?<=\\b[{w[0].upper()}{w[0]}]{re.escape(w[1:])}\\.)[ \\t]*[a-z\\d])"
                            for w in _SOFT_ABBREVIATIONS)
# What the requester wrote ("Indication: cough, ?LLL pneumonia.") asks a question of the image and
# states no finding of it: the sentence after such a header is not read, nor what an earlier study
# showed (Comparison) or how this one was made (Technique)
_REQUEST = (r"history|clinical history|indications?|clinical indications?|reason for (?:the )?"
            r"(?:exam|examination|study|referral|request)|clinical (?:information|details|question)|"
            r"comparisons?|technique|protocol")
_REPORT = r"findings?|impressions?|conclusions?|opinion|results?|report"
# words whose number a full stop may follow without it opening a numbered list
_NUMBERED_WORDS = ("segment", "segments", "seg", "segs", "and", "or", "level", "levels", "image",
                   "images", "series", "grade", "category", "rib", "ribs", "zone", "zones")
_NOT_NUMBERED = "".join(f"(?<!\\b[{w[0].upper()}{w[0]}]{w[1:]})" for w in _NUMBERED_WORDS)
_SENTENCE_END = re.compile(
    rf"\.(?:(?<![\d\s]\.)(?<!\b[RL]\.){_NOT_AFTER}{_NOT_BEFORE_LOWER}(?!\w)"  # a full stop after a word
    r"|(?<=[\d\s]\.)(?=\s+[A-Z(\d]|\s*$)"  # after a number: "... at 6:00. Next", "segment 6. 8 mm
    # cyst"; "2.5" (no space after the point) is not an end
    r"|(?<=\b[RL]\.)(?![ \t]*[a-z])(?!\w))"  # "zone R. Next", but not "R. apex"
    r"|[!;\n\r]"  # "!", ";", new lines
    # "?" after a word (it stays with its sentence), not a query written before its word
    # ("?pneumonia", "opacity - ? consolidation")
    r"|(?<=[\w)\]])\?(?!\s*$)|(?<=\s)\?(?=\s+[A-Z])"  # and one between words before a capital
    rf"|(?=\s\d{{1,2}}[.)]\s+[A-Z]){_NOT_NUMBERED}\s")  # "1. ... 2. ...", not "in segment 7. The ..."
# a comparison tells what an earlier study showed ("CT chest 2023, which demonstrated a 5 mm
# nodule"), unless it says what this one shows ("... the nodule now measures 9 mm", "a new nodule",
# "There is a 2.6 cm mass", "the nodule is stable")
_NOW = re.compile(r"(?i)\b(?:now|new|newly|currently|this (?:study|exam|examination)|there (?:is|are)|"
                  r"(?:is|are|remains?) (?:stable|unchanged)|unchanged|persists?)\b")
_HEADER = re.compile(rf"\s*(?:{_REQUEST}|{_REPORT})\s*:", re.IGNORECASE)
_ANY_HEADER = re.compile(rf"(?<![\w-])(?:({_REQUEST})|{_REPORT})\s*:", re.IGNORECASE)
_PATTERN_GROUPS = ("size_mm", "count_digit", "clock", "liver_segments")
_BLANKS = re.compile(r"\s*")
_STATUS_OPENS = re.compile(r",\s*(?:and\s+)?(?:persistent|persisting|stable|unchanged|increasing|"
                           r"enlarging|worsening|new|newly)\b")
_QUERY_BEFORE = re.compile(r"\?\s?[a-z]")  # "?pneumonia", "? infection"


def _lower_same_length(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)  # "İ" lowers to 2 chars


def split_sentences(text: str, *, headers: Optional[Sequence[re.Match]] = None) -> List[Tuple[int, int]]:
    """Character ranges of the sentences of ``text`` (a '?' stays with its sentence; a section
    header such as "Findings:" is left out). ``headers``: the text's section headers
    (``_ANY_HEADER`` matches), when the caller has found them already."""
    if headers is None:
        headers = list(_ANY_HEADER.finditer(text))
    ends = [(m.start(), m.end(), text[m.start()] == "?") for m in _SENTENCE_END.finditer(text)]
    # a section header in a sentence ends it ("Indication: cough Findings: ...")
    ends += [(m.start(), m.start(), False) for m in headers
             if m.start() and text[m.start() - 1].isspace()]
    spans, start = [], 0
    for a, b, question in sorted(ends):
        if a < start:
            continue
        _add_sentence(text, start, b if question else a, spans)
        start = b
    _add_sentence(text, start, len(text), spans)
    return spans


def _add_sentence(text: str, start: int, end: int, spans: List[Tuple[int, int]]) -> None:
    header = _HEADER.match(text, start, end)
    if header is not None:
        start = header.end()
    if text[start:end].strip():
        spans.append((start, end))


def _outside_requests(text: str, sentences: List[Tuple[int, int]],
                      headers: Sequence[re.Match]) -> List[Tuple[int, int]]:
    """``sentences`` less the request's: the sentence a request header ("Indication:", "History:",
    "Reason for exam:" ...) opens (what follows it may be the findings, under a header the reader
    does not know, "LUNGS:", or none; a request's sentence that another header interrupts ends
    there: "Indication: cough Findings: ..."); a Comparison's, which tells what an earlier study
    showed (unless it says what this one shows: "... the nodule now measures 9 mm"), and a
    Technique's ("Low-dose CT for lung nodule follow-up.")."""
    def first_word(start: int) -> int:  # not text[start:].lstrip(): a copy of the rest each time
        return _BLANKS.match(text, start).end()

    starts = {first_word(s): (s, e) for s, e in sentences}
    dropped = set()
    for m in headers:
        opens = first_word(m.end())
        if not (m.group(1) and opens in starts):  # a header that opens its sentence, not "(history: ...)"
            continue
        if m.group(1).lower().startswith("comparison") and _NOW.search(text, opens, starts[opens][1]):
            continue  # "Comparison: There is a 2.6 cm mass ...", "... the nodule now measures 9 mm"
        dropped.add(starts[opens])
    return [span for span in sentences if span not in dropped]


def parse_report(text: str, *, vocabulary: Optional[Vocabulary] = None) -> Report:
    """Read a free-text report into structured findings.

    Args:
        text: the report. Empty or non-medical text gives a report with no findings.
        vocabulary: a merged vocabulary (default: the built-in packs plus ``$MEDSEG_R_VOCAB``).

    Returns:
        A :class:`Report` whose ``findings`` are in order of appearance.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: ``text`` is longer than 200,000 characters (split such archives into reports).
    """
    if isinstance(text, bytes):
        raise TypeError("parse_report expects str, got bytes: decode the report first "
                        "(e.g. text.decode('utf-8'))")
    if not isinstance(text, str):
        raise TypeError(f"parse_report expects str, got {type(text).__name__}")
    if len(text) > MAX_REPORT_CHARS:
        raise ValueError(f"report is {len(text):,} characters long; the limit is {MAX_REPORT_CHARS:,} "
                         "(one report per call)")
    if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"vocabulary must be a Vocabulary (medseg_r.report.vocab.load_vocabulary), "
                        f"got {type(vocabulary).__name__}")
    vocab = vocabulary or default_vocabulary()
    low = _lower_same_length(text)
    index = vocab.index()
    terms, context, anchors, anatomy = index.scan_by_kind(low)
    terms = sorted(terms + pattern_mentions(text, low))
    sides = shorthand_side_mentions(text, low, terms=sorted(terms + anatomy) if anatomy else terms,
                                    index=index)
    if sides:
        terms = sorted(terms + sides)
    headers = list(_ANY_HEADER.finditer(text))
    sentences = _outside_requests(text, split_sentences(text, headers=headers), headers)
    term_buckets = _buckets(terms, sentences)
    context_buckets = _buckets(view_limited(low, checklist_none(low, context)), sentences)
    anchored = ({i for i, b in enumerate(_buckets(anchors, sentences))
                 if b and image_relative(low, b, term_buckets[i])} if anchors else set())
    findings: List[Finding] = []
    with_finding = set()
    refers = ANAPHOR.search(low) is not None  # "another ...": looked for only in reports that have one
    # places given once for the sentences after them (.sections): a title's ("LEFT BREAST
    # ULTRASOUND.") holds to the next title; an organ header's ("Right kidney:") to the next header
    title = section = None
    last_end = 0
    for i, (s, e) in enumerate(sentences):
        if section is not None and summary_between(text, last_end, s):
            section = None  # the impression restates the findings with places of their own
        last_end = e
        named = title_place(vocab, low, s, e, term_buckets[i])
        if named is not None:
            title, section = named, None
        else:
            section = header_place(vocab, low, s, e, term_buckets[i]) or section
        if not term_buckets[i]:
            continue
        sentence_terms = term_buckets[i]
        previous = None
        if refers and i and (i - 1) in with_finding and not findings[-1].negated:
            # "Another in the LLL." names the target of the last finding just before, if positive (not
            # a word read as that finding's hedged diagnosis: "opacity, possibly pneumonia")
            spans = sorted(findings[-1].spans.get("target", ()))
            before = [m for m in term_buckets[i - 1] if m.group in TARGET_GROUPS and (m.start, m.end) in spans]
            # an "another" of that sentence is no term of it: its span names the same target
            previous = before[-1] if before else (
                Mention(*spans[-1], "targets", findings[-1].target) if spans and findings[-1].target else None)
        if i in anchored:
            # In "upper left of the image" the directions are the image's, not the patient's.
            sentence_terms = sides_of_organs(low, sorted(
                index.scan(low, s, e, frame="image")
                + [m for m in sentence_terms if m.group in _PATTERN_GROUPS]))
        read = _read_sentence(vocab, text, low, (s, e), sentence_terms, context_buckets[i],
                              anaphors=refers, previous=previous)
        for finding in read:
            take_place(finding, section or title)
        section = after_sentence(section, read)
        if read:
            findings += read
            with_finding.add(i)
    normal = [(bounds, term_buckets[i]) for i, bounds in enumerate(sentences)
              if i not in with_finding]
    return Report(text=text, findings=findings,
                  normal_statements=_normal_statements(vocab, text, low, normal))


def _normal_statements(vocab: Vocabulary, text: str, low: str,
                       sentences: Sequence[Tuple[Tuple[int, int], Sequence[Mention]]]
                       ) -> List[Tuple[int, int]]:
    """Spans of the vocabulary's normal-study statements in ``sentences`` (those that hold no
    finding, each with the mentions found in it: "The lungs are clear." beside "No effusion."
    counts; "lungs are clear but for a nodule" does not). Each sentence is matched on its own
    (``^`` is its start). A sentence that names the left or right side ("The right lung is clear.",
    "... clear on the right", "R lung clear") or holds a stop word ("otherwise", "the remainder of
    the lungs") states no normal study: something else was, or may have been, described."""
    pattern = vocab.normal_matcher()
    stops, _ = vocab.matcher("normal_stops")
    out: List[Tuple[int, int]] = []
    for (s, e), mentions in sentences:
        found = list(pattern.finditer(text[s:e]))
        if not found or stops.search(low, s, e) or _names_a_side(vocab, mentions):
            continue
        for m in found:
            start = s + m.start()
            while start < s + m.end() and not text[start].isalpha():
                start += 1  # the span begins at the statement's first word ("1. No acute disease")
            out.append((start, s + m.end()))
    return out


def _names_a_side(vocab: Vocabulary, mentions: Sequence[Mention]) -> bool:
    """Whether ``mentions`` name the left or right side: a side word, a shorthand side ("R") or a
    region with a side ("right base")."""
    for m in mentions:
        side = m.code if m.group == "sides" else (
            segment_info(vocab, m.code).side if m.group == "segments" else None)
        if side in ("left", "right"):
            return True
    return False


def _buckets(mentions: Sequence[Mention],
             sentences: Sequence[Tuple[int, int]]) -> List[List[Mention]]:
    """The mentions (sorted by start) of each sentence; one across a sentence end is dropped."""
    out, position = [], 0
    for s, e in sentences:
        while position < len(mentions) and mentions[position].start < s:
            position += 1
        first = position
        while position < len(mentions) and mentions[position].start < e:
            position += 1
        out.append([m for m in mentions[first:position] if m.end <= e])
    return out


_ONE_OF = re.compile(r"\bone\b")  # "one ... and another": members of one finding
# "pneumothorax with a chest tube in place and another on the left": another tube, not another
# pneumothorax. Devices and lines are no targets of the vocabulary; "another" after one names it.
_PLACE_BREAK = re.compile(r"[,;:.]|\b(?:and|or|but)\b")
_DEVICE = re.compile(r"\b(?:tubes?|catheters?|lines?|drains?|clips?|wires?|leads?|stents?|ports?|"
                     r"electrodes?|pacemakers?|defibrillators?|staples?|coils?|markers?|sutures?|"
                     r"screws?|prosthes[ie]s|valves?|devices?)\b")  # not "plate": "plate-like"
_DEVICE_TAIL = re.compile(r"\s*(?:in\s+(?:place|situ|(?:good\s+|satisfactory\s+)?position)\s*)?(?:and\s*)?")
_WITH_DEVICE = re.compile(r"\bwith\s+(?:[\w-]+\s+){0,3}$")


def _after_a_device(stretch: str) -> bool:
    """Whether the words before an "another" end with a device brought in by "with" ("with a chest
    tube in place and"): not a device named in passing ("near the surgical clips and another in the
    LLL" is another nodule) nor one a comma or other words set apart."""
    devices = list(_DEVICE.finditer(stretch))
    if not devices:
        return False
    last = devices[-1]
    return bool(_DEVICE_TAIL.fullmatch(stretch, last.end())) and bool(_WITH_DEVICE.search(stretch[:last.start()]))


_OPENS = re.compile(r"[\W_]*(?:(?:also|and|plus|there\s+(?:is|was))\s+)*")  # "Also another ..."
_PLACE_WITHIN = 4  # words between "another" and the place it names


def _place_follows(low: str, b: int, place: Mention) -> bool:
    """Whether ``place`` comes within :data:`_PLACE_WITHIN` words after an "another" ending at ``b``."""
    return len(low[b:place.start].split()) <= _PLACE_WITHIN


def _with_anaphors(low: str, s: int, e: int, terms: List[Mention],
                   previous: Optional[Mention] = None) -> List[Mention]:
    """``terms`` plus a target mention for each "another" (:data:`~.layout.ANAPHOR`) that names the
    sentence's previous target again ("a nodule in the RUL and another in the LLL" is two nodules),
    or, at the start of a sentence, the last target of the sentence before (``previous``: "Nodule in
    the RUL. Another in the LLL.", when that target was read positive). A place must follow within
    four words ("another in 3 months" names nothing). Not after a count above one, nor after "one"
    ("two nodules, one in the RUL and another in the LLL": one finding of two, as before), nor after
    a device ("pneumothorax with a chest tube in place and another on the left": another tube, and
    the place after it is dropped, being no place of the pneumothorax)."""
    added, elsewhere = [], []
    for match in ANAPHOR.finditer(low, s, e):
        a, b = match.span()
        before = [m for m in terms if m.end <= a]
        targets = [m for m in before if m.group in TARGET_GROUPS]
        if not targets and previous is not None and _OPENS.fullmatch(low, s, a):
            targets = [previous]  # "Another in the LLL." after a sentence that named a target
        after = next((m for m in terms if m.start >= b), None)
        if not targets or any(m.group in ("count_words", "count_digit") and m.code != "1"
                              for m in before):
            continue
        if after is None or after.group not in PLACE_GROUPS or not _place_follows(low, b, after):
            continue  # "another in 3 months", "another at the same location": no place named
        since = targets[-1].end if targets[-1] is not previous else s
        if _ONE_OF.search(low, since, a):
            continue  # "nodules in both lungs, one in the RUL and another in the LLL": one finding
        if _after_a_device(low[since:a]):
            # "... with a chest tube in place and another on the left": another tube, whose place
            # is no place of the pneumothorax
            elsewhere += [m for m in terms if m.start >= b and m.group in PLACE_GROUPS
                          and not _PLACE_BREAK.search(low, b, m.start) and _place_follows(low, b, m)]
            continue
        added.append(Mention(a, b, targets[-1].group, targets[-1].code))
    if not added and not elsewhere:
        return terms
    inside = [(m.start, m.end) for m in added]
    kept = [m for m in terms if m not in elsewhere and not any(a <= m.start and m.end <= b for a, b in inside)]
    return sorted(kept + added)


def _read_sentence(vocab: Vocabulary, text: str, low: str, bounds: Tuple[int, int],
                   terms: Sequence[Mention], context: Sequence[Mention], *,
                   anaphors: bool, previous: Optional[Mention] = None) -> List[Finding]:
    s, e = bounds
    terms = [m for m in resolve_overlaps(terms, start=s, end=e) if m.group != "ignore"]
    terms = sentence_terms(vocab, low, terms, start=s)
    if anaphors:
        terms = _with_anaphors(low, s, e, terms, previous)
    if not any(m.group in FINDING_GROUPS for m in terms):
        return []  # no target and no attribute: anatomy alone ("heart size is normal")
    questions, q = [], low.find("?", s, e)
    while q >= 0:
        questions.append(q)
        q = low.find("?", q + 1, e)
    # "resolved left effusion, persistent right effusion": a status after a comma opens another
    # finding's clause, where the negation before does not reach
    ended = [Mention(m.start(), m.end(), "context:terminators", "status")
             for m in _STATUS_OPENS.finditer(low, s, e)]
    if ended:
        context = sorted([*context, *ended])
    scopes = ScopeIndex(context, questions=questions, start=s, end=e, low=low,
                        findings=[m.start for m in terms if m.group in FINDING_GROUPS])
    # "opacity in the left lower lobe - ?pneumonia": a query written before a later target links it
    # to the finding before as its diagnosis, as "possibly" would
    targets = [m.start for m in terms if m.group in TARGET_GROUPS]
    queried = [Mention(q, q + 1, "context:diagnosis", "?") for q in questions
               if targets and targets[0] < q and _QUERY_BEFORE.match(low, q)]
    if queried:
        context = sorted([*context, *queried])
    sentence = Sentence(text, low, start=s, end=e, mentions=terms, context=context, scopes=scopes)
    items = layout(sentence)
    built: Dict[int, Finding] = {}
    for item in items:
        finding = build_finding(vocab, sentence, item)
        if finding is not None:
            built[id(item)] = finding
    for item in items:
        if item.share_from is not None and id(item) in built and id(item.share_from) in built:
            share_location(built[id(item)], built[id(item.share_from)])
    return [f for f in (built[id(item)] for item in items if id(item) in built)
            if not _findings_in_passing(low, f)]


def _findings_in_passing(low: str, f: Finding) -> bool:
    """A positive "finding(s)" with nothing of its own (no place, attribute or size) refers to the
    report's findings ("Findings were discussed with Dr. X", "These findings are consistent with
    pneumonia"), not to a lesion, unless a word before it makes it one ("Suspicious finding,
    BI-RADS 4."); negated, it states a normal study ("No acute findings")."""
    spans = f.spans.get("target") or []
    return (bool(spans) and not f.negated
            and all(low[a:b] in ("finding", "findings") and not _A_LESION.search(low, max(0, a - 30), a)
                    for a, b in spans)
            and f.location.is_empty() and not (f.texture or f.shape or f.size_mm or f.size_class))


# "suspicious finding": a lesion the report has not named otherwise ("a new finding" names the one
# before it)
_A_LESION = re.compile(r"\b(?:suspicious|indeterminate|palpable|worrisome|concerning)\s+$")

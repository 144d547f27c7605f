"""Free-text report -> :class:`Report` of :class:`Finding` objects (the contract of ``PRIORS.md``).

The reader is rule based and deterministic:

1. split the text into sentences (a decimal point does not end a sentence);
2. in each sentence, match every vocabulary group (targets, anatomy, texture, shape, sizes, counts);
   overlapping matches keep the longest; image-relative regions only count when the sentence names the
   image ("in the upper left of the image");
3. each target word anchors a finding; the words between two targets are split at the last
   "and"/";"/"," so that each finding keeps its own attributes; repeated mentions of the same target in
   one sentence ("infection, two infected areas") are one finding;
4. ConText scopes (:mod:`.context`) mark findings negated or uncertain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .context import Scope, find_scopes
from .schema import Finding, Report
from .sizes import DIGIT_COUNT_RE, find_sizes, size_class_from_mm
from .vocab import Vocabulary, default_vocabulary

MAX_REPORT_CHARS = 200_000
_SENTENCE_END = re.compile(r"(?<!\d)[.](?!\d)|[!;\n\r]|\?(?!\s*$)|:\s")
_CLOCK_RE = re.compile(r"(?<![\w:])(1[0-2]|[1-9])(?::00|:30)?\s*(?:o['’]?\s*clock|oclock|h\b|:00\s+position|\s+position)")
_SPLIT_STRONG = re.compile(r"\band\b|;|\bwhile\b|\bwhereas\b|\bas well as\b|\bplus\b")
_SPLIT_WEAK = re.compile(r",")
_TARGET_ORGAN = {"polyp": "colon", "effusion": "lung", "pneumothorax": "lung", "cardiomegaly": "heart"}
# Match groups that carry a canonical code, in the priority used to break ties between equal spans.
_GROUPS = ("ignore", "segments", "targets", "extra_targets", "image_regions", "texture", "shape", "organs",
           "sides", "zones", "size_words", "count_words")
_NOT_A_MODIFIER = re.compile(r"\b(?:in|of|at|on|with|within|and|or|but|to|from|by|for|the|is|are|was|were|has|have|"
                             r"seen|noted|present|consistent|compatible|likely|possibly|probably)\b|[,;:()]")


@dataclass
class _Match:
    start: int
    end: int
    group: str
    code: str

    @property
    def length(self) -> int:
        return self.end - self.start


def _lower_same_length(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def split_sentences(text: str) -> List[Tuple[int, int]]:
    """Character ranges of the sentences of ``text`` (a '?' stays with its sentence)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end() if text[m.start()] == "?" else m.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _collect(vocab: Vocabulary, low: str, s: int, e: int) -> List[_Match]:
    clause = low[s:e]
    anchor_re, _ = vocab.matcher("anchors")
    image_relative = anchor_re.search(clause) is not None
    found: List[_Match] = []
    for group in _GROUPS:
        if group == "image_regions" and not image_relative:
            continue
        if image_relative and group in ("sides", "zones"):
            continue  # in "upper left of the image", directions are the image's, not the patient's
        pattern, lookup = vocab.matcher(group)
        for m in pattern.finditer(clause):
            key = re.sub(r"[\s-]+", " ", m.group(0))
            code = lookup.get(key) or lookup.get(m.group(0)) or _lookup_loose(lookup, m.group(0))
            found.append(_Match(s + m.start(), s + m.end(), group, code))
    for m in _CLOCK_RE.finditer(clause):
        found.append(_Match(s + m.start(), s + m.end(), "clock", m.group(1)))
    for start, end, mm in find_sizes(clause):
        found.append(_Match(s + start, s + end, "size_mm", repr(mm)))
    return [m for m in _resolve_overlaps(found) if m.group != "ignore"]


def _lookup_loose(lookup: Dict[str, str], text: str) -> str:
    norm = re.sub(r"[\s-]+", "", text)
    for key, code in lookup.items():
        if re.sub(r"[\s-]+", "", key) == norm:
            return code
    return text


def _resolve_overlaps(found: List[_Match]) -> List[_Match]:
    """Keep the longest of overlapping matches; equal spans in texture+target are both kept."""
    order = {g: i for i, g in enumerate(("size_mm", "clock") + _GROUPS)}
    found.sort(key=lambda m: (-m.length, order.get(m.group, 99), m.start))
    kept: List[_Match] = []
    for m in found:
        clash = [k for k in kept if m.start < k.end and k.start < m.end]
        if not clash:
            kept.append(m)
        elif all(k.start == m.start and k.end == m.end for k in clash) and {m.group, *[k.group for k in clash]} <= {
            "texture", "targets", "shape"
        }:
            kept.append(m)  # e.g. "consolidation": texture and target at once; decided later
    kept.sort(key=lambda m: (m.start, m.group))
    return kept


def _targets(low: str, matches: List[_Match]) -> List[_Match]:
    """Target mentions. A word that is both texture and target ("consolidation") is a texture when it
    modifies the next target ("consolidation opacity"), and a target otherwise."""
    targets = [m for m in matches if m.group in ("targets", "extra_targets")]
    dual = {(m.start, m.end) for m in matches if m.group == "texture"}
    out = []
    for i, t in enumerate(targets):
        nxt = targets[i + 1] if i + 1 < len(targets) else None
        if (t.start, t.end) in dual and nxt is not None:
            gap = low[t.end:nxt.start]
            if len(gap.split()) <= 2 and not _NOT_A_MODIFIER.search(gap):
                continue
        out.append(t)
    return out


def _group_segments(vocab: Vocabulary, low: str, matches: List[_Match], s: int,
                    e: int) -> List[Tuple[int, int, List[_Match]]]:
    """Split a sentence into one character range per target, merging repeated mentions of one target.

    Between two targets the range is cut at the last "and"/";", else at the last diagnosis linker
    ("consistent with", "likely", "with" ...), else at the last comma."""
    targets = _targets(low, matches)
    if not targets:
        return [(s, e, [])]
    linker_re, _ = vocab.matcher("context:linkers")
    merged: List[List[_Match]] = [[targets[0]]]
    for t in targets[1:]:
        prev = merged[-1][-1]
        between = low[prev.end:t.start]
        if t.code == prev.code and not _SPLIT_STRONG.search(between) and not linker_re.search(between):
            merged[-1].append(t)
        elif t.start - prev.end <= 3 and re.fullmatch(r"[\s/,]*(?:or)?[\s/]*", between):
            merged[-1].append(t)  # "nodule/mass", "nodule or mass": one target described twice
        else:
            merged.append([t])
    ranges = []
    start = s
    for i, group in enumerate(merged):
        if i + 1 < len(merged):
            gap_start, gap_end = group[-1].end, merged[i + 1][0].start
            gap = low[gap_start:gap_end]
            cut = ([m.start() for m in _SPLIT_STRONG.finditer(gap)] or [m.start() for m in linker_re.finditer(gap)]
                   or [m.start() for m in _SPLIT_WEAK.finditer(gap)])
            end = gap_start + (cut[-1] if cut else 0)
        else:
            end = e
        ranges.append((start, end, group))
        start = end
    return ranges


def _count_before(low: str, target: _Match, matches: List[_Match], seg_start: int) -> Optional[int]:
    window_start = max(seg_start, target.start - 40)
    words = [m for m in matches if m.group == "count_words" and window_start <= m.start < target.start]
    if words:
        return int(words[-1].code)
    digits = list(DIGIT_COUNT_RE.finditer(low, window_start, target.start))
    if digits:
        value = int(digits[-1].group(1))
        return value if 0 < value < 100 else None
    return None


def _in_scope(pos: int, scopes: List[Scope], kind: str) -> bool:
    return any(sc.kind == kind and sc.start <= pos < sc.end for sc in scopes)


def _build_finding(vocab: Vocabulary, low: str, seg: Tuple[int, int, List[_Match]], matches: List[_Match],
                   scopes: List[Scope]) -> Optional[Finding]:
    s, e, targets = seg
    own = [m for m in matches if s <= m.start < e]
    f = Finding()
    spans = f.spans
    target_keys = {(t.start, t.end) for t in targets}
    sides, zones = [], []
    for m in own:
        span = (m.start, m.end)
        if m.group in ("targets", "extra_targets"):
            if span in target_keys:
                spans["target"].append(span)
            continue
        if m.group == "texture":
            if m.code not in f.texture:
                f.texture.append(m.code)
            spans["texture"].append(span)
        elif m.group == "shape":
            if m.code not in f.shape:
                f.shape.append(m.code)
            spans["shape"].append(span)
        elif m.group == "sides":
            sides.append(m.code)
            spans["location"].append(span)
        elif m.group == "zones":
            zones.append(m.code)
            spans["location"].append(span)
        elif m.group == "organs":
            f.location.organ = f.location.organ or m.code
            spans["location"].append(span)
        elif m.group == "image_regions":
            f.location.image_region = f.location.image_region or m.code
            f.location.organ = f.location.organ or "image"
            spans["location"].append(span)
        elif m.group == "segments":
            seg_info = _segment(vocab, m.code)
            if seg_info.segment:
                f.location.segment = f.location.segment or seg_info.segment
            if seg_info.side:
                sides.append(seg_info.side)
            zones.extend(seg_info.zones)
            f.location.organ = f.location.organ or seg_info.organ
            spans["location"].append(span)
        elif m.group == "clock":
            hour = int(m.code)
            f.location.segment = f.location.segment or f"{hour} o'clock"
            if hour in (10, 11, 12, 1, 2):
                zones.append("upper")
            elif hour in (4, 5, 6, 7, 8):
                zones.append("lower")
            spans["location"].append(span)
        elif m.group == "size_words":
            f.size_class = f.size_class or m.code
            spans["shape"].append(span)
        elif m.group == "size_mm":
            f.size_mm = max(f.size_mm or 0.0, float(m.code))
    if targets:
        codes = [t.code for t in targets]
        f.target = codes[0]
        if f.target == "consolidation" and "consolidation" not in f.texture:
            f.texture.insert(0, "consolidation")
        f.count = _count_before(low, targets[-1], own, s) or _count_before(low, targets[0], own, s)
        if f.count is None and any(m.group == "count_words" and int(m.code) >= 2 for m in own):
            f.count = 2
    else:
        if not (f.texture or f.shape or f.size_mm):
            return None  # anatomy alone ("the lungs are clear") is not a finding
        f.target = "lesion"
    f.location.side = _merge_sides(sides)
    f.location.zones = [z for z in ("upper", "middle", "lower", "all") if z in zones]
    if "bilateral" in sides and "bibasilar" in low[s:e] and "lower" not in f.location.zones:
        f.location.zones.append("lower")
    if f.location.organ is None:
        f.location.organ = _TARGET_ORGAN.get(f.target or "")
    if f.size_class is None:
        f.size_class = size_class_from_mm(f.size_mm)
    anchor = targets[0].start if targets else own[0].start if own else s
    f.negated = _in_scope(anchor, scopes, "negated")
    f.uncertain = not f.negated and _in_scope(anchor, scopes, "uncertain")
    for key in spans:
        spans[key] = sorted(set(spans[key]))
    return f


def _merge_sides(sides: List[str]) -> Optional[str]:
    unique = set(sides)
    if not unique:
        return None
    if "bilateral" in unique or {"left", "right"} <= unique:
        return "bilateral"
    if len(unique) == 1:
        return sides[0]
    return next(s for s in ("left", "right", "midline") if s in unique)


def _segment(vocab: Vocabulary, term: str):
    if term in vocab.segments:
        return vocab.segments[term]
    return vocab.segments[_lookup_loose({k: k for k in vocab.segments}, term)]


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
        raise TypeError("parse_report expects str, got bytes: decode the report first (e.g. text.decode('utf-8'))")
    if not isinstance(text, str):
        raise TypeError(f"parse_report expects str, got {type(text).__name__}")
    if len(text) > MAX_REPORT_CHARS:
        raise ValueError(f"report is {len(text):,} characters long; the limit is {MAX_REPORT_CHARS:,} "
                         "(one report per call)")
    vocab = vocabulary or default_vocabulary()
    low = _lower_same_length(text)
    findings: List[Finding] = []
    for s, e in split_sentences(low):
        matches = _collect(vocab, low, s, e)
        if not matches:
            continue
        scopes = find_scopes(vocab, low, s, e)
        for seg in _group_segments(vocab, low, matches, s, e):
            finding = _build_finding(vocab, low, seg, matches, scopes)
            if finding is not None:
                findings.append(finding)
    return Report(text=text, findings=findings)

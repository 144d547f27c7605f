"""Every mention in a report: vocabulary terms, ConText triggers, sizes, counts, clock faces, liver
segments and shorthand sides, with their character spans.

Terms are found in one pass over the words of the text: each word that starts some term is extended
word by word and the joined words are looked up in a dictionary. The cost is linear in the length of
the text and does not grow with the size of the vocabulary (one regular expression per vocabulary
group and sentence, as before, cost more than everything else together).
"""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

# Term groups that carry a canonical code, in the priority used to break ties between equal spans.
TERM_GROUPS = ("ignore", "artefacts", "segments", "targets", "extra_targets", "image_regions",
               "texture", "shape", "organs", "sides", "zones", "size_words", "count_words")
CONTEXT_KINDS = ("negation_pre", "negation_near", "negation_post", "negation_both", "uncertain_pre",
                 "uncertain_post",
                 "pseudo", "terminators", "linkers", "diagnosis")
# Groups found by regular expressions rather than by the word index.
_PATTERN_GROUPS = ("size_mm", "clock", "liver_segments")
_PRIORITY = {g: i for i, g in enumerate(_PATTERN_GROUPS + TERM_GROUPS + ("count_digit",))}
# A word and a same-span texture/target/shape reading are kept together ("consolidation").
_DUAL_GROUPS = frozenset(("texture", "targets", "extra_targets", "shape"))
# What TermIndex.scan_by_kind returns, in order.
KINDS = ("terms", "context", "anchors", "anatomy")
_KIND_OF = {f"context:{k}": 1 for k in CONTEXT_KINDS} | {"anchors": 2, "anatomy": 3}
_WORD = re.compile(r"\w+")
_JOIN = re.compile(r"[\s-]+")
_KEY_SPLIT = re.compile(r"[\s\-'\u2019/]+")  # "can't exclude", "r/o": "can t exclude", "r o"


class Mention(NamedTuple):
    """``text[start:end]`` read as ``code`` of ``group`` (a term group, a context kind, ...)."""

    start: int
    end: int
    group: str
    code: str


def term_key(term: str) -> str:
    """A term as the index stores it: lower case, words joined by one space ("ground-glass" ->
    "ground glass", "can't" -> "can t")."""
    return " ".join(p for p in _KEY_SPLIT.split(term.lower()) if p)


class TermIndex:
    """Dictionary of every term of a vocabulary, keyed by :func:`term_key`.

    Two readings exist: the patient frame (``"term"``: every group except image regions) and the
    image frame (``"image"``: image regions instead of sides and zones), used in sentences that name
    the image.
    """

    def __init__(self, vocab) -> None:
        self.vocab = vocab
        frames = {"term": [g for g in TERM_GROUPS if g != "image_regions"],
                  "image": [g for g in TERM_GROUPS if g not in ("sides", "zones")]}
        self._entries: Dict[str, Dict[str, List[Tuple[str, str, str, int]]]] = {}
        self._prefixes: Dict[str, set] = {}  # word-level proper prefixes of the keys
        self._first: Dict[str, set] = {}  # first words of the keys
        for frame, groups in frames.items():
            named = [(frame, g, vocab.lookup(g)) for g in groups]
            if frame == "term":
                named += [(f"context:{k}", f"context:{k}", vocab.lookup(f"context:{k}"))
                          for k in CONTEXT_KINDS]
                named.append(("anchors", "anchors", vocab.lookup("anchors")))
                named.append(("anatomy", "anatomy", vocab.lookup("anatomy")))
            entries: Dict[str, List[Tuple[str, str, str, int]]] = {}
            prefixes: set = set()
            for namespace, group, lookup in named:
                for term, code in lookup.items():
                    key = term_key(term)
                    if not key or not all(_WORD.fullmatch(w) for w in key.split(" ")):
                        continue  # "?" and other non-words are found by the caller
                    hits = entries.setdefault(key, [])
                    hit = (namespace, group, code, _KIND_OF.get(namespace, 0))
                    if hit not in hits:  # "ground glass" = "ground-glass"
                        hits.append(hit)
                    words = key.split(" ")
                    prefixes.update(" ".join(words[:k]) for k in range(1, len(words)))
            self._entries[frame] = entries
            self._prefixes[frame] = prefixes
            self._first[frame] = {key.split(" ", 1)[0] for key in entries}

    def scan(self, low: str, start: int = 0, end: Optional[int] = None, *,
             frame: str = "term") -> List[Mention]:
        """Every term of ``low[start:end]`` (lower-cased text): at each word, the longest term of
        each namespace (the term groups together, each context kind, the image anchors, the body
        parts) that starts there."""
        return sorted(m for kind in self.scan_by_kind(low, start, end, frame=frame) for m in kind)

    def scan_by_kind(self, low: str, start: int = 0, end: Optional[int] = None, *,
                     frame: str = "term") -> Tuple[List[Mention], ...]:
        """:meth:`scan` as four lists, each sorted by start: terms, context triggers, image anchors
        and body parts (:data:`KINDS`)."""
        end = len(low) if end is None else end
        entries, prefixes, first = self._entries[frame], self._prefixes[frame], self._first[frame]
        matches = list(_WORD.finditer(low, start, end))
        words = _WORD.findall(low, start, end)
        out: Tuple[List[Mention], ...] = ([], [], [], [])
        n_words = len(words)
        for i in [i for i, w in enumerate(words) if w in first]:
            word, match = words[i], matches[i]
            w_start = match.start()
            if w_start > 0 and low[w_start - 1] == "-":
                continue  # "non-enhancing" is not "enhancing"
            if word not in prefixes:  # a one-word term that starts no longer one (the usual case)
                w_end = match.end()
                if w_end >= end or low[w_end] != "-":
                    for _, group, code, kind in entries[word]:
                        out[kind].append(Mention(w_start, w_end, group, code))
                continue
            keys = [(word, match.end())]
            key, last_end, j = word, match.end(), i + 1
            while key in prefixes and j < n_words:  # extend while a longer term may still match
                n_start = matches[j].start()
                if not ((n_start - last_end == 1 and low[last_end] in " -'\u2019/")
                        or _JOIN.fullmatch(low, last_end, n_start)):
                    break
                key, last_end = f"{key} {words[j]}", matches[j].end()
                keys.append((key, last_end))
                j += 1
            taken: Tuple[str, ...] = ()
            for key, k_end in reversed(keys):
                hits = entries.get(key)
                if not hits or (k_end < end and low[k_end] == "-"):
                    continue
                for namespace, group, code, kind in hits:
                    if namespace not in taken:
                        out[kind].append(Mention(w_start, k_end, group, code))
                taken += tuple(h[0] for h in hits)
        return out

    def match_at(self, low: str, pos: int, *,
                 prefix: str) -> Optional[Tuple[int, List[Tuple[str, ...]]]]:
        """The longest patient-frame term that reads ``prefix`` followed by the words of ``low``
        from ``pos`` ("right" + "base" -> "right base"), as ``(end, hits)``, or ``None``."""
        entries, prefixes = self._entries["term"], self._prefixes["term"]
        key, last_end, best = prefix, pos, None
        for m in _WORD.finditer(low, pos, min(len(low), pos + 80)):
            joined = m.start() == last_end or (
                last_end != pos and _JOIN.fullmatch(low, last_end, m.start()) is not None)
            if not joined:
                break
            key, last_end = f"{key} {m.group()}", m.end()
            hits = entries.get(key)
            if hits and (last_end >= len(low) or low[last_end] != "-"):
                best = (last_end, hits)
            if key not in prefixes:
                break
        return best


def resolve_overlaps(found: List[Mention], *, start: int, end: int) -> List[Mention]:
    """``found`` (sorted by start) less overlaps: the longest of overlapping mentions is kept (ties:
    :data:`_PRIORITY`), and so is a texture, target or shape reading of the very same span as a kept
    one ("consolidation"). Linear in the text length."""
    reach = -1
    for m in found:
        if m.start < reach:
            break
        reach = m.end
    else:
        return found  # nothing overlaps (the usual case)
    ordered = sorted(found, key=lambda m: (m.start - m.end, _PRIORITY.get(m.group, 99), m.start))
    used = bytearray(end - start)
    kept: List[Mention] = []
    groups_at: Dict[Tuple[int, int], List[str]] = {}
    for m in ordered:
        s, e = m.start - start, m.end - start
        if used.find(1, s, e) < 0:
            used[s:e] = b"\x01" * (e - s)
            kept.append(m)
            groups_at[(m.start, m.end)] = [m.group]
            continue
        same = groups_at.get((m.start, m.end))
        if same is not None and m.group in _DUAL_GROUPS and all(g in _DUAL_GROUPS for g in same):
            kept.append(m)
            same.append(m.group)
    kept.sort(key=lambda m: (m.start, m.group))
    return kept

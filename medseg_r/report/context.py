"""ConText-style negation and uncertainty (Chapman et al., 2007; Harkema et al., 2009).

Triggers are read from the vocabulary (``context:`` in ``common.yaml``). A *pre* trigger scopes
forward to the next terminator or the end of the clause; a *post* trigger scopes backward to the
previous terminator or the start of the clause; a *both* trigger ("not seen", "resolved": medspaCy's
bidirectional rules) looks back when a finding precedes it in its stretch of the clause ("nodule not
seen in the left lung", "effusion resolved, new nodule ...": the effusion alone) and forward
otherwise ("resolved nodule in the right upper lobe", "not seen: nodule, mass or effusion"); a "?"
makes the whole clause uncertain. A trigger inside a longer trigger is ignored ("not excluded" is
uncertainty, not negation), and a terminator inside a trigger does not end its scope; a
pseudo-trigger ("no change", "not seen on prior", "partially resolved") holds trigger words but
triggers nothing, and every trigger it overlaps is dropped ("was not seen on prior"). A *near*
trigger ("evaluation for": what a study is to be evaluated for) scopes forward as a pre trigger,
and its :class:`Cover` says so: the reader applies it only to a finding written right after it
(``_near_enough`` in :mod:`medseg_r.report.assemble`).
:class:`ScopeIndex` answers "which trigger covers this position?" by bisection, so a clause of any
length costs time linear in its number of triggers (times a logarithm).
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from .mentions import Mention

_PSEUDO = "context:pseudo"  # "no change": holds a trigger word but triggers nothing
_TRIGGERS = {"context:negation_pre": ("negated", "pre"),
             "context:negation_near": ("negated", "near"),
             "context:negation_post": ("negated", "post"),
             "context:negation_both": ("negated", "both"),
             "context:uncertain_pre": ("uncertain", "pre"),
             "context:uncertain_post": ("uncertain", "post")}


_CLAUSE_BREAK = re.compile(r"[,;:]")
# at most three words, no punctuation and no joining word between a both-ways trigger and the
# finding it then governs
_RIGHT_AFTER = re.compile(r"\s+(?:(?!(?:and|or|but|nor|with|then|while)\b)[\w-]+\s+){0,3}")


@dataclass(frozen=True)
class Cover:
    """The trigger whose scope holds a position (``direction``: pre, post or clause for "?")."""

    kind: str
    direction: str
    trigger: Tuple[int, int]
    near: bool = False  # a "near" trigger ("evaluation for"): the reader checks how close it is


class ScopeIndex:
    """The negation and uncertainty scopes of the clause ``[start, end)``.

    Args:
        mentions: the clause's context mentions (groups ``context:<kind>``), sorted by start.
        questions: positions of "?" in the clause.
        findings: where the clause's finding mentions start (targets and attributes): they decide
            which way each both-ways trigger looks.
    """

    def __init__(self, mentions: Iterable[Mention], *, questions: Iterable[int], start: int,
                 end: int, findings: Iterable[int], low: Optional[str] = None) -> None:
        self.start, self.end = start, end
        mentions = list(mentions)
        pseudo = sorted((m.start, m.end) for m in mentions if m.group == _PSEUDO)
        pseudo_starts = [p[0] for p in pseudo]
        reach, furthest = [], -1  # the furthest end of the pseudo-triggers up to each one
        for _, pe in pseudo:
            furthest = max(furthest, pe)
            reach.append(furthest)

        def in_pseudo(s: int, e: int) -> bool:  # overlaps a pseudo-trigger
            j = bisect_left(pseudo_starts, e)
            return j > 0 and reach[j - 1] > s

        raw = [(m.start, m.end, m.group) for m in mentions
               if m.group == _PSEUDO or (m.group in _TRIGGERS and not in_pseudo(m.start, m.end))]
        raw += [(q, q + 1, "?") for q in questions]
        self.triggers: List[Tuple[int, int, str]] = []  # (start, end, "context:<kind>" or "?")
        # per kind ("negated" | "uncertain"): pre triggers as (end, start), post as (start, end)
        self._pre: Dict[str, List[Tuple[int, int]]] = {"negated": [], "uncertain": []}
        self._post: Dict[str, List[Tuple[int, int]]] = {"negated": [], "uncertain": []}
        self._question: List[Tuple[int, int]] = []
        self._term_starts: List[int] = []
        self._term_ends: List[int] = []
        if not raw:
            return
        raw.sort(key=lambda t: (t[0], t[0] - t[1]))
        kept = self.triggers
        longest_end = -1
        for trig in raw:
            if trig[1] <= longest_end:
                continue  # inside (or equal to) an earlier trigger that starts no later
            longest_end = trig[1]
            if kept and trig[0] < kept[-1][1]:
                continue
            kept.append(trig)
        k, free = 0, []
        for m in mentions:  # a terminator inside a trigger does not end anything
            if m.group != "context:terminators":
                continue
            while k < len(kept) and kept[k][1] <= m.start:
                k += 1
            if not (k < len(kept) and kept[k][0] <= m.start < kept[k][1]):
                free.append(m)
        self._term_starts = sorted(t.start for t in free)
        self._term_ends = sorted(t.end for t in free)
        found = sorted(findings)
        for s, e, group in kept:
            if group == _PSEUDO:
                continue
            if group == "?":
                self._question.append((s, e))
                continue
            kind, direction = _TRIGGERS[group]
            if direction == "both":  # back when a finding precedes it since the last terminator
                t = bisect_right(self._term_ends, s) - 1
                begin = self._term_ends[t] if t >= 0 else self.start
                i = bisect_left(found, begin)
                direction = "post" if i < len(found) and found[i] < s else "pre"
                # unless a comma parts it from the finding before and one follows at once
                # ("small left effusion, resolved right effusion"; not "consolidation resolved
                # leaving minimal atelectasis")
                j = bisect_left(found, e)
                if direction == "post" and low is not None and j < len(found) \
                        and _RIGHT_AFTER.fullmatch(low, e, found[j]) \
                        and _CLAUSE_BREAK.search(low, found[bisect_left(found, s) - 1], s):
                    direction = "pre"
            if direction in ("pre", "near"):  # near: a pre trigger whose reach the reader limits
                self._pre[kind].append((e, s, direction == "near"))
            else:
                self._post[kind].append((s, e))

    def covering(self, pos: int, kind: str) -> Optional[Cover]:
        """The ``kind`` (``negated`` | ``uncertain``) trigger whose scope holds ``pos``, or None."""
        if kind == "uncertain" and self._question:
            return Cover(kind, "clause", self._question[0])
        pre = self._pre[kind]
        if pre:
            j = bisect_right(pre, (pos, pos + 1)) - 1  # the last pre trigger ending by pos
            if j >= 0:
                t = bisect_right(self._term_starts, pos) - 1
                if t < 0 or pre[j][0] > self._term_starts[t]:
                    return Cover(kind, "pre", (pre[j][1], pre[j][0]), near=pre[j][2])
        post = self._post[kind]
        if post:
            j = bisect_right(post, (pos, pos + 1))  # the first post trigger that starts after pos
            if j < len(post) and post[j][0] == pos:
                j += 1
            if j < len(post):
                t = bisect_right(self._term_ends, pos)
                if t >= len(self._term_ends) or post[j][0] < self._term_ends[t]:
                    return Cover(kind, "post", post[j])
        return None

"""ConText-style negation and uncertainty (Chapman et al., 2007; Harkema et al., 2009).

Triggers are read from the vocabulary (``context:`` in ``common.yaml``). A *pre* trigger scopes
forward to the next terminator or the end of the clause; a *post* trigger scopes backward to the
previous terminator or the start of the clause; a *both* trigger (medspaCy's bidirectional rules:
"not seen", "resolved") scopes both ways, forward only to the next comma ("effusion resolved, new
nodule ..." negates the effusion alone); a "?" makes the whole clause uncertain. A trigger
inside a longer trigger is ignored ("not excluded" is uncertainty, not negation), and a terminator
inside a trigger does not end its scope; a pseudo-trigger ("no change", "not only") holds a trigger
word but triggers nothing. :class:`ScopeIndex` answers "which trigger covers this position?" by
bisection, so a clause of any length costs time linear in its number of triggers.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from .mentions import Mention

_PSEUDO = "context:pseudo"  # "no change": holds a trigger word but triggers nothing
_TRIGGERS = {"context:negation_pre": ("negated", "pre"),
             "context:negation_post": ("negated", "post"),
             "context:negation_both": ("negated", "both"),
             "context:uncertain_pre": ("uncertain", "pre"),
             "context:uncertain_post": ("uncertain", "post")}


@dataclass(frozen=True)
class Scope:
    kind: str  # "negated" | "uncertain"
    start: int
    end: int
    trigger: Tuple[int, int]


@dataclass(frozen=True)
class Cover:
    """The trigger whose scope holds a position (``direction``: pre, post or clause for "?")."""

    kind: str
    direction: str
    trigger: Tuple[int, int]


class ScopeIndex:
    """The negation and uncertainty scopes of the clause ``[start, end)``.

    Args:
        mentions: the clause's context mentions (groups ``context:<kind>``), sorted by start.
        questions: positions of "?" in the clause.
    """

    def __init__(self, mentions: Iterable[Mention], *, questions: Iterable[int], start: int,
                 end: int, commas: Iterable[int] = ()) -> None:
        self.start, self.end = start, end
        self._commas = sorted(commas)  # where a both-ways trigger's forward scope ends
        mentions = list(mentions)
        raw = [(m.start, m.end, m.group) for m in mentions
               if m.group in _TRIGGERS or m.group == _PSEUDO]
        raw += [(q, q + 1, "?") for q in questions]
        self.triggers: List[Tuple[int, int, str]] = []  # (start, end, "context:<kind>" or "?")
        # per kind ("negated" | "uncertain"): pre triggers as (end, start), post as (start, end)
        self._pre: Dict[str, List[Tuple[int, int]]] = {"negated": [], "uncertain": []}
        self._post: Dict[str, List[Tuple[int, int]]] = {"negated": [], "uncertain": []}
        self._question: List[Tuple[int, int]] = []
        self._both_forward: List[Tuple[int, int, int]] = []  # (end, start, next comma) of both-ways triggers
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
        for s, e, group in kept:
            if group == _PSEUDO:
                continue
            if group == "?":
                self._question.append((s, e))
            else:
                kind, direction = _TRIGGERS[group]
                if direction == "pre":
                    self._pre[kind].append((e, s))
                elif direction == "both":
                    self._both_forward.append((e, s, self._comma_after(e)))
                if direction in ("post", "both"):
                    self._post[kind].append((s, e))
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

    def _comma_after(self, pos: int) -> int:
        i = bisect_left(self._commas, pos)
        return self._commas[i] if i < len(self._commas) else self.end

    def covering(self, pos: int, kind: str) -> Optional[Cover]:
        """The ``kind`` (``negated`` | ``uncertain``) trigger whose scope holds ``pos``, or None."""
        if kind == "uncertain" and self._question:
            return Cover(kind, "clause", self._question[0])
        if kind == "negated":
            for end, start, stop in self._both_forward:  # few per clause
                if end <= pos < stop:
                    t = bisect_right(self._term_starts, pos) - 1
                    if t < 0 or end > self._term_starts[t]:
                        return Cover(kind, "pre", (start, end))
        pre = self._pre[kind]
        if pre:
            j = bisect_right(pre, (pos, pos + 1)) - 1  # the last pre trigger ending by pos
            if j >= 0:
                t = bisect_right(self._term_starts, pos) - 1
                if t < 0 or pre[j][0] > self._term_starts[t]:
                    return Cover(kind, "pre", (pre[j][1], pre[j][0]))
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

    def scopes(self) -> List[Scope]:
        """Every scope as an explicit character range."""
        out = []
        for s, e, group in self.triggers:
            if group == _PSEUDO:
                continue
            kind = "uncertain" if group == "?" else _TRIGGERS[group][0]
            if group == "?":
                out.append(Scope(kind, self.start, self.end, (s, e)))
                continue
            direction = _TRIGGERS[group][1]
            if direction in ("post", "both"):
                t = bisect_right(self._term_ends, s) - 1
                begin = self._term_ends[t] if t >= 0 else self.start
                out.append(Scope(kind, begin, s, (s, e)))
            if direction in ("pre", "both"):
                t = bisect_left(self._term_starts, e)
                stop = self._term_starts[t] if t < len(self._term_starts) else self.end
                if direction == "both":
                    stop = min(stop, self._comma_after(e))
                out.append(Scope(kind, e, stop, (s, e)))
        return out

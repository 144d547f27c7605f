"""ConText-style negation and uncertainty (Chapman et al., 2007; Harkema et al., 2009).

Triggers are read from the vocabulary (``context:`` in ``common.yaml``). A *pre* trigger scopes forward to
the next terminator or the end of the clause; a *post* trigger scopes backward to the previous terminator
or the start of the clause. A trigger inside a longer trigger is ignored ("not excluded" is uncertainty,
not negation), and a terminator inside a trigger does not end its scope.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from .vocab import Vocabulary

_KINDS = ("negation_pre", "negation_post", "uncertain_pre", "uncertain_post")


@dataclass(frozen=True)
class Scope:
    kind: str  # "negated" | "uncertain"
    start: int
    end: int
    trigger: Tuple[int, int]


def _matches(vocab: Vocabulary, group: str, text: str) -> List[Tuple[int, int, str]]:
    pattern, _ = vocab.matcher(group)
    return [(m.start(), m.end(), group) for m in pattern.finditer(text)]


def find_scopes(vocab: Vocabulary, text: str, start: int = 0, end: int | None = None) -> List[Scope]:
    """Negation/uncertainty scopes inside ``text[start:end]`` (lower-cased clause text)."""
    end = len(text) if end is None else end
    clause = text[start:end]
    triggers: List[Tuple[int, int, str]] = []
    for kind in _KINDS:
        triggers += _matches(vocab, f"context:{kind}", clause)
    # "?" is a literal, not a word: it never satisfies the word-boundary regex, so find it directly.
    triggers += [(i, i + 1, "context:uncertain_post") for i, ch in enumerate(clause) if ch == "?"]
    triggers.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    kept: List[Tuple[int, int, str]] = []
    for trig in triggers:  # drop triggers nested inside a longer one
        if any(k[0] <= trig[0] and trig[1] <= k[1] and (k[1] - k[0]) > (trig[1] - trig[0]) for k in triggers):
            continue
        if kept and trig[0] < kept[-1][1]:
            continue
        kept.append(trig)
    terms = [t for t in _matches(vocab, "context:terminators", clause)
             if not any(k[0] <= t[0] < k[1] for k in kept)]
    scopes: List[Scope] = []
    for s, e, group in kept:
        kind = "negated" if "negation" in group else "uncertain"
        if clause[s:e] == "?":
            scopes.append(Scope(kind, start, end, (start + s, start + e)))
        elif group.endswith("_pre"):
            stop = min([t[0] for t in terms if t[0] >= e] + [len(clause)])
            scopes.append(Scope(kind, start + e, start + stop, (start + s, start + e)))
        else:
            begin = max([t[1] for t in terms if t[1] <= s] + [0])
            scopes.append(Scope(kind, start + begin, start + s, (start + s, start + e)))
    return scopes

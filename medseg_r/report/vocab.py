"""Domain vocabulary packs: data files that map words to canonical prior codes.

Packs are YAML files (``vocab/*.yaml`` in this package, plus any the user adds). Each pack may define
``targets``, ``extra_targets``, ``organs``, ``sides``, ``zones``, ``texture``, ``shape``, ``size_words``,
``count_words``, ``segments``, ``image_regions``, ``anchors``, ``ignore`` (phrases that look like findings
but are not, e.g. "fat stranding"), ``artefacts`` (phrases that make a finding an artefact, e.g.
"overlying soft tissue"), ``anatomy`` (body parts that are not organs, e.g. "thigh": "R thigh" is a
side), ``context`` (ConText triggers, pseudo-triggers, finding boundaries, diagnosis linkers) and
``normal_statements`` (regular expressions, matched case-insensitively within one sentence, ``^``
at its start, for sentences that state a normal study without naming a finding: "The lungs are
clear.", "No acute disease."; :func:`medseg_r.report.parser.parse_report`) with ``normal_stops``
(words that keep a sentence from stating one: "otherwise", "remainder").
Packs are merged in order: a later pack adds synonyms to earlier ones; a term it gives another code
of the same group moves to that code (the later pack wins).

User packs: pass paths to :func:`load_vocabulary`, or list them (``os.pathsep``-separated) in the
environment variable ``MEDSEG_R_VOCAB``. See README ("Adding a term").
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Pattern, Sequence, Tuple

import yaml

BUILTIN_PACKS = ("common", "chest", "abdomen", "breast", "brain", "neck", "colonoscopy", "image")
_TERM_GROUPS = ("targets", "extra_targets", "organs", "sides", "zones", "texture", "shape", "size_words",
                "count_words", "image_regions")
_LIST_GROUPS = ("anchors", "ignore", "artefacts", "anatomy", "normal_stops")
# every key a pack may hold ("domain": the pack's name for describe's domains)
PACK_KEYS = frozenset((*_TERM_GROUPS, *_LIST_GROUPS, "segments", "context", "normal_statements",
                       "domain"))


@dataclass(frozen=True)
class Segment:
    """An anatomical region phrase and the location fields it implies (``segment`` may be ``None`` for
    regions that are not named sub-structures, e.g. "hilum" -> middle zone of the lung)."""

    segment: Optional[str] = None
    side: Optional[str] = None
    zones: Tuple[str, ...] = ()
    organ: Optional[str] = None


@dataclass
class Vocabulary:
    """Merged vocabulary with one compiled matcher per term group."""

    terms: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    segments: Dict[str, Segment] = field(default_factory=dict)
    anchors: List[str] = field(default_factory=list)
    ignore: List[str] = field(default_factory=list)
    artefacts: List[str] = field(default_factory=list)
    anatomy: List[str] = field(default_factory=list)
    normal_stops: List[str] = field(default_factory=list)
    context: Dict[str, List[str]] = field(default_factory=dict)
    normal_statements: List[str] = field(default_factory=list)
    packs: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._matchers: Dict[str, Tuple[Pattern[str], Dict[str, str]]] = {}
        self._index = None  # the word index of medseg_r.report.mentions, built on first use
        self._normal: Optional[Pattern[str]] = None

    def add_pack(self, data: dict, name: str) -> None:
        """Merge one pack. A term a later pack gives another code (in the same group) moves to
        it: the later pack wins. Each key and list is checked (a misspelt key, a term list
        written as one string, is a ``ValueError`` naming it)."""
        if not isinstance(data, dict):
            raise ValueError(f"vocabulary pack {name!r} must be a mapping, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in PACK_KEYS)
        if unknown:
            raise ValueError(f"vocabulary pack {name!r}: unknown key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(PACK_KEYS))})")
        for group in _TERM_GROUPS:
            for code, words in _mapping(data.get(group), group, name).items():
                codes = self.terms.setdefault(group, {})
                bucket = codes.setdefault(str(code), [])
                for word in _listed(words, f"{group}: {code}", name):
                    word = _term(word, name)
                    for other, held in codes.items():  # the later pack wins
                        if other != str(code) and word in held:
                            held.remove(word)
                    if word not in bucket:
                        bucket.append(word)
        for entry in _listed(data.get("segments"), "segments", name):
            if not isinstance(entry, dict):
                raise ValueError(f"vocabulary pack {name!r}: each segment must be a mapping with "
                                 f"'terms' and segment/side/zones/organ, got {entry!r}")
            if "terms" not in entry or not any(entry.get(k) for k in ("segment", "side", "zones", "organ")):
                raise ValueError(f"vocabulary pack {name!r}: each segment needs 'terms' and at least one of "
                                 f"segment/side/zones/organ: {entry}")
            for key in ("side", "organ", "segment"):
                if entry.get(key) is not None and not isinstance(entry[key], str):
                    raise ValueError(f"vocabulary pack {name!r}: segment {key} must be text, got "
                                     f"{entry[key]!r}")
            seg = Segment(
                segment=None if entry.get("segment") is None else str(entry["segment"]),
                side=entry.get("side"),
                zones=tuple(_term(z, name) for z in _listed(entry.get("zones"), "segments: zones",
                                                             name)),
                organ=entry.get("organ"),
            )
            for term in _listed(entry["terms"], "segments: terms", name):
                self.segments[_term(term, name).lower()] = seg
        for key in _LIST_GROUPS:
            bucket = getattr(self, key)
            for word in _listed(data.get(key), key, name):
                word = _term(word, name)
                if word not in bucket:
                    bucket.append(word)
        for kind, words in _mapping(data.get("context"), "context", name).items():
            bucket = self.context.setdefault(kind, [])
            for word in _listed(words, f"context: {kind}", name):
                word = _term(word, name)
                if word not in bucket:
                    bucket.append(word)
        for pattern in _listed(data.get("normal_statements"), "normal_statements", name):
            pattern = _pattern(pattern, name)
            if pattern not in self.normal_statements:
                self.normal_statements.append(pattern)
        self.packs.append(name)
        self._matchers.clear()
        self._index = None
        self._normal = None

    def matcher(self, group: str) -> Tuple[Pattern[str], Dict[str, str]]:
        """A compiled regex over every term of ``group`` and the map term -> code.

        ``group`` is a term group, ``"segments"``, ``"anchors"`` or ``"context:<kind>"``.
        """
        if group not in self._matchers:
            lookup = self.lookup(group)
            self._matchers[group] = (compile_terms(lookup), lookup)
        return self._matchers[group]

    def lookup(self, group: str) -> Dict[str, str]:
        """The map term -> code of ``group`` (same groups as :meth:`matcher`)."""
        if group == "segments":
            return {t: t for t in self.segments}
        if group in _LIST_GROUPS:
            return {t: t for t in getattr(self, group)}
        if group.startswith("context:"):
            kind = group.split(":", 1)[1]
            return {t: kind for t in self.context.get(kind, [])}
        return {w: code for code, words in self.terms.get(group, {}).items() for w in words}

    def index(self):
        """The word index of every term (:class:`medseg_r.report.mentions.TermIndex`), cached."""
        if self._index is None:
            from .mentions import TermIndex

            self._index = TermIndex(self)
        return self._index

    def normal_matcher(self) -> Pattern[str]:
        """One case-insensitive regex over every ``normal_statements`` pattern; never matches if
        there is none."""
        if self._normal is None:
            body = "|".join(f"(?:{p})" for p in self.normal_statements) or r"(?!x)x"
            self._normal = re.compile(body, re.IGNORECASE)
        return self._normal

    def codes(self, group: str) -> List[str]:
        return list(self.terms.get(group, {}))


def _listed(value: object, where: str, pack: str) -> list:
    """A pack's list (``None`` or an empty container: empty); a string or a mapping where a list
    belongs is an error."""
    if value is None or (isinstance(value, (list, dict, str)) and not value):
        return []
    if not isinstance(value, list):
        raise ValueError(f"vocabulary pack {pack!r}: {where} must be a list of terms, got "
                         f"{value!r} (write [term] for one term)")
    return value


def _mapping(value: object, where: str, pack: str) -> dict:
    """A pack's mapping (``None`` or an empty container: empty); anything else is an error naming
    it."""
    if value is None or (isinstance(value, (list, dict, str)) and not value):
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"vocabulary pack {pack!r}: {where} must be a mapping of code -> list "
                         f"of terms, got {type(value).__name__}")
    return value


def _term(word: object, pack: str) -> str:
    # YAML reads bare no/yes/on/off as booleans: a silent "False" term would never match, so refuse it.
    if not isinstance(word, (str, int, float)) or isinstance(word, bool):
        raise ValueError(f"vocabulary pack {pack!r}: term {word!r} is not text (quote words such as \"no\" in YAML)")
    word = str(word).strip().lower()
    if not word:
        raise ValueError(f"vocabulary pack {pack!r}: empty term")
    return word


def _pattern(pattern: object, pack: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"vocabulary pack {pack!r}: normal_statements entry {pattern!r} is not a "
                         "regular expression (a non-empty string)")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"vocabulary pack {pack!r}: normal_statements entry {pattern!r} is not a "
                         f"valid regular expression: {exc}") from None
    return pattern


def compile_terms(terms: Iterable[str]) -> Pattern[str]:
    """One regex matching any of ``terms`` as whole words, longest first; never matches if empty."""
    words = sorted(set(terms), key=len, reverse=True)
    if not words:
        return re.compile(r"(?!x)x")
    body = "|".join(_term_regex(w) for w in words)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])")


def _term_regex(term: str) -> str:
    # Spaces and hyphens inside a term match any run of spaces/hyphens ("ground glass" = "ground-glass").
    parts = [re.escape(p) for p in re.split(r"[\s-]+", term) if p]
    pattern = r"[\s-]+".join(parts)
    if term.endswith("?"):
        return re.escape(term)
    return pattern


def _read_pack(path: Path) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ValueError(f"vocabulary pack not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"vocabulary pack {path} is not valid YAML: {exc}") from None


def env_packs() -> List[str]:
    """The vocabulary packs named in ``$MEDSEG_R_VOCAB`` (``os.pathsep``-separated), in merge order."""
    return [p for p in os.environ.get("MEDSEG_R_VOCAB", "").split(os.pathsep) if p]


def load_vocabulary(extra: Sequence[str | os.PathLike] = (), *, builtin: Sequence[str] = BUILTIN_PACKS) -> Vocabulary:
    """Merge the built-in packs, the packs named in ``$MEDSEG_R_VOCAB`` and ``extra`` (in that order)."""
    if isinstance(extra, (str, os.PathLike)):  # one pack given alone, not its characters
        extra = [extra]
    vocab = Vocabulary()
    for name in builtin:
        text = resources.files("medseg_r.report").joinpath("vocab", f"{name}.yaml").read_text("utf-8")
        vocab.add_pack(yaml.safe_load(text) or {}, name)
    for path in [*env_packs(), *extra]:
        vocab.add_pack(_read_pack(Path(path)), str(path))
    return vocab


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The vocabulary used by :func:`medseg_r.parse_report` when none is given (cached)."""
    return load_vocabulary()

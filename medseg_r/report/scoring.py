"""Field accuracy of the report reader against an annotated file (reusable on any annotated JSONL).

Annotated file: one JSON object per line, ``{"text": ..., "findings": [{field: value, ...}, ...]}``.
Fields not given in an expected finding take the empty value (``null``, ``[]`` or ``false``), so every
field of every finding is scored. Expected and parsed findings are aligned greedily, in order, preferring
the same target and then the most agreeing fields. An expected finding with no partner scores every field
wrong; each parsed finding with no partner costs one ``finding_count`` error for its report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ..io.jsonl import read_jsonl_rows
from .parser import parse_report
from .schema import Finding, Report

FIELDS = ("target", "side", "zones", "organ", "segment", "image_region", "texture", "shape", "size_mm",
          "size_class", "count", "negated", "uncertain", "artefact")
_LISTS = {"zones", "texture", "shape"}
_FLAGS = ("negated", "uncertain", "artefact")
_DEFAULTS = {f: ([] if f in _LISTS else False if f in _FLAGS else None) for f in FIELDS}


def finding_fields(f: Finding) -> Dict[str, object]:
    loc = f.location
    return {"target": f.target, "side": loc.side, "zones": loc.zones, "organ": loc.organ, "segment": loc.segment,
            "image_region": loc.image_region, "texture": f.texture, "shape": f.shape, "size_mm": f.size_mm,
            "size_class": f.size_class, "count": f.count, "negated": f.negated,
            "uncertain": f.uncertain, "artefact": f.artefact}


def _same(name: str, expected, got) -> bool:
    if name in _LISTS:
        return set(expected or []) == set(got or [])
    if name == "size_mm":
        if expected is None or got is None:
            return expected is None and got is None
        return abs(float(expected) - float(got)) <= 0.5
    return expected == got


@dataclass
class Score:
    correct: Dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS + ("finding_count",)})
    total: Dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS + ("finding_count",)})
    errors: List[Dict[str, object]] = field(default_factory=list)

    def add(self, name: str, ok: bool) -> None:
        self.total[name] += 1
        self.correct[name] += int(ok)

    @property
    def per_field(self) -> Dict[str, float]:
        return {k: self.correct[k] / self.total[k] for k in self.total if self.total[k]}

    @property
    def overall(self) -> float:
        total = sum(self.total.values())
        return sum(self.correct.values()) / total if total else 1.0

    def table(self) -> str:
        rows = [f"{'field':<14}{'accuracy':>10}{'n':>7}"]
        for k, acc in self.per_field.items():
            rows.append(f"{k:<14}{100 * acc:>9.1f}%{self.total[k]:>7}")
        rows.append(f"{'ALL FIELDS':<14}{100 * self.overall:>9.1f}%{sum(self.total.values()):>7}")
        return "\n".join(rows)


def _align(expected: List[Dict[str, object]], parsed: List[Dict[str, object]]) -> List[Tuple[int, Optional[int]]]:
    free = list(range(len(parsed)))
    pairs = []
    for i, exp in enumerate(expected):
        def rank(j):
            agree = sum(_same(k, exp[k], parsed[j][k]) for k in FIELDS)
            return (parsed[j]["target"] == exp["target"], agree, -j)
        best = max(free, key=rank, default=None)
        if best is not None:
            free.remove(best)
        pairs.append((i, best))
    return pairs


def score_reports(rows: Iterable[Dict[str, object]], *, parse: Callable[[str], Report] = parse_report) -> Score:
    """Score ``parse`` on annotated ``rows`` (dicts with ``text`` and ``findings``)."""
    result = Score()
    for row in rows:
        text = str(row["text"])
        expected = [{**_DEFAULTS, **f} for f in row.get("findings", [])]  # type: ignore[union-attr]
        parsed = [finding_fields(f) for f in parse(text).findings]
        result.add("finding_count", len(expected) == len(parsed))
        for i, j in _align(expected, parsed):
            got = parsed[j] if j is not None else None
            for name in FIELDS:
                ok = got is not None and _same(name, expected[i][name], got[name])
                result.add(name, ok)
                if not ok:
                    result.errors.append({"text": text, "finding": i, "field": name, "expected": expected[i][name],
                                          "got": None if got is None else got[name]})
        if len(parsed) != len(expected):
            result.errors.append({"text": text, "field": "finding_count", "expected": len(expected), "got": len(parsed)})
    return result


def load_annotations(path: str) -> List[Dict[str, object]]:
    """The rows of an annotated JSON-lines file; a bad line is a ``ValueError`` naming the line."""
    rows = []
    for number, row in read_jsonl_rows(path):
        if "text" not in row:
            raise ValueError(f"{path}, line {number}: missing 'text'")
        unknown = {k for f in row.get("findings", []) for k in f} - set(FIELDS)
        if unknown:
            raise ValueError(f"{path}, line {number}: unknown field(s) {sorted(unknown)}; fields are {FIELDS}")
        rows.append(row)
    return rows


def score_file(path: str) -> Score:
    """Field accuracy of :func:`parse_report` on an annotated JSONL file."""
    return score_reports(load_annotations(path))

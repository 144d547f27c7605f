"""Human-readable summaries of parsed reports, with evidence spans coloured in a terminal."""
from __future__ import annotations

from typing import List, Tuple

from .schema import Report

COLOURS = {"location": "34", "texture": "33", "shape": "35", "target": "32",
           "normal": "36"}  # blue, yellow, magenta, green, cyan


def highlight(text: str, spans: List[Tuple[int, int, str]], *, colour: bool = True) -> str:
    """``text`` with each ``(start, end, kind)`` span wrapped in an ANSI colour (or ``[brackets]``)."""
    out, pos = [], 0
    for start, end, kind in sorted(spans):
        if start < pos:
            continue
        out.append(text[pos:start])
        piece = text[start:end]
        out.append(f"\033[1;{COLOURS.get(kind, '37')}m{piece}\033[0m" if colour else f"[{piece}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def summarise(report: Report, *, colour: bool = True) -> str:
    """A few lines per finding: the text with its evidence highlighted, then the structured fields."""
    spans = [(s, e, kind) for f in report.findings for kind, ranges in f.spans.items() for s, e in ranges]
    spans += [(s, e, "normal") for s, e in report.normal_statements]
    lines = [highlight(report.text, spans, colour=colour)]
    if not report.findings:
        lines.append("  (no finding; a normal study stated: an empty mask)" if report.normal_statements
                     else "  (no finding)")
    for i, f in enumerate(report.findings, 1):
        loc = f.location
        where = ", ".join(str(v) for v in (loc.side, "/".join(loc.zones) or None, loc.organ, loc.segment,
                                           loc.image_region and f"image {loc.image_region}") if v)
        flags = " NEGATED" if f.negated else " uncertain" if f.uncertain else ""
        size = f"{f.size_mm:g} mm" if f.size_mm else ""
        size = " ".join(x for x in (size, f.size_class or "") if x)
        lines.append(f"  {i}. {f.target or '?'}{flags}")
        lines.append(f"     location: {where or '-'} | texture: {', '.join(f.texture) or '-'} | "
                     f"shape: {', '.join(f.shape) or '-'} | size: {size or '-'} | count: {f.count or '-'}")
    if colour:
        legend = " ".join(f"\033[1;{c}m{k}\033[0m" for k, c in COLOURS.items())
        lines.append(f"  legend: {legend}")
    return "\n".join(lines)

"""Sizes ("2 cm", "12 x 8 mm", "sub-centimetre") and counts ("two", "multiple", "3 nodules")."""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

_NUM = r"(\d+(?:[.,]\d+)?)"
_UNIT = r"(mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?)"
_SEP = r"\s*(?:x|×|\*|by)\s*"
SIZE_RE = re.compile(
    rf"(?<![\w.]){_NUM}(?:\s*{_UNIT})?(?:{_SEP}{_NUM}(?:\s*{_UNIT})?)?(?:{_SEP}{_NUM})?\s*-?\s*{_UNIT}(?![a-z])"
)
_NEGATIVE_RE = re.compile(r"(?:^|[\s(\[:=])[-\u2212]$")  # a minus sign just before a number
_RANGE_START_RE = re.compile(r"\d(?:\s*(?:mm|cm))?\s*$")  # what ends before a range's hyphen
_DISTANCE_RE = re.compile(r"\s+(?:from|away from|deep to|below|above|proximal to|distal to|fn|ffn)\b")
# "polyp at 30 cm" (from the anal verge) is a distance; "previously 11 mm", "decreased from 15 mm
# to 9 mm", "compared with 2 cm" a size of before
_AT_RE = re.compile(r"(?<!measured )(?<!measuring )(?<!estimated )(?<!prior )\bat\s+$")
_AT_DISTANCE_MM = 100.0  # "at 30 cm": a colonoscope's distance; "the nodule, at 6 mm" is a size
_BEFORE_RE = re.compile(r"\b(?:(?:previously|formerly)(?:\s+(?:measuring|measured|at))?|prior|from|"
                        r"compared\s+(?:with|to)|versus|vs\.?)\s*[(\[]?\s*$")
# The largest dimension read as a lesion's size (50 cm: the width of an adult chest); a larger
# number is a typing error or not a lesion, and is not read.
MAX_SIZE_MM = 500.0
DIGIT_COUNT_RE = re.compile(r"(?<![\w.:/])(\d{1,2})(?![\d.,])\s+(?!mm|cm|x\b|o'?clock|:)")


def _to_float(value: str) -> float:
    return float(value.replace(",", "."))


def find_sizes(text: str) -> List[Tuple[int, int, float]]:
    """Every size in ``text`` as ``(start, end, largest_dimension_mm)``."""
    out = []
    for m in SIZE_RE.finditer(text):
        if _DISTANCE_RE.match(text, m.end()):
            continue  # "1.4 cm from the nipple", "5 cm FN": distances, not sizes
        if _BEFORE_RE.search(text, max(0, m.start() - 40), m.start()):
            continue  # "previously 11 mm": the size it had
        if _NEGATIVE_RE.search(text, max(0, m.start() - 2), m.start()) and \
                not _RANGE_START_RE.search(text, max(0, m.start() - 24), m.start() - 1):
            continue  # "-5 mm" is not a size (a range "2-3 mm" or "2 -3 mm" is: a number before it)
        groups = m.groups()
        numbers = [groups[0], groups[2], groups[4]]
        units = [groups[1], groups[3], groups[5]]
        final_unit = units[-1] or ""
        values = []
        for i, num in enumerate(numbers):
            if num is None:
                continue
            unit = units[i] if i < 2 and units[i] else final_unit
            scale = 10.0 if unit.startswith("c") else 1.0
            values.append(_to_float(num) * scale)
        if values and max(values) >= _AT_DISTANCE_MM and _AT_RE.search(text, max(0, m.start() - 16),
                                                                        m.start()):
            continue  # "polyp 6 mm at 30 cm": a distance
        if values and 0 < max(values) <= MAX_SIZE_MM:  # "0 mm" or "99999 mm" is not a size
            out.append((m.start(), m.end(), max(values)))
    return out


def size_class_from_mm(size_mm: Optional[float]) -> Optional[str]:
    """``small`` below 10 mm, ``medium`` 10-30 mm, ``large`` above 30 mm (documented convention)."""
    if size_mm is None:
        return None
    if size_mm < 10:
        return "small"
    if size_mm <= 30:
        return "medium"
    return "large"

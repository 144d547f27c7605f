"""JSON-lines files (manifests): one object per line, errors that name the file and the line."""
from __future__ import annotations

import json
from typing import Dict, List, Tuple


def parse_json_object(text: str) -> Dict[str, object]:
    """The JSON object of a text (one JSON-lines row, a command-line option). Text that is not JSON,
    or whose JSON is not an object, is a ``ValueError`` saying which (the callers say where it came
    from)."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    return row


def jsonl_lines(text: str) -> List[str]:
    """The lines of a JSON-lines text: split at "\\n" only (a report may hold U+2028, which JSON
    keeps unescaped and ``str.splitlines`` would split at), a "\\r" before it dropped."""
    return [line.rstrip("\r") for line in text.split("\n")]


def read_jsonl_rows(path: str) -> List[Tuple[int, Dict[str, object]]]:
    """``(line number, row)`` of each non-blank line of a JSON-lines file (a byte-order mark
    dropped). A line that is not a JSON object is a ``ValueError`` naming the file and the line."""
    from .text import read_text

    rows = []
    for number, line in enumerate(jsonl_lines(read_text(path)), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, parse_json_object(line)))
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: {exc}") from None
    return rows

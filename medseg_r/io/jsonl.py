"""JSON-lines files (manifests): one object per line, errors that name the file and the line."""
from __future__ import annotations

import json
from typing import Dict, List, Tuple


def read_jsonl_rows(path: str) -> List[Tuple[int, Dict[str, object]]]:
    """``(line number, row)`` of each non-blank line of a JSON-lines file. A line that is not JSON, or
    whose JSON is not an object, is a ``ValueError`` naming the file and the line."""
    from .text import read_text

    rows = []
    # a byte-order mark dropped; lines end at "\n" only (a report may hold U+2028, which JSON keeps
    # unescaped and str.splitlines would split at)
    for number, line in enumerate(read_text(path).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object, got "
                             f"{type(row).__name__}")
        rows.append((number, row))
    return rows

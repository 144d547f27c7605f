"""Manifest rows chosen by the file's ending: ``.csv`` (:mod:`.csv_rows`) or ``.jsonl``
(:mod:`.jsonl`), each row with the line of the file it starts on."""
from __future__ import annotations

from typing import Dict, List, Tuple

ROW_FILE_ENDINGS = (".csv", ".jsonl")


def read_rows(path: str) -> List[Tuple[int, Dict[str, object]]]:
    """``(line number, row)`` of each row of a ``.csv`` (its header is line 1, so the first row is
    line 2 unless blank lines come between; the line a row ends on when a quoted field spans several) or
    ``.jsonl`` manifest (blank lines skipped). Another ending, or a file that cannot be
    read as its ending says, is a ``ValueError`` naming the file."""
    from .csv_rows import read_csv_lines
    from .jsonl import read_jsonl_rows

    ending = path.lower()
    if ending.endswith(".csv"):
        return read_csv_lines(path)
    if ending.endswith(".jsonl"):
        return read_jsonl_rows(path)
    raise ValueError(f"{path}: a manifest must be {' or '.join(ROW_FILE_ENDINGS)}")


__all__ = ["ROW_FILE_ENDINGS", "read_rows"]

"""CSV manifests as spreadsheets save them: a byte-order mark (Excel's "CSV UTF-8") or a legacy
encoding is read as written (:mod:`.text`), and a semicolon-separated file is named as such."""
from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Dict, List, Tuple

from .text import read_text

FIELD_LIMIT = 2**31 - 1  # the largest a C long holds on every platform
_EXTRA = "\0extra"  # where DictReader puts a row's fields beyond the header's


def read_csv_rows(path: str) -> List[Dict[str, str]]:
    """The rows of a CSV file with a header, as dicts (:func:`read_csv_lines` without the line
    numbers)."""
    return [row for _, row in read_csv_lines(path)]


def read_csv_lines(path: str) -> List[Tuple[int, Dict[str, str]]]:
    """``(line number, row)`` of each row of a CSV file with a header, the row a dict. A header of
    one column holding ";" (a semicolon-separated export: save it with commas), or a file the
    ``csv`` module refuses, is a ``ValueError`` naming the file. Fields may be longer than the ``csv``
    module's default limit (131,072 characters; the report parser's own is 200,000, and a longer
    report is that case's error, not the file's): the limit is raised while the file is read and
    then restored.

    A row with more fields than the header, where they hold text or where the file's other rows do
    not have them (an unquoted comma in a report moved its split into a spare column and cut the
    report), is a ``ValueError`` listing such lines; a trailing comma on every row, fields a short
    row lacks (``None``) and rows of blanks (no row) load."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), restkey=_EXTRA)
    before = csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    rows = []
    try:
        for row in reader:
            start = reader.line_num  # the line the row ends on (a quoted field may span several)
            surplus = row.pop(_EXTRA, [])
            if all(value is None or not str(value).strip() for value in row.values()) and \
                    not any(str(value).strip() for value in surplus):
                continue  # a line of spaces or commas
            rows.append((start, row, surplus))
    except csv.Error as exc:
        raise ValueError(f"{path}: not readable as CSV, near line {reader.line_num + 1} ({exc})") from None
    finally:
        csv.field_size_limit(before)
    header = reader.fieldnames or []
    if len(header) == 1 and ";" in header[0]:
        raise ValueError(f"{path}: the header {header[0]!r} looks semicolon-separated; save the "
                         f"manifest with commas")
    usual = Counter(len(surplus) for _, _, surplus in rows).most_common(1)
    usual = usual[0][0] if usual else 0  # the file's own trailing commas, when every row has them
    uneven = [f"line {line}: {len(header) + len(surplus)} fields" for line, _, surplus in rows
              if any(str(value).strip() for value in surplus) or len(surplus) > usual]
    if uneven:
        from .text import first_few

        raise ValueError(f"{path}: {len(uneven)} row(s) have more fields than the header's "
                         f"{len(header)} ({first_few(uneven, 3)}): a comma inside a report or path "
                         f"must be quoted (\"..., 5.4 cm\"), as spreadsheets save it")
    return [(line, row) for line, row, _ in rows]


__all__ = ["read_csv_lines", "read_csv_rows"]

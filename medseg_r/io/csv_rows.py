"""CSV manifests as spreadsheets save them: a byte-order mark (Excel's "CSV UTF-8") or a legacy
encoding is read as written (:mod:`.text`), and a semicolon-separated file is named as such."""
from __future__ import annotations

import csv
import io
from typing import Dict, List

from .text import read_text

FIELD_LIMIT = 2**31 - 1  # the largest a C long holds on every platform
_EXTRA = "\0extra"  # where DictReader puts a row's fields beyond the header's


def read_csv_rows(path: str) -> List[Dict[str, str]]:
    """The rows of a CSV file with a header, as dicts. A header of one column holding ";" (a
    semicolon-separated export: save it with commas), or a file the ``csv`` module refuses, is a
    ``ValueError`` naming the file. Fields may be longer than the ``csv`` module's default limit
    (131,072 characters; the report parser's own is 200,000, and a longer report is that case's
    error, not the file's): the limit is raised while the file is read and then restored. A row with
    text beyond the header's fields (an unquoted comma in a report moved its split into a spare
    column and cut the report) is a ``ValueError`` listing such lines; empty surplus fields (a
    trailing comma) are dropped, fields a short row lacks are ``None`` (left out), and a row of
    blanks is no row."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), restkey=_EXTRA)
    before = csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    rows, uneven = [], []
    try:
        for row in reader:
            surplus = row.pop(_EXTRA, [])
            if any(str(value).strip() for value in surplus):
                fields = len(row) + len(surplus)
                uneven.append(f"line {reader.line_num}: {fields} fields")
            if all(value is None or not str(value).strip() for value in row.values()) and \
                    not any(str(value).strip() for value in surplus):
                continue  # a line of spaces or commas
            rows.append(row)
    except csv.Error as exc:
        raise ValueError(f"{path}: not readable as CSV, near line {reader.line_num + 1} ({exc})") from None
    finally:
        csv.field_size_limit(before)
    header = reader.fieldnames or []
    if len(header) == 1 and ";" in header[0]:
        raise ValueError(f"{path}: the header {header[0]!r} looks semicolon-separated; save the "
                         f"manifest with commas")
    if uneven:
        from .text import first_few

        raise ValueError(f"{path}: {len(uneven)} row(s) have more fields than the header's "
                         f"{len(header)} ({first_few(uneven, 3)}): a comma inside a report or path "
                         f"must be quoted (\"..., 5.4 cm\"), as spreadsheets save it")
    return rows


__all__ = ["read_csv_rows"]

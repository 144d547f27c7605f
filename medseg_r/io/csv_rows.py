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
    more or fewer fields than the header (an unquoted comma in a report moved its split into a
    spare column and cut the report) is a ``ValueError`` listing such lines."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), restkey=_EXTRA)
    before = csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    rows, uneven = [], []
    try:
        for row in reader:
            if _EXTRA in row or any(value is None for value in row.values()):
                fields = len(row) - 1 + len(row[_EXTRA]) if _EXTRA in row else \
                    sum(value is not None for value in row.values())
                uneven.append(f"line {reader.line_num}: {fields} fields")
            rows.append(dict(row))
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

        raise ValueError(f"{path}: {len(uneven)} row(s) do not have the header's {len(header)} fields "
                         f"({first_few(uneven, 3)}): a comma inside a report or path must be quoted "
                         f"(\"..., 5.4 cm\"), as spreadsheets save it")
    return rows


__all__ = ["read_csv_rows"]

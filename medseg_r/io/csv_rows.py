"""CSV manifests as spreadsheets save them: a byte-order mark (Excel's "CSV UTF-8") or a legacy
encoding is read as written (:mod:`.text`), and a semicolon-separated file is named as such."""
from __future__ import annotations

import csv
import io
from typing import Dict, List

from .text import read_text

FIELD_LIMIT = 2**31 - 1  # the largest a C long holds on every platform


def read_csv_rows(path: str) -> List[Dict[str, str]]:
    """The rows of a CSV file with a header, as dicts. A header of one column holding ";" (a
    semicolon-separated export: save it with commas), or a file the ``csv`` module refuses, is a
    ``ValueError`` naming the file. Fields may be longer than the ``csv`` module's default limit
    (131,072 characters; the report parser's own is 200,000, and a longer report is that case's
    error, not the file's): the limit is raised while the file is read and then restored."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    before = csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise ValueError(f"{path}: not readable as CSV, near line {reader.line_num + 1} ({exc})") from None
    finally:
        csv.field_size_limit(before)
    header = reader.fieldnames or []
    if len(header) == 1 and ";" in header[0]:
        raise ValueError(f"{path}: the header {header[0]!r} looks semicolon-separated; save the "
                         f"manifest with commas")
    return rows


__all__ = ["read_csv_rows"]

"""Report text files as people save them: UTF-8 with or without a byte-order mark, or a legacy
Windows/Latin-1 encoding (read as such, with a one-line notice, rather than with replaced
characters)."""
from __future__ import annotations

import sys
from typing import Tuple


def decode_text(data: bytes) -> Tuple[str, str]:
    """``(text, encoding)``: UTF-16 where a byte-order mark says so (Windows Notepad's "Unicode"),
    UTF-8 (a leading byte-order mark dropped), else Windows-1252, else Latin-1 (which decodes any
    byte)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def read_text(path: str) -> str:
    """The text of ``path`` (:func:`decode_text`), with a notice on stderr when it was not UTF-8."""
    with open(path, "rb") as handle:
        return _noted(handle.read(), path)


def read_stdin_text() -> str:
    """Standard input's text, decoded from its bytes as :func:`read_text` decodes a file's (where
    standard input has no bytes layer, e.g. replaced by a text stream, its text as given)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin.read() if sys.stdin is not None else ""
    return _noted(buffer.read(), "standard input")


def _noted(data: bytes, name: str) -> str:
    text, encoding = decode_text(data)
    if encoding not in ("utf-8-sig", "utf-16"):
        print(f"medseg-r: warning: {name} is not UTF-8; read as {encoding}", file=sys.stderr)
    return text


def first_few(items, limit: int) -> str:
    """``items`` joined by "; ", the first ``limit`` of them and how many more: for error messages
    that list what is wrong without printing thousands of lines."""
    items = list(items)
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


__all__ = ["decode_text", "first_few", "read_stdin_text", "read_text"]

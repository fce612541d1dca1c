"""Line iteration over plain or gzipped text files with 1-based line numbers."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataFormatError


def open_text(path: str | Path):
    """Open a text file (transparently gunzipping ``*.gz``)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)``; undecodable bytes raise an error naming the line."""
    with open_text(path) as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, start=1):  # noqa: B007 - used after loop on error
                yield lineno, line
        except UnicodeDecodeError:
            raise DataFormatError(path, lineno + 1, "not valid UTF-8") from None

"""Line iteration over plain or gzipped text files with 1-based line numbers.

Lines are decoded one at a time so that invalid UTF-8 is reported at its exact line.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataFormatError


def _open_binary(path: Path):
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (line endings kept); bad UTF-8 raises an error naming the line."""
    path = Path(path)
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFormatError(path, lineno, "not valid UTF-8") from None

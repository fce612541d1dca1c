"""Text files: line iteration over plain or gzipped files with 1-based line numbers, YAML and config files.

Lines are decoded one at a time so that invalid UTF-8 is reported at its exact line.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import DataFormatError

V = TypeVar("V")


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


def read_pairs(path: str | Path, parse: Callable[[int, str], tuple[str, str, V] | None],
               duplicate: str = "duplicate judgment for query {qid!r}, doc {did!r}") -> dict[str, dict[str, V]]:
    """Read a ``{query_id: {doc_id: value}}`` table (qrels, runs) line by line.

    ``parse(lineno, line)`` returns ``(query_id, doc_id, value)`` or None to skip the line, and raises
    :class:`DataFormatError` for a malformed one; a repeated (query, doc) pair and an empty file are
    errors here, named by file and line.
    """
    table: dict[str, dict[str, V]] = {}
    n = 0
    for lineno, line in iter_lines(path):
        row = parse(lineno, line)
        if row is None:
            continue
        qid, did, value = row
        docs = table.setdefault(qid, {})
        if did in docs:
            raise DataFormatError(path, lineno, duplicate.format(qid=qid, did=did))
        docs[did] = value
        n += 1
    if n == 0:
        raise DataFormatError(path, None, "file is empty")
    return table


def read_yaml(path: str | Path):
    """Parse a YAML file; a syntax error or bad UTF-8 raises :class:`DataFormatError` naming the line."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataFormatError(path, None, "not valid UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataFormatError(path, mark.line + 1 if mark else None, f"YAML syntax error: {problem}") from None


def read_config_file(path: str | Path, what: str) -> dict:
    """The options of a YAML config file (``what``: "training config", "experiment config"), the one
    loader behind every ``from_yaml``: a missing file, a syntax error or a top level that is not a
    mapping is a one-line error; an empty file is no options."""
    from ..errors import ConfigError

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} not found")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping of option: value")
    return data

"""Judgment files: the one strict reader and the atomic writer.

``judgments.jsonl`` has one :class:`~utilabel.records.Judgment` per line (``query_id``,
``doc_id``, ``method``, ``relevance``, ``utility``, ``rank``, ``score``, ``model``,
``prompt_id``), written atomically; :func:`read_judgments` is the one strict reader (of one or more
files). How judgments become labels is :mod:`utilabel.labels`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path

from ..errors import ConfigError, DataFormatError
from ..fileio import atomic_write
from ..records import Judgment
from .beir import iter_jsonl

_FIELDS = {f.name for f in fields(Judgment)}


def write_judgments(path: str | Path, judgments: Iterable[Judgment]) -> None:
    """Write judgments as JSONL, atomically (never half a file)."""
    with atomic_write(path) as fh:
        for j in judgments:
            fh.write(json.dumps(asdict(j), ensure_ascii=False) + "\n")


def read_judgments(paths: str | Path | Iterable[str | Path]) -> list[Judgment]:
    """Judgments of one or more JSONL files; a missing file, a malformed line or an unknown field
    raises (:class:`ConfigError` / :class:`DataFormatError` naming file and line)."""
    out = []
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        if not Path(path).is_file():
            raise ConfigError(f"judgments file {path} not found")
        if not Path(path).read_bytes().strip():
            continue  # a run whose every query failed has an empty (valid) judgments file
        for lineno, obj in iter_jsonl(path):
            unknown = set(obj) - _FIELDS
            if unknown or not {"query_id", "doc_id", "method"} <= set(obj):
                raise DataFormatError(path, lineno, f"not a judgment (fields {sorted(obj)})")
            problem = _value_problem(obj)
            if problem:
                raise DataFormatError(path, lineno, problem)
            try:
                out.append(Judgment(**{**obj, "query_id": str(obj["query_id"]), "doc_id": str(obj["doc_id"])}))
            except TypeError as exc:
                raise DataFormatError(path, lineno, str(exc)) from None
    return out


def _value_problem(obj: dict) -> str | None:
    """Why a judgment's values are unusable (None when fine): ``utility`` and ``relevance`` must be null
    or numbers in [0, 1], ``score`` null or a number (not NaN)."""
    for key in ("utility", "relevance", "score"):
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key!r} must be a number or null, got {value!r}"
        if math.isnan(value) or (key != "score" and not 0 <= value <= 1):
            return f"{key!r} must be {'a number' if key == 'score' else 'in [0, 1]'}, got {value!r}"
    return None

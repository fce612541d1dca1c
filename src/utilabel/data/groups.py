"""JSONL training groups.

utilabel's own format, one query per line, documents by id::

    {"query_id": "q1", "query": "text", "positives": {"d1": 1.0, "d7": 0.5}, "negatives": ["d3", "d9"]}

``positives`` may also be a list of ids (weight 1.0 each). The FlagEmbedding / BGE fine-tuning
format (``{"query", "pos": [text], "neg": [text]}``) is read by :func:`read_flag_groups`, which
returns groups plus the passage texts keyed by a stable content hash; :func:`read_any_groups` reads
either, telling them apart by the first line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path

from ..errors import DataFormatError
from ..fileio import atomic_write
from ..records import TrainingGroup
from .beir import iter_jsonl


def _str_list(path, lineno, obj, key) -> list[str]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise DataFormatError(path, lineno, f"field {key!r} must be a list of strings")
    return [str(v) for v in value]


def read_groups(path: str | Path) -> list[TrainingGroup]:
    groups: list[TrainingGroup] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path):
        for key in ("query_id", "query", "positives"):
            if key not in obj:
                raise DataFormatError(path, lineno, f"missing field {key!r}")
        qid = str(obj["query_id"])
        if qid in seen:
            raise DataFormatError(path, lineno, f"duplicate query id {qid!r}")
        seen.add(qid)
        pos = obj["positives"]
        if isinstance(pos, list):
            positives = {str(d): 1.0 for d in pos}
        elif isinstance(pos, dict):
            try:
                positives = {str(d): float(w) for d, w in pos.items()}
            except (TypeError, ValueError):
                raise DataFormatError(path, lineno, "positive weights must be numbers") from None
            if not all(math.isfinite(w) for w in positives.values()):
                raise DataFormatError(path, lineno, "positive weights must be finite numbers")
        else:
            raise DataFormatError(path, lineno, "field 'positives' must be a list or an object")
        negatives = _str_list(path, lineno, obj, "negatives")
        overlap = set(positives) & set(negatives)
        if overlap:
            raise DataFormatError(path, lineno, f"doc {sorted(overlap)[0]!r} is both positive and negative")
        groups.append(TrainingGroup(qid, str(obj["query"]), positives, negatives))
    return groups


def write_groups(path: str | Path, groups: Iterable[TrainingGroup]) -> None:
    with atomic_write(path) as fh:
        for g in groups:
            fh.write(
                json.dumps(
                    {"query_id": g.query_id, "query": g.query, "positives": g.positives, "negatives": g.negatives},
                    ensure_ascii=False,
                )
                + "\n"
            )


def text_id(text: str) -> str:
    """Stable id for a passage known only by its text."""
    return "h" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def read_flag_groups(path: str | Path) -> tuple[list[TrainingGroup], dict[str, str]]:
    """Read FlagEmbedding ``{query, pos, neg}`` lines; returns groups and ``{doc_id: text}``."""
    groups: list[TrainingGroup] = []
    texts: dict[str, str] = {}
    for lineno, obj in iter_jsonl(path):
        if "query" not in obj or "pos" not in obj:
            raise DataFormatError(path, lineno, "missing field 'query' or 'pos'")
        pos = _str_list(path, lineno, obj, "pos")
        neg = _str_list(path, lineno, obj, "neg")
        if not pos:
            raise DataFormatError(path, lineno, "no positive passage")
        for t in pos + neg:
            texts[text_id(t)] = t
        pos_ids = {text_id(t): 1.0 for t in pos}
        neg_ids = [i for i in dict.fromkeys(text_id(t) for t in neg) if i not in pos_ids]
        groups.append(TrainingGroup(f"flag-{lineno}", str(obj["query"]), pos_ids, neg_ids))
    return groups, texts


def read_any_groups(path: str | Path) -> tuple[list[TrainingGroup], dict[str, str] | None]:
    """Groups of a file in either format: ``(groups, texts)`` for FlagEmbedding lines (passages as
    text), ``(groups, None)`` for utilabel groups (passages by id)."""
    first = next(iter_jsonl(path), (0, {}))[1]
    if isinstance(first, dict) and "pos" in first and "positives" not in first:
        return read_flag_groups(path)
    return read_groups(path), None

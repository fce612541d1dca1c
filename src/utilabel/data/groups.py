"""JSONL training groups.

utilabel's own format, one query per line, documents by id::

    {"query_id": "q1", "query": "text", "positives": {"d1": 1.0, "d7": 0.5}, "negatives": ["d3", "d9"]}

``positives`` may also be a list of ids (weight 1.0 each). An optional ``"teacher": {"d1": 2.3, ...}``
carries teacher scores of the group's passages (written only when a group has them, so files
without teacher scores are unchanged). The FlagEmbedding / BGE fine-tuning
format (``{"query", "pos": [text], "neg": [text]}``) is read by :func:`read_flag_groups`, which
returns groups plus the passage texts keyed by a stable content hash (its optional ``pos_scores`` /
``neg_scores`` lists become the groups' teacher scores); :func:`read_any_groups` reads
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
        groups.append(TrainingGroup(qid, str(obj["query"]), positives, negatives,
                                    _teacher(path, lineno, obj.get("teacher"), {*positives, *negatives})))
    return groups


def _teacher(path, lineno, value, doc_ids: set[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DataFormatError(path, lineno, "field 'teacher' must be an object {doc_id: score}")
    try:
        teacher = {str(d): float(s) for d, s in value.items()}
    except (TypeError, ValueError):
        raise DataFormatError(path, lineno, "teacher scores must be numbers") from None
    if not all(math.isfinite(s) for s in teacher.values()):
        raise DataFormatError(path, lineno, "teacher scores must be finite numbers")
    stray = sorted(set(teacher) - doc_ids)
    if stray:
        raise DataFormatError(path, lineno, f"teacher score of doc {stray[0]!r}, which is not in the group")
    return teacher


def _flag_scores(path, lineno, obj, key, n: int) -> list[float] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != n:
        raise DataFormatError(path, lineno, f"field {key!r} must be a list of {n} numbers (one per passage)")
    try:
        scores = [float(s) for s in value]
    except (TypeError, ValueError):
        raise DataFormatError(path, lineno, f"field {key!r} must hold numbers") from None
    if not all(math.isfinite(s) for s in scores):
        raise DataFormatError(path, lineno, f"field {key!r} must hold finite numbers")
    return scores


def write_groups(path: str | Path, groups: Iterable[TrainingGroup]) -> None:
    with atomic_write(path) as fh:
        for g in groups:
            rec: dict[str, object] = {"query_id": g.query_id, "query": g.query, "positives": g.positives,
                                       "negatives": g.negatives}
            if g.teacher is not None:
                rec["teacher"] = g.teacher
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


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
        teacher: dict[str, float] | None = None
        for key, passages in (("pos_scores", pos), ("neg_scores", neg)):
            scores = _flag_scores(path, lineno, obj, key, len(passages))
            if scores is not None:
                teacher = teacher or {}
                for t, s in zip(passages, scores, strict=True):
                    teacher.setdefault(text_id(t), s)  # a passage listed twice keeps its first score
        groups.append(TrainingGroup(f"flag-{lineno}", str(obj["query"]), pos_ids, neg_ids, teacher))
    return groups, texts


def read_any_groups(path: str | Path) -> tuple[list[TrainingGroup], dict[str, str] | None]:
    """Groups of a file in either format: ``(groups, texts)`` for FlagEmbedding lines (passages as
    text), ``(groups, None)`` for utilabel groups (passages by id)."""
    first = next(iter_jsonl(path), (0, {}))[1]
    if isinstance(first, dict) and "pos" in first and "positives" not in first:
        return read_flag_groups(path)
    return read_groups(path), None

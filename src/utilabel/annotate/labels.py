"""Judgment files and the labels → training groups conversion.

``judgments.jsonl`` has one :class:`~utilabel.records.Judgment` per line (``query_id``,
``doc_id``, ``method``, ``relevance``, ``utility``, ``rank``, ``score``, ``model``,
``prompt_id``), written atomically. :func:`groups_from_judgments` makes training groups: per
query, positives are the candidates whose chosen label is ≥ ``threshold`` (weight 1.0, or the
label value with ``weights="soft"``), hard negatives are the other candidates of that query.
Candidates without a label (a failed LLM step) are left out of both; queries with no positive are
skipped (nothing to learn from).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

from ..errors import ConfigError, DataFormatError
from ..fileio import atomic_write
from ..records import CandidateGroup, Judgment, Qrels, TrainingGroup

LABELS = ("utility", "relevance", "score")
_FIELDS = {f.name for f in fields(Judgment)}


def write_judgments(path: str | Path, judgments: Iterable[Judgment]) -> None:
    """Write judgments as JSONL, atomically (never half a file)."""
    with atomic_write(path) as fh:
        for j in judgments:
            fh.write(json.dumps(asdict(j), ensure_ascii=False) + "\n")


def read_judgments(path: str | Path) -> list[Judgment]:
    """Read a judgments JSONL file; malformed lines raise :class:`DataFormatError` (file, line)."""
    from ..data.beir import iter_jsonl

    if not Path(path).read_text(encoding="utf-8").strip():
        return []  # a run whose every query failed has an empty (valid) judgments file
    out = []
    for lineno, obj in iter_jsonl(path):
        unknown = set(obj) - _FIELDS
        if unknown or not {"query_id", "doc_id", "method"} <= set(obj):
            raise DataFormatError(path, lineno, f"not a judgment (fields {sorted(obj)})")
        try:
            out.append(Judgment(**{**obj, "query_id": str(obj["query_id"]), "doc_id": str(obj["doc_id"])}))
        except TypeError as exc:
            raise DataFormatError(path, lineno, str(exc)) from None
    return out


def label_of(j: Judgment, label: str) -> float | None:
    if label not in LABELS:
        raise ConfigError(f"label must be one of {', '.join(LABELS)}, got {label!r}")
    value = getattr(j, label)
    return None if value is None else float(value)


def groups_from_judgments(
    judgments: Iterable[Judgment],
    candidates: Sequence[CandidateGroup],
    label: str = "utility",
    threshold: float = 0.5,
    weights: str = "binary",
) -> list[TrainingGroup]:
    """Training groups from judgments (see module docstring), in candidate-group order.

    ``label``: ``utility`` (default), ``relevance`` or ``score``; ``weights``: ``binary`` (1.0 per
    positive) or ``soft`` (the label value, e.g. a vote fraction or graded utility).
    """
    if weights not in ("binary", "soft"):
        raise ConfigError(f"weights must be 'binary' or 'soft', got {weights!r}")
    by_query: dict[str, dict[str, float | None]] = {}
    for j in judgments:
        by_query.setdefault(j.query_id, {})[j.doc_id] = label_of(j, label)
    out = []
    for g in candidates:
        labels = by_query.get(g.query_id)
        if not labels:
            continue
        pos: dict[str, float] = {}
        neg: list[str] = []
        for c in sorted(g.candidates, key=lambda c: c.rank):
            value = labels.get(c.doc_id)
            if value is None or c.doc_id in pos or c.doc_id in neg:
                continue
            if value >= threshold:
                pos[c.doc_id] = 1.0 if weights == "binary" else value
            else:
                neg.append(c.doc_id)
        if pos:
            out.append(TrainingGroup(g.query_id, g.query, pos, neg))
    return out


def judgments_to_qrels(judgments: Iterable[Judgment], label: str = "utility", threshold: float = 0.5) -> Qrels:
    """LLM labels as binary qrels (1 = label ≥ threshold), for agreement and as training labels."""
    out: Qrels = {}
    for j in judgments:
        value = label_of(j, label)
        if value is not None:
            out.setdefault(j.query_id, {})[j.doc_id] = int(value >= threshold)
    return out

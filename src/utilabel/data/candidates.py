"""Candidate lists (first-stage results handed to annotation) as JSONL, one query per line::

    {"query_id": "q1", "query": "text", "candidates": [{"doc_id": "d3", "rank": 1, "score": 12.5}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataFormatError
from ..fileio import atomic_write
from ..records import Candidate, CandidateGroup
from .beir import iter_jsonl


def write_candidates(path: str | Path, groups: list[CandidateGroup]) -> None:
    """JSONL, one query per line: ``{"query_id", "query", "candidates": [{"doc_id", "rank", "score"}]}``."""
    with atomic_write(path) as fh:
        for g in groups:
            fh.write(json.dumps({"query_id": g.query_id, "query": g.query,
                                 "candidates": [{"doc_id": c.doc_id, "rank": c.rank, "score": c.score}
                                                for c in g.candidates]}, ensure_ascii=False) + "\n")


def read_candidates(path: str | Path) -> list[CandidateGroup]:
    groups = []
    seen = set()
    for lineno, obj in iter_jsonl(path):
        try:
            qid = str(obj["query_id"])
            cands = tuple(Candidate(str(c["doc_id"]), int(c["rank"]), float(c["score"])) for c in obj["candidates"])
            query = str(obj["query"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(path, lineno, f"bad candidate group ({exc!r})") from None
        if qid in seen:
            raise DataFormatError(path, lineno, f"duplicate query id {qid!r}")
        seen.add(qid)
        groups.append(CandidateGroup(qid, query, cands))
    return groups

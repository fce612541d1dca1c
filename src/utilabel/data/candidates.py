"""Candidate lists (first-stage results handed to annotation) as JSONL, one query per line::

    {"query_id": "q1", "query": "text", "candidates": [{"doc_id": "d3", "rank": 1, "score": 12.5}, ...]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Container
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


def read_candidates(path: str | Path, corpus: Container[str] | None = None) -> list[CandidateGroup]:
    """Candidate groups of a JSONL file; scores must be finite and, with ``corpus``, every candidate doc
    in it (else an error naming file and line)."""
    groups = []
    seen = set()
    for lineno, obj in iter_jsonl(path):
        try:
            qid = str(obj["query_id"])
            cands = tuple(Candidate(str(c["doc_id"]), int(c["rank"]), float(c["score"])) for c in obj["candidates"])
            query = str(obj["query"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(path, lineno, f"bad candidate group ({exc!r})") from None
        bad = next((c for c in cands if not math.isfinite(c.score)), None)
        if bad is not None:
            raise DataFormatError(path, lineno, f"candidate {bad.doc_id!r}: score {bad.score} is not a finite number")
        missing = next((c.doc_id for c in cands if corpus is not None and c.doc_id not in corpus), None)
        if missing is not None:
            raise DataFormatError(path, lineno, f"candidate doc {missing!r} is not in the corpus")
        if qid in seen:
            raise DataFormatError(path, lineno, f"duplicate query id {qid!r}")
        seen.add(qid)
        groups.append(CandidateGroup(qid, query, cands))
    return groups

"""TREC formats: qrels (``qid iter docid rel``), runs (``qid Q0 docid rank score tag``) and
topics (``qid<TAB>text``, also MS MARCO's queries tsv).

Readers raise :class:`~utilabel.errors.DataFormatError` with file and line; the run writer is
atomic and orders each query's documents by descending score (ties by doc id) with 1-based ranks.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import DataFormatError
from ..fileio import atomic_write
from ..records import Qrels, Query, Run
from .textio import iter_lines, read_pairs


def read_trec_qrels(path: str | Path) -> Qrels:
    def parse(lineno: int, line: str):
        parts = line.split()
        if not parts:
            return None
        if len(parts) != 4:
            raise DataFormatError(path, lineno, f"expected 4 columns 'qid iter docid rel', got {len(parts)}")
        try:
            return parts[0], parts[2], int(parts[3])
        except ValueError:
            raise DataFormatError(path, lineno, f"relevance {parts[3]!r} is not an integer") from None

    return read_pairs(path, parse)


def format_trec_qrels(qrels: Qrels) -> str:
    """Qrels as TREC lines ``qid 0 docid rel``."""
    return "".join(f"{qid} 0 {did} {rel}\n" for qid, docs in qrels.items() for did, rel in docs.items())


def read_trec_run(path: str | Path) -> Run:
    def parse(lineno: int, line: str):
        parts = line.split()
        if not parts:
            return None
        if len(parts) != 6:
            raise DataFormatError(path, lineno, f"expected 6 columns 'qid Q0 docid rank score tag', got {len(parts)}")
        qid, _, did, rank, score, _ = parts
        try:
            int(rank)
            value = float(score)
        except ValueError:
            raise DataFormatError(path, lineno, f"rank {rank!r} or score {score!r} is not a number") from None
        if not math.isfinite(value):
            raise DataFormatError(path, lineno, f"score {score!r} is not a finite number")
        return qid, did, value

    return read_pairs(path, parse, duplicate="duplicate doc {did!r} for query {qid!r}")


def sorted_hits(docs: dict[str, float]) -> list[tuple[str, float]]:
    """A query's hits by descending score, ties broken by doc id (deterministic)."""
    return sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))


def write_trec_run(path: str | Path, run: Run, tag: str = "utilabel") -> None:
    with atomic_write(path) as fh:
        for qid, docs in run.items():
            for rank, (did, score) in enumerate(sorted_hits(docs), start=1):
                fh.write(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n")


def read_topics_tsv(path: str | Path) -> dict[str, Query]:
    """``qid<TAB>text`` topics (TREC DL, MS MARCO, Anserini BEIR topics)."""
    queries: dict[str, Query] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 2:
            raise DataFormatError(path, lineno, "expected 'qid<TAB>text'")
        qid, text = parts[0].strip(), parts[1].strip()
        if qid in queries:
            raise DataFormatError(path, lineno, f"duplicate query id {qid!r}")
        queries[qid] = Query(qid, text)
    if not queries:
        raise DataFormatError(path, None, "file is empty")
    return queries


def read_msmarco_collection(path: str | Path) -> dict[str, str]:
    """MS MARCO ``collection.tsv``: ``pid<TAB>passage``."""
    out: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 2:
            raise DataFormatError(path, lineno, f"expected 'pid<TAB>passage', got {len(parts)} columns")
        if parts[0] in out:
            raise DataFormatError(path, lineno, f"duplicate passage id {parts[0]!r}")
        out[parts[0]] = parts[1]
    if not out:
        raise DataFormatError(path, None, "file is empty")
    return out

"""Reader and writer for BEIR folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

corpus lines: ``{"_id", "title", "text"}``; query lines: ``{"_id", "text", "metadata"?}`` where
``metadata.answers`` (list of strings) carries gold answers for RAG; qrels: tab-separated
``query-id corpus-id score`` with a header line. Every malformed input raises
:class:`~utilabel.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import DataFormatError
from ..fileio import atomic_write
from ..records import Document, Qrels, Query
from .textio import iter_lines, read_pairs


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; errors name file and line."""
    seen_any = False
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, f"invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
        seen_any = True
        yield lineno, obj
    if not seen_any:
        raise DataFormatError(path, None, "file is empty")


def _field(path, lineno: int, obj: dict, key: str, *, required: bool = True, default=""):
    if key not in obj:
        if required:
            raise DataFormatError(path, lineno, f"missing field {key!r}")
        return default
    value = obj[key]
    if value is None:
        return default
    if not isinstance(value, (str, int)):
        raise DataFormatError(path, lineno, f"field {key!r} must be a string, got {type(value).__name__}")
    return str(value)


def read_corpus(path: str | Path) -> dict[str, Document]:
    """Read a BEIR ``corpus.jsonl`` into ``{doc_id: Document}``."""
    corpus: dict[str, Document] = {}
    for lineno, obj in iter_jsonl(path):
        doc_id = _field(path, lineno, obj, "_id")
        if doc_id in corpus:
            raise DataFormatError(path, lineno, f"duplicate doc id {doc_id!r}")
        corpus[doc_id] = Document(
            doc_id=doc_id,
            text=_field(path, lineno, obj, "text"),
            title=_field(path, lineno, obj, "title", required=False),
        )
    return corpus


def read_queries(path: str | Path) -> dict[str, Query]:
    """Read a BEIR ``queries.jsonl`` into ``{query_id: Query}`` (answers from metadata)."""
    queries: dict[str, Query] = {}
    for lineno, obj in iter_jsonl(path):
        qid = _field(path, lineno, obj, "_id")
        if qid in queries:
            raise DataFormatError(path, lineno, f"duplicate query id {qid!r}")
        meta = obj.get("metadata") or {}
        answers = meta.get("answers", []) if isinstance(meta, dict) else []
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise DataFormatError(path, lineno, "metadata.answers must be a list of strings")
        queries[qid] = Query(qid, _field(path, lineno, obj, "text"), tuple(answers))
    return queries


def read_qrels_tsv(path: str | Path) -> Qrels:
    """Read a BEIR qrels tsv (``query-id corpus-id score``, optional header)."""

    def parse(lineno: int, line: str):
        if not line.strip():
            return None
        parts = line.rstrip("\n\r").split("\t")
        if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            return None
        if len(parts) != 3:
            raise DataFormatError(path, lineno, f"expected 3 tab-separated columns, got {len(parts)}")
        qid, did, rel = (p.strip() for p in parts)
        try:
            return qid, did, int(float(rel))
        except ValueError:
            raise DataFormatError(path, lineno, f"relevance {rel!r} is not a number") from None

    return read_pairs(path, parse)


def write_corpus(path: str | Path, docs: Iterable[Document]) -> None:
    with atomic_write(path) as fh:
        for d in docs:
            fh.write(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")


def write_queries(path: str | Path, queries: Iterable[Query]) -> None:
    with atomic_write(path) as fh:
        for q in queries:
            obj: dict = {"_id": q.query_id, "text": q.text}
            if q.answers:
                obj["metadata"] = {"answers": list(q.answers)}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")


def write_qrels_tsv(path: str | Path, qrels: Qrels) -> None:
    with atomic_write(path) as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in qrels.items():
            for did, rel in docs.items():
                fh.write(f"{qid}\t{did}\t{rel}\n")

"""Cranfield 1400 from the original SMART-format files.

Trap handled here: ``cran.qry`` numbers queries with ``.I`` values 001…365 (with gaps) while
``cranqrel`` numbers them 1…225 in file order; the k-th query of ``cran.qry`` gets id ``k``.
Relevance codes (1 = complete answer … 4 = minimum interest, -1 = no interest) become grades
``5 - code`` (4 … 1) and 0 for -1, so larger means more relevant.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataFormatError
from ...records import Document, Query
from ..beir import write_corpus, write_qrels_tsv, write_queries
from ..spec import DatasetSpec, register
from ..textio import iter_lines, read_pairs


def parse_smart(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Records of a SMART file: ``[(.I value, {field letter: text})]``."""
    records: list[tuple[str, dict[str, str]]] = []
    current: dict[str, list[str]] | None = None
    fieldname = None
    for lineno, raw in iter_lines(path):
        line = raw.rstrip("\r\n")
        if line.startswith(".I"):
            parts = line.split()
            if len(parts) != 2:
                raise DataFormatError(path, lineno, "'.I' line without an id")
            current = {}
            records.append((parts[1], current))  # type: ignore[arg-type]
            fieldname = None
        elif len(line) == 2 and line.startswith(".") and line[1].isalpha():
            if current is None:
                raise DataFormatError(path, lineno, f"field {line} before any '.I' record")
            fieldname = line[1]
            current.setdefault(fieldname, [])
        elif current is not None and fieldname is not None:
            current[fieldname].append(line)
    if not records:
        raise DataFormatError(path, None, "file is empty")
    return [(i, {k: " ".join(" ".join(v).split()) for k, v in f.items()}) for i, f in records]


def prepare(source: Path, out: Path) -> dict:
    docs = [Document(i, f.get("W", ""), f.get("T", "")) for i, f in parse_smart(source / "cran.all.1400")]
    queries = [Query(str(k), f.get("W", "")) for k, (_, f) in enumerate(parse_smart(source / "cran.qry"), start=1)]
    path = source / "cranqrel"

    def parse(lineno: int, line: str):
        parts = line.split()
        if not parts:
            return None
        if len(parts) != 3:
            raise DataFormatError(path, lineno, f"expected 3 columns 'qnum docid code', got {len(parts)}")
        try:
            code = int(parts[2])
        except ValueError:
            raise DataFormatError(path, lineno, f"relevance code {parts[2]!r} is not an integer") from None
        return parts[0], parts[1], 5 - code if 1 <= code <= 4 else 0

    qrels = read_pairs(path, parse)
    write_corpus(out / "corpus.jsonl", docs)
    write_queries(out / "queries.jsonl", queries)
    write_qrels_tsv(out / "qrels" / "test.tsv", qrels)
    return {}


register(DatasetSpec("cranfield", "cranfield", prepare, None,
                     "Cranfield 1400: 1,400 aeronautics abstracts, 225 queries, graded qrels"))

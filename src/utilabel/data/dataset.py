"""The :class:`Dataset`: a prepared BEIR folder (corpus, queries with answers, qrels per split)
plus the evaluation conventions of its collection.

Datasets are loaded lazily: the corpus is read on first access. ``validate()`` checks that every
qrel names a known query and document and raises a :class:`DataFormatError` naming the qrels file
and line otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import ConfigError, DataFormatError
from ..records import Document, Qrels, Query
from . import beir
from .textio import iter_lines

META_FILE = "utilabel.json"


@dataclass
class Dataset:
    """A prepared dataset in BEIR layout.

    ``relevance_level``: minimum grade counted relevant by binary measures (TREC DL uses 2).
    ``ignore_identical_ids``: drop a retrieved doc whose id equals the query id (ArguAna).
    ``task``: the default annotation task (``claim``, ``qa``, ``counter-argument``; from the folder's
    metadata or the registry; ``None`` → ``qa``).
    """

    name: str
    path: Path
    relevance_level: int = 1
    ignore_identical_ids: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)
    task: str | None = None

    @classmethod
    def from_folder(cls, path: str | Path, name: str | None = None) -> Dataset:
        path = Path(path)
        meta: dict = {}
        meta_path = path / META_FILE
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for required in ("corpus.jsonl", "queries.jsonl"):
            if not (path / required).exists():
                raise DataFormatError(path / required, None, "file not found (not a BEIR folder?)")
        return cls(
            name=name or meta.get("name", path.name),
            path=path,
            relevance_level=int(meta.get("relevance_level", 1)),
            ignore_identical_ids=bool(meta.get("ignore_identical_ids", False)),
            description=meta.get("description", ""),
            extra=meta.get("extra", {}),
            task=meta.get("task"),
        )

    @cached_property
    def corpus(self) -> dict[str, Document]:
        return beir.read_corpus(self.path / "corpus.jsonl")

    @cached_property
    def queries(self) -> dict[str, Query]:
        return beir.read_queries(self.path / "queries.jsonl")

    @property
    def splits(self) -> list[str]:
        qdir = self.path / "qrels"
        return sorted(p.stem for p in qdir.glob("*.tsv")) if qdir.exists() else []

    def qrels_path(self, split: str) -> Path:
        p = self.path / "qrels" / f"{split}.tsv"
        if not p.exists():
            raise ConfigError(f"dataset {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}")
        return p

    def qrels(self, split: str) -> Qrels:
        return self._qrels_cache(split)

    def _qrels_cache(self, split: str) -> Qrels:
        cache = self.__dict__.setdefault("_qrels", {})
        if split not in cache:
            cache[split] = beir.read_qrels_tsv(self.qrels_path(split))
        return cache[split]

    def split_queries(self, split: str) -> dict[str, Query]:
        """Queries of a split: those with at least one judgment in its qrels, in qrels order."""
        qrels = self.qrels(split)
        return {qid: self.queries[qid] for qid in qrels if qid in self.queries}

    def validate(self) -> None:
        """Every qrel must name a known query and a known document.

        Documents listed in ``extra["dangling_qrel_docs"]`` (known defects of an official release,
        recorded by its adapter) are accepted.
        """
        allowed = set(self.extra.get("dangling_qrel_docs", []))
        for split in self.splits:
            path = self.qrels_path(split)
            for lineno, line in iter_lines(path):
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) != 3 or (lineno == 1 and parts[0] == "query-id"):
                    continue
                qid, did = parts[0], parts[1]
                if qid not in self.queries:
                    raise DataFormatError(path, lineno, f"qrels name unknown query {qid!r}")
                if did not in self.corpus and did not in allowed:
                    raise DataFormatError(path, lineno, f"qrels name unknown doc {did!r}")

    def info(self) -> dict:
        """Counts for ``utilabel data info``."""
        out: dict = {"name": self.name, "docs": len(self.corpus), "queries": len(self.queries)}
        for split in self.splits:
            qrels = self.qrels(split)
            out[f"{split}.queries"] = len(qrels)
            out[f"{split}.qrels"] = sum(len(v) for v in qrels.values())
        with_answers = sum(1 for q in self.queries.values() if q.answers)
        if with_answers:
            out["queries_with_answers"] = with_answers
        return out


def write_meta(path: Path, **meta) -> None:
    from ..fileio import atomic_write

    with atomic_write(path / META_FILE) as fh:
        json.dump(meta, fh, indent=2)

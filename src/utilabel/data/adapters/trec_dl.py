"""TREC Deep Learning 2019 / 2020 passage tracks as judged-pool retrieval sets.

Corpus: the texts of all judged passages (DL19: only ids present in the qrels, since the
source's other 1,679 lines carry wrong texts; DL20: from the judgment file). Queries: the judged
topics. Qrels (split ``test``): NIST grades 0-3; binary measures count grade ≥ 2 as relevant.
Retrieval over the judged pool is easier than over the 8.8M-passage collection; report it so.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import DataFormatError
from ...records import Document
from ..beir import iter_jsonl, write_corpus, write_qrels_tsv, write_queries
from ..spec import DatasetSpec, register
from ..textio import iter_lines
from ..trec import read_topics_tsv, read_trec_qrels


def _write(out: Path, texts: dict[str, str], qrels, topics) -> dict:
    missing = sorted({d for docs in qrels.values() for d in docs} - set(texts))
    if missing:
        raise DataFormatError(out, None, f"{len(missing)} judged passages have no text (e.g. {missing[0]})")
    write_corpus(out / "corpus.jsonl", (Document(d, texts[d]) for d in sorted(texts)))
    write_queries(out / "queries.jsonl", (topics[q] for q in qrels))
    write_qrels_tsv(out / "qrels" / "test.tsv", qrels)
    return {"relevance_level": 2}


def prepare_dl19(source: Path, out: Path) -> dict:
    folder = source / "dl2019"
    qrels = read_trec_qrels(folder / "2019qrels-pass.txt")
    judged = {d for docs in qrels.values() for d in docs}
    texts = {}
    for lineno, obj in iter_jsonl(folder / "dl2019_document.jsonl"):
        if "docid" not in obj or "doc" not in obj:
            raise DataFormatError(folder / "dl2019_document.jsonl", lineno, "missing field 'docid' or 'doc'")
        if str(obj["docid"]) in judged:
            texts[str(obj["docid"])] = obj["doc"]
    return _write(out, texts, qrels, read_topics_tsv(folder / "msmarco-test2019-queries.tsv"))


def prepare_dl20(source: Path, out: Path) -> dict:
    folder = source / "dl2020"
    qrels = read_trec_qrels(folder / "2020qrels-pass.txt")
    path = folder / "4_prompts_dl2020.jsonl.gz"
    texts = {}
    for lineno, line in iter_lines(path):
        try:
            _, paras = json.loads(line)
            for p in paras:
                texts[str(p["paragraph_id"])] = p["text"]
        except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(path, lineno, f"bad judgment line ({exc})") from None
    return _write(out, texts, qrels, read_topics_tsv(folder / "msmarco-test2020-queries.tsv"))


register(DatasetSpec("trec-dl19", "trec-dl-judged-passages", prepare_dl19, None,
                     "TREC DL 2019 passage: 43 judged queries over the 9,139 judged passages"))
register(DatasetSpec("trec-dl20", "trec-dl-judged-passages", prepare_dl20, None,
                     "TREC DL 2020 passage: 54 judged queries over the 11,224 judged passages"))

"""SQuAD v1.1 dev as a retrieval + RAG dataset.

Corpus: the 2,067 paragraphs (id ``<article title>_p<index>``). Queries: the 10,570 questions
with their answers (unique answer strings, annotator order). Qrels: each question's own paragraph.
Split by article, deterministically: articles are ordered by the SHA-1 of their title and the
first :data:`TEST_ARTICLES` go to ``test``, the rest to ``train``, so test articles are unseen.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ...errors import DataFormatError
from ...records import Document, Query
from ..beir import write_corpus, write_qrels_tsv, write_queries
from ..download import fetch
from ..spec import DatasetSpec, register

TEST_ARTICLES = 10
URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"


def prepare(source: Path, out: Path) -> dict:
    path = source / "dev-v1.1.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise DataFormatError(path, None, f"not a SQuAD JSON file ({exc})") from None
    order = sorted(range(len(data)), key=lambda i: hashlib.sha1(data[i]["title"].encode()).hexdigest())
    test_articles = set(order[:TEST_ARTICLES])
    docs, queries = [], []
    qrels: dict[str, dict[str, dict[str, int]]] = {"train": {}, "test": {}}
    for ai, article in enumerate(data):
        split = "test" if ai in test_articles else "train"
        for pi, para in enumerate(article["paragraphs"]):
            doc_id = f"{article['title']}_p{pi}"
            docs.append(Document(doc_id, para["context"], article["title"].replace("_", " ")))
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"]))
                queries.append(Query(qa["id"], qa["question"].strip(), answers))
                qrels[split][qa["id"]] = {doc_id: 1}
    write_corpus(out / "corpus.jsonl", docs)
    write_queries(out / "queries.jsonl", queries)
    for split, q in qrels.items():
        write_qrels_tsv(out / "qrels" / f"{split}.tsv", q)
    return {"extra": {"test_articles": sorted(data[i]["title"] for i in test_articles)}}


def download(dest: Path) -> Path:
    fetch(URL, dest / "dev-v1.1.json")
    return dest


register(DatasetSpec("squad", "squad-v1.1", prepare, download,
                     "SQuAD v1.1 dev: 2,067 paragraphs, 10,570 questions with answers, split by article"))

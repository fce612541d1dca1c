"""HotpotQA dev (distractor setting), the 500-question IRCoT subsample.

Corpus: the distinct paragraphs over all questions (4,931 context entries → 4,858 distinct
(title, text) paragraphs; id = ``hp-`` + SHA-1 prefix of title and text). Queries: the 500
questions with their answer spans. Qrels (split ``test``): the two supporting paragraphs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...errors import DataFormatError
from ...records import Document, Query
from ..beir import iter_jsonl, write_corpus, write_qrels_tsv, write_queries
from ..download import fetch
from ..spec import DatasetSpec, register

URL = ("https://raw.githubusercontent.com/xindili-cmu/anlp-project-multihop/"
       "11ba72982918286f4bc602fb0cd87b5e2a145860/processed_data/hotpotqa/dev_subsampled.jsonl")


def paragraph_id(title: str, text: str) -> str:
    return "hp-" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]


def prepare(source: Path, out: Path) -> dict:
    path = source / "dev_subsampled.jsonl"
    docs: dict[str, Document] = {}
    queries: list = []
    qrels: dict[str, dict[str, int]] = {}
    contexts = 0
    for lineno, obj in iter_jsonl(path):
        try:
            qid = str(obj["question_id"])
            answers = tuple(dict.fromkeys(s for a in obj["answers_objects"] for s in a["spans"]))
            queries.append(Query(qid, obj["question_text"].strip(), answers))
            for ctx in obj["contexts"]:
                did = paragraph_id(ctx["title"], ctx["paragraph_text"])
                docs.setdefault(did, Document(did, ctx["paragraph_text"], ctx["title"]))
                contexts += 1
                if ctx["is_supporting"]:
                    qrels.setdefault(qid, {})[did] = 1
        except (KeyError, TypeError) as exc:
            raise DataFormatError(path, lineno, f"missing field {exc}") from None
    write_corpus(out / "corpus.jsonl", docs.values())
    write_queries(out / "queries.jsonl", queries)
    write_qrels_tsv(out / "qrels" / "test.tsv", qrels)
    return {"extra": {"context_entries": contexts}}


def download(dest: Path) -> Path:
    fetch(URL, dest / "dev_subsampled.jsonl")
    return dest


register(DatasetSpec("hotpotqa", "hotpotqa-dev-ircot-subsample", prepare, download,
                     "HotpotQA dev distractor, 500-question subsample; supporting paragraphs as qrels"))

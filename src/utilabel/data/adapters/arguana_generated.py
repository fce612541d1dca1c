"""ArguAna with BEIR's generated training queries (``arguana-generated``): a train split for a corpus
that has no human training queries.

The corpus and the ``test`` split are ArguAna's (:mod:`.arguana`, ``ignore_identical_ids`` too). The
``train`` split holds the synthetic queries BEIR released for it (``BeIR/arguana-generated-queries``:
docT5query, up to 3 per document; NOT human labels), each with the document it was generated from
as its one positive — the GPL / InPars training signal, and the control of ``utilabel generate``'s
own queries. Query ids are ``t5-<doc_id>-<j>`` (``j``: the query's position among its document's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import DataFormatError
from ..beir import iter_jsonl, read_corpus
from ..download import fetch, fetch_beir
from ..spec import DatasetSpec, register
from .arguana import prepare as prepare_arguana

GENERATED = Path("generated-queries") / "train.jsonl.gz"
GENERATED_URL = "https://huggingface.co/datasets/BeIR/arguana-generated-queries/resolve/main/train.jsonl.gz"


def prepare(source: Path, out: Path) -> dict:
    meta = prepare_arguana(source, out)
    path = source / GENERATED
    corpus_ids = set(read_corpus(out / "corpus.jsonl"))
    per_doc: dict[str, int] = {}
    with open(out / "queries.jsonl", "a", encoding="utf-8") as q, \
            open(out / "qrels" / "train.tsv", "w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for lineno, obj in iter_jsonl(path):  # gzip, a missing file and bad JSON: errors name file and line
            try:
                doc, text = str(obj["_id"]), str(obj["query"]).strip()
            except KeyError as exc:
                raise DataFormatError(path, lineno, f"not a generated-query record (no {exc})") from None
            if doc not in corpus_ids:
                raise DataFormatError(path, lineno, f"document {doc!r} is not in the corpus")
            j = per_doc.get(doc, 0)
            per_doc[doc] = j + 1
            qid = f"t5-{doc}-{j}"
            q.write(json.dumps({"_id": qid, "text": text, "metadata": {"source_doc": doc}}, ensure_ascii=False) + "\n")
            qrels.write(f"{qid}\t{doc}\t1\n")
    meta["extra"] = {**meta.get("extra", {}), "generated_queries": sum(per_doc.values()),
                     "generated_from": "BeIR/arguana-generated-queries (docT5query)"}
    return meta


def download(dest: Path) -> Path:
    """ArguAna from BEIR, then its generated queries from Hugging Face (``UTILABEL_BEIR_GENERATED_URL``
    overrides the file's URL, e.g. for a local copy)."""
    fetch_beir("arguana", dest)
    fetch(os.environ.get("UTILABEL_BEIR_GENERATED_URL", GENERATED_URL), dest / GENERATED)
    return dest


register(DatasetSpec("arguana-generated", "arguana", prepare, download,
                     "ArguAna's corpus and test split, with BEIR's 25,844 docT5query training queries (train)",
                     task="counter-argument"))

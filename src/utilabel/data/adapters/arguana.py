"""ArguAna (BEIR): counter-argument retrieval, test split only.

Queries are themselves corpus documents; as in BEIR, a hit whose doc id equals the query id is
dropped at evaluation time (``ignore_identical_ids``). Five qrels of the official release name
documents missing from its corpus; they are kept (as BEIR does) and listed in the metadata.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..beir import read_corpus, read_qrels_tsv
from ..download import fetch_beir
from ..spec import DatasetSpec, register
from ._common import copy_beir_folder


def prepare(source: Path, out: Path) -> dict:
    copy_beir_folder(source, out, splits=("test",))
    # The official release has 5 qrels whose doc is absent from the corpus; BEIR keeps them (they
    # count as unretrievable), so we keep them too and record them so validate() accepts exactly these.
    corpus_ids = set(read_corpus(out / "corpus.jsonl"))
    qrels = read_qrels_tsv(out / "qrels" / "test.tsv")
    dangling = sorted({d for docs in qrels.values() for d in docs} - corpus_ids)
    return {"ignore_identical_ids": True, "extra": {"dangling_qrel_docs": dangling}}


register(DatasetSpec("arguana", "arguana", prepare, partial(fetch_beir, "arguana"),
                     "ArguAna (BEIR): 8,674 arguments, 1,406 test queries", task="counter-argument"))

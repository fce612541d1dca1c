"""SciFact: 5,183 abstracts; train (809 claims / 919 qrels) and test (300 / 339) as in BEIR.

Built from the original release's CSV export: corpus text = the abstract's sentences joined with
single spaces (BEIR's rule); train qrels from ``claims_train.csv``, test qrels from
``claims_validation.csv`` (BEIR's test split is SciFact's dev set). A downloaded BEIR folder is
copied as is.
"""

from __future__ import annotations

import ast
import csv
import re
from functools import partial
from pathlib import Path

from ...errors import DataFormatError
from ...records import Document, Query
from ..beir import write_corpus, write_qrels_tsv, write_queries
from ..download import fetch_beir
from ..spec import DatasetSpec, register
from ._common import copy_beir_folder

_IDS = re.compile(r"[\s,\d]*")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)


def parse_sentences(value: str, path: Path, line: int) -> list[str]:
    """Parse a numpy-style repr of a string array (``['a.' 'b.'\\n 'c.']``)."""
    value = value.strip()
    if not (value.startswith("[") and value.endswith("]")):
        raise DataFormatError(path, line, "abstract is not a bracketed list of sentences")
    try:
        return [ast.literal_eval(m.group(0)) for m in _STRING.finditer(value)]
    except (ValueError, SyntaxError):
        raise DataFormatError(path, line, "cannot parse abstract sentences") from None


def _parse_id_list(value: str, path: Path, line: int) -> list[str]:
    """Parse ``[1, 2]`` or numpy-style ``[ 1 2]`` into string ids."""
    value = value.strip()
    if not (value.startswith("[") and value.endswith("]")) or not _IDS.fullmatch(value[1:-1]):
        raise DataFormatError(path, line, f"cannot parse id list {value!r}")
    return re.findall(r"\d+", value)


def _read_csv(path: Path):
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, row


def _claims(path: Path) -> tuple[dict[str, Query], dict[str, dict[str, int]]]:
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}
    for line, row in _read_csv(path):
        qid = row["id"].strip()
        queries.setdefault(qid, Query(qid, row["claim"].strip()))
        for did in _parse_id_list(row["cited_doc_ids"], path, line):
            qrels.setdefault(qid, {})[did] = 1
    return queries, qrels


def prepare(source: Path, out: Path) -> dict:
    if (source / "corpus.jsonl").exists():
        copy_beir_folder(source, out, splits=("train", "test"))
        return {}
    csvdir = source / "original-hf-csv"
    corpus_csv = csvdir / "corpus_train.csv"
    docs = []
    for line, row in _read_csv(corpus_csv):
        sents = parse_sentences(row["abstract"], corpus_csv, line)
        docs.append(Document(row["doc_id"].strip(), " ".join(s.strip() for s in sents), row["title"].strip()))
    train_q, train_qrels = _claims(csvdir / "claims_train.csv")
    test_q, test_qrels = _claims(csvdir / "claims_validation.csv")
    write_corpus(out / "corpus.jsonl", docs)
    write_queries(out / "queries.jsonl", list(train_q.values()) + list(test_q.values()))
    write_qrels_tsv(out / "qrels" / "train.tsv", train_qrels)
    write_qrels_tsv(out / "qrels" / "test.tsv", test_qrels)
    return {}


register(DatasetSpec("scifact", "scifact", prepare, partial(fetch_beir, "scifact"),
                     "SciFact: 5,183 abstracts; train 809 claims, test 300 claims (BEIR splits)", task="claim"))

"""Prepared datasets have exactly the counts stated in each source's PROVENANCE.md."""

from __future__ import annotations

import pytest

from utilabel.data.registry import dataset_names, load_dataset
from utilabel.errors import UnknownNameError

# (name, docs, {split: (queries, qrels)}, relevance_level) — numbers from ../shared/data/*/PROVENANCE.md
EXPECTED = [
    ("scifact", 5183, {"train": (809, 919), "test": (300, 339)}, 1),
    ("arguana", 8674, {"test": (1406, 1406)}, 1),
    # the same corpus and test split, plus BEIR's 25,844 docT5query queries as a train split
    ("arguana-generated", 8674, {"test": (1406, 1406), "train": (25844, 25844)}, 1),
    ("squad", 2067, {}, 1),
    # 500 questions × 2 supporting paragraphs; 4,931 context entries hold 4,858 distinct paragraphs
    ("hotpotqa", 4858, {"test": (500, 1000)}, 1),
    ("trec-dl19", 9139, {"test": (43, 9260)}, 2),
    ("trec-dl20", 11224, {"test": (54, 11386)}, 2),
    ("cranfield", 1400, {"test": (225, 1837)}, 1),
]


@pytest.mark.parametrize("name,docs,splits,level", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_counts_match_provenance(mirror, name, docs, splits, level):
    ds = load_dataset(name)
    ds.validate()
    info = ds.info()
    assert info["docs"] == docs
    assert ds.relevance_level == level
    for split, (nq, nqrels) in splits.items():
        assert (info[f"{split}.queries"], info[f"{split}.qrels"]) == (nq, nqrels)


def test_squad_split_by_article(mirror):
    ds = load_dataset("squad")
    # 10,570 questions, all with answers, every one in exactly one split
    assert len(ds.queries) == 10570
    assert all(q.answers for q in ds.queries.values())
    train, test = ds.qrels("train"), ds.qrels("test")
    assert len(train) + len(test) == 10570 and not set(train) & set(test)
    article = lambda did: did.rsplit("_p", 1)[0]  # noqa: E731
    train_articles = {article(d) for docs in train.values() for d in docs}
    test_articles = {article(d) for docs in test.values() for d in docs}
    assert len(test_articles) == 10 and len(train_articles) == 38 and not train_articles & test_articles
    # the first question of the file (Super_Bowl_50) and its gold answer
    q = ds.queries["56be4db0acb8001400a502ec"]
    assert q.text == "Which NFL team represented the AFC at Super Bowl 50?"
    assert "Denver Broncos" in q.answers


def test_arguana_conventions(mirror):
    ds = load_dataset("arguana")
    assert ds.ignore_identical_ids
    # PROVENANCE: 1,298 of the 1,406 query ids are also corpus documents
    assert sum(1 for q in ds.queries if q in ds.corpus) == 1298
    # the official release has 5 qrels whose document is missing from the corpus; they are recorded
    assert len(ds.extra["dangling_qrel_docs"]) == 5


def test_arguana_generated_train_split(mirror):
    """Each generated query's one positive is the document it was written from (first line of the
    shipped file: a query for the argument ``test-environment-aeghhgwpe-pro02b``)."""
    import gzip
    import json

    ds = load_dataset("arguana-generated")
    with gzip.open(mirror / "arguana" / "generated-queries" / "train.jsonl.gz", "rt") as fh:
        first = json.loads(fh.readline())
    qid = f"t5-{first['_id']}-0"
    assert ds.queries[qid].text == first["query"].strip()
    assert ds.qrels("train")[qid] == {first["_id"]: 1}
    assert ds.ignore_identical_ids and ds.task == "counter-argument"
    assert not set(ds.qrels("train")) & set(ds.qrels("test"))


def test_cranfield_query_numbering(mirror):
    ds = load_dataset("cranfield")
    # cran.qry's 3rd record is ".I 004"; it must be query 3, the id cranqrel uses
    assert ds.queries["3"].text.startswith("what problems of heat conduction in composite slabs")
    assert "4" in ds.queries  # k-th query → id k, so 1..225 all exist
    assert set(ds.queries) == {str(i) for i in range(1, 226)}
    # cranqrel line "1 184 2": code 2 → grade 3 (5 - code)
    assert ds.qrels("test")["1"]["184"] == 3


def test_dl19_uses_only_judged_texts(mirror):
    ds = load_dataset("trec-dl19")
    judged = {d for docs in ds.qrels("test").values() for d in docs}
    assert set(ds.corpus) == judged
    assert "8145658" not in ds.corpus  # one of the wrong-text unjudged ids named in PROVENANCE


def test_hotpotqa_answers_and_supporting(mirror):
    ds = load_dataset("hotpotqa")
    q = ds.queries["5a8c7595554299585d9e36b6"]
    assert q.answers == ("Chief of Protocol",)
    titles = {ds.corpus[d].title for d in ds.qrels("test")[q.query_id]}
    assert "Shirley Temple" in titles


def test_scifact_text_is_joined_sentences(mirror):
    ds = load_dataset("scifact")
    doc = ds.corpus["4983"]
    assert doc.title.startswith("Microstructural development of human newborn cerebral white matter")
    assert doc.text.startswith("Alterations of the architecture of cerebral white matter in the developing human brain")
    assert "  " not in doc.text


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError) as exc:
        load_dataset("scifakt")
    assert "scifact" in str(exc.value) and "valid:" in str(exc.value)
    assert {"scifact", "arguana", "squad", "hotpotqa", "trec-dl19", "trec-dl20", "cranfield"} <= set(dataset_names())

"""Malformed inputs give one-line errors naming file and line; good inputs round-trip."""

from __future__ import annotations

import gzip

import pytest

from utilabel.data.beir import read_corpus, read_qrels_tsv, read_queries, write_corpus, write_queries
from utilabel.data.dataset import Dataset
from utilabel.data.groups import read_flag_groups, read_groups, write_groups
from utilabel.data.trec import read_topics_tsv, read_trec_qrels, read_trec_run, write_trec_run
from utilabel.errors import DataFormatError
from utilabel.records import Document, Query, TrainingGroup


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def check_error(fn, path, line, fragment):
    with pytest.raises(DataFormatError) as exc:
        fn(path)
    msg = str(exc.value)
    assert "\n" not in msg
    where = f"{path}:{line}" if line is not None else str(path)
    assert msg.startswith(where + ":"), msg
    assert fragment in msg, msg


def test_corpus_bad_json_line(tmp_path):
    p = write(tmp_path / "corpus.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2", "text": \n')
    check_error(read_corpus, p, 2, "invalid JSON")


def test_corpus_missing_field(tmp_path):
    p = write(tmp_path / "corpus.jsonl", '{"_id": "1", "text": "a"}\n\n{"title": "t", "text": "b"}\n')
    check_error(read_corpus, p, 3, "missing field '_id'")


def test_corpus_duplicate_id(tmp_path):
    p = write(tmp_path / "corpus.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n')
    check_error(read_corpus, p, 2, "duplicate doc id '1'")


def test_empty_files(tmp_path):
    for fn, name in [(read_corpus, "c.jsonl"), (read_queries, "q.jsonl"), (read_qrels_tsv, "r.tsv"),
                     (read_trec_qrels, "r.txt"), (read_trec_run, "run.trec"), (read_topics_tsv, "t.tsv"),
                     (read_groups, "g.jsonl")]:
        check_error(fn, write(tmp_path / name, "\n"), None, "file is empty")


def test_missing_file(tmp_path):
    check_error(read_corpus, tmp_path / "nope.jsonl", None, "file not found")


def test_query_not_an_object_and_bad_answers(tmp_path):
    check_error(read_queries, write(tmp_path / "q.jsonl", '["x"]\n'), 1, "expected a JSON object")
    p = write(tmp_path / "q2.jsonl", '{"_id": "1", "text": "a", "metadata": {"answers": "x"}}\n')
    check_error(read_queries, p, 1, "answers must be a list")


def test_qrels_tsv_errors(tmp_path):
    check_error(read_qrels_tsv, write(tmp_path / "a.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n"), 2, "3 tab-separated")
    check_error(read_qrels_tsv, write(tmp_path / "b.tsv", "q1\td1\tx\n"), 1, "not a number")
    check_error(read_qrels_tsv, write(tmp_path / "c.tsv", "q1\td1\t1\nq1\td1\t0\n"), 2, "duplicate judgment")


def test_trec_errors(tmp_path):
    check_error(read_trec_qrels, write(tmp_path / "q.txt", "1 0 d1 1\n1 0 d2\n"), 2, "expected 4 columns")
    check_error(read_trec_run, write(tmp_path / "r.trec", "1 Q0 d1 1 2.5 t\n1 Q0 d1 2 2.0 t\n"), 2, "duplicate doc")
    check_error(read_trec_run, write(tmp_path / "s.trec", "1 Q0 d1 one 2.5 t\n"), 1, "not a number")
    check_error(read_topics_tsv, write(tmp_path / "t.tsv", "1\tfirst\n1\tagain\n"), 2, "duplicate query id")


def test_invalid_utf8(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"1 0 d1 1\n1 0 d\xff 1\n")
    check_error(read_trec_qrels, p, 2, "not valid UTF-8")


def test_gzipped_jsonl_is_read(tmp_path):
    p = tmp_path / "corpus.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        fh.write('{"_id": "7", "title": "T", "text": "x"}\n')
    assert read_corpus(p) == {"7": Document("7", "x", "T")}


def test_qrels_naming_unknown_doc_or_query(tmp_path):
    write_corpus(tmp_path / "corpus.jsonl", [Document("d1", "text")])
    write_queries(tmp_path / "queries.jsonl", [Query("q1", "question")])
    (tmp_path / "qrels").mkdir()
    write(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n")
    ds = Dataset.from_folder(tmp_path)
    check_error(lambda _: ds.validate(), tmp_path / "qrels" / "test.tsv", 3, "unknown doc 'd9'")
    write(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq2\td1\t1\n")
    ds = Dataset.from_folder(tmp_path)
    check_error(lambda _: ds.validate(), tmp_path / "qrels" / "test.tsv", 2, "unknown query 'q2'")


def test_round_trips(tmp_path):
    docs = [Document("a", "alpha text", "Alpha"), Document("b", "beta")]
    write_corpus(tmp_path / "c.jsonl", docs)
    assert list(read_corpus(tmp_path / "c.jsonl").values()) == docs
    qs = [Query("1", "who?", ("Ann", "Anne")), Query("2", "what?")]
    write_queries(tmp_path / "q.jsonl", qs)
    assert list(read_queries(tmp_path / "q.jsonl").values()) == qs
    run = {"1": {"a": 0.5, "b": 2.0, "c": 0.5}}
    write_trec_run(tmp_path / "r.trec", run)
    lines = (tmp_path / "r.trec").read_text().splitlines()
    # descending score; the 0.5 tie is ordered by doc id: a before c
    assert [ln.split()[2] for ln in lines] == ["b", "a", "c"]
    assert [ln.split()[3] for ln in lines] == ["1", "2", "3"]
    assert read_trec_run(tmp_path / "r.trec") == run
    groups = [TrainingGroup("q1", "query", {"d1": 1.0, "d2": 0.5}, ["d3"])]
    write_groups(tmp_path / "g.jsonl", groups)
    assert read_groups(tmp_path / "g.jsonl") == groups
    # no teacher scores: no "teacher" key (files written before teacher scores stay byte-identical)
    assert (tmp_path / "g.jsonl").read_text() == (
        '{"query_id": "q1", "query": "query", "positives": {"d1": 1.0, "d2": 0.5}, "negatives": ["d3"]}\n')


def test_groups_round_trip_teacher_scores(tmp_path):
    groups = [TrainingGroup("q1", "query", {"d1": 1.0}, ["d3", "d4"], {"d1": 2.25, "d3": -0.5}),
              TrainingGroup("q2", "other", {"d2": 1.0}, ["d5"])]
    write_groups(tmp_path / "g.jsonl", groups)
    assert '"teacher": {"d1": 2.25, "d3": -0.5}' in (tmp_path / "g.jsonl").read_text().splitlines()[0]
    assert read_groups(tmp_path / "g.jsonl") == groups
    p = write(tmp_path / "bad.jsonl", '{"query_id": "1", "query": "x", "positives": ["a"], "teacher": {"z": 1}}\n')
    check_error(read_groups, p, 1, "teacher score of doc 'z', which is not in the group")
    p = write(tmp_path / "nan.jsonl", '{"query_id": "1", "query": "x", "positives": ["a"], "teacher": {"a": "x"}}\n')
    check_error(read_groups, p, 1, "teacher scores must be numbers")


def test_flagembedding_pos_neg_scores_become_teacher_scores(tmp_path):
    from utilabel.data.groups import text_id

    p = write(tmp_path / "f.jsonl", '{"query": "q", "pos": ["P"], "neg": ["N1", "N2"], "pos_scores": [3.0], '
                                    '"neg_scores": [1.0, -2.0]}\n{"query": "r", "pos": ["P"], "neg": []}\n')
    (g, h), _ = read_flag_groups(p)
    assert g.teacher == {text_id("P"): 3.0, text_id("N1"): 1.0, text_id("N2"): -2.0} and h.teacher is None
    bad = write(tmp_path / "b.jsonl", '{"query": "q", "pos": ["P"], "neg": ["N"], "neg_scores": [1.0, 2.0]}\n')
    check_error(read_flag_groups, bad, 1, "field 'neg_scores' must be a list of 1 numbers")


def test_groups_errors(tmp_path):
    p = write(tmp_path / "g.jsonl", '{"query_id": "1", "query": "x", "positives": ["a"], "negatives": ["a"]}\n')
    check_error(read_groups, p, 1, "both positive and negative")
    p = write(tmp_path / "h.jsonl", '{"query_id": "1", "query": "x"}\n')
    check_error(read_groups, p, 1, "missing field 'positives'")


def test_flagembedding_groups(mirror):
    groups, texts = read_flag_groups(mirror / "flagembedding-finetune-examples" / "msmarco.jsonl")
    # PROVENANCE: 10 queries, 10 positives, 250 negatives (25 each)
    assert len(groups) == 10
    assert sum(len(g.positives) for g in groups) == 10
    assert all(len(g.negatives) <= 25 for g in groups)
    assert groups[0].query.startswith(")what was the immediate impact of the success of the manhattan project")
    assert all(d in texts for g in groups for d in list(g.positives) + g.negatives)


def test_msmarco_collection_and_topics(tmp_path, mirror):
    from utilabel.data.trec import read_msmarco_collection

    p = write(tmp_path / "collection.tsv", "0\tThe presence of communication\n1\tThe Manhattan Project\n")
    assert read_msmarco_collection(p) == {"0": "The presence of communication", "1": "The Manhattan Project"}
    check_error(read_msmarco_collection, write(tmp_path / "bad.tsv", "0\ta\n1\n"), 2, "expected 'pid<TAB>passage'")
    topics = read_topics_tsv(mirror / "msmarco-passage-eval" / "topics.msmarco-passage.dev-subset.txt")
    qrels = read_trec_qrels(mirror / "msmarco-passage-eval" / "qrels.msmarco-passage.dev-subset.txt")
    # PROVENANCE: 6,980 dev-small queries, 7,437 judgments
    assert len(topics) == 6980 and sum(len(v) for v in qrels.values()) == 7437

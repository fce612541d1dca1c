"""Review storage: fsync'd per-annotator logs, qrels and annotator file derived atomically, resume."""

from __future__ import annotations

import json

import pytest

from utilabel.data.trec import read_trec_qrels
from utilabel.errors import ConfigError
from utilabel.review import LabelStore, read_logs


def test_submit_appends_to_the_log_and_rewrites_qrels(tmp_path):
    out = tmp_path / "human.qrels"
    store = LabelStore(out, "alice")
    store.submit("q4", {"d10": 1, "d11": 0, "d12": 0})
    store.submit("q2", {"d4": 0, "d5": 0, "d6": 1})
    log = (tmp_path / "human.qrels.alice.log.jsonl").read_text().splitlines()
    assert [json.loads(x)["query_id"] for x in log] == ["q4", "q2"]
    assert out.read_text() == "q4 0 d10 1\nq4 0 d11 0\nq4 0 d12 0\nq2 0 d4 0\nq2 0 d5 0\nq2 0 d6 1\n"
    side = (tmp_path / "human.qrels.annotators.tsv").read_text().splitlines()
    assert side[0] == "query_id\tannotator\ttime" and [x.split("\t")[:2] for x in side[1:]] == [["q4", "alice"], ["q2", "alice"]]
    store.submit("q4", {"d10": 0, "d11": 0, "d12": 1})  # relabelled: the later submission replaces it
    assert read_trec_qrels(out)["q4"] == {"d10": 0, "d11": 0, "d12": 1}
    store.close()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_restart_resumes_and_repairs_after_a_kill(tmp_path):
    out = tmp_path / "human.qrels"
    store = LabelStore(out, "alice")
    store.submit("q4", {"d10": 1})
    store.close()
    # killed mid-append of the next query, and before the qrels were rewritten
    with open(tmp_path / "human.qrels.alice.log.jsonl", "a") as fh:
        fh.write('{"query_id": "q2", "labels": {"d4"')
    out.unlink()
    again = LabelStore(out, "alice")
    assert set(again.mine) == {"q4"}
    assert read_trec_qrels(out) == {"q4": {"d10": 1}}  # the qrels are derived again at start
    again.submit("q2", {"d4": 1})
    assert set(read_logs(out)["alice"]) == {"q4", "q2"}
    again.close()


def test_several_annotators_write_separate_logs_latest_wins_in_qrels(tmp_path):
    out = tmp_path / "human.qrels"
    alice, bob = LabelStore(out, "alice"), LabelStore(out, "bob")
    alice.submit("q4", {"d10": 1, "d11": 0})
    bob.submit("q4", {"d10": 0, "d11": 0})
    alice.submit("q2", {"d4": 1})
    assert read_trec_qrels(out) == {"q4": {"d10": 0, "d11": 0}, "q2": {"d4": 1}}
    side = [x.split("\t")[:2] for x in (tmp_path / "human.qrels.annotators.tsv").read_text().splitlines()[1:]]
    assert sorted(side) == [["q2", "alice"], ["q4", "bob"]]
    assert {k: set(v) for k, v in read_logs(out).items()} == {"alice": {"q4", "q2"}, "bob": {"q4"}}
    alice.close()
    bob.close()


def test_bad_annotator_or_out_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError, match="--annotator must be"):
        LabelStore(tmp_path / "h.qrels", "a.b")
    with pytest.raises(ConfigError, match="is a folder"):
        LabelStore(tmp_path, "alice")

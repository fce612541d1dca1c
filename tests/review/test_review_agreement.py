"""``utilabel review agreement``: Cohen's kappa between annotators and against the LLM, hand-computed."""

from __future__ import annotations

import pytest

from utilabel.cli.main import main
from utilabel.errors import ConfigError
from utilabel.review import LabelStore, review_agreement


def test_kappa_between_annotators_and_with_the_llm(review_run, tmp_path, capsys):
    _, run = review_run
    out = tmp_path / "human.qrels"
    alice, bob = LabelStore(out, "alice"), LabelStore(out, "bob")
    alice.submit("q4", {"d10": 1, "d11": 1, "d12": 0})
    alice.submit("q2", {"d4": 0, "d5": 0, "d6": 1})
    bob.submit("q4", {"d10": 1, "d11": 0, "d12": 0})
    bob.submit("q2", {"d4": 0, "d5": 0, "d6": 1})
    bob.submit("q3", {"d7": 1, "d8": 0, "d9": 0})  # alice did not label q3: not compared
    rows = review_agreement(out, [run])
    ab, al, bl = rows
    # alice vs bob over 6 pairs: tp 2 (d10, d6), fp 1 (d11), fn 0, tn 3; p_o = 5/6,
    # p_e = (3·2 + 3·4) / 36 = 0.5, kappa = (5/6 - 1/2) / (1/2) = 2/3
    assert (ab.a, ab.b, ab.queries, ab.result.pairs) == ("alice", "bob", 2, 6)
    assert ab.observed == pytest.approx(5 / 6) and ab.result.kappa == pytest.approx(2 / 3)
    # LLM (mean ≥ 0.5): q4 d10 1, d11 1, d12 0; q2 d4 1, d5 0, d6 1; vs alice: tp 3, fp 1 (d4), tn 2
    # p_o = 5/6, p_e = (4·3 + 2·3) / 36 = 0.5, kappa = 2/3
    assert (al.a, al.b, al.result.pairs) == ("alice", "LLM", 6) and al.result.kappa == pytest.approx(2 / 3)
    # vs bob over 9 pairs (q3 too): LLM pos d10 d11 d4 d6; bob pos d10 d6 d7: tp 2, fp 2, fn 1, tn 4
    # p_o = 6/9, p_e = (4·3 + 5·6) / 81 = 42/81, kappa = (54/81 - 42/81) / (39/81) = 12/39
    assert bl.result.pairs == 9 and bl.result.kappa == pytest.approx(12 / 39)
    rc = main(["review", "agreement", str(out), "--runs", str(run)])
    text = capsys.readouterr().out
    assert rc == 0 and "alice vs bob" in text and "0.667" in text and "0.308" in text
    alice.close()
    bob.close()


def test_no_logs_is_an_error_and_one_annotator_has_no_pairs(tmp_path):
    out = tmp_path / "h.qrels"
    with pytest.raises(ConfigError, match="no review logs beside"):
        review_agreement(out)
    store = LabelStore(out, "alice")
    store.submit("q1", {"d1": 1})
    assert review_agreement(out) == []
    store.close()

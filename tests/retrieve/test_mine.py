"""Hard-negative mining: the filter on hand-made hits (arithmetic in comments), then the real thing on
a small SciFact corpus with the tiny random BERT against an independent numpy reference (brute-force
scores, rank window, margins, BM25 union), resume from a partial file, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from utilabel.cli.main import main
from utilabel.data.candidates import read_candidates
from utilabel.errors import ConfigError, UnknownNameError
from utilabel.retrieve import mine as mine_mod
from utilabel.retrieve.dense import DenseConfig
from utilabel.retrieve.mine import MineConfig, filter_candidates, mine_negatives, positive_threshold

HITS = [("p", 0.90), ("a", 0.88), ("b", 0.85), ("c", 0.80), ("d", 0.70), ("e", 0.60)]


def _ids(group):
    return [c.doc_id for c in group.candidates]


def test_filter_by_hand():
    # positive p scores 0.90: relative 0.95 → drop > 0.855 (a); p itself is dropped as a positive
    g, st = filter_candidates("q", "text", HITS, [], {"p": 0.90}, MineConfig())
    assert _ids(g) == ["b", "c", "d", "e"] and [c.rank for c in g.candidates] == [1, 2, 3, 4]
    assert (st.dropped_positive, st.dropped_margin, st.kept) == (1, 1, 4)
    # absolute margin 0.1 as well: drop > 0.80 (a, b); c = 0.80 is not above it and stays
    g, _ = filter_candidates("q", "t", HITS, [], {"p": 0.90}, MineConfig(absolute_margin=0.1))
    assert _ids(g) == ["c", "d", "e"]
    # rank window [3, 5] keeps b, c, d before filtering
    g, st = filter_candidates("q", "t", HITS, [], {"p": 0.90}, MineConfig(rank_lo=3, rank_hi=5))
    assert _ids(g) == ["b", "c", "d"] and st.outside_window == 3
    # BM25 extras (dense-scored) are filtered alike and merged by dense score; a duplicate is not added twice
    g, st = filter_candidates("q", "t", HITS[:3], [("x", 0.89), ("y", 0.5), ("b", 0.85)], {"p": 0.90}, MineConfig())
    assert _ids(g) == ["b", "y"] and st.bm25_added == 2 and st.dropped_margin == 2
    # no positive: nothing is filtered by margin
    g, st = filter_candidates("q", "t", HITS, [], {}, MineConfig())
    assert len(g.candidates) == 6 and st.no_positive == 1
    # keep_positives
    g, _ = filter_candidates("q", "t", HITS, [], {"p": 0.90}, MineConfig(keep_positives=True, relative_margin=None))
    assert _ids(g) == [d for d, _ in HITS]


def test_threshold_with_several_positives():
    # positives at 0.9 and 0.6: min → 0.95 × 0.6 = 0.57, max → 0.855, mean 0.75 → 0.7125
    pos = [0.9, 0.6]
    assert positive_threshold(pos, MineConfig()) == pytest.approx(0.57)
    assert positive_threshold(pos, MineConfig(positive_score="max")) == pytest.approx(0.855)
    assert positive_threshold(pos, MineConfig(positive_score="mean")) == pytest.approx(0.7125)
    # both margins: the lower limit wins: min(0.95 × 0.6, 0.6 − 0.01) = 0.57
    assert positive_threshold(pos, MineConfig(absolute_margin=0.01)) == pytest.approx(0.57)
    assert positive_threshold([], MineConfig()) == float("inf")
    assert positive_threshold(pos, MineConfig(relative_margin=None)) == float("inf")


@pytest.mark.parametrize("kw,match", [
    ({"rank_lo": 5, "rank_hi": 4}, "is empty"),
    ({"rank_hi": 50, "depth": 20}, "depth must be"),
    ({"relative_margin": -0.1}, "relative_margin"),
    ({"bm25_k": -1}, "bm25_k"),
    ({"rank_lo": 0}, "rank_lo"),
])
def test_bad_config(kw, match):
    with pytest.raises(ConfigError, match=match):
        MineConfig(**kw)
    with pytest.raises(UnknownNameError, match="unknown positive score 'median'"):
        MineConfig(positive_score="median")


# --------------------------------------------------------------------------- real corpus, tiny model

DENSE = DenseConfig(max_length=64, batch_size=32, shard_size=50)


@pytest.fixture(scope="module")
def tiny(beir_subset, tmp_path_factory):
    """8 SciFact test claims, their gold abstracts among 80 passages."""
    from utilabel.data.registry import load_dataset

    return load_dataset(str(beir_subset("scifact", 8, 80, tmp_path_factory.mktemp("mine_scifact"))))


@pytest.fixture(scope="module")
def reference(tiny, tiny_model_dir):
    """Brute-force dense scores with numpy: {qid: [(doc, score)] best first} and positive scores."""
    from utilabel.retrieve.encoder import Encoder

    enc = Encoder(tiny_model_dir, "cpu", query_max_len=DENSE.query_max_length, passage_max_len=DENSE.max_length)
    doc_ids = list(tiny.corpus)
    emb = enc.encode([tiny.corpus[d].full_text() for d in doc_ids], "passage")
    queries = tiny.split_queries("test")
    qemb = enc.encode([q.text for q in queries.values()], "query")
    scores = qemb @ emb.T
    ranked, pos = {}, {}
    for i, q in enumerate(queries):
        order = sorted(range(len(doc_ids)), key=lambda j: -scores[i, j])
        ranked[q] = [(doc_ids[j], float(scores[i, j])) for j in order]
        pos[q] = {d: float(scores[i, doc_ids.index(d)]) for d, g in tiny.qrels("test")[q].items() if g > 0}
    return ranked, pos


def _expected(ranked, pos, lo, hi, rel, absm):
    """The mining rule with plain loops: window, drop positives, drop s > rel·min(s⁺) or s > min(s⁺) − abs."""
    out = {}
    for q, hits in ranked.items():
        ref = min(pos[q].values())
        keep = []
        for rank, (d, s) in enumerate(hits, start=1):
            if not lo <= rank <= hi or d in pos[q]:
                continue
            if rel is not None and s > rel * ref:
                continue
            if absm is not None and s > ref - absm:
                continue
            keep.append(d)
        out[q] = keep
    return out


def test_mining_matches_numpy_reference(tiny, tiny_model_dir, reference):
    ranked, pos = reference
    # a relative margin at the median of (hit score / positive score) over the window, so some hits
    # are dropped and some kept
    ratios = [s / min(pos[q].values()) for q in ranked for _, s in ranked[q][2:30]]
    rel = float(np.median(ratios))
    cfg = MineConfig(rank_lo=3, rank_hi=30, relative_margin=rel, absolute_margin=None)
    groups, st = mine_negatives(tiny, "test", tiny_model_dir, cfg, DENSE)
    want = _expected(ranked, pos, 3, 30, rel, None)
    assert {g.query_id: _ids(g) for g in groups} == want
    assert st.dropped_margin > 0 and st.kept > 0 and st.queries == 8
    for g in groups:
        np.testing.assert_allclose([c.score for c in g.candidates], [dict(ranked[g.query_id])[d] for d in _ids(g)],
                                   rtol=1e-5, atol=1e-6)
    # absolute margin
    gap = float(np.median([min(pos[q].values()) - s for q in ranked for _, s in ranked[q][:20]]))
    groups, _ = mine_negatives(tiny, "test", tiny_model_dir,
                               MineConfig(rank_hi=20, relative_margin=None, absolute_margin=max(gap, 0.0)), DENSE)
    assert {g.query_id: _ids(g) for g in groups} == _expected(ranked, pos, 1, 20, None, max(gap, 0.0))


def test_bm25_union_adds_filtered_docs(tiny, tiny_model_dir, reference):
    ranked, pos = reference
    cfg = MineConfig(rank_hi=5, relative_margin=None, bm25_k=10)
    groups, st = mine_negatives(tiny, "test", tiny_model_dir, cfg, DENSE)
    from utilabel.retrieve.bm25 import BM25Retriever

    bm = BM25Retriever(tiny.corpus).search(tiny.split_queries("test"), k=10)
    for g in groups:
        want = ({d for d, _ in ranked[g.query_id][:5]} | set(bm[g.query_id])) - set(pos[g.query_id])
        assert set(_ids(g)) == want
        scores = [c.score for c in g.candidates]
        assert scores == sorted(scores, reverse=True)
    assert st.bm25_added > 0


def test_resume_from_partial_file(tiny, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "mined.jsonl"
    cfg = MineConfig(rank_hi=10, query_batch=3)
    full, _ = mine_negatives(tiny, "test", tiny_model_dir, cfg, DENSE)
    real = mine_mod.filter_candidates
    calls = {"n": 0}

    def crash_on_fifth(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(mine_mod, "filter_candidates", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        mine_negatives(tiny, "test", tiny_model_dir, cfg, DENSE, out=out)
    monkeypatch.undo()
    partial = out.with_name(out.name + ".partial")
    lines = [json.loads(x) for x in partial.read_text().splitlines()]
    assert "options" in lines[0] and [len(x["groups"]) for x in lines[1:]] == [3]  # the first batch only
    assert not out.exists()
    with pytest.raises(ConfigError, match="other options"):
        mine_negatives(tiny, "test", tiny_model_dir, MineConfig(rank_hi=9, query_batch=3), DENSE, out=out)
    groups, st = mine_negatives(tiny, "test", tiny_model_dir, cfg, DENSE, out=out)
    assert st.resumed == 3 and groups == full
    assert read_candidates(out) == full and not partial.exists()


def test_cli(tiny, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    rc = main(["mine", "--dataset", str(tiny.path), "--split", "test", "--model", str(tiny_model_dir), "--out", str(out),
               "--rank-hi", "10", "--relative-margin", "off", "--max-length", "64", "--limit", "4", "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "mine:" not in captured.err  # --no-progress: no progress bar
    groups = read_candidates(out, tiny.corpus)
    assert len(groups) == 4 and all(len(g.candidates) <= 10 for g in groups)
    assert f"wrote {sum(len(g.candidates) for g in groups)} candidates for 4 queries" in text
    rc = main(["mine", "--dataset", str(tiny.path), "--out", str(out), "--rank-lo", "9", "--rank-hi", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "rank window [9, 3] is empty" in err
    with pytest.raises(SystemExit) as exc:  # argparse: usage and one error line
        main(["mine", "--dataset", str(tiny.path), "--out", str(out), "--relative-margin", "much"])
    assert exc.value.code == 2
    assert "argument --relative-margin: expected a number >= 0 or 'off', got 'much'" in capsys.readouterr().err

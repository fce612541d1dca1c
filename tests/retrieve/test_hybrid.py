"""Run fusion: RRF and convex (min-max, z-score) values computed by hand on tiny runs, ties, a doc
in one run only, a query in one run only, weight choice on qrels, and the CLI on real files."""

from __future__ import annotations

import math

import pytest

from utilabel.cli.main import main
from utilabel.data.trec import read_trec_run, write_trec_run
from utilabel.errors import ConfigError, UnknownNameError
from utilabel.evaluate.fusion import choose_fusion_weight
from utilabel.retrieve.hybrid import (
    competition_ranks,
    convex,
    first_run_weights,
    fuse,
    normalize,
    rrf,
    top_k,
)

# q1: d2 and d3 tie in A; d1 only in A, d5 only in B; q2 only in A (one hit); q3 only in B
A = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 2.0, "d4": 1.0}, "q2": {"d1": 5.0}}
B = {"q1": {"d2": 10.0, "d5": 5.0}, "q3": {"d7": 0.3, "d8": 0.1}}


def test_ties_share_a_rank():
    assert competition_ranks(A["q1"]) == {"d1": 1, "d2": 2, "d3": 2, "d4": 4}


def test_rrf_by_hand():
    f = rrf([A, B])  # k = 60
    assert f["q1"] == pytest.approx({
        "d1": 1 / 61,              # A rank 1, not in B: adds nothing for B
        "d2": 1 / 62 + 1 / 61,     # A rank 2 (tie), B rank 1
        "d3": 1 / 62,              # tied with d2 in A: the same share
        "d4": 1 / 64,              # A rank 4 (competition ranking after the tie)
        "d5": 1 / 62,              # B rank 2
    }, abs=1e-15)
    assert f["q2"] == {"d1": 1 / 61} and f["q3"] == pytest.approx({"d7": 1 / 61, "d8": 1 / 62})
    assert rrf([A, B], k=0)["q1"]["d2"] == pytest.approx(1 / 2 + 1 / 1)


def test_minmax_convex_by_hand():
    # A q1 normalised: d1 1, d2 .5, d3 .5, d4 0;  B q1: d2 1, d5 0.  A doc missing from a run gets
    # that run's minimum normalised score, 0.
    f = convex([A, B])
    assert f["q1"] == pytest.approx({"d1": 0.5, "d2": 0.75, "d3": 0.25, "d4": 0.0, "d5": 0.0}, abs=1e-15)
    f = convex([A, B], first_run_weights(0.8, 2))
    assert f["q1"] == pytest.approx({"d1": 0.8, "d2": 0.8 * 0.5 + 0.2, "d3": 0.4, "d4": 0.0, "d5": 0.0}, abs=1e-15)
    # a query in one run only: scored by that run; a single hit (all scores equal) normalises to 0
    assert f["q2"] == {"d1": 0.0}
    assert f["q3"] == pytest.approx({"d7": 0.2, "d8": 0.0}, abs=1e-15)


def test_zscore_convex_by_hand():
    # A q1: mean 2, population std sqrt(0.5): z = (√2, 0, 0, -√2); B q1: mean 7.5, std 2.5: (1, -1)
    r2 = math.sqrt(2)
    assert normalize(A["q1"], "zscore") == pytest.approx({"d1": r2, "d2": 0.0, "d3": 0.0, "d4": -r2}, abs=1e-12)
    f = convex([A, B], method="zscore")
    assert f["q1"] == pytest.approx({
        "d1": 0.5 * r2 + 0.5 * -1,    # missing from B: B's minimum z, -1
        "d2": 0.5 * 0 + 0.5 * 1,
        "d3": 0.5 * 0 + 0.5 * -1,
        "d4": 0.5 * -r2 + 0.5 * -1,
        "d5": 0.5 * -r2 + 0.5 * -1,   # missing from A: A's minimum z, -√2
    }, abs=1e-12)


def test_three_runs_and_weights():
    C = {"q1": {"d4": 7.0, "d1": 1.0}}
    assert first_run_weights(0.5, 3) == (0.5, 0.25, 0.25)
    f = fuse([A, B, C], "minmax", w=0.5)
    assert f["q1"]["d4"] == pytest.approx(0.5 * 0 + 0.25 * 0 + 0.25 * 1)
    assert fuse([A, B, C], "rrf")["q1"]["d1"] == pytest.approx(1 / 61 + 1 / 62)


def test_bad_options():
    with pytest.raises(ConfigError, match="at least two runs"):
        rrf([A])
    with pytest.raises(ConfigError, match="sum to 1"):
        convex([A, B], (0.7, 0.7))
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        first_run_weights(1.5, 2)
    with pytest.raises(UnknownNameError, match="unknown fusion method 'max'"):
        fuse([A, B], "max")
    with pytest.raises(ConfigError, match="not rrf"):
        fuse([A, B], "rrf", w=0.3)
    assert rrf([{}, {}]) == {} and convex([{}, {}]) == {}


def test_top_k_keeps_the_best():
    assert top_k(convex([A, B]), 2)["q1"] == {"d2": 0.75, "d1": 0.5}


def test_choose_fusion_weight():
    # run a ranks the relevant doc first for q1 and q2, run b last: w = 1 is best
    a = {"q1": {"r": 3.0, "x": 2.0, "y": 1.0}, "q2": {"r": 2.0, "x": 1.0}}
    b = {"q1": {"r": 1.0, "x": 2.0, "y": 3.0}, "q2": {"r": 1.0, "x": 2.0}}
    qrels = {"q1": {"r": 1}, "q2": {"r": 1}}
    c = choose_fusion_weight(a, b, qrels, grid=[0.0, 0.25, 0.5, 0.75, 1.0], measure="ndcg@10")
    assert c.measure == "nDCG@10" and c.values[0.0] < 1.0
    # at w = .75, q1: r = .75, x = .5, y = .25 → r first; w = .5 ties r with x and y (0.5 each)
    assert c.values[0.75] == 1.0 and c.values[1.0] == 1.0
    assert c.weight == 0.75 and c.value == 1.0  # ties go to the point closest to 0.5
    with pytest.raises(ConfigError, match="grid is empty"):
        choose_fusion_weight(a, b, qrels, grid=[])


def test_cli_round_trip(tmp_path, capsys):
    pa, pb, out = tmp_path / "a.trec", tmp_path / "b.trec", tmp_path / "f.trec"
    write_trec_run(pa, A)
    write_trec_run(pb, B)
    assert main(["retrieve", "hybrid", str(pa), str(pb), "--out", str(out), "--k", "3"]) == 0
    assert "wrote 6 hits for 3 queries" in capsys.readouterr().out
    got = read_trec_run(out)
    assert got["q1"] == pytest.approx({"d2": 1 / 62 + 1 / 61, "d1": 1 / 61, "d3": 1 / 62}, abs=1e-6)
    assert out.read_text().splitlines()[0].split() == ["q1", "Q0", "d2", "1", f"{1 / 62 + 1 / 61:.6f}", "hybrid-rrf"]
    assert main(["retrieve", "hybrid", str(pa), str(pb), "--method", "minmax", "--w", "0.8", "--out", str(out)]) == 0
    assert read_trec_run(out)["q1"] == pytest.approx(convex([A, B], (0.8, 0.2))["q1"], abs=1e-6)


@pytest.mark.parametrize("argv,expected", [
    (["--w", "0.5"], "--w applies to minmax / zscore fusion, not rrf"),
    (["--method", "minmax", "--dev-runs", "A", "B"], "--dev-runs needs --dataset"),
    (["--method", "minmax", "--dev-runs", "A", "B", "--dataset", "scifact", "--dev-split", "test"],
     "--dev-split test would tune the weight on the test queries"),
])
def test_cli_bad_options_are_one_line(tmp_path, capsys, argv, expected):
    pa = tmp_path / "a.trec"
    write_trec_run(pa, A)
    rc = main(["retrieve", "hybrid", str(pa), str(pa), "--out", str(tmp_path / "o.trec"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and expected in err


def test_cli_one_run_is_refused(tmp_path, capsys):
    pa = tmp_path / "a.trec"
    write_trec_run(pa, A)
    assert main(["retrieve", "hybrid", str(pa), "--out", str(tmp_path / "o.trec")]) == 2
    assert "at least two runs" in capsys.readouterr().err

"""The thin CLI: data info counts, bm25 → evaluate round trip, clean one-line errors."""

from __future__ import annotations

import subprocess
import sys

from utilabel.cli.main import main


def test_data_info_prints_provenance_counts(mirror, capsys):
    assert main(["data", "info", "scifact"]) == 0
    out = capsys.readouterr().out
    assert "docs                   5,183" in out
    assert "train.queries          809" in out and "train.qrels            919" in out
    assert "test.queries           300" in out and "test.qrels             339" in out


def test_bm25_then_evaluate(mirror, tmp_path, capsys):
    run = tmp_path / "bm25.trec"
    cands = tmp_path / "cands.jsonl"
    assert main(["retrieve", "bm25", "--dataset", "scifact", "--split", "test", "--out", str(run),
                 "--candidates", str(cands), "--k", "100"]) == 0
    assert cands.exists()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--dataset", "scifact", "--split", "test"]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    assert set(lines) == {"nDCG@10", "RR@10", "R@100", "AP"}
    assert 0.665 <= float(lines["nDCG@10"]) <= 0.700


def test_malformed_run_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.trec"
    bad.write_text("1 Q0 d1 1 0.5 x\n1 Q0 d2\n")
    qrels = tmp_path / "q.txt"
    qrels.write_text("1 0 d1 1\n")
    code = main(["evaluate", str(bad), "--qrels", str(qrels)])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err == f"utilabel: error: {bad}:2: expected 6 columns 'qid Q0 docid rank score tag', got 3"


def test_unknown_dataset_and_command(capsys):
    assert main(["data", "info", "nope"]) == 2
    assert "unknown dataset 'nope'; valid:" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "utilabel.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "retrieve bm25" in out.stdout

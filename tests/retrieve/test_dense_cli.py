"""``utilabel retrieve dense`` / ``utilabel evaluate rag`` through the real dispatcher."""

from __future__ import annotations

import pytest

from utilabel.cli.main import main
from utilabel.data.trec import read_trec_run


@pytest.fixture(scope="module")
def tiny_scifact(beir_subset, tmp_path_factory):
    """5 SciFact test claims; their 6 gold abstracts among 66 passages."""
    return beir_subset("scifact", 5, 66, tmp_path_factory.mktemp("tiny_scifact"))


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_retrieve_dense_writes_a_trec_run_and_evaluates(tiny_scifact, tmp_path, capsys, quantize):
    out = tmp_path / "run.trec"
    rc = main(["retrieve", "dense", "--dataset", str(tiny_scifact), "--out", str(out), "--k", "10",
               "--max-length", "64", "--evaluate", "--quantize", quantize])
    assert rc == 0
    run = read_trec_run(out)
    assert len(run) == 5 and all(len(v) == 10 for v in run.values())
    text = capsys.readouterr().out
    assert "wrote 50 hits for 5 queries" in text and "nDCG@10\t" in text
    # the gold abstract is among 65 passages: MiniLM puts it in the top 10 for most SciFact queries
    assert float(text.split("R@100\t")[1].split()[0]) >= 0.6


def test_cli_errors_are_one_clean_line(tiny_scifact, tmp_path, capsys):
    run = tmp_path / "r.trec"
    run.write_text("1 Q0 d 1 1.0 x\n")
    rc = main(["evaluate", "rag", "--run", str(run), "--dataset", str(tiny_scifact), "--reader", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("utilabel: error: unknown LLM backend 'nope'; valid: ")
    rc = main(["retrieve", "dense", "--dataset", str(tiny_scifact), "--out", str(run), "--index", "annoy"])
    assert rc == 2 and "unknown index type 'annoy'" in capsys.readouterr().err

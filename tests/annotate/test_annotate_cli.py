"""``utilabel annotate --dry-run`` and ``utilabel annotate report`` on real SciFact data."""

from __future__ import annotations

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.cli.main import main
from utilabel.data.candidates import write_candidates
from utilabel.data.registry import load_dataset
from utilabel.llm import get_backend
from utilabel.retrieve.bm25 import bm25_candidates


def test_dry_run_prints_calls_tokens_time(mirror, tmp_path, capsys):
    rc = main(["annotate", "--dataset", "scifact", "--split", "train", "--method", "utilsel", "--limit", "3",
               "--k", "5", "--out", str(tmp_path / "run"), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "calls              6 (without retries)" in out  # 3 queries × (relsel + joint utility call)
    assert "prompt tokens" in out and "time" in out and "cost" in out
    assert not (tmp_path / "run").exists()  # nothing ran


def test_unknown_method_is_a_clean_error(mirror, tmp_path, capsys):
    try:
        main(["annotate", "--dataset", "scifact", "--method", "magic", "--out", str(tmp_path)])
    except SystemExit as exc:  # argparse choices
        assert exc.code == 2
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_report_on_a_scripted_run(mirror, tmp_path, capsys):
    ds = load_dataset("scifact")
    groups = bm25_candidates(ds, "train", k=5, limit=4)
    write_candidates(tmp_path / "cands.jsonl", groups)
    # scripted "annotator" that always selects the first passage shown: agreement is whatever it
    # is, the report must count it consistently (4 queries × 5 candidates = 20 pairs)
    def first_only(request):
        if "Answer: <your" in request.messages[-1]["content"]:
            return "Answer: a\nMy selection:[[1]]"
        return "My selection:[[1]]"

    annotate(groups, ds.corpus, get_backend("fake", responses=first_only), tmp_path / "run",
             AnnotateConfig(method="utilsel"), progress=False)
    rc = main(["annotate", "report", str(tmp_path / "run"), "--dataset", "scifact", "--split", "train",
               "--out", str(tmp_path / "report.md")])
    out = capsys.readouterr().out
    assert rc == 0 and "| run | utilsel | 4 |" in out
    # exactly one passage selected per query: 1.00 LLM positives per query under threshold:0.5 and top1
    rows = {ln.split(" | ")[1]: ln.split(" | ") for ln in out.splitlines() if ln.startswith("| run | ")}
    assert rows["threshold:0.5"][6] == "1.00" and rows["top1"][6] == "1.00"
    assert rows["*first-stage top-1 (free)*"][6] == "1.00" and "Parse failures" in out
    assert (tmp_path / "report.md").read_text().startswith("## Label quality against human qrels")

"""``utilabel annotate check`` on SciFact with a scripted pointwise run (BM25 top-4 stands in for mined
candidates): dry run, a check, a replayed re-check, and a refused listwise run."""

from __future__ import annotations

import json
import math

import pytest
from annotate_scripted import respond

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.cli.main import main
from utilabel.data.candidates import write_candidates
from utilabel.data.registry import load_dataset
from utilabel.llm import get_backend
from utilabel.retrieve.bm25 import bm25_candidates

CFG = AnnotateConfig(method="pointwise", answer_source="none", signals=("yesno",), label_rule="top1")


def lp(messages, cont):
    return math.log(0.7 if cont.lower() == "yes" else 0.3)  # every passage: utility 0.7


@pytest.fixture()
def run(mirror, tmp_path):
    ds = load_dataset("scifact")
    mined = bm25_candidates(ds, "train", k=4, limit=2)
    first2 = [type(g)(g.query_id, g.query, g.candidates[:2]) for g in mined]
    annotate(first2, ds.corpus, get_backend("fake", responses=respond, logprobs=lp), tmp_path / "run", CFG, progress=False)
    write_candidates(tmp_path / "mined.jsonl", mined)
    return tmp_path


def test_check_cli_dry_run_then_check_then_replay(run, capsys, monkeypatch):
    base = [str(run / "run"), "--mined", str(run / "mined.jsonl"), "--dataset", "scifact", "--no-progress"]
    assert main(["annotate", "check", *base, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would judge 4 mined candidates of 2 queries: 4 calls" in out
    assert not (run / "run" / "checked").exists()

    import utilabel.llm.registry as registry

    asked: list[dict] = []

    def backend(name, **kw):
        asked.append({"backend": name, **kw})
        return get_backend("fake", responses=respond, logprobs=lp)

    monkeypatch.setattr(registry, "get_backend", backend)
    assert main(["annotate", "check", *base, "--backend", "openai"]) == 0
    out = capsys.readouterr().out
    # no --model: the backend is asked for the run's own model, so the settings match
    run_model = json.loads((run / "run" / "config.json").read_text())["model"]
    assert asked == [{"backend": "openai", "model": run_model}]
    # all-equal values: top1 picks nothing in the run → no bar → nothing useful
    assert "judged 4 mined candidates of 2 queries (4 new calls, 0 replayed); the judge found 0 useful" in out
    assert "groups (positive): " in out and "groups (drop): " in out
    assert (run / "run" / "checked" / "groups-drop.jsonl").exists()
    # no --backend: the one the run's call log records (here the scripted run's "fake")
    assert main(["annotate", "check", *base]) == 0
    assert "(0 new calls, 4 replayed)" in capsys.readouterr().out
    assert asked[-1] == {"backend": "fake", "model": run_model}
    # --label-rule: under a plain threshold every run candidate (0.7) is a positive, so the bar is 0.7 and
    # all 4 checked passages are useful; the groups then hold the run's and the checked positives
    assert main(["annotate", "check", *base, "--label-rule", "threshold:0.5"]) == 0
    assert "the judge found 4 useful" in capsys.readouterr().out
    from utilabel.data.groups import read_groups

    groups = read_groups(run / "run" / "checked" / "groups-positive.jsonl")
    assert [len(g.positives) for g in groups] == [4, 4] and all(not g.negatives for g in groups)
    assert main(["annotate", "check", *base, "--label-rule", "top-3"]) != 0
    assert "top-3" in capsys.readouterr().err


def test_check_cli_refuses_a_listwise_run(mirror, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"config": {"method": "utilsel"}}')
    (tmp_path / "mined.jsonl").write_text("")
    rc = main(["annotate", "check", str(tmp_path / "run"), "--mined", str(tmp_path / "mined.jsonl"),
               "--dataset", "scifact", "--dry-run"])
    assert rc != 0 and "needs a pointwise run" in capsys.readouterr().err

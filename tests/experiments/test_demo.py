"""``utilabel demo`` end to end with the real embedded model (slow: starts llama.cpp, trains, encodes)."""

from __future__ import annotations

import pytest

from utilabel.errors import ConfigError
from utilabel.experiments.demo import DemoConfig, format_table


def test_demo_config_bounds():
    with pytest.raises(ConfigError, match=r"demo pool must be an integer in \[5, 1000\], got 2"):
        DemoConfig(pool=2)


def test_format_table():
    table = {"BM25": {"scifact": 0.5, "arguana": 0.25}, "base": {"scifact": 0.625, "arguana": 0.125}}
    assert format_table(table).splitlines() == [
        "| model | scifact | arguana |", "|---|---|---|",
        "| BM25 | 0.500 | 0.250 |", "| base | 0.625 | 0.125 |"]


@pytest.mark.slow
@pytest.mark.llm
def test_demo_runs_end_to_end_on_cpu(mirror, tmp_path):
    from utilabel.experiments.demo import run_demo

    res = run_demo(DemoConfig(out=str(tmp_path / "demo"), train_queries=2, candidates=3, eval_queries=5,
                              pool=5, train_steps=1))
    assert {"BM25", "base", "human"} <= set(res.table)
    for row in res.table.values():
        assert set(row) == {"scifact", "arguana"} and all(0.0 <= v <= 1.0 for v in row.values())
    text = res.report.read_text()
    assert "small CPU run" in text and "GPU server" in text
    assert set(res.steps) == {"candidates", "annotation", "training", "evaluation"}

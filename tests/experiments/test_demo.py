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


def test_demo_llm_labels_have_a_positive_per_query(mirror, tmp_path, monkeypatch):
    """The demo labels with the run's own rule (top1 for the local default, the CLI's): a model that says
    "no" to every passage still gives each query its best-fused passage as a positive, where the old
    demo's threshold:0.5 on P(yes) gave none (and so no LLM model)."""
    from utilabel.annotate import read_judgments
    from utilabel.data.registry import load_dataset
    from utilabel.experiments import demo
    from utilabel.labels import judgment_labels
    from utilabel.llm.backends.fake import FakeBackend
    from utilabel.retrieve.bm25 import bm25_candidates

    def says_no(name, model):
        return FakeBackend(model=model, logprobs=lambda messages, continuation: -0.1 if continuation == "no" else -4.0)

    monkeypatch.setattr(demo, "get_backend", says_no)
    scifact = load_dataset("scifact")
    cfg = DemoConfig(out=str(tmp_path), candidates=3)
    groups = bm25_candidates(scifact, "train", k=cfg.candidates, limit=2)
    config = demo.annotation_config(cfg, scifact)
    labels = demo.annotate_demo(cfg, scifact, groups, tmp_path / "annotation", config)
    assert set(labels) == {g.query_id for g in groups}
    assert all(sum(w > 0 for w in per.values()) == 1 for per in labels.values())
    old = judgment_labels(read_judgments(tmp_path / "annotation" / "judgments.jsonl"), "threshold:0.5", field="utility")
    assert not any(w > 0 for per in old.values() for w in per.values())


@pytest.mark.slow
@pytest.mark.llm
def test_demo_runs_end_to_end_on_cpu(mirror, tmp_path):
    from utilabel.experiments.demo import run_demo

    res = run_demo(DemoConfig(out=str(tmp_path / "demo"), train_queries=2, candidates=3, eval_queries=5,
                              pool=5, train_steps=1))
    assert {"BM25", "base", "human", "LLM"} <= set(res.table)
    for row in res.table.values():
        assert set(row) == {"scifact", "arguana"} and all(0.0 <= v <= 1.0 for v in row.values())
    text = res.report.read_text()
    assert "small CPU run" in text and "GPU server" in text
    assert set(res.steps) == {"candidates", "annotation", "training", "evaluation"}


def test_cli_demo_silences_library_progress_bars_and_restores_them():
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    from utilabel.cli.demo import _quiet_libraries

    before = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled())
    with _quiet_libraries():
        assert not hf_logging.is_progress_bar_enabled() and hub.are_progress_bars_disabled()
        assert hf_logging.get_verbosity() == hf_logging.ERROR
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled()) == before

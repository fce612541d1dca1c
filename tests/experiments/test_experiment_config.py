"""Experiment config: YAML loading, bounds and cross-references with clear messages."""

from __future__ import annotations

import pytest

from utilabel.errors import ConfigError, UnknownNameError
from utilabel.experiments.config import ExperimentConfig

BASE = {
    "sources": [{"name": "human", "kind": "human"}, {"name": "llm", "path": "x.jsonl"}],
    "datasets": [{"name": "scifact"}, {"name": "squad", "max_queries": 50, "rag": True}],
    "studies": [{"name": "main", "sources": ["human", "llm"], "losses": ["infonce", "disj"]}],
}


def test_committed_config_loads():
    from pathlib import Path

    cfg = ExperimentConfig.from_yaml(Path(__file__).resolve().parents[2] / "docs/results/scifact-cpu.yaml")
    noise = [s for s in cfg.studies if s.kind == "noise"]
    assert sorted({loss for s in noise for loss in s.losses}) == ["disj", "infonce", "joint", "lsep"]
    assert {s.kind for s in cfg.studies} == {"labels", "noise", "ratio"}
    assert cfg.datasets[1].max_queries == 200 and cfg.rag.limit == 5


def test_committed_settings_and_model_keys_keep_their_meaning():
    """The grid derives TrainConfig / DenseConfig; the committed config's settings (shown in the report,
    hashed into model and result keys) are still those its results were made with."""
    from pathlib import Path

    cfg = ExperimentConfig.from_yaml(Path(__file__).resolve().parents[2] / "docs/results/scifact-cpu.yaml")
    assert cfg.train_settings() == {
        "base_model": "default", "epochs": 1, "max_steps": None, "batch_size": 8, "group_size": 4, "max_positives": 4,
        "negatives_k": 30, "query_max_len": 24, "passage_max_len": 32, "lr": 1e-4, "temperature": 0.05}
    assert cfg.dense_settings() == {"max_length": 32, "query_max_length": 24, "batch_size": 64, "index": "flat", "k": 100}
    t = cfg.train_config(seed=3)
    assert (t.group_size, t.passage_max_len, t.seed, t.negatives_k) == (4, 32, 3, 30)
    assert ExperimentConfig.from_dict({}).train_settings()["group_size"] == 4  # the grid's default, not TrainConfig's 8


def test_yaml_round_trip(tmp_path):
    import yaml

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({**BASE, "train": {"epochs": 2}}))
    cfg = ExperimentConfig.from_yaml(p)
    assert cfg.train_config().epochs == 2 and cfg.datasets[1].rag and cfg.source("llm").label is None
    assert ExperimentConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("patch, message", [
    ({"bogus": 1}, "experiment: unknown key 'bogus'; valid: "),
    ({"train": {"epochs": 0}}, r"epochs must be an integer in \[1, 1000\]; got 0"),
    ({"train": {"epoch": 2}}, "unknown training option.s. epoch; valid: "),
    ({"train": {"seed": 2}}, "train.seed is set per model by the runner"),
    ({"dense": {"k": 5}}, r"dense.k must be in \[10, 10000\], got 5"),
    ({"dense": {"shards": 5}}, "dense: .*unexpected keyword argument 'shards'"),
    ({"studies": [{"name": "s", "losses": ["hinge"]}]}, "study 's': unknown loss 'hinge'; valid: infonce, joint, disj, lsep"),
    ({"studies": [{"name": "s", "sources": ["crowd"]}]}, "study 's': unknown label source 'crowd'; valid: human, llm"),
    ({"studies": [{"name": "s", "datasets": ["nq"]}]}, "study 's': dataset 'nq' is not among the eval datasets"),
    ({"studies": [{"name": "s", "kind": "ratio"}]}, "study 's': a ratio study needs llm_source"),
    ({"studies": [{"name": "s", "kind": "grid"}]}, "study 's': unknown kind 'grid'; valid: labels, noise, ratio"),
    ({"sources": [{"name": "llm", "kind": "judgments"}]}, "label source 'llm': a judgments source needs 'path'"),
    ({"studies": [{"name": "s", "noise_rates": [1.0]}]}, r"noise_rates must be in \[0.0, 0.95\]"),
    ({"dense": {"quantize": "fp8"}}, "unknown quantize mode 'fp8'; valid: int8, none"),
    ({"studies": [{"name": "s", "round": {"top": 2}}]}, "study 's': round settings need kind round"),
    ({"studies": [{"name": "s", "kind": "round", "round": {"mode": "keep"}}]},
     "round.mode must be one of positive, drop, got 'keep'"),
    ({"studies": [{"name": "s", "kind": "round", "round": {"tops": 2}}]}, "study s.round: unknown key 'tops'"),
    ({"studies": [{"name": "s", "kind": "round", "round": {"top": 0}}]}, r"round.top must be in \[1, 1000\]"),
    ({"studies": [{"name": "s", "kind": "round", "train": {"negatives_file": "x.jsonl"}}]},
     "a round study mines its own negatives"),
    ({"datasets": [{"name": "scifact", "heldout": True}]},
     "dataset scifact/test: heldout needs the training dataset and split .scifact/train."),
])
def test_bad_configs_are_rejected_with_clear_messages(patch, message):
    with pytest.raises((ConfigError, UnknownNameError), match=message):
        ExperimentConfig.from_dict({**BASE, **patch})


def test_result_keys_carry_the_quantisation_and_float32_keys_are_unchanged():
    """Results keyed before ``dense.quantize`` existed stay valid; int8 results get keys of their own."""
    import hashlib
    import json

    from utilabel.experiments.results import result_key

    old_dense = {"max_length": 128, "query_max_length": 32, "batch_size": 64, "index": "flat", "k": 100}
    old_tag = hashlib.sha256(json.dumps([old_dense], sort_keys=True).encode()).hexdigest()[:8]
    fp32 = ExperimentConfig.from_dict(BASE)
    int8 = ExperimentConfig.from_dict({**BASE, "dense": {"quantize": "int8"}})
    assert result_key(fp32, "base", 0, "scifact", "retrieval") == f"base|s0|scifact|retrieval|{old_tag}"
    assert result_key(int8, "base", 0, "scifact", "retrieval") != result_key(fp32, "base", 0, "scifact", "retrieval")
    assert result_key(int8, "BM25", 0, "scifact", "retrieval") == result_key(fp32, "BM25", 0, "scifact", "retrieval")

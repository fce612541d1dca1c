"""Model cache keys (:mod:`utilabel.experiments.keys`): the whole TrainConfig counts, and the keys of the
committed evidence-v2 models stay what results.jsonl recorded."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from utilabel.errors import ConfigError
from utilabel.experiments.config import RUNNER_OPTIONS, ExperimentConfig
from utilabel.experiments.keys import TRAIN_BASELINE, keyed_train_settings, model_key
from utilabel.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
EVIDENCE = REPO / "docs" / "results" / "evidence-v2"
BASE = {"name": "t", "sources": [{"name": "human", "kind": "human"}], "datasets": [{"name": "scifact"}],
        "studies": [{"name": "s"}]}


def test_the_baseline_names_every_training_field():
    """A new TrainConfig field must be added to TRAIN_BASELINE (with the value that keeps old keys)."""
    assert set(TRAIN_BASELINE) == {f.name for f in fields(TrainConfig)} - set(RUNNER_OPTIONS)


def test_every_training_field_that_differs_from_the_baseline_is_keyed(monkeypatch):
    plain = ExperimentConfig.from_dict(BASE)
    assert "weight_decay" not in keyed_train_settings(plain)
    key = model_key(plain, "abc", "disj", 2, 0)
    # a field the grid never lists by hand still changes the key ...
    wd = ExperimentConfig.from_dict({**BASE, "train": {"weight_decay": 0.0}})
    assert keyed_train_settings(wd)["weight_decay"] == 0.0 and model_key(wd, "abc", "disj", 2, 0) != key
    # ... and so does a changed default (here: simulated by editing the frozen baseline)
    monkeypatch.setitem(TRAIN_BASELINE, "warmup_ratio", 0.2)
    assert model_key(plain, "abc", "disj", 2, 0) != key
    monkeypatch.undo()
    # one positive makes disj and infonce one objective; runner options are not training settings
    assert model_key(plain, "abc", "infonce", 1, 0) == model_key(plain, "abc", "disj", 1, 0)
    assert model_key(plain, "abc", "infonce", 2, 0) != key
    assert keyed_train_settings(plain).keys().isdisjoint(RUNNER_OPTIONS)


def test_a_negatives_file_is_keyed_by_its_content(tmp_path):
    """Rewriting the negatives file under the same path (re-mined, re-checked) makes a new model."""
    path = tmp_path / "neg.jsonl"
    path.write_text('{"query_id": "q", "query": "?", "candidates": [{"doc_id": "a", "rank": 1, "score": 1.0}]}\n')
    cfg = ExperimentConfig.from_dict({**BASE, "train": {"negatives_file": str(path)}})
    key = model_key(cfg, "abc", "disj", 2, 0)
    assert model_key(cfg, "abc", "disj", 2, 0) == key
    assert key != model_key(ExperimentConfig.from_dict(BASE), "abc", "disj", 2, 0)
    path.write_text(path.read_text().replace('"a"', '"b"'))
    assert model_key(cfg, "abc", "disj", 2, 0) != key
    path.unlink()
    with pytest.raises(ConfigError, match=f"negatives_file {path}: no such file"):
        model_key(cfg, "abc", "disj", 2, 0)


def test_committed_evidence_models_keep_their_keys(mirror, tmp_path):
    """Re-plan docs/results/evidence-v2 (labels rebuilt from the committed judgments and SciFact): every
    model's key equals the ``model_key`` its results recorded."""
    from utilabel.experiments.runner import ExperimentRunner

    config = ExperimentConfig.from_yaml(EVIDENCE / "config.yaml")
    config.sources = [s if not s.path else type(s)(**{**s.__dict__, "path": str(REPO / s.path)})
                      for s in config.sources]
    config.out = str(tmp_path / "out")
    recorded: dict[tuple[str, int], set[str]] = {}
    for line in (EVIDENCE / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("loss") and rec["kind"] == "retrieval":
            recorded.setdefault((rec["row"], rec["seed"]), set()).add(rec["model_key"])
    specs = ExperimentRunner(config).plan()
    assert len(specs) == 40 and {(s.row, s.seed) for s in specs} == set(recorded)
    assert {(s.row, s.seed): {s.key} for s in specs} == recorded

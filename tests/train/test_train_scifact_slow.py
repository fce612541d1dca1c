"""The must-show result: trained on SciFact train human labels, the model beats the untrained base
model on SciFact test nDCG@10 (exact dense search over all 5,183 documents). About an hour on 2 CPU cores."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_trained_model_beats_base_on_scifact_test(tmp_path, mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.train.config import TrainConfig
    from utilabel.train.evaluation import evaluate_model
    from utilabel.train.trainer import train

    ds = load_dataset("scifact")
    cfg = TrainConfig(dataset="scifact", labels="human", loss="disj", epochs=1, batch_size=16, group_size=4,
                      lr=3e-5, out=str(tmp_path / "run"), show_progress=False, num_threads=2)
    trained = evaluate_model(train(cfg), ds, "test")["nDCG@10"]
    base = evaluate_model("default", ds, "test")["nDCG@10"]
    assert 0.60 < base < 0.70  # all-MiniLM-L6-v2 on SciFact test
    assert trained > base + 0.01, (base, trained)

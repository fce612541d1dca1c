"""What an archive keeps of the trained models: ``models.jsonl`` (written by the runner, backfilled from
``DONE.json`` markers), so a report rebuilt from the archive alone counts the same models and minutes."""

from __future__ import annotations

import json

from utilabel.experiments.results import (
    archive_results,
    record_trained_models,
    restore_results,
    trained_models,
)
from utilabel.fileio import AppendLog


def _done(out, key, row, seconds):
    (out / "models" / key).mkdir(parents=True)
    (out / "models" / key / "DONE.json").write_text(json.dumps(
        {"model": f"{out}/models/{key}/model", "row": row, "seed": 0, "seconds": seconds, "label_stats": {"queries": 3}}))


def test_trained_models_merge_the_log_and_the_markers_and_the_archive_keeps_them(tmp_path):
    out, archive, fresh = tmp_path / "out", tmp_path / "archive", tmp_path / "fresh"
    out.mkdir()
    with AppendLog(out / "models.jsonl") as log:
        log.append({"model_key": "aaa", "row": "llm/disj", "seed": 0, "seconds": 60.0, "label_stats": {}})
    _done(out, "aaa", "llm/disj", 61.0)  # listed: the log's record wins
    _done(out, "bbb", "human/disj", 90.0)  # trained before the log existed
    (out / "results.jsonl").write_text("")
    models = trained_models(out)
    assert sorted(models) == ["aaa", "bbb"]
    assert sum(m["seconds"] for m in models.values()) == 150.0
    archive_results(out, archive)  # backfills bbb into models.jsonl, then copies the files
    assert [r["model_key"] for r in AppendLog.read(archive / "models.jsonl")] == ["aaa", "bbb"]
    record_trained_models(out)  # nothing new: no duplicate line
    assert len(AppendLog.read(out / "models.jsonl")) == 2
    assert restore_results(fresh, archive)
    assert sum(m["seconds"] for m in trained_models(fresh).values()) == 150.0  # no model folders needed

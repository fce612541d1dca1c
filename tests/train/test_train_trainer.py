"""The trainer end to end: CLI outputs, config validation, and loss dropping on real SciFact groups."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from utilabel.errors import ConfigError, UnknownNameError
from utilabel.train.config import TrainConfig


def test_config_validation_messages(tmp_path):
    with pytest.raises(ConfigError, match=r"group_size must be an integer in \[2, 1024\]; got 1"):
        TrainConfig(group_size=1)
    with pytest.raises(UnknownNameError, match="unknown loss 'nce'; valid: disj, disj_kl, infonce, joint, kl, lsep, margin_mse"):
        TrainConfig(loss="nce")
    with pytest.raises(ConfigError, match="human_ratio needs both 'human' and a judgments file"):
        TrainConfig(labels=["human"], human_ratio=0.5)
    with pytest.raises(ConfigError, match="give human_ratio"):
        TrainConfig(labels=["human", "j.jsonl"])
    with pytest.raises(ConfigError, match="unknown training option.*epoch_count"):
        TrainConfig.from_dict({"epoch_count": 3})
    y = tmp_path / "t.yaml"
    y.write_text("loss: lsep\nepochs: 3\nlabels: human\n")
    cfg = TrainConfig.from_yaml(y, epochs=1)
    assert (cfg.loss, cfg.epochs, cfg.labels) == ("lsep", 1, ["human"])


def test_cli_writes_model_log_curve(tiny_model_dir, tmp_path, mirror, capsys):
    from utilabel.cli.main import main

    out = tmp_path / "run"
    rc = main(["train", "--dataset", "scifact", "--labels", "human", "--loss", "lsep", "--epochs", "1",
               "--max-steps", "3", "--batch-size", "4", "--group-size", "4", "--base-model", str(tiny_model_dir),
               "--passage-max-len", "64", "--negatives-k", "0", "--out", str(out), "--no-show-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "model" in printed and "loss" in printed
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["queries"] == 4 for r in log)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["train_queries"] == 809 and summary["masked_queries"] == 0
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    card = (out / "model" / "README.md").read_text()
    assert "`lsep`" in card and "labels: human" in card and "| group_size | 4 |" in card
    assert len(json.loads((out / "human_queries.json").read_text())["human_queries"]) == 809


def test_cli_bad_option_is_one_clean_line(tmp_path, capsys):
    from utilabel.cli.main import main

    rc = main(["train", "--loss", "nce", "--out", str(tmp_path)])
    assert rc == 2
    assert capsys.readouterr().err.strip() == "utilabel: error: unknown loss 'nce'; valid: disj, disj_kl, infonce, joint, kl, lsep, margin_mse"


def test_llm_labels_train_and_mask_queries_without_positive(tiny_model_dir, tmp_path, mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.train.trainer import train

    ds = load_dataset("scifact")
    qrels = ds.qrels("train")
    qids = list(qrels)[:8]
    lines = []
    for i, q in enumerate(qids):
        for d in qrels[q]:
            lines.append({"query_id": q, "doc_id": d, "method": "utility", "utility": 0.0 if i % 2 else 1.0})
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = TrainConfig(dataset="scifact", labels=[str(path)], loss="disj", epochs=1, batch_size=4, group_size=3,
                      base_model=str(tiny_model_dir), passage_max_len=32, out=str(tmp_path / "o"), show_progress=False,
                      negatives_k=0)
    train(cfg)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["train_queries"] == 8 and summary["steps"] == 2
    assert summary["masked_queries"] == 4  # the 4 queries whose LLM labels have no positive


def test_loss_drops_on_real_scifact_groups(tmp_path, mirror):
    """MiniLM, short lengths: the mean loss over the trained batches falls after 4 steps."""
    import torch

    from utilabel.data.registry import load_dataset
    from utilabel.train.data import GroupSampler, data_from_dataset
    from utilabel.train.losses import get_loss
    from utilabel.train.model import BiEncoder
    from utilabel.train.trainer import _TokenCache, forward_backward, train

    cfg = TrainConfig(dataset="scifact", labels="human", loss="disj", epochs=1, max_steps=4, batch_size=4,
                      group_size=3, query_max_len=32, passage_max_len=64, lr=1e-4, warmup_ratio=0.0,
                      negatives_k=10, out=str(tmp_path / "o"), show_progress=False, num_threads=1)
    train(cfg)
    ds = load_dataset("scifact")
    data = data_from_dataset(cfg, ds)
    sampler = GroupSampler(data.plan, data.candidates, data.corpus_ids, 3, 4, False, "random", cfg.seed,
                           query_ids=data.query_ids)
    groups = sampler.epoch_groups(0)[:16]  # the 4 trained batches

    def mean_loss(model_dir):
        m = BiEncoder(replace(cfg.model_config(), base_model=str(model_dir)))
        m.train(False)
        tok = _TokenCache(m, data)
        vals = [forward_backward(m, get_loss("disj"), groups[i : i + 4], tok, data.plan.all_positive_ids())[0]
                for i in range(0, 16, 4)]
        return float(torch.stack(vals).mean())

    before, after = mean_loss("default"), mean_loss(tmp_path / "o" / "model")
    assert after < before - 0.05, (before, after)


def test_cli_trains_from_flagembedding_groups_without_a_dataset(tiny_model_dir, tmp_path, mirror, capsys):
    """``--groups`` with FlagEmbedding {query, pos, neg} lines: texts come from the file, the named
    dataset is never loaded (it does not exist), the groups' negatives are the hard negatives."""
    from utilabel.cli.main import main

    out = tmp_path / "flag"
    src = mirror / "flagembedding-finetune-examples" / "msmarco.jsonl"
    rc = main(["train", "--groups", str(src), "--dataset", str(tmp_path / "no-dataset"), "--loss", "disj",
               "--epochs", "1", "--batch-size", "5", "--group-size", "4", "--base-model", str(tiny_model_dir),
               "--passage-max-len", "32", "--out", str(out), "--no-show-progress"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_queries"] == 10 and summary["steps"] == 2 and summary["masked_queries"] == 0
    assert summary["data"][0] == f"groups: `{src}`"
    assert "hard negatives: the groups' negatives" in (out / "model" / "README.md").read_text()


def test_train_from_an_annotation_runs_groups_file(tiny_model_dir, tmp_path, mirror):
    """An annotation run's groups.jsonl (passages by id) trains with its dataset's passage texts; the
    positives are exactly the groups' positives."""
    from utilabel.data.groups import write_groups
    from utilabel.data.registry import load_dataset
    from utilabel.labels import groups_from_judgments
    from utilabel.records import Judgment
    from utilabel.retrieve.bm25 import bm25_candidates
    from utilabel.train.data import training_data
    from utilabel.train.trainer import train

    ds = load_dataset("scifact")
    cands = bm25_candidates(ds, "train", k=5, limit=4)
    judgments = [Judgment(g.query_id, c.doc_id, "pointwise", utility=0.9 if c.rank == 2 else 0.1)
                 for g in cands for c in g.candidates]
    write_groups(tmp_path / "groups.jsonl", groups_from_judgments(judgments, cands))
    cfg = TrainConfig(groups=str(tmp_path / "groups.jsonl"), dataset="scifact", epochs=1, batch_size=2,
                      group_size=3, base_model=str(tiny_model_dir), passage_max_len=32, out=str(tmp_path / "o"),
                      show_progress=False)
    plan = training_data(cfg).plan.labels(0)
    assert {q: [d for d, w in v.items() if w > 0] for q, v in plan.items()} == {
        g.query_id: [g.candidates[1].doc_id] for g in cands}
    train(cfg)
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["train_queries"] == 4
    with pytest.raises(ConfigError, match="either labels or groups"):
        TrainConfig(groups="g.jsonl", labels=["human"])


def test_labels_in_memory_train_the_model_their_judgments_file_trains(tiny_model_dir, tmp_path, mirror):
    """``train(config, labels=...)`` (what the experiment runner and the demo call) gives the same loss,
    step by step, as the same soft labels written as a judgments file and read back through a rule
    that keeps every weight > 0 (how the runner trained before); BM25 hard negatives as usual."""
    from utilabel.data.registry import load_dataset
    from utilabel.experiments.label_variants import write_labels
    from utilabel.train.trainer import read_log, train

    qrels = load_dataset("scifact").qrels("train")
    labels = {q: {d: 0.7 if i % 2 else 1.0 for d in qrels[q]} | {"4983": 0.0} for i, q in enumerate(list(qrels)[:8])}
    path = write_labels(tmp_path / "labels", labels, "x")
    common = dict(dataset="scifact", loss="disj", epochs=2, batch_size=4, group_size=3, base_model=str(tiny_model_dir),
                  query_max_len=16, passage_max_len=32, negatives_k=5, seed=3, show_progress=False, save_every=0,
                  num_threads=1)
    train(TrainConfig(**common, labels=[str(path)], label_rule="threshold:1e-6", out=str(tmp_path / "file")))
    train(TrainConfig(**common, out=str(tmp_path / "mem")), labels=labels)
    from_file, in_memory = read_log(tmp_path / "file"), read_log(tmp_path / "mem")
    assert len(in_memory) == 4 and [r["loss"] for r in in_memory] == [r["loss"] for r in from_file]
    summary = json.loads((tmp_path / "mem" / "summary.json").read_text())
    assert summary["label_strategy"] == "given" and summary["data"][1] == "labels: given in memory (8 queries, plan `given`)"
    with pytest.raises(ConfigError, match="either labels or groups"):
        train(TrainConfig(**common, out=str(tmp_path / "x")), labels=labels, groups=[])
    with pytest.raises(ConfigError, match="labels must be Labels"):
        train(TrainConfig(**common, out=str(tmp_path / "y")), labels=[("q", "d")])

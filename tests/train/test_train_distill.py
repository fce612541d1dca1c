"""Distillation wired into training: teacher matrices of a hand-made batch, tiny runs with kl and
disj_kl (teacher from a judgments file and from the first stage), the errors, and that a run
without teacher scores is unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from utilabel.errors import ConfigError
from utilabel.train.config import TrainConfig
from utilabel.train.data import SampledGroup


def test_teacher_matrices_of_a_hand_made_batch():
    from utilabel.train.trainer import batch_matrices, teacher_matrices

    groups = [SampledGroup("q1", ["a", "b", "c"], [1.0, 0.0, 0.0], [2.0, None, -1.0]),
              SampledGroup("q2", ["d", "e"], [1.0, 0.0], [0.5, 1.5]),
              SampledGroup("q3", ["f", "g"], [1.0, 0.0], None)]  # a query without teacher scores
    t = teacher_matrices(groups, slice(0, 3))
    # columns a b c | d e | f g: own-group entries with a score are True, in-batch passages False
    assert t.scores.tolist() == [[2.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0],
                                 [0.0, 0.0, 0.0, 0.5, 1.5, 0.0, 0.0],
                                 [0.0] * 7]
    assert t.mask.tolist() == [[True, False, True, False, False, False, False],
                               [False, False, False, True, True, False, False],
                               [False] * 7]
    assert t.mask.dtype == torch.bool and t.scores.shape == batch_matrices(groups, slice(0, 3), {})[0].shape
    local = teacher_matrices(groups, slice(1, 2))  # a DDP rank's slice: its rows, every column
    assert torch.equal(local.scores, t.scores[1:2]) and torch.equal(local.mask, t.mask[1:2])


def test_sampler_carries_teacher_scores():
    from utilabel.labels.mixing import LabelPlan
    from utilabel.train.data import GroupSampler

    plan = LabelPlan([(0, {"q": {"p": 1.0}})], [], "given")
    s = GroupSampler(plan, {"q": ["n1", "n2"]}, ["p", "n1", "n2", "x"], group_size=3, negative_sampling="top",
                     teacher={"q": {"p": 0.5, "n2": -1.0}})
    g = s.group("q", 0)
    assert g.doc_ids == ["p", "n1", "n2"] and g.teacher == [0.5, None, -1.0]
    assert GroupSampler(plan, {"q": ["n1", "n2"]}, ["p"], group_size=3).group("q", 0).teacher is None


def test_config_options_and_errors():
    from utilabel.train.losses import get_loss

    cfg = TrainConfig(loss="disj_kl", teacher="first_stage", teacher_temperature=0.5, distill_weight=0.25)
    loss = get_loss(cfg.loss, **cfg.loss_options())
    assert (loss.kl_weight, loss.teacher_temperature) == (0.25, 0.5)
    assert get_loss("kl", **cfg.loss_options()).teacher_temperature == 0.5
    assert get_loss("disj", **cfg.loss_options()).name == "disj"  # options a loss does not take are left out
    with pytest.raises(ConfigError, match="teacher scores are used only by the distillation losses .*'disj'"):
        TrainConfig(teacher="first_stage")
    with pytest.raises(ConfigError, match="teacher_temperature must be a finite number > 0; got 0"):
        TrainConfig(loss="kl", teacher="first_stage", teacher_temperature=0)
    with pytest.raises(ConfigError, match="distill_weight must be a finite number >= 0"):
        TrainConfig(loss="disj_kl", distill_weight=-1.0)
    with pytest.raises(ConfigError, match="teacher_normalize must be one of zscore, minmax, none"):
        TrainConfig(loss="kl", teacher_normalize="rank")


def _judgments(tmp_path, ds, qids, qrels):
    """Pointwise judgments of each query's qrels docs (useful) and its BM25 top 5, with fused log-odds."""
    from utilabel.retrieve.bm25 import bm25_candidates

    cands = {g.query_id: [c.doc_id for c in g.candidates] for g in bm25_candidates(ds, "train", k=5)}
    lines = []
    for q in qids:
        for i, d in enumerate(dict.fromkeys([*qrels[q], *cands[q]])):
            lines.append({"query_id": q, "doc_id": d, "method": "pointwise", "utility": 1.0 if d in qrels[q] else 0.0,
                          "score": 3.0 - i})
    path = tmp_path / "run" / "judgments.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def common(tiny_model_dir):
    return dict(dataset="scifact", epochs=1, batch_size=4, group_size=4, base_model=str(tiny_model_dir),
                query_max_len=16, passage_max_len=32, negatives_k=5, seed=3, show_progress=False, save_every=0,
                num_threads=1)


def test_kl_and_disj_kl_train_from_judgments_and_first_stage(common, tmp_path, mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.train.trainer import read_log, train

    ds = load_dataset("scifact")
    qrels = ds.qrels("train")
    qids = list(qrels)[:8]
    path = _judgments(tmp_path, ds, qids, qrels)
    labels = {q: dict.fromkeys(qrels[q], 1.0) for q in qids}
    train(TrainConfig(**common, loss="kl", labels=[str(path)], label_rule="threshold:0.5", teacher=str(path),
                      out=str(tmp_path / "kl")))
    train(TrainConfig(**common, loss="disj_kl", teacher="first_stage", out=str(tmp_path / "fs")), labels=labels)
    for name in ("kl", "fs"):
        log = read_log(tmp_path / name)
        assert len(log) == 2 and all(r["loss"] > 0 for r in log)
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert any(x.startswith("teacher scores: ") for x in summary["data"])
    assert summary["masked_queries"] == 0  # disj_kl: every query has a positive
    with pytest.raises(ConfigError, match="loss 'kl' needs teacher scores: set the training option teacher"):
        train(TrainConfig(**common, loss="kl", out=str(tmp_path / "x")), labels=labels)
    with pytest.raises(ConfigError, match="teacher scores were given, but loss 'disj' does not use them"):
        train(TrainConfig(**common, loss="disj", out=str(tmp_path / "y")), labels=labels, teacher={"q": {"d": 1.0}})


def test_teacher_in_memory_equals_its_source(common, tmp_path, mirror):
    """kl with the first stage's scores given in memory trains exactly as ``teacher: first_stage``."""
    from utilabel.data.registry import load_dataset
    from utilabel.labels.teacher import candidates_teacher, normalize_teacher
    from utilabel.retrieve.bm25 import bm25_candidates
    from utilabel.train.trainer import read_log, train

    ds = load_dataset("scifact")
    qrels = ds.qrels("train")
    labels = {q: dict.fromkeys(qrels[q], 1.0) for q in list(qrels)[:8]}
    teacher = normalize_teacher(candidates_teacher(bm25_candidates(ds, "train", k=5)))
    train(TrainConfig(**common, loss="kl", teacher="first_stage", out=str(tmp_path / "spec")), labels=labels)
    train(TrainConfig(**common, loss="kl", out=str(tmp_path / "mem")), labels=labels, teacher=teacher)
    spec, mem = read_log(tmp_path / "spec"), read_log(tmp_path / "mem")
    assert [r["loss"] for r in spec] == [r["loss"] for r in mem]


def test_gradcache_step_with_teacher_equals_plain(tiny_model_dir):
    """forward_backward with disj_kl: GradCache (chunks of 3) gives the plain step's loss and gradients."""
    from types import SimpleNamespace

    from utilabel.retrieve.encoder import ModelConfig
    from utilabel.train.losses import get_loss
    from utilabel.train.model import BiEncoder
    from utilabel.train.trainer import _TokenCache, forward_backward

    model = BiEncoder(ModelConfig(base_model=str(tiny_model_dir), temperature=0.1))
    model.train(False)  # dropout off: the plain step encodes everything at once
    texts = SimpleNamespace(query_text=lambda q: f"query {q} about cells", doc_text=lambda d: f"passage {d} " + "word " * int(d[-1]))
    tokens = _TokenCache(model, texts)
    groups = [SampledGroup(f"q{i}", [f"d{i}{j}" for j in range(3)], [1.0, 0.0, 0.0] if i != 2 else [0.0] * 3,
                           [2.0, 0.5 if i else None, -1.0]) for i in range(4)]
    loss_fn = get_loss("disj_kl", teacher_temperature=0.5, kl_weight=0.7)

    def step(chunk):
        for p in model.parameters():
            p.grad = None
        loss, masked = forward_backward(model, loss_fn, groups, tokens, {}, grad_cache_chunk=chunk)
        return loss, masked, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    (plain, masked, plain_grads), (cached, _, cached_grads) = step(0), step(3)
    assert masked == 0  # q2 has no positive but two teacher-scored passages: disj_kl still learns from it
    torch.testing.assert_close(cached, plain)
    assert cached_grads.keys() == plain_grads.keys() and len(plain_grads) > 10
    for n in plain_grads:
        torch.testing.assert_close(cached_grads[n], plain_grads[n], rtol=1e-4, atol=1e-6)


#: disj's loss log of the run below, recorded with main at 71e4731 (before teacher scores were wired in)
DISJ_BEFORE = [2.525259494781494, 2.422584056854248, 2.609334945678711, 2.4351425170898438]


def test_disj_loss_log_as_before_distillation(tiny_model_dir, tmp_path, mirror):
    from utilabel.data.registry import load_dataset
    from utilabel.train.trainer import read_log, train

    qrels = load_dataset("scifact").qrels("train")
    labels = {q: {d: 0.7 if i % 2 else 1.0 for d in qrels[q]} | {"4983": 0.0} for i, q in enumerate(list(qrels)[:8])}
    train(TrainConfig(dataset="scifact", loss="disj", epochs=2, batch_size=4, group_size=3, base_model=str(tiny_model_dir),
                      query_max_len=16, passage_max_len=32, negatives_k=5, seed=3, show_progress=False, save_every=0,
                      num_threads=1, out=str(tmp_path / "o")), labels=labels)
    # bit for bit on the machine that recorded it; other CPUs' kernels may differ in the last bits
    assert [r["loss"] for r in read_log(tmp_path / "o")] == pytest.approx(DISJ_BEFORE, rel=1e-6)


def test_runs_without_teacher_are_unchanged(common, tmp_path, mirror):
    """disj_kl with distill_weight 0 trains exactly as disj (same loss log, bit for bit), and groups that
    carry teacher scores train disj exactly as the same groups without them."""
    from dataclasses import replace

    from utilabel.data.registry import load_dataset
    from utilabel.labels.teacher import candidates_teacher
    from utilabel.records import TrainingGroup
    from utilabel.retrieve.bm25 import bm25_candidates
    from utilabel.train.trainer import read_log, train

    ds = load_dataset("scifact")
    qrels = ds.qrels("train")
    labels = {q: dict.fromkeys(qrels[q], 1.0) for q in list(qrels)[:8]}
    teacher = candidates_teacher(bm25_candidates(ds, "train", k=5))
    train(TrainConfig(**common, loss="disj", out=str(tmp_path / "disj")), labels=labels)
    train(TrainConfig(**common, loss="disj_kl", distill_weight=0.0, out=str(tmp_path / "dk0")), labels=labels,
          teacher=teacher)
    assert [r["loss"] for r in read_log(tmp_path / "disj")] == [r["loss"] for r in read_log(tmp_path / "dk0")]

    cands = bm25_candidates(ds, "train", k=5, limit=8)
    plain = [TrainingGroup(g.query_id, g.query, {g.candidates[0].doc_id: 1.0}, [c.doc_id for c in g.candidates[1:]])
             for g in cands]
    with_teacher = [replace(g, teacher={c.doc_id: c.score for c in cg.candidates}) for g, cg in zip(plain, cands, strict=True)]
    opts = {k: v for k, v in common.items() if k != "negatives_k"}
    train(TrainConfig(**opts, loss="disj", out=str(tmp_path / "g0")), groups=plain)
    train(TrainConfig(**opts, loss="disj", out=str(tmp_path / "g1")), groups=with_teacher)
    assert [r["loss"] for r in read_log(tmp_path / "g0")] == [r["loss"] for r in read_log(tmp_path / "g1")]
    # the same groups train kl from their own teacher scores, no teacher option needed
    train(TrainConfig(**opts, loss="kl", out=str(tmp_path / "g2")), groups=with_teacher)
    assert "teacher scores: the groups' own, zscore" in json.loads((tmp_path / "g2" / "summary.json").read_text())["data"][-1]

"""Losses: equivalences with InfoNCE, float64 references, extreme scores, a hand-computed LSEP
value, masking of queries without positives, and GradCache == plain step."""

from __future__ import annotations

import math

import pytest
import torch

from utilabel.errors import ConfigError, UnknownNameError
from utilabel.train.losses import get_loss, loss_names


def _one_positive(q=5, d=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(q, d, generator=g, dtype=dtype) * 3
    weights = torch.zeros(q, d, dtype=dtype)
    cols = torch.randint(0, d, (q,), generator=g)
    weights[torch.arange(q), cols] = 1.0  # positive at a random column, never "index 0"
    return scores, weights


def _value_and_grad(loss, scores, weights):
    s = scores.clone().requires_grad_()
    v = loss(s, weights)
    v.backward()
    return v.detach(), s.grad


def test_registry_lists_valid_names():
    assert loss_names() == ["disj", "disj_kl", "infonce", "joint", "kl", "lsep", "margin_mse"]
    with pytest.raises(UnknownNameError, match="unknown loss 'foo'; valid: disj, disj_kl, infonce, joint, kl, lsep, margin_mse"):
        get_loss("foo")


@pytest.mark.parametrize("name", ["joint", "disj"])
def test_one_positive_equals_infonce(name):
    scores, weights = _one_positive()
    ref_v, ref_g = _value_and_grad(get_loss("infonce"), scores, weights)
    v, g = _value_and_grad(get_loss(name), scores, weights)
    torch.testing.assert_close(v, ref_v)
    torch.testing.assert_close(g, ref_g)
    # and infonce itself is -log softmax at the positive column, averaged over queries
    manual = -(torch.log_softmax(scores, 1) * weights).sum(1).mean()
    torch.testing.assert_close(ref_v, manual)


def test_infonce_rejects_several_positives():
    scores, weights = _one_positive()
    weights[0, :2] = 1.0
    with pytest.raises(ConfigError, match="exactly one positive"):
        get_loss("infonce")(scores, weights)


def _disj_reference(scores, weights):
    """Direct float64 formula -log Σ_P w p(d|q) with p from an exp/sum (safe for moderate scores)."""
    s = scores.double()
    p = torch.exp(s - s.max(1, keepdim=True).values)
    p = p / p.sum(1, keepdim=True)
    return -(torch.log((weights.double() * p).sum(1))).mean()


def _disj_clamped(scores, weights):
    """The official implementation: softmax, clamp at 1e-9, log."""
    p = torch.softmax(scores, 1)
    return -torch.log(torch.clamp((weights * p).sum(1), min=1e-9)).mean()


def test_disj_matches_float64_reference_with_soft_weights():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(8, 20, generator=g) * 4
    weights = (torch.rand(8, 20, generator=g) > 0.7).float() * torch.rand(8, 20, generator=g)
    weights[:, 3] = 0.5  # every row has a positive
    v = get_loss("disj")(scores, weights)
    torch.testing.assert_close(v.double(), _disj_reference(scores, weights), rtol=1e-5, atol=1e-5)


def test_disj_extreme_scores_where_clamp_fails():
    # positive logits 60 below the best negative: p(pos) ≈ e^-60 ≈ 8.8e-27, below the 1e-9 clamp.
    scores = torch.tensor([[100.0, 40.0, 39.0, 0.0], [5.0, 1.0, 0.0, -1.0]])
    weights = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    # exact row-1 value: LSE(all) - LSE(40, 39) = 100 + log(1+e^-60+e^-61+e^-100) - (40 + log(1+e^-1)) ≈ 59.6867
    exact_row1 = 100 - (40 + math.log1p(math.exp(-1)))
    exact_row2 = math.log(math.exp(5) + math.exp(1) + 1 + math.exp(-1)) - 1
    expected = (exact_row1 + exact_row2) / 2
    s = scores.clone().requires_grad_()
    v = get_loss("disj")(s, weights)
    v.backward()
    assert v.item() == pytest.approx(expected, rel=1e-6)
    # stable gradient: d/ds_pos = -(share of the positive in P) / Q, d/ds_top ≈ +1/Q
    assert s.grad[0, 0].item() == pytest.approx(0.5, rel=1e-6)
    assert s.grad[0, 1].item() == pytest.approx(-0.5 / (1 + math.exp(-1)), rel=1e-5)
    # the clamp version saturates at -log(1e-9) ≈ 20.72 and has zero gradient on row 1
    sc = scores.clone().requires_grad_()
    vc = _disj_clamped(sc, weights)
    vc.backward()
    assert abs(vc.item() - expected) > 15
    assert sc.grad[0].abs().max().item() == 0.0


def test_lsep_hand_computed():
    # one query, scores [2, 1, 0, -1], positives at columns 1 and 3 (weight 1):
    # Σ_p Σ_n exp(s_n - s_p) = (e^2 + e^0) * (e^-1 + e^1)
    #   = (7.389056 + 1) * (0.367879 + 2.718282) = 8.389056 * 3.086161 = 25.89000
    # loss = log(1 + 25.89000) = log(26.89000) = 3.29175
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    weights = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert get_loss("lsep")(scores, weights).item() == pytest.approx(3.29175, abs=1e-4)


def test_lsep_matches_pairwise_float64_reference():
    g = torch.Generator().manual_seed(2)
    scores = torch.randn(6, 10, generator=g, dtype=torch.float64) * 2
    weights = (torch.rand(6, 10, generator=g) > 0.6).double()
    weights[:, 0] = 1.0
    ref = []
    for i in range(6):
        pos = [j for j in range(10) if weights[i, j] > 0]
        neg = [j for j in range(10) if weights[i, j] == 0]
        ref.append(math.log(1 + sum(math.exp(scores[i, n] - scores[i, p]) for p in pos for n in neg)))
    assert get_loss("lsep")(scores, weights).item() == pytest.approx(sum(ref) / 6, rel=1e-10)


def test_joint_matches_formula():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 9, generator=g, dtype=torch.float64)
    weights = torch.zeros(4, 9, dtype=torch.float64)
    weights[:, 2], weights[:, 5] = 1.0, 0.5
    ref = -(weights * torch.log_softmax(scores, 1)).sum(1).mean()
    torch.testing.assert_close(get_loss("joint")(scores, weights), ref)


@pytest.mark.parametrize("name", ["infonce", "joint", "disj", "lsep"])
def test_queries_without_positive_are_masked(name):
    scores, weights = _one_positive(q=4)
    full = get_loss(name)(scores[:2], weights[:2])
    weights[2:] = 0.0  # rows 2, 3 have no positive: excluded from the mean, no gradient
    s = scores.clone().requires_grad_()
    v = get_loss(name)(s, weights)
    v.backward()
    torch.testing.assert_close(v, full)
    assert s.grad[2:].abs().sum().item() == 0.0
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize("name", ["infonce", "joint", "disj", "lsep"])
def test_minus_inf_scores_are_excluded(name):
    scores, weights = _one_positive(q=3, d=6)
    neg_col = [(i, j) for i in range(3) for j in range(6) if weights[i, j] == 0][0]
    masked = scores.clone()
    masked[neg_col] = -torch.inf
    s = masked.clone().requires_grad_()
    v = get_loss(name)(s, weights)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(s.grad).all()


def test_shape_mismatch_message():
    with pytest.raises(ConfigError, match=r"same shape \[Q, D\]"):
        get_loss("disj")(torch.zeros(2, 3), torch.zeros(2, 4))


def test_gradcache_equals_plain_step(tiny_model_dir):
    from utilabel.retrieve.encoder import ModelConfig
    from utilabel.train.gradcache import cached_backward
    from utilabel.train.model import BiEncoder

    model = BiEncoder(ModelConfig(base_model=str(tiny_model_dir), temperature=0.1))
    model.train(False)  # dropout off: the plain step encodes everything at once
    queries = model.tokenize([f"query number {i} about cells" for i in range(4)], "query")
    passages = model.tokenize([f"passage {i} " + "word " * (i % 5) for i in range(12)], "passage")
    weights = torch.zeros(4, 12)
    for i in range(4):
        weights[i, 3 * i] = 1.0
        weights[i, 3 * i + 1] = 0.5
    loss = get_loss("disj")

    def loss_fn(q, p):
        return loss(model.scores(q, p), weights)

    plain = loss_fn(model.embed(queries, "query"), model.embed(passages, "passage"))
    plain.backward()
    plain_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for p in model.parameters():
        p.grad = None
    cached = cached_backward(model.embed, queries, passages, loss_fn, chunk_size=3)
    torch.testing.assert_close(cached, plain.detach())
    cached_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert cached_grads.keys() == plain_grads.keys() and len(plain_grads) > 10
    for n in plain_grads:
        torch.testing.assert_close(cached_grads[n], plain_grads[n], rtol=1e-4, atol=1e-6)

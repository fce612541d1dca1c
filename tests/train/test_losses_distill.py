"""Distillation losses (kl, margin_mse, disj_kl) against float64 references written here with plain
numpy / Python loops and scipy's logsumexp: values, gradients (gradcheck), masking, temperature
behaviour, λ=0 ⇒ Disj, and the backward-compatible teacher argument of the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from utilabel.errors import ConfigError
from utilabel.train.losses import LOSSES, TeacherScores, get_loss, teacher_loss_names

NEG_INF = -math.inf


def _batch(q=4, groups=3, seed=0):
    """A score matrix with in-batch columns: query i owns columns [i*g, (i+1)*g); the teacher scores
    only its own group; one positive per group at a random place, a second positive in row 0,
    and an excluded (-inf) own-group entry in row 1."""
    rng = np.random.default_rng(seed)
    d = q * groups
    scores = rng.normal(size=(q, d)) * 3
    teacher = rng.normal(size=(q, d)) * 2
    mask = np.zeros((q, d), dtype=bool)
    weights = np.zeros((q, d))
    for i in range(q):
        mask[i, i * groups:(i + 1) * groups] = True
        weights[i, i * groups + rng.integers(groups)] = 1.0
    weights[0, :groups] = [1.0, 0.5, 0.0]
    hidden = next(j for j in range(groups, 2 * groups) if weights[1, j] == 0)
    scores[1, hidden] = NEG_INF  # a hidden own-group negative: dropped from both softmaxes
    teacher[~mask] = np.nan  # never read outside the mask
    return scores, weights, teacher, mask


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def _teacher(teacher, mask):
    return TeacherScores(_t(teacher), torch.tensor(mask))


# ------------------------------------------------------------------------------ references

def _kl_ref(scores, teacher, mask, tau=1.0):
    """Per-query KL(p_T || p_S), explicit sums over each row's candidates."""
    out = []
    for s_row, t_row, m_row in zip(scores, teacher, mask):
        idx = [j for j in range(len(s_row)) if m_row[j] and np.isfinite(s_row[j])]
        if len(idx) < 2:
            out.append(0.0)
            continue
        t = np.array([t_row[j] / tau for j in idx])
        s = np.array([s_row[j] for j in idx])
        log_pt = t - logsumexp(t)
        log_ps = s - logsumexp(s)
        out.append(float(sum(math.exp(a) * (a - b) for a, b in zip(log_pt, log_ps))))
    return np.array(out)


def _margin_ref(scores, weights, teacher, mask, tau=1.0):
    """Per-query mean over (positive, negative) pairs of ((s_p - s_n) - (t_p - t_n)/tau)^2, a double loop."""
    out = []
    for s, w, t, m in zip(scores, weights, teacher, mask):
        cand = [j for j in range(len(s)) if m[j] and np.isfinite(s[j])]
        pos = [j for j in cand if w[j] > 0]
        neg = [j for j in cand if w[j] == 0]
        terms = [((s[p] - s[n]) - (t[p] - t[n]) / tau) ** 2 for p in pos for n in neg]
        out.append(sum(terms) / len(terms) if terms else 0.0)
    return np.array(out)


def _disj_ref(scores, weights):
    out = []
    for s, w in zip(scores, weights):
        pos = [j for j in range(len(s)) if w[j] > 0]
        out.append(logsumexp(s) - logsumexp([s[j] + math.log(w[j]) for j in pos]) if pos else 0.0)
    return np.array(out)


# ------------------------------------------------------------------------------ values

@pytest.mark.parametrize("tau", [1.0, 0.3, 4.0])
def test_kl_matches_reference(tau):
    scores, weights, teacher, mask = _batch()
    loss = get_loss("kl", teacher_temperature=tau)
    per_q = loss.per_query(_t(scores), _t(weights), _teacher(teacher, mask))
    np.testing.assert_allclose(per_q.numpy(), _kl_ref(scores, teacher, mask, tau), rtol=1e-12, atol=1e-12)
    mean = loss(_t(scores), _t(weights), _teacher(teacher, mask))
    np.testing.assert_allclose(mean.item(), _kl_ref(scores, teacher, mask, tau).mean(), rtol=1e-12)


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_margin_mse_matches_pair_loop(tau):
    scores, weights, teacher, mask = _batch(seed=3)
    weights[2, 6:9] = [1.0, 1.0, 0.0]  # two positives, one negative
    per_q = get_loss("margin_mse", teacher_temperature=tau).per_query(_t(scores), _t(weights), _teacher(teacher, mask))
    np.testing.assert_allclose(per_q.numpy(), _margin_ref(scores, weights, teacher, mask, tau), rtol=1e-10, atol=1e-12)


def test_margin_mse_hand_computed():
    # one query, candidates p (pos), n1, n2; s = (2, 1, -1), t = (3, 3, 0):
    # pairs: (2-1) - (3-3) = 1 → 1;  (2+1) - (3-0) = 0 → 0;  mean = 0.5
    scores = _t([[2.0, 1.0, -1.0, 9.0]])
    weights = _t([[1.0, 0.0, 0.0, 0.0]])
    teacher = TeacherScores(_t([[3.0, 3.0, 0.0, 0.0]]), torch.tensor([[True, True, True, False]]))
    assert get_loss("margin_mse")(scores, weights, teacher).item() == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_disj_kl_is_disj_plus_lambda_kl(lam):
    scores, weights, teacher, mask = _batch(seed=5)
    per_q = get_loss("disj_kl", kl_weight=lam).per_query(_t(scores), _t(weights), _teacher(teacher, mask))
    ref = _disj_ref(scores, weights) + lam * _kl_ref(scores, teacher, mask)
    np.testing.assert_allclose(per_q.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_disj_kl_lambda_zero_equals_disj_exactly():
    scores, weights, teacher, mask = _batch(seed=7)
    weights[3] = 0.0  # a query without a positive: out of Disj's mean, and of disj_kl's when λ = 0
    s1, s2 = _t(scores).requires_grad_(), _t(scores).requires_grad_()
    a = get_loss("disj_kl", kl_weight=0.0)(s1, _t(weights), _teacher(teacher, mask))
    b = get_loss("disj")(s2, _t(weights))
    a.backward()
    b.backward()
    assert a.item() == b.item()
    assert torch.equal(s1.grad, s2.grad)
    # with λ > 0 the query without a positive still counts (its KL term)
    lam = get_loss("disj_kl", kl_weight=1.0)
    assert lam.rows(_t(weights), _teacher(teacher, mask), _t(scores)).tolist() == [True] * 4


# ------------------------------------------------------------------------------ masking, temperature

def test_masked_entries_are_ignored():
    """Changing scores outside the teacher mask (other queries' passages) or teacher values outside
    the mask, or at student -inf entries, changes nothing; the gradient there is zero."""
    scores, weights, teacher, mask = _batch(seed=11)
    changed_s, changed_t = scores.copy(), teacher.copy()
    changed_s[~mask] = np.random.default_rng(0).normal(size=(~mask).sum()) * 50
    changed_t[1][np.isneginf(scores[1])] = 1e6  # under the student's -inf entry
    for name in ("kl", "margin_mse"):
        loss = get_loss(name)
        s = _t(scores).requires_grad_()
        v = loss(s, _t(weights), _teacher(teacher, mask))
        v.backward()
        v2 = loss(_t(changed_s), _t(weights), _teacher(changed_t, mask))
        assert v.item() == pytest.approx(v2.item(), rel=1e-12)
        assert torch.all(s.grad[torch.tensor(~mask)] == 0)
        assert not torch.isnan(s.grad).any()


def test_equal_teacher_scores_give_uniform_target():
    scores, weights, teacher, mask = _batch(seed=2)
    teacher[mask] = 4.2
    per_q = get_loss("kl").per_query(_t(scores), _t(weights), _teacher(teacher, mask)).numpy()
    for i in range(4):  # KL(U || p_S) = -log n - mean_d log p_S(d)
        s = np.array([scores[i, j] for j in range(12) if mask[i, j] and np.isfinite(scores[i, j])])
        expected = -math.log(len(s)) - np.mean(s - logsumexp(s))
        assert per_q[i] == pytest.approx(expected, rel=1e-12)
    # and the gradient is p_S - 1/n on the candidates
    s = _t(scores).requires_grad_()
    get_loss("kl").per_query(s, _t(weights), _teacher(teacher, mask))[0].backward()
    p = np.exp(scores[0, :3] - logsumexp(scores[0, :3]))
    np.testing.assert_allclose(s.grad[0, :3].numpy(), p - 1 / 3, rtol=1e-12)


def test_teacher_temperature_scaling():
    scores, weights, teacher, mask = _batch(seed=4)
    kl = lambda tau, t=teacher: get_loss("kl", teacher_temperature=tau).per_query(  # noqa: E731
        _t(scores), _t(weights), _teacher(t, mask)).numpy()
    # scores × c with τ × c: the same target
    np.testing.assert_allclose(kl(3.0, teacher * 3.0), kl(1.0), rtol=1e-12)
    # τ → ∞: the uniform target
    uniform = teacher.copy()
    uniform[mask] = 0.0
    np.testing.assert_allclose(kl(1e12), kl(1.0, uniform), rtol=1e-9)
    # τ → 0: one-hot at the teacher's best candidate, i.e. -log p_S(best) over the group
    low = kl(1e-4)
    for i in range(4):
        idx = [j for j in range(12) if mask[i, j] and np.isfinite(scores[i, j])]
        best = max(idx, key=lambda j: teacher[i, j])
        assert low[i] == pytest.approx(logsumexp(scores[i, idx]) - scores[i, best], rel=1e-9)
    # MarginMSE: τ divides the teacher margins
    mm = lambda tau, t: get_loss("margin_mse", teacher_temperature=tau).per_query(  # noqa: E731
        _t(scores), _t(weights), _teacher(t, mask)).numpy()
    np.testing.assert_allclose(mm(2.0, teacher), mm(1.0, teacher / 2.0), rtol=1e-12)


def test_extreme_scores_stay_finite():
    scores, weights, teacher, mask = _batch(seed=8)
    scores *= 400
    teacher *= 400
    for name in ("kl", "disj_kl"):
        s = _t(scores).requires_grad_()
        v = get_loss(name)(s, _t(weights), _teacher(teacher, mask))
        v.backward()
        assert math.isfinite(v.item()) and torch.isfinite(s.grad).all()
    ref = _kl_ref(scores, teacher, mask)
    got = get_loss("kl").per_query(_t(scores), _t(weights), _teacher(teacher, mask)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)


def test_rows_and_degenerate_groups():
    scores = _t([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    weights = _t([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, False, False], [True, True, False], [False, False, False]])
    teacher = TeacherScores(_t([[5.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]), mask)
    kl, mm = get_loss("kl"), get_loss("margin_mse")
    assert kl.rows(weights, teacher, scores).tolist() == [False, True, False]
    assert mm.rows(weights, teacher, scores).tolist() == [False, False, False]  # row 1: no negative
    assert kl.per_query(scores, weights, teacher).tolist()[::2] == [0.0, 0.0]
    assert mm(scores, weights, teacher).item() == 0.0  # nothing to average: 0, not NaN


# ------------------------------------------------------------------------------ gradients

@pytest.mark.parametrize("name,opts", [("kl", {"teacher_temperature": 0.7}), ("margin_mse", {"teacher_temperature": 2.0}),
                                       ("disj_kl", {"kl_weight": 0.3})])
def test_gradcheck(name, opts):
    scores, weights, teacher, mask = _batch(seed=13)
    teacher[~mask] = 0.0  # gradcheck perturbs every entry; NaNs would be fine for the loss but not for it
    loss = get_loss(name, **opts)
    w, m = _t(weights), torch.tensor(mask)

    def f(s, t):
        return loss(s, w, TeacherScores(t, m))

    assert torch.autograd.gradcheck(f, (_t(scores).requires_grad_(), _t(teacher).requires_grad_()))


# ------------------------------------------------------------------------------ registry contract

def test_registry_marks_teacher_losses():
    assert teacher_loss_names() == ["disj_kl", "kl", "margin_mse"]
    assert not any(LOSSES[n].needs_teacher for n in ("infonce", "joint", "disj", "lsep"))


def test_existing_losses_ignore_teacher():
    scores, weights, teacher, mask = _batch()
    for name in ("joint", "disj", "lsep"):
        loss = get_loss(name)
        assert loss(_t(scores), _t(weights), _teacher(teacher, mask)).item() == loss(_t(scores), _t(weights)).item()


def test_teacher_losses_need_a_teacher_and_valid_options():
    scores, weights, teacher, mask = _batch()
    with pytest.raises(ConfigError, match="loss 'kl' needs teacher scores"):
        get_loss("kl")(_t(scores), _t(weights))
    with pytest.raises(ConfigError, match="shape"):
        get_loss("kl")(_t(scores), _t(weights), TeacherScores(_t(teacher[:, :3]), torch.tensor(mask[:, :3])))
    with pytest.raises(ConfigError, match="bool"):
        get_loss("kl")(_t(scores), _t(weights), TeacherScores(_t(teacher), _t(mask)))
    bad = teacher.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ConfigError, match="finite"):
        get_loss("margin_mse")(_t(scores), _t(weights), _teacher(bad, mask))
    with pytest.raises(ConfigError, match="teacher_temperature"):
        get_loss("kl", teacher_temperature=0)
    with pytest.raises(ConfigError, match="kl_weight"):
        get_loss("disj_kl", kl_weight=-1)


def test_per_query_without_teacher_is_a_clean_error():
    """What the trainer's per_query(scores, weights) call would get until the teacher is wired in."""
    scores, weights, _, _ = _batch()
    for name in teacher_loss_names():
        with pytest.raises(ConfigError, match=f"loss '{name}' needs teacher scores"):
            get_loss(name).per_query(_t(scores), _t(weights))

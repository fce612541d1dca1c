"""Significance of the grid's comparisons: paired tests over queries, effect sizes, verdicts.

A comparison pairs two rows of the grid on one dataset. Each row's per-query values (the main
metric, stored with every retrieval result) are averaged over the row's seeds, so a 3-seed row
counts its seed noise inside each query's value; the two rows are paired over the queries they
share. Reported per comparison:

* ``diff`` — mean of a − b, with its 95 % confidence interval (t distribution);
* ``p`` — two-sided paired t-test (:func:`scipy.stats.ttest_rel`) and ``p_rand`` — two-sided
  paired randomisation (sign-flip) test (:func:`scipy.stats.permutation_test`, 10,000 resamples,
  seeded), the test IR papers favour because it assumes no distribution;
* ``d`` — Cohen's d for paired samples (mean / sd of the differences);
* ``mde`` — the minimum detectable difference at this query count: the true difference a paired
  t-test at α = 0.05 (two-sided) would find with 80 % power, given the observed sd of differences.

A comparison has a ``kind``: ``superiority`` (does a beat b?) or ``equivalence`` (is a within
± ``margin`` of b? — the confidence interval must lie inside the margin). :func:`verdict` turns a
comparison into *supports* / *contradicts* / *inconclusive*, and :func:`claim_verdict` a claim's
comparisons into *holds* / *does not hold* / *inconclusive at this scale*.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 10_000


@dataclass
class Paired:
    """One paired comparison of rows ``a`` and ``b`` on ``dataset`` (see the module docstring)."""

    a: str
    b: str
    dataset: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_rand: float
    d: float
    mde: float


def _mean_diff(x, y, axis=-1):
    return (x - y).mean(axis=axis)


def paired(a: str, b: str, dataset: str, va: dict[str, float], vb: dict[str, float], seed: int = 0) -> Paired | None:
    """Paired statistics over the queries both ``va`` and ``vb`` have (None below 2 queries)."""
    import numpy as np
    from scipy import stats

    qids = sorted(set(va) & set(vb))
    n = len(qids)
    if n < 2:
        return None
    xa = [va[q] for q in qids]
    xb = [vb[q] for q in qids]
    diffs = [x - y for x, y in zip(xa, xb, strict=True)]
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0.0:  # identical per-query values: nothing to test
        return Paired(a, b, dataset, n, statistics.fmean(xa), statistics.fmean(xb), mean, mean, mean,
                      1.0, 1.0, 0.0, 0.0)
    t_crit = float(stats.t.ppf(1 - ALPHA / 2, n - 1))
    half = t_crit * sd / math.sqrt(n)
    p = float(stats.ttest_rel(xa, xb).pvalue)
    rand = stats.permutation_test((np.array(xa), np.array(xb)), _mean_diff, permutation_type="samples",
                                  vectorized=True, n_resamples=N_RESAMPLES, alternative="two-sided", random_state=seed)
    mde = (t_crit + float(stats.t.ppf(POWER, n - 1))) * sd / math.sqrt(n)
    return Paired(a, b, dataset, n, statistics.fmean(xa), statistics.fmean(xb), mean, mean - half, mean + half,
                  p, float(rand.pvalue), mean / sd, mde)


def verdict(res: Paired | None, kind: str = "superiority", margin: float = 0.02) -> str:
    """``supports`` / ``contradicts`` / ``inconclusive`` (``missing`` without a result).

    Superiority: supports when a > b with p < α, contradicts when a < b with p < α. Equivalence:
    supports when the 95 % interval of a − b lies inside ± ``margin``, contradicts when the interval
    lies wholly outside it (a real difference of at least the margin)."""
    if res is None:
        return "missing"
    if kind == "equivalence":
        if -margin < res.ci_low and res.ci_high < margin:
            return "supports"
        if res.ci_low >= margin or res.ci_high <= -margin:
            return "contradicts"
        return "inconclusive"
    if res.p < ALPHA:
        return "supports" if res.diff > 0 else "contradicts"
    return "inconclusive"


def claim_verdict(verdicts: list[str]) -> str:
    """A claim from its comparisons: *holds* when at least half support it and none contradicts,
    *does not hold* when at least half contradict it and none supports, else *inconclusive*."""
    done = [v for v in verdicts if v != "missing"]
    if not done:
        return "not run"
    sup, con = done.count("supports"), done.count("contradicts")
    if sup * 2 >= len(done) and con == 0:
        return "holds"
    if con * 2 >= len(done) and sup == 0:
        return "does not hold"
    return "inconclusive at this scale"

"""Combining a pointwise judge's signals into one score per passage.

Signals (computed per passage of one query):

* ``yesno`` — log-odds ``log P(yes) − log P(no)`` of the task's yes/no question (first reply token);
* ``graded`` — expected grade ``Σ g · P(g)`` over the digits 0–3, renormalised over the four digits;
* ``ql`` — query likelihood, the mean per-token ``log P(query | passage)``;
* ``first_stage`` — the first-stage retriever's score (BM25 or dense), free.

The fused score is in log-odds units. Its *base* is an absolute judgment: ``yesno`` when computed,
else the graded judgment as log-odds ``logit(E / 3) = log E − log(3 − E)`` (within ±35: small
models often put almost all mass on one grade, and the ranking lives in the remaining 1e-6), else 0. Every other signal
shifts it, standardised within the query (``z = (x − mean) / std`` over the query's candidates; 0
when all are equal) and weighted::

    fused = base + Σ_{s ≠ base} w_s · z_s

``utility = sigmoid(fused)``: with ``yesno`` alone it is exactly ``P(yes) / (P(yes) + P(no))`` (a
threshold of 0.5 means "the judge says yes"), with ``graded`` alone it is ``E / 3`` (0.5 means an
expected grade of 1.5, between "same topic" and "partly useful"). Weights default to 1.0; the quality
harness chooses them on training queries (docs/results/annotation/quality.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import ConfigError

SIGNALS = ("yesno", "graded", "ql", "first_stage")


def check_signals(signals: Sequence[str] | str, weights: Mapping[str, float] | None) -> tuple[tuple[str, ...], dict]:
    """Validated ``(signals, weights)``: known names, no duplicates, finite weights of listed signals."""
    if isinstance(signals, str):
        signals = [s for s in signals.split(",") if s.strip()]
    signals = tuple(s.strip() for s in signals)
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown or not signals or len(set(signals)) != len(signals):
        raise ConfigError(f"signals must be distinct names among {', '.join(SIGNALS)}, got {','.join(signals)!r}")
    weights = dict(weights or {})
    for name, w in weights.items():
        if name not in signals or name == base_signal(signals):
            raise ConfigError(f"weight for {name!r}: only listed signals other than the base "
                              f"({base_signal(signals)}) take a weight")
        if not isinstance(w, (int, float)) or not math.isfinite(w):
            raise ConfigError(f"weight for {name!r} must be a finite number, got {w!r}")
    return signals, {k: float(v) for k, v in sorted(weights.items())}


def standardise(xs: Sequence[float]) -> list[float]:
    """``(x − mean) / std`` (population std); all zeros when the values are equal."""
    n = len(xs)
    mean = sum(xs) / n
    var = sum((x - mean) ** 2 for x in xs) / n
    sd = math.sqrt(var)
    return [0.0] * n if sd < 1e-12 else [(x - mean) / sd for x in xs]


def base_signal(signals) -> str | None:
    """The signal that sets the fused score's absolute level (``yesno``, else ``graded``, else none)."""
    return next((s for s in ("yesno", "graded") if s in signals), None)


def fuse(values: Mapping[str, Sequence[float]], weights: Mapping[str, float] | None = None) -> list[float]:
    """Fused score per passage from ``values[signal][i]`` (see module docstring)."""
    weights = weights or {}
    n = len(next(iter(values.values())))
    base = base_signal(values)
    if base == "yesno":
        out = list(values["yesno"])
    elif base == "graded":
        out = [_graded_logit(g) for g in values["graded"]]
    else:
        out = [0.0] * n
    for name, xs in values.items():
        if name == base:
            continue
        w = weights.get(name, 1.0)
        out = [o + w * z for o, z in zip(out, standardise(xs), strict=True)]
    return out


def _graded_logit(e: float, top: float = 3.0, clip: float = 35.0) -> float:
    """``logit(e / top)`` computed as ``log e − log(top − e)``, limited to ±clip."""
    if e <= 0.0:
        return -clip
    if e >= top:
        return clip
    return min(max(math.log(e) - math.log(top - e), -clip), clip)


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def logsumexp(xs: Sequence[float]) -> float:
    """log(sum(exp(x))) without overflow; -inf for all -inf."""
    m = max(xs)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(x - m) for x in xs))


def expected_grade(lp: Mapping[str, float], grades: Sequence[str] = ("0", "1", "2", "3")) -> float:
    """``Σ g · P(g)`` with ``P`` renormalised over the grade tokens."""
    z = logsumexp([lp[g] for g in grades])
    return sum(int(g) * math.exp(lp[g] - z) for g in grades)

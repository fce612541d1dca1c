"""Answer metrics for RAG: SQuAD-style normalisation, exact match, token F1, ROUGE-L and
"answer in passages".

Normalisation follows the official SQuAD v1.1 evaluation script's definition: lower-case, drop
punctuation, drop the articles *a*, *an*, *the*, collapse whitespace. Against several gold answers a
prediction scores the maximum over them (as SQuAD does). ROUGE-L is the F-measure (β = 1) of the
longest common subsequence of normalised tokens.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower → remove punctuation → remove articles → single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (0 when nothing is shared)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F1 over normalised tokens: P = LCS/|pred|, R = LCS/|gold|, F = 2PR/(P+R)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(ref)
    return 2 * p * r / (p + r)


def best_over_golds(metric: Callable[[str, str], float], prediction: str, golds: Iterable[str]) -> float:
    """Maximum of ``metric(prediction, gold)`` over the gold answers (0 with no golds)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def answer_in_passages(passages: Iterable[str], golds: Iterable[str]) -> float:
    """1 if some normalised gold answer occurs as a whole-token span in some normalised passage."""
    golds_n = [normalize_answer(g) for g in golds]
    golds_n = [g for g in golds_n if g]
    for passage in passages:
        hay = f" {normalize_answer(passage)} "
        if any(f" {g} " in hay for g in golds_n):
            return 1.0
    return 0.0

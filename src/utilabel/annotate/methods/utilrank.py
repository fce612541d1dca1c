"""``utilrank``: utility ranking with the pseudo-answer (``[i] > [j] > ...``).

Relevance selection, a pseudo-answer from the relevance-selected passages, then *all* candidates
are ranked by utility given question and pseudo-answer. Lists longer than ``window`` are ranked
with a back-to-front sliding window (:func:`sliding_windows`, RankGPT's scheme): each window is
reordered by the model and the window moves ``stride`` positions towards the front, so the most
useful passages bubble up to the top. Labels, from the final rank ``r`` (1 = best) of ``n``:

* ``utility`` = ``(top_m - r + 1) / top_m`` for ``r ≤ top_m``, else 0 (graded, top-m positive);
* ``score`` = ``1 / r`` (reciprocal rank); ``rank`` = ``r``; ``relevance`` from the first step.
"""

from __future__ import annotations

from ..caller import VoteResult, selection_budget
from ..parsing import parse_ranking
from ..prompts import get_prompt
from .base import Method, register_method, relevance_then_answer


def sliding_windows(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Back-to-front ``[start, end)`` windows covering ``n`` positions.

    The last window always starts at 0; consecutive windows overlap by ``window - stride`` ≥ 1
    positions, so an item the model always puts first travels to position 0.
    """
    if n <= window:
        return [(0, n)]
    out, end = [], n
    while True:
        start = max(0, end - window)
        out.append((start, end))
        if start == 0:
            return out
        end -= stride


def rank_weight(rank: int, top_m: int) -> float:
    """Graded utility of a 1-based rank: linear from 1 (rank 1) down to 1/top_m, 0 beyond."""
    return (top_m - rank + 1) / top_m if rank <= top_m else 0.0


@register_method
class UtilityRanking(Method):
    name = "utilrank"

    def prompts(self):
        s = self.config.style
        return [get_prompt("relsel", s), get_prompt("pseudo_answer", s), get_prompt("utilrank", s)]

    def run(self, item, order, caller, vote):
        cfg = self.config
        relevance, answer = relevance_then_answer(self, item, order, caller, vote)
        if answer is None:
            return VoteResult(relevance=relevance)
        ranking = list(order)
        prompt = get_prompt("utilrank", cfg.style)
        for w, (start, end) in enumerate(sliding_windows(len(ranking), cfg.window, cfg.stride)):
            window = ranking[start:end]
            m = len(window)
            parsed = caller.chat(
                prompt,
                {"question": item.question, "answer": answer, "passages": [item.texts[i] for i in window]},
                lambda t, m=m: parse_ranking(t, m),
                selection_budget(m),
                self.ctx(item, f"utilrank.w{w}", vote),
            )
            if not parsed.ok:
                return VoteResult(relevance=relevance)
            ranking[start:end] = [window[j - 1] for j in parsed.value]
        ranks = {i: r for r, i in enumerate(ranking, 1)}
        return VoteResult(
            relevance=relevance,
            utility={i: rank_weight(r, cfg.top_m) for i, r in ranks.items()},
            score={i: 1.0 / r for i, r in ranks.items()},
            rank=ranks,
            notes={"pseudo_answer": answer},
        )

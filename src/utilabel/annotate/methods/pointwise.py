"""``pointwise``: one yes/no utility question per passage, scored by token log-probabilities.

The pseudo-answer comes from the utilsel pipeline's first two steps (relevance selection, answer
from the relevance-selected passages; ``answer_source="relsel"``) or is left out (``"none"``).
Each passage is then asked about alone, question and pseudo-answer first and the passage last, so
all calls of a query share one prompt prefix (the server's prompt cache reuses it) and there is no
position bias. The first reply token is scored once per passage (``token_logprobs``: one request on
llama.cpp servers), with ``P(yes) = P("yes") + P("Yes")`` and ``P(no)`` likewise. With ``contrast``
(default) the soft label is ``P(yes) / (P(yes) + P(no)) = sigmoid(log P(yes) - log P(no))`` and
``score`` is that log-odds; otherwise ``utility = P(yes)`` and ``score = log P(yes)``.
"""

from __future__ import annotations

import math

from ..core import VoteResult
from ..prompts import get_prompt
from .base import Method, register_method, relevance_then_answer

YES = ("yes", "Yes")
NO = ("no", "No")


def logsumexp(xs) -> float:
    """log(sum(exp(x))) without overflow; -inf for all -inf."""
    m = max(xs)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(x - m) for x in xs))


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@register_method
class Pointwise(Method):
    name = "pointwise"
    listwise = False

    def prompts(self):
        cfg = self.config
        if cfg.answer_source == "none":
            return [get_prompt("pointwise_noanswer")]
        return [get_prompt("relsel", cfg.style), get_prompt("pseudo_answer", cfg.style), get_prompt("pointwise")]

    def run(self, item, order, caller, vote):
        cfg = self.config
        relevance = None
        values = {"question": item.question}
        if cfg.answer_source == "relsel":
            relevance, answer = relevance_then_answer(self, item, order, caller, vote)
            if answer is None:
                return VoteResult(relevance=relevance)
            values["answer"] = answer
            prompt = get_prompt("pointwise")
        else:
            prompt = get_prompt("pointwise_noanswer")
        utility, score = {}, {}
        for i in range(len(item.doc_ids)):
            v = {**values, "passage": item.texts[i]}
            lp = caller.token_logprobs(prompt, v, YES + NO, self.ctx(item, "pointwise", vote))
            lp_yes = logsumexp([lp[c] for c in YES])
            if cfg.contrast:
                lp_no = logsumexp([lp[c] for c in NO])
                score[i] = lp_yes - lp_no
                utility[i] = sigmoid(score[i])
            else:
                score[i] = lp_yes
                utility[i] = math.exp(min(lp_yes, 0.0))
        ranked = sorted(score, key=lambda i: (-score[i], i))
        return VoteResult(relevance=relevance, utility=utility, score=score,
                          rank={i: r for r, i in enumerate(ranked, 1)}, notes={"pseudo_answer": values.get("answer")})

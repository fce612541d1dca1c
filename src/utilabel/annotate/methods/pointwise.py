"""``pointwise``: every passage judged alone by the task's yes/no question, scored by log-probabilities.

The pseudo-answer comes from the utilsel pipeline's first two steps (relevance selection, answer
from the relevance-selected passages; ``answer_source="relsel"``) or is left out (``"none"``, what
small local models do best). Each passage is shown first, then the query (introduced by the task's
label, e.g. ``Claim:``) and the task's yes/no question; one position is scored, no text generated, so
there is no position bias and no parse failure. All passages of a query go to the backend as one
batch (``token_logprobs_many``: right-padded forward passes on ``transformers``; on llama.cpp one request
at a time per server without the prompt cache, spread over the ``llamacpp`` backend's ``n_servers``, so
scores never depend on batching, cache state or how many servers ran).

Signals (``config.signals``, combined by :mod:`..fusion`): ``yesno`` — ``log P(yes) − log P(no)``
with ``P(yes) = P("Yes") + P("yes")`` (or ``log P(yes)`` alone without ``contrast``); ``graded`` —
expected 0–3 grade from one more scored prompt; ``ql`` — ``log P(query | passage)``; ``first_stage``
— the retriever's score. ``score`` is the fused value and ``utility = sigmoid(score)`` (without
``contrast``: ``exp(min(score, 0))``, i.e. ``P(yes)``); ``rank`` orders by score.
"""

from __future__ import annotations

import math

from ..caller import VoteResult
from ..fusion import expected_grade, fuse, logsumexp, sigmoid
from ..prompts import get_prompt
from .base import Method, register_method, relevance_then_answer

YES = ("yes", "Yes")
NO = ("no", "No")
GRADES = ("0", "1", "2", "3")


@register_method
class Pointwise(Method):
    name = "pointwise"
    listwise = False

    def _judge_prompt(self):
        return get_prompt("pointwise_noanswer" if self.config.answer_source == "none" else "pointwise")

    def prompts(self):
        cfg = self.config
        out = [] if cfg.answer_source == "none" else [get_prompt("relsel", cfg.style), get_prompt("pseudo_answer", cfg.style)]
        if "yesno" in cfg.signals:
            out.append(self._judge_prompt())
        if "graded" in cfg.signals:
            out.append(get_prompt("pointwise_graded"))
        if "ql" in cfg.signals:
            out.append(get_prompt("query_likelihood"))
        return out

    def run(self, item, order, caller, vote):
        cfg = self.config
        relevance = None
        values = {"question": item.question}
        if cfg.answer_source == "relsel":
            relevance, answer = relevance_then_answer(self, item, order, caller, vote)
            if answer is None:
                return VoteResult(relevance=relevance)
            values["answer"] = answer
        per_passage = [{**values, "passage": t} for t in item.texts]
        signals: dict[str, list[float]] = {}
        if "yesno" in cfg.signals:
            lps = caller.token_logprobs_many(self._judge_prompt(), per_passage, YES + NO,
                                             self.ctx(item, "pointwise", vote))
            yes = [logsumexp([lp[c] for c in YES]) for lp in lps]
            signals["yesno"] = ([y - logsumexp([lp[c] for c in NO]) for y, lp in zip(yes, lps, strict=True)]
                                if cfg.contrast else yes)
        if "graded" in cfg.signals:
            lps = caller.token_logprobs_many(get_prompt("pointwise_graded"),
                                             [{"question": item.question, "passage": t} for t in item.texts],
                                             GRADES, self.ctx(item, "graded", vote))
            signals["graded"] = [expected_grade(lp, GRADES) for lp in lps]
        if "ql" in cfg.signals:
            signals["ql"] = caller.logprob_many(get_prompt("query_likelihood"), [{"passage": t} for t in item.texts],
                                                [item.question] * len(item.texts), self.ctx(item, "ql", vote))
        if "first_stage" in cfg.signals:
            signals["first_stage"] = list(item.scores)
        fused = fuse(signals, cfg.weights)
        score = dict(enumerate(fused))
        if cfg.contrast:
            utility = {i: sigmoid(s) for i, s in score.items()}
        else:
            utility = {i: math.exp(min(s, 0.0)) for i, s in score.items()}
        ranked = sorted(score, key=lambda i: (-score[i], i))
        return VoteResult(relevance=relevance, utility=utility, score=score,
                          rank={i: r for r, i in enumerate(ranked, 1)},
                          notes={"pseudo_answer": values.get("answer"), "signals": signals})

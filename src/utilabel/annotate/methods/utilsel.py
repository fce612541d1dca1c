"""``utilsel``: the paper's pipeline — relevance selection, then a pseudo-answer written from the
relevance-selected passages only, then utility selection among the relevance-selected passages
given the question and the pseudo-answer.

In the compact style (default) the pseudo-answer and the utility selection are one call over the
relevance-selected passages (``joint``); the paper style makes them two calls in its wording.
Labels: ``relevance`` from the first step; ``utility`` 1 for passages selected in the last step,
0 for every other candidate (passages not relevance-selected cannot have utility).
"""

from __future__ import annotations

from ..caller import VoteResult
from ..prompts import get_prompt
from .base import Method, register_method, relevance_step, utility_prompts, utility_step


@register_method
class UtilitySelection(Method):
    name = "utilsel"

    def prompts(self):
        return [get_prompt("relsel", self.config.style), *utility_prompts(self.config)]

    def run(self, item, order, caller, vote):
        selected = relevance_step(self, item, order, caller, vote)
        if selected is None:
            return VoteResult()
        relevance = {i: float(i in selected) for i in order}
        util = utility_step(self, item, selected, caller, vote)
        if util is None:
            return VoteResult(relevance=relevance)
        answer, useful = util
        return VoteResult(relevance=relevance, utility={i: float(i in useful) for i in order},
                          notes={"pseudo_answer": answer})

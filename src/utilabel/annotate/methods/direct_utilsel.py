"""``direct-utilsel``: utility selection over all candidates without the relevance step (ablation).

The pseudo-answer is written from all candidates (there is no relevance selection to restrict it),
then utility is selected among all of them. Labels: ``utility`` only.
"""

from __future__ import annotations

from ..caller import VoteResult
from .base import Method, register_method, utility_prompts, utility_step


@register_method
class DirectUtilitySelection(Method):
    name = "direct-utilsel"

    def prompts(self):
        return utility_prompts(self.config)

    def run(self, item, order, caller, vote):
        util = utility_step(self, item, list(order), caller, vote)
        if util is None:
            return VoteResult()
        answer, useful = util
        return VoteResult(utility={i: float(i in useful) for i in order}, notes={"pseudo_answer": answer})

"""``relsel``: relevance selection — question + numbered candidates → ``My selection:[[i],...]``.

Labels: ``relevance`` 1 for selected passages, 0 for the others; no utility label.
"""

from __future__ import annotations

from ..caller import VoteResult
from ..prompts import get_prompt
from .base import Method, register_method, relevance_step


@register_method
class RelevanceSelection(Method):
    name = "relsel"

    def prompts(self):
        return [get_prompt("relsel", self.config.style)]

    def run(self, item, order, caller, vote):
        selected = relevance_step(self, item, order, caller, vote)
        if selected is None:
            return VoteResult()
        return VoteResult(relevance={i: float(i in selected) for i in order})

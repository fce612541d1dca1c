"""``answer-likelihood``: label passages by how much they raise the gold answer's likelihood.

For datasets with gold answers (the "downstream QA" labelling the paper compares against). Each
candidate is scored by ``log P(answer | question, passage) - log P(answer | question)`` (the
closed-book baseline, one extra call per query); the first gold answer is used. Labels:
``score`` = that gain in nats, ``utility`` = 1 when the gain exceeds ``margin`` (default 0),
``rank`` by score.
"""

from __future__ import annotations

from ...errors import ConfigError
from ..caller import VoteResult
from ..prompts import get_prompt
from .base import Method, register_method


@register_method
class AnswerLikelihood(Method):
    name = "answer-likelihood"
    listwise = False
    needs_answers = True

    def prompts(self):
        return [get_prompt("answer_likelihood"), get_prompt("answer_likelihood_closedbook")]

    def run(self, item, order, caller, vote):
        if not item.answers:
            raise ConfigError(f"query {item.query_id!r} has no gold answer (answer-likelihood needs answers)")
        answer = item.answers[0]
        base = caller.logprob(get_prompt("answer_likelihood_closedbook"), {"question": item.question}, answer,
                              self.ctx(item, "closed_book", vote))
        prompt = get_prompt("answer_likelihood")
        score = {}
        for i in range(len(item.doc_ids)):
            lp = caller.logprob(prompt, {"question": item.question, "passage": item.texts[i]}, answer,
                                self.ctx(item, "answer_likelihood", vote))
            score[i] = lp - base
        ranked = sorted(score, key=lambda i: (-score[i], i))
        return VoteResult(
            utility={i: float(s > self.config.margin) for i, s in score.items()},
            score=score,
            rank={i: r for r, i in enumerate(ranked, 1)},
            notes={"closed_book_logprob": base},
        )

"""The method contract, the method registry, and the steps methods share.

A method annotates one query for one candidate ordering (``order[j]`` = index, in first-stage
order, of the passage shown as number ``j + 1``) and returns a :class:`VoteResult` keyed by
first-stage index. The engine shuffles, votes, aggregates and writes; a method only maps the
model's passage numbers back through ``order``. Shared steps:

* :func:`relevance_step` — relevance selection over the shown passages;
* :func:`pseudo_answer_step` — an answer written from the given passages only;
* :func:`relevance_then_answer` — the two in sequence (relevance labels + pseudo-answer);
* :func:`utility_step` — utility selection among given passages given the question and a
  pseudo-answer (written by :func:`pseudo_answer_step`, or jointly in the same call when
  ``config.joint``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from ..caller import CallContext, QueryItem, VoteResult, selection_budget
from ..config import AnnotateConfig
from ..parsing import parse_answer, parse_answer_selection, parse_selection
from ..prompts import Prompt, get_prompt


class Method(ABC):
    """One annotation method. ``listwise`` methods are shuffled and can vote."""

    name: ClassVar[str] = ""
    listwise: ClassVar[bool] = True
    needs_answers: ClassVar[bool] = False

    def __init__(self, config: AnnotateConfig):
        self.config = config

    @abstractmethod
    def prompts(self) -> list[Prompt]:
        """The prompts this method uses under its config (for logs, judgments and dry runs)."""

    @abstractmethod
    def run(self, item: QueryItem, order: Sequence[int], caller, vote: int) -> VoteResult:
        """Annotate ``item`` with passages shown in ``order``."""

    @property
    def prompt_id(self) -> str:
        """The prompts' ``id@vN`` refs and the task's ref, joined by ``+``."""
        return "+".join([p.ref for p in self.prompts()] + [self.config.task_spec.ref])

    def ctx(self, item: QueryItem, step: str, vote: int) -> CallContext:
        return CallContext(item.query_id, self.name, step, vote)


_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    _METHODS[cls.name] = cls
    return cls


def relevance_step(method: Method, item: QueryItem, shown: Sequence[int], caller, vote: int) -> list[int] | None:
    """Relevance selection over passages ``shown`` (indices); selected indices in shown order."""
    cfg = method.config
    prompt = get_prompt("relsel", cfg.style)
    n = len(shown)
    parsed = caller.chat(
        prompt,
        {"question": item.question, "passages": [item.texts[i] for i in shown]},
        lambda t: parse_selection(t, n, cfg.allow_empty),
        selection_budget(n),
        method.ctx(item, "relsel", vote),
    )
    if not parsed.ok:
        return None
    chosen = {shown[j - 1] for j in parsed.value}
    return [i for i in shown if i in chosen]


def pseudo_answer_step(method: Method, item: QueryItem, given: Sequence[int], caller, vote: int) -> str | None:
    """A pseudo-answer written from the passages ``given`` only."""
    cfg = method.config
    parsed = caller.chat(
        get_prompt("pseudo_answer", cfg.style),
        {"question": item.question, "passages": [item.texts[i] for i in given]},
        parse_answer,
        cfg.answer_max_tokens,
        method.ctx(item, "pseudo_answer", vote),
    )
    return parsed.value if parsed.ok else None


def relevance_then_answer(method: Method, item: QueryItem, order: Sequence[int], caller,
                          vote: int) -> tuple[dict[int, float] | None, str | None]:
    """The pipeline's first two steps: relevance labels over ``order``, then a pseudo-answer written
    from the relevance-selected passages only. ``(None, None)`` when relevance selection failed,
    ``(relevance, None)`` when the answer step failed (no label is ever a default)."""
    selected = relevance_step(method, item, order, caller, vote)
    if selected is None:
        return None, None
    relevance = {i: float(i in selected) for i in order}
    return relevance, pseudo_answer_step(method, item, selected, caller, vote)


def utility_step(method: Method, item: QueryItem, given: Sequence[int], caller, vote: int) -> tuple[str, list[int]] | None:
    """Pseudo-answer from ``given`` and utility selection among ``given``; ``(answer, selected)``."""
    cfg = method.config
    n = len(given)
    texts = [item.texts[i] for i in given]
    if cfg.joint:
        parsed = caller.chat(
            get_prompt("utilsel_joint", cfg.style),
            {"question": item.question, "passages": texts},
            lambda t: parse_answer_selection(t, n, cfg.allow_empty),
            cfg.answer_max_tokens + selection_budget(n),
            method.ctx(item, "utilsel", vote),
        )
        if not parsed.ok:
            return None
        answer, ids = parsed.value
    else:
        answer = pseudo_answer_step(method, item, given, caller, vote)
        if answer is None:
            return None
        parsed = caller.chat(
            get_prompt("utilsel", cfg.style),
            {"question": item.question, "answer": answer, "passages": texts},
            lambda t: parse_selection(t, n, cfg.allow_empty),
            selection_budget(n),
            method.ctx(item, "utilsel", vote),
        )
        if not parsed.ok:
            return None
        ids = parsed.value
    chosen = {given[j - 1] for j in ids}
    return answer, [i for i in given if i in chosen]


def utility_prompts(config: AnnotateConfig) -> list[Prompt]:
    if config.joint:
        return [get_prompt("utilsel_joint", config.style)]
    return [get_prompt("pseudo_answer", config.style), get_prompt("utilsel", config.style)]

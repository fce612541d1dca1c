"""Scripted backend for unit tests of parsing and control flow (never a test of quality).

``responses`` is a list consumed in order (cycled if ``cycle=True``) or a function of the request.
Every request is recorded in ``self.requests``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..base import ChatRequest, ChatResponse, LLMBackend, register_backend


@register_backend
class FakeBackend(LLMBackend):
    name = "fake"

    def __init__(self, responses: Sequence[str] | Callable[[ChatRequest], str] = (), model: str = "fake",
                 logprobs: Callable[[Sequence[dict], str], float] | None = None, cycle: bool = False, **options):
        super().__init__(model=model, **options)
        self._responses = responses
        self._logprobs = logprobs
        self.supports_logprob = logprobs is not None
        self._cycle = cycle
        self._i = 0
        self.requests: list[ChatRequest] = []

    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if callable(self._responses):
            text = self._responses(request)
        else:
            if self._i >= len(self._responses) and not self._cycle:
                raise IndexError("FakeBackend ran out of scripted responses")
            text = self._responses[self._i % len(self._responses)]
            self._i += 1
        prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
        return ChatResponse(text, prompt_tokens, len(text.split()), 0.0, self.model, "stop")

    def _logprob_one(self, messages, continuation):
        if self._logprobs is None:
            return super()._logprob_one(messages, continuation)
        return self._logprobs(messages, continuation)

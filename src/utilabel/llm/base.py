"""The LLM backend contract shared by annotation and RAG.

A backend implements :meth:`LLMBackend._chat_one` (one chat completion) and, optionally,
:meth:`LLMBackend._logprob_one` (log-probability of a given continuation, for pointwise
"yes"-scoring and answer likelihood). The base class does batching, retries with exponential
backoff on :class:`TransientLLMError`, and option checking. Backends register by name with
:func:`register_backend`; :func:`get_backend` lists the valid names on a typo.

Scoring API (all natural-log probabilities, chat template applied, assistant turn opened):

* :meth:`LLMBackend.logprob` ``(messages, continuation)`` — log P(continuation | messages), the sum
  over the continuation's tokens (tokenized on its own, no end-of-turn token). Answer likelihood.
* :meth:`LLMBackend.token_logprobs` ``(messages, candidates=("yes", "no"))`` — for each candidate,
  log P(first token of the candidate) at the first generated position. Pointwise yes/no scoring:
  ``lp["yes"] - logsumexp(lp["yes"], lp["no"])`` is the normalised log P(yes).
* ``logprob_many`` / ``token_logprobs_many`` — the same over many inputs (concurrent where the
  backend can be), order preserved.

Concrete backends live in :mod:`utilabel.llm.backends` (``openai``, ``llamacpp``, ``transformers``,
``vllm``, ``fake``); local model files are resolved by :mod:`utilabel.llm.models`.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..errors import ConfigError, LLMError


class TransientLLMError(LLMError):
    """A failure worth retrying (HTTP 429/5xx, connection reset, timeout)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request. ``messages`` are ``{"role", "content"}`` dicts.

    ``grammar`` (GBNF) and ``json_schema`` constrain output on servers that support them.
    """

    messages: tuple[dict[str, str], ...]
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    json_schema: dict | None = None

    def __post_init__(self):
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be ≥ 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be in [0, 2], got {self.temperature}")
        if not self.messages:
            raise ConfigError("a chat request needs at least one message")

    def cache_key(self, model: str) -> str:
        """Stable hash of (model, request): the key of the call log / cache."""
        payload = json.dumps({"model": model, **asdict(self)}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class ChatResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    model: str = ""
    finish_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class LLMBackend(ABC):
    """Base class: subclasses implement ``_chat_one`` (and optionally ``_logprob_one``)."""

    name: ClassVar[str] = ""
    supports_grammar: ClassVar[bool] = False  # honours ChatRequest.grammar / json_schema
    supports_logprob: bool = False  # implements logprob / token_logprobs
    concurrency: int = 1  # requests the backend serves at once (``annotate(max_concurrency=None)`` uses it)
    max_retries: int = 4
    backoff_s: float = 0.5

    def __init__(self, model: str = "", **options: Any):
        self.model = model
        self.options = options

    @property
    def model_id(self) -> str:
        """What judgments and call keys name: the model, or the backend's name when it has none."""
        return self.model or self.name

    @classmethod
    def option_names(cls) -> list[str]:
        """The client options this backend accepts by name (the CLI maps flags such as ``--max-retries``
        only onto these); none by default."""
        return []

    @abstractmethod
    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        """Run one completion; raise TransientLLMError for retryable failures."""

    def _logprob_one(self, messages: Sequence[dict[str, str]], continuation: str) -> float:
        raise ConfigError(f"backend {self.name!r} cannot score continuations; use 'llamacpp' or 'transformers'")

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except TransientLLMError:
                if attempt == self.max_retries:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def chat(self, request: ChatRequest) -> ChatResponse:
        return self._retrying(lambda: self._chat_one(request))

    def chat_many(self, requests: Sequence[ChatRequest],
                  on_result: Callable[[int, ChatResponse], None] | None = None) -> list[ChatResponse]:
        """Run many requests; concurrent backends override this. Order is preserved.

        ``on_result(i, response)`` (optional) is called as each request finishes (in completion
        order), so a caller can log results before the whole batch is done.
        """
        out = []
        for i, r in enumerate(requests):
            out.append(self.chat(r))
            if on_result is not None:
                on_result(i, out[-1])
        return out

    def logprob(self, messages: Sequence[dict[str, str]], continuation: str) -> float:
        """Natural-log probability of ``continuation`` as the assistant's reply to ``messages``."""
        return self._retrying(lambda: self._logprob_one(messages, continuation))

    def _token_logprobs_one(self, messages: Sequence[dict[str, str]], candidates: Sequence[str]) -> dict[str, float]:
        # default: whole-candidate log-probability (identical to the first-token one for one-token candidates)
        return {c: self._logprob_one(messages, c) for c in candidates}

    def token_logprobs(self, messages: Sequence[dict[str, str]],
                       candidates: Sequence[str] = ("yes", "no")) -> dict[str, float]:
        """log P(first token of each candidate) as the first token of the assistant's reply."""
        if not candidates:
            raise ConfigError("token_logprobs needs at least one candidate")
        return self._retrying(lambda: self._token_logprobs_one(messages, tuple(candidates)))

    def logprob_many(self, items: Sequence[tuple[Sequence[dict[str, str]], str]]) -> list[float]:
        """:meth:`logprob` over ``(messages, continuation)`` pairs, order preserved."""
        return [self.logprob(m, c) for m, c in items]

    def token_logprobs_many(self, messages_list: Sequence[Sequence[dict[str, str]]],
                            candidates: Sequence[str] = ("yes", "no")) -> list[dict[str, float]]:
        """:meth:`token_logprobs` over many message lists, order preserved."""
        return [self.token_logprobs(m, candidates) for m in messages_list]

    def close(self) -> None:
        """Release resources (servers, sessions)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_BACKENDS: dict[str, type[LLMBackend]] = {}


def register_backend(cls: type[LLMBackend]) -> type[LLMBackend]:
    if not cls.name:
        raise ConfigError(f"{cls.__name__} has no name")
    _BACKENDS[cls.name] = cls
    return cls

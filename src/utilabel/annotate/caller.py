"""Shared types of the annotation engine: one query's input, one vote's labels, and the two callers methods talk to (the logging/resuming :class:`Caller` and the
token-counting :class:`DryCaller` used by ``--dry-run``).

A method never calls a backend directly: it asks its caller for a chat completion parsed by a
given parser (``chat``) or for a continuation log-probability (``logprob``). The :class:`Caller`
renders the prompt, looks the call up in the store by key, calls the backend only when missing,
logs the call, parses the output (thinking stripped), retries a parse failure up to
``config.retries`` times with another seed (and ``retry_temperature``) and counts failures by kind.
It also bounds the calls in flight across all queries (``max_concurrency``) and holds the circuit
breaker: after ``breaker`` consecutive calls failed on the server (each after the backend's own
retries) it refuses further calls with :class:`CircuitOpenError`.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError, LLMError
from ..llm.base import LLMBackend
from .config import AnnotateConfig
from .parsing import FAILURE_KINDS, Parsed
from .prompts import Prompt
from .store import CallStore, call_key


@dataclass(frozen=True)
class QueryItem:
    """One query to annotate: candidates in first-stage order, texts escaped and truncated."""

    query_id: str
    question: str
    doc_ids: tuple[str, ...]
    texts: tuple[str, ...]
    answers: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()  # first-stage scores, candidate order


@dataclass
class VoteResult:
    """Labels from one run of a method over one ordering, keyed by candidate index.

    A mapping is None when its step failed (no label, never a default).
    """

    relevance: dict[int, float] | None = None
    utility: dict[int, float] | None = None
    score: dict[int, float] | None = None
    rank: dict[int, int] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallContext:
    """Where a call belongs: logged with it and used for failure counts."""

    query_id: str
    method: str
    step: str
    vote: int = 0


@dataclass
class Stats:
    """Counters of a run (thread-safe increments through :meth:`add`)."""

    calls_new: int = 0
    calls_cached: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_steps: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def failure(self, step: str, kind: str) -> None:
        with self._lock:
            per = self.failures.setdefault(step, {k: 0 for k in FAILURE_KINDS})
            per[kind] = per.get(kind, 0) + 1

    def step_failed(self, step: str) -> None:
        with self._lock:
            self.failed_steps[step] = self.failed_steps.get(step, 0) + 1

    def total_failures(self) -> int:
        return sum(sum(v.values()) for v in self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls_new": self.calls_new, "calls_cached": self.calls_cached, "calls_failed": self.calls_failed,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "latency_s": round(self.latency_s, 3),
                "failures": {s: dict(v) for s, v in sorted(self.failures.items())},
                "failed_steps": dict(sorted(self.failed_steps.items())),
            }


Parser = Callable[[str], Parsed]


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable part of a response's ``extra`` (server timings, cached tokens...)."""
    import json

    out = {}
    for k, v in (extra or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def selection_budget(n: int) -> int:
    """Completion tokens enough for ``My selection:[[1],...,[n]]`` (≈ 5 tokens per id)."""
    return 12 + 6 * n


class CircuitOpenError(LLMError):
    """Too many consecutive calls failed on the server: the run stops (re-run to continue)."""


class RunStopped(Exception):  # noqa: N818 - a signal to unwind, not an error
    """The run is ending (interrupt or another query's fatal error): no new calls are made."""


class Caller:
    """Runs calls through the store: replay when logged, otherwise call the backend and log.

    Thread-safe: queries run concurrently, at most ``max_concurrency`` backend calls in flight.
    ``breaker`` > 0 opens the circuit after that many consecutive server failures.
    """

    def __init__(self, backend: LLMBackend, store: CallStore, config: AnnotateConfig, stats: Stats,
                 max_concurrency: int = 1, breaker: int = 0):
        self.backend = backend
        self.store = store
        self.config = config
        self.stats = stats
        self.model = backend.model_id
        self.engine = backend.name
        store.check_engine(self.engine)
        self.task_values = config.task_spec.values()
        self.breaker = breaker
        self.failures_in_a_row = 0
        self.last_error = ""
        self.circuit_open = threading.Event()
        self.stop = threading.Event()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()

    def _backend(self, fn: Callable[[], Any]) -> Any:
        """One backend call under the concurrency bound, counted by the circuit breaker."""
        if self.stop.is_set():
            raise RunStopped()
        if self.circuit_open.is_set():
            raise CircuitOpenError(f"circuit breaker open after {self.breaker} consecutive server failures; "
                                   f"last: {self.last_error}")
        with self._slots:
            try:
                out = fn()
            except LLMError as exc:
                with self._lock:
                    self.failures_in_a_row += 1
                    self.last_error = str(exc)[:300]
                    if self.breaker and self.failures_in_a_row >= self.breaker:
                        self.circuit_open.set()
                self.stats.add(calls_failed=1)
                raise
        with self._lock:
            self.failures_in_a_row = 0
        return out

    def _record(self, key: str, prompt: Prompt, ctx: CallContext, attempt: int, payload: dict, **result) -> dict:
        rec = {
            "key": key,
            "prompt_id": prompt.ref,
            "prompt_hash": prompt.hash,
            "method": ctx.method,
            "step": ctx.step,
            "query_id": ctx.query_id,
            "vote": ctx.vote,
            "attempt": attempt,
            "model": self.model,
            "engine": self.engine,
            "options": {k: v for k, v in payload.items() if k != "messages"},
            "time": time.time(),
            **result,
        }
        self.store.put(rec)
        return rec

    def chat(self, prompt: Prompt, values: dict[str, Any], parse: Parser, max_tokens: int, ctx: CallContext) -> Parsed:
        """A parsed chat completion, retried on parse failure; the last failure if all attempts fail."""
        from ..llm.base import ChatRequest

        messages = prompt.render(**self.task_values, **values)
        cfg = self.config
        parsed = Parsed(failure="no_selection")
        for attempt in range(cfg.retries + 1):
            request = ChatRequest(
                messages=messages,
                max_tokens=max_tokens + cfg.extra_tokens,
                temperature=cfg.temperature if attempt == 0 else cfg.retry_temperature,
                seed=cfg.seed + attempt,
            )
            payload = {"kind": "chat", **asdict(request)}
            key = call_key(prompt.ref, prompt.hash, self.model, payload)
            rec = self.store.get(key)
            if rec is None:
                resp = self._backend(functools.partial(self.backend.chat, request))
                parsed = parse(resp.text)
                rec = self._record(
                    key, prompt, ctx, attempt, payload,
                    output=resp.text, failure=parsed.failure,
                    prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens,
                    latency_s=resp.latency_s, finish_reason=resp.finish_reason,
                    extra=_jsonable(resp.extra),
                )
                self.stats.add(calls_new=1, latency_s=resp.latency_s)
            else:
                parsed = parse(rec["output"])
                self.stats.add(calls_cached=1)
            self.stats.add(prompt_tokens=rec.get("prompt_tokens", 0), completion_tokens=rec.get("completion_tokens", 0))
            if parsed.ok:
                return parsed
            self.stats.failure(ctx.step, parsed.failure or "no_selection")
        self.stats.step_failed(ctx.step)
        return parsed

    def _scored(self, prompt: Prompt, kind: str, payloads: Sequence[dict], ctx: CallContext,
                compute: Callable[[list[dict]], list[Any]]) -> list[Any]:
        """Outputs of scoring calls (one per payload): logged ones replayed, the missing ones computed
        together by ``compute`` (one batch for the backend) and each logged before it is returned."""
        keyed = [({"kind": kind, **p}, call_key(prompt.ref, prompt.hash, self.model, {"kind": kind, **p}))
                 for p in payloads]
        recs = [self.store.get(key) for _, key in keyed]
        missing = [i for i, r in enumerate(recs) if r is None]
        if missing:
            t0 = time.perf_counter()
            outs = self._backend(lambda: compute([keyed[i][0] for i in missing]))
            latency = (time.perf_counter() - t0) / len(missing)
            for i, out in zip(missing, outs, strict=True):
                recs[i] = self._record(keyed[i][1], prompt, ctx, 0, keyed[i][0], output=out, failure=None,
                                       latency_s=latency)
            self.stats.add(calls_new=len(missing), latency_s=latency * len(missing))
        self.stats.add(calls_cached=len(payloads) - len(missing))
        return [r["output"] for r in recs if r is not None]  # every record is filled in above

    def logprob_many(self, prompt: Prompt, values_list: Sequence[dict[str, Any]], continuations: Sequence[str],
                     ctx: CallContext) -> list[float]:
        """Natural-log probability of each continuation as the reply to its rendered prompt (batched
        where the backend can; one log record per item)."""
        payloads = [{"messages": prompt.render(**self.task_values, **v), "continuation": c}
                    for v, c in zip(values_list, continuations, strict=True)]

        def compute(items):
            out = [float(x) for x in self.backend.logprob_many([(p["messages"], p["continuation"]) for p in items])]
            if any(math.isnan(x) for x in out):
                raise ConfigError(f"backend returned NaN log-probability for {ctx.query_id}/{ctx.step}")
            return out

        return [float(x) for x in self._scored(prompt, "logprob", payloads, ctx, compute)]

    def logprob(self, prompt: Prompt, values: dict[str, Any], continuation: str, ctx: CallContext) -> float:
        return self.logprob_many(prompt, [values], [continuation], ctx)[0]

    def token_logprobs_many(self, prompt: Prompt, values_list: Sequence[dict[str, Any]], candidates: Sequence[str],
                            ctx: CallContext) -> list[dict[str, float]]:
        """First-token log-probabilities of ``candidates`` as the reply to each rendered prompt
        (batched where the backend can; one log record per prompt)."""
        payloads = [{"messages": prompt.render(**self.task_values, **v), "candidates": list(candidates)}
                    for v in values_list]

        def compute(items):
            outs = self.backend.token_logprobs_many([p["messages"] for p in items], tuple(candidates))
            return [{c: float(o[c]) for c in candidates} for o in outs]

        return [{c: float(v) for c, v in out.items()} for out in
                self._scored(prompt, "token_logprobs", payloads, ctx, compute)]

    def token_logprobs(self, prompt: Prompt, values: dict[str, Any], candidates: Sequence[str],
                       ctx: CallContext) -> dict[str, float]:
        return self.token_logprobs_many(prompt, [values], candidates, ctx)[0]


# The dry run's default throughput: the default backend on the 2-core CPU this project is developed on
# (Qwen2.5-Coder-1.5B Q4_K_M, embedded llama.cpp, one single-thread server per core; BENCHMARKS.md,
# "dry-run estimates"): the judge's check of 579 passages ran at ~57 prompt tok/s, and 12 generated
# tok/s puts the two measured generation runs within 0.7-1.6x of their estimates. Other hardware or
# servers: measure a short run and pass the rates.
DEFAULT_PROMPT_TPS = 50.0
DEFAULT_GEN_TPS = 12.0


@dataclass
class Estimate:
    """What ``--dry-run`` reports: call count, token estimates, time and cost."""

    queries: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_step: dict[str, dict[str, int]] = field(default_factory=dict)

    def seconds(self, prompt_tps: float, gen_tps: float, per_call_s: float = 0.0) -> float:
        return self.prompt_tokens / prompt_tps + self.completion_tokens / gen_tps + self.calls * per_call_s

    def cost(self, usd_per_m_prompt: float, usd_per_m_completion: float) -> float:
        return (self.prompt_tokens * usd_per_m_prompt + self.completion_tokens * usd_per_m_completion) / 1e6


def approx_tokens(messages: Sequence[dict[str, str]]) -> int:
    """Rough token count of chat messages: ~4 characters per token plus 4 per message (template)."""
    return sum(math.ceil(len(m["content"]) / 4) + 4 for m in messages)


_FILLER_ANSWER = " ".join(["word"] * 40)


class DryCaller:
    """Counts the calls a method would make, with synthetic well-formed outputs.

    Selections pick the first ``ceil(select_fraction * n)`` passages; answers are 40 words;
    rankings keep the presented order; log-probabilities are 0. Completion tokens are counted on
    the synthetic outputs, prompt tokens with ``count_tokens`` (default :func:`approx_tokens`).
    """

    def __init__(self, estimate: Estimate, select_fraction: float = 0.4,
                 count_tokens: Callable[[Sequence[dict[str, str]]], int] = approx_tokens,
                 count_text: Callable[[str], int] | None = None, task_values: dict[str, str] | None = None):
        self.estimate = estimate
        self.task_values = task_values or {}
        self.select_fraction = select_fraction
        self.count_tokens = count_tokens
        self.count_text = count_text or (lambda t: math.ceil(len(t) / 4))

    def _add(self, step: str, messages, completion: str) -> None:
        p = self.count_tokens(messages)
        c = self.count_text(completion) if completion else 1
        e = self.estimate
        e.calls += 1
        e.prompt_tokens += p
        e.completion_tokens += c
        s = e.by_step.setdefault(step, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        s["calls"] += 1
        s["prompt_tokens"] += p
        s["completion_tokens"] += c

    def _synthetic(self, prompt: Prompt, values: dict[str, Any]) -> str:
        n = len(values.get("passages") or ())
        k = max(1, math.ceil(self.select_fraction * n))
        sel = "My selection:[" + ",".join(f"[{i}]" for i in range(1, k + 1)) + "]"
        return {
            "selection": sel,
            "answer_selection": f"Answer: {_FILLER_ANSWER}\n{sel}",
            "ranking": " > ".join(f"[{i}]" for i in range(1, n + 1)),
            "answer": _FILLER_ANSWER,
        }.get(prompt.output, "")

    def chat(self, prompt: Prompt, values: dict[str, Any], parse: Parser, max_tokens: int, ctx: CallContext) -> Parsed:
        text = self._synthetic(prompt, values)
        self._add(ctx.step, prompt.render(**self.task_values, **values), text)
        return parse(text)

    def logprob_many(self, prompt: Prompt, values_list, continuations, ctx: CallContext) -> list[float]:
        for v, c in zip(values_list, continuations, strict=True):
            self._add(ctx.step, prompt.render(**self.task_values, **v) + ({"role": "assistant", "content": c},), "")
        return [0.0] * len(values_list)

    def logprob(self, prompt: Prompt, values: dict[str, Any], continuation: str, ctx: CallContext) -> float:
        return self.logprob_many(prompt, [values], [continuation], ctx)[0]

    def token_logprobs_many(self, prompt: Prompt, values_list, candidates: Sequence[str],
                            ctx: CallContext) -> list[dict[str, float]]:
        for v in values_list:
            self._add(ctx.step, prompt.render(**self.task_values, **v), "x")
        return [{c: math.log(0.5) for c in candidates} for _ in values_list]

    def token_logprobs(self, prompt: Prompt, values: dict[str, Any], candidates: Sequence[str],
                       ctx: CallContext) -> dict[str, float]:
        return self.token_logprobs_many(prompt, [values], candidates, ctx)[0]

"""``openai`` backend: any OpenAI-compatible chat server (vLLM, SGLang, Ollama, llama.cpp, OpenAI).

Requests go out with ``httpx`` from one background event loop owned by the backend, so the sync API
(:meth:`chat`, :meth:`chat_many`, ...) works from scripts, threads and running event loops alike.

* **Concurrency** — at most ``concurrency`` requests in flight (an ``asyncio.Semaphore``);
  ``chat_many`` preserves order and reports each result as it lands (``on_result``).
* **Scale-out** — ``base_url`` may list several servers (list or comma-separated string); attempts
  go round-robin, so a retry after a connection error lands on the next server.
* **Retries** — each HTTP request (not each method call: a scoring call is several requests) is
  retried on HTTP 408/409/429/5xx, timeouts, connection errors and malformed replies, up to
  ``max_retries`` times with exponential backoff (``backoff_s`` · 2^attempt, capped at
  ``max_backoff_s``, at least the server's ``Retry-After``); other 4xx fail at once with the
  server's message. ``timeout_s`` bounds one request. ``self.stats`` counts ``requests``,
  ``retries`` and ``failures``.
* **Connections** — kept alive and reused across requests. They are spread over one small
  ``httpx.AsyncClient`` per :data:`SLOTS_PER_CLIENT` concurrency slots, picked in turn: one client
  with many connections spends more and more time assigning requests to them (on the 2-core
  development machine, one client at concurrency 64 managed ≈ 95 calls/s against a 50 ms stub,
  16 clients ≈ 540/s; BENCHMARKS.md, annotate-scale).
* **Guided output** — ``ChatRequest.json_schema`` is sent as OpenAI ``response_format``
  (``{"type": "json_schema", ...}``, understood by OpenAI, vLLM, SGLang, llama.cpp);
  ``ChatRequest.grammar`` (GBNF) goes in the body field ``grammar_field`` (``grammar`` for llama.cpp;
  set ``"guided_grammar"`` for older vLLM).
* **Model** — without ``model`` the first server's ``GET /models`` names it (so judgments record it).
* **API key** — read from the environment only (``$OPENAI_API_KEY`` or the variable named by
  ``api_key_env``), never passed as an option, never logged.
* **Scoring** (:meth:`logprob`, :meth:`token_logprobs`) needs llama.cpp's native endpoints
  (``/apply-template``, ``/tokenize``, ``/completion``); see :meth:`_alogprob` for the method and why it
  is exact. Each server scores one request at a time; with several servers in ``base_url`` a scoring
  goes to the one with the fewest in flight, so ``*_many`` scores on all of them at once. Other servers
  give ``token_logprobs`` from chat ``top_logprobs`` (candidates outside the returned top are ``-inf``)
  and cannot score continuations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...errors import ConfigError, LLMError
from ..base import ChatRequest, ChatResponse, LLMBackend, TransientLLMError, register_backend

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
SLOTS_PER_CLIENT = 4  # concurrency slots per pooled HTTP client (see "Connections" above)
FORCE_BIAS = 1000.0  # logit bias that forces a token; reported log-probs come from the unbiased logits


class UnsupportedEndpointError(LLMError):
    """The server lacks an endpoint this feature needs (HTTP 404/405/501)."""


class _LoopThread:
    """A private asyncio loop in a daemon thread; ``run`` blocks the caller until the coroutine ends."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="utilabel-llm-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float | None = None) -> Any:
        if threading.current_thread() is self.thread:
            raise RuntimeError("blocking call from the backend's own event loop thread")
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching exactly ``text``."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _split_urls(base_url: str | Sequence[str] | None) -> list[str]:
    if base_url is None:
        base_url = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    urls = [u.strip() for u in base_url.split(",")] if isinstance(base_url, str) else [str(u).strip() for u in base_url]
    urls = [u.rstrip("/") for u in urls if u]
    if not urls:
        raise ConfigError("base_url names no server")
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {u!r}")
    return urls


@register_backend
class OpenAICompatBackend(LLMBackend):
    """Chat (and, on llama.cpp servers, scoring) over HTTP. See the module docstring for the options."""

    name = "openai"
    supports_grammar = True
    supports_logprob = True  # on llama.cpp servers; token_logprobs also via chat top_logprobs elsewhere

    def __init__(self, model: str = "", base_url: str | Sequence[str] | None = None, concurrency: int = 4,
                 timeout_s: float = 600.0, max_retries: int = 4, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, api_key_env: str = "OPENAI_API_KEY", grammar_field: str = "grammar",
                 top_logprobs: int = 20, extra_body: dict | None = None, **options: Any):
        if "api_key" in options:
            raise ConfigError(f"API keys are read from the environment only: set ${api_key_env} "
                              "(or name another variable with api_key_env=...)")
        if options:
            raise ConfigError(f"unknown option(s) {sorted(options)} for LLM backend {self.name!r}; "
                              f"valid: {', '.join(self.option_names())}")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be ≥ 1, got {concurrency}")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0 or backoff_s < 0:
            raise ConfigError("max_retries and backoff_s must be ≥ 0")
        if not 1 <= top_logprobs <= 100:
            raise ConfigError(f"top_logprobs must be in [1, 100], got {top_logprobs}")
        super().__init__(model=model, **options)
        import httpx  # noqa: F401 - fail early with a clear error when missing

        self.base_urls = _split_urls(base_url)
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.api_key_env = api_key_env
        self.grammar_field = grammar_field
        self.top_logprobs = top_logprobs
        self.extra_body = dict(extra_body or {})
        self.stats: Counter = Counter()
        self._rr = 0
        self._rr_lock = threading.Lock()
        self._loop: _LoopThread | None = None
        self._loop_lock = threading.Lock()
        self._clients: list = []
        self._turn = 0
        self._sem: asyncio.Semaphore | None = None
        self._llamacpp: bool | None = None  # whether the native scoring endpoints exist (probed once)
        self._token_cache: dict[tuple[str, str], list[int]] = {}
        self._score_locks: dict[str, asyncio.Lock] = {}  # one scoring request at a time per server
        self._scorings: Counter = Counter()  # scorings in flight per server (see _scoring_server)
        if not self.model:
            self.model = self._served_model()

    def _served_model(self) -> str:
        """The model id the first server reports on ``GET /models`` ("" when it does not answer), so that
        judgments name the real model when none was given."""
        import httpx

        for _ in range(3):  # a flaky server gets a few tries; the model name is only a label
            try:
                resp = httpx.get(self.base_urls[0] + "/models", headers=self._headers(), timeout=min(10.0, self.timeout_s))
                return str(resp.json()["data"][0]["id"])
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
                continue
        log.warning("%s did not name its model (GET /models); pass model=... to record it", self.base_urls[0])
        return ""

    @classmethod
    def option_names(cls) -> list[str]:
        import inspect

        params = inspect.signature(OpenAICompatBackend.__init__).parameters
        return sorted(k for k, v in params.items() if k != "self" and v.kind is v.POSITIONAL_OR_KEYWORD)

    # ------------------------------------------------------------------ plumbing
    def _run(self, coro: Awaitable) -> Any:
        with self._loop_lock:
            if self._loop is None:
                self._loop = _LoopThread()
        return self._loop.run(coro)

    def _next_url(self) -> str:
        with self._rr_lock:
            url = self.base_urls[self._rr % len(self.base_urls)]
            self._rr += 1
        return url

    @staticmethod
    def _root(url: str) -> str:
        """Server root for llama.cpp's native endpoints: the base URL without a trailing ``/v1``."""
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _http(self):
        """The next pooled client (created on first use, on the loop thread)."""
        if not self._clients:
            import httpx

            n = -(-self.concurrency // SLOTS_PER_CLIENT)
            per = 2 * min(self.concurrency, SLOTS_PER_CLIENT)
            self._clients = [httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                limits=httpx.Limits(max_connections=per, max_keepalive_connections=per)) for _ in range(n)]
            self._sem = asyncio.Semaphore(self.concurrency)
        self._turn = (self._turn + 1) % len(self._clients)
        return self._clients[self._turn]

    async def _post(self, path: str, body: dict, native: bool = False, url: str | None = None,
                    parse: Callable[[dict], Any] | None = None) -> Any:
        """POST ``body`` to ``path`` (on ``url``, else the next server per attempt), retrying transient
        failures (see the module docstring); ``parse`` turns the reply's JSON into the result and may
        raise :class:`TransientLLMError` for a malformed reply."""
        for attempt in range(self.max_retries + 1):
            try:
                data = await self._post_once(path, body, native, url or self._next_url())
                return parse(data) if parse else data
            except TransientLLMError as exc:
                if attempt == self.max_retries:
                    self.stats["failures"] += 1
                    raise LLMError(f"gave up after {attempt + 1} attempts: {exc}") from exc
                delay = min(self.backoff_s * 2 ** attempt, self.max_backoff_s)
                delay = max(delay, min(getattr(exc, "retry_after", 0.0) or 0.0, self.max_backoff_s))
                delay *= 1.0 + 0.1 * random.random()
                self.stats["retries"] += 1
                log.warning("transient LLM error (attempt %d/%d, retrying in %.2fs): %s",
                            attempt + 1, self.max_retries + 1, delay, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, path: str, body: dict, native: bool, url: str) -> dict:
        """One POST; failures mapped to Transient/LLM errors."""
        import httpx

        client = await self._http()
        target = (self._root(url) if native else url) + path
        self.stats["requests"] += 1
        try:
            resp = await client.post(target, json=body, headers=self._headers())
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise TransientLLMError(f"{type(exc).__name__} talking to {target}: {exc}") from exc
        if resp.status_code in RETRY_STATUS:
            err = TransientLLMError(f"HTTP {resp.status_code} from {target}: {resp.text[:300]}")
            err.retry_after = _retry_after(resp.headers.get("retry-after"))  # type: ignore[attr-defined]
            raise err
        if resp.status_code in (404, 405, 501):
            raise UnsupportedEndpointError(f"HTTP {resp.status_code} from {target}: endpoint not supported")
        if resp.status_code >= 400:
            raise LLMError(f"HTTP {resp.status_code} from {target}: {resp.text[:500]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise TransientLLMError(f"invalid JSON from {target}: {resp.text[:200]!r}") from exc

    async def _bounded(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``make()`` holding one of the ``concurrency`` slots (its requests retry inside)."""
        await self._http()
        assert self._sem is not None  # _http creates it
        async with self._sem:
            return await make()

    # ------------------------------------------------------------------ chat
    def _chat_body(self, request: ChatRequest) -> dict:
        body: dict[str, Any] = {
            "model": self.model or "default",
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.grammar is not None and request.json_schema is not None:
            raise ConfigError("a request can carry a grammar or a json_schema, not both")
        if request.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": request.json_schema,
                                                       "strict": True}}
        if request.grammar is not None:
            body[self.grammar_field] = request.grammar
        body.update(self.extra_body)
        return body

    async def _achat(self, request: ChatRequest) -> ChatResponse:
        body = self._chat_body(request)

        async def once():
            t0 = time.perf_counter()
            resp = await self._post("/chat/completions", body, parse=lambda data: _parse_chat(data, 0.0, self.model))
            resp.latency_s = time.perf_counter() - t0
            return resp

        return await self._bounded(once)

    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        return self._run(self._achat(request))

    def chat(self, request: ChatRequest) -> ChatResponse:
        return self._run(self._achat(request))  # each request retries inside, with async backoff

    def chat_many(self, requests: Sequence[ChatRequest],
                  on_result: Callable[[int, ChatResponse], None] | None = None) -> list[ChatResponse]:
        """All requests with at most ``concurrency`` in flight; order preserved.

        If some fail after their retries, the others still finish (and reach ``on_result``) before the
        first failure is raised.
        """
        return self._run(self._gather([self._achat(r) for r in requests], on_result))

    async def _gather(self, coros: list[Awaitable], on_result: Callable[[int, Any], None] | None) -> list:
        async def one(i, coro):
            value = await coro
            if on_result is not None:
                on_result(i, value)
            return value

        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(coros)), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    # ------------------------------------------------------------------ scoring (llama.cpp server)
    async def _score(self, body: dict, url: str) -> list[dict]:
        """One scoring ``/completion`` on ``url``: its per-token log-probabilities.

        Log-probabilities must not depend on what else the server is doing. llama.cpp's numbers do: a
        prompt prefix reused from its cache was evaluated in other batch splits, and a request decoded in
        one batch with another slot's tokens takes other kernels (on SmolLM2 both moved log-odds by up to
        0.3). So scoring requests turn the prompt cache off and run one at a time per server (this
        backend's chat requests may still share a batch with them; score with ``--workers 1`` or on a
        server of your own when that matters).
        """
        lock = self._score_locks.setdefault(url, asyncio.Lock())
        async with lock:
            return _completion_probs(await self._native("/completion", {**body, "cache_prompt": False}, url))

    async def _native(self, path: str, body: dict, url: str) -> dict:
        try:
            data = await self._post(path, body, native=True, url=url)
        except UnsupportedEndpointError:
            self._llamacpp = False
            raise
        self._llamacpp = True
        return data

    @contextlib.contextmanager
    def _scoring_server(self):
        """The server for one scoring (its template, token ids and ``/completion`` requests all go there):
        the one with the fewest scorings in flight, ties in round-robin order. Each server scores one request
        at a time (:meth:`_score`), so with several servers (``base_url`` lists them; the ``llamacpp``
        backend's ``n_servers``) as many scorings run at once, each computed exactly as alone."""
        with self._rr_lock:
            start = self._rr
            self._rr += 1
        n = len(self.base_urls)
        url = min((self.base_urls[(start + i) % n] for i in range(n)), key=lambda u: self._scorings[u])
        self._scorings[url] += 1  # on the loop thread, with no await since the choice: no other scoring interleaves
        try:
            yield url
        finally:
            self._scorings[url] -= 1

    async def _prompt_and_ids(self, messages: Sequence[dict[str, str]], texts: Sequence[str], url: str):
        """The chat-templated prompt (assistant turn opened) and each text's token ids (no specials)."""
        prompt = (await self._native("/apply-template", {"messages": [dict(m) for m in messages]}, url))["prompt"]
        ids = []
        for text in texts:
            key = (self._root(url), text)
            if key not in self._token_cache:
                data = await self._native("/tokenize", {"content": text, "add_special": False,
                                                        "parse_special": False}, url)
                tokens = [t["id"] if isinstance(t, dict) else t for t in data["tokens"]]
                if len(self._token_cache) > 10_000:
                    self._token_cache.clear()
                self._token_cache[key] = tokens
            ids.append(self._token_cache[key])
        return prompt, ids

    async def _alogprob(self, messages: Sequence[dict[str, str]], continuation: str,
                        per_token: bool = False) -> float:
        """log P(continuation | chat-templated messages) on a llama.cpp server.

        The server reports, for each generated token, its log-probability under the *unmodified*
        softmax of the model's logits (``post_sampling_probs`` off): grammars and logit biases steer the
        sampler but do not change the reported numbers. So the continuation is scored by making the
        server generate exactly its tokens:

        1. fast path — one ``/completion`` request whose GBNF grammar only admits ``continuation``,
           ``n_predict`` = its token count, greedy; if the generated token ids equal the continuation's
           own tokenization the sum of their log-probs is the answer;
        2. otherwise (the grammar let the model spell the string with other tokens) — one request per
           token, prompt = template + the previous continuation tokens, the next token forced with a
           logit bias.

        Every ``/completion`` goes through :meth:`_score`, so the numbers depend on the inputs only.
        """
        if not continuation:
            return 0.0
        with self._scoring_server() as url:  # one server for the whole scoring: template and token ids come from it
            return await self._alogprob_on(url, messages, continuation, per_token)

    async def _alogprob_on(self, url: str, messages: Sequence[dict[str, str]], continuation: str,
                           per_token: bool) -> float:
        try:
            prompt, (cont,) = await self._prompt_and_ids(messages, [continuation], url)
        except UnsupportedEndpointError:
            self._check_scoring()
            raise
        if not cont:
            return 0.0
        base = {"n_probs": 1, "temperature": 0.0, "post_sampling_probs": False}
        if not per_token:
            probs = await self._score({**base, "prompt": prompt, "n_predict": len(cont),
                                       "grammar": "root ::= " + gbnf_literal(continuation)}, url)
            if [p["id"] for p in probs] == cont:
                return float(sum(p["logprob"] for p in probs))
            log.debug("grammar-forced tokens %s differ from %s; scoring token by token", [p["id"] for p in probs], cont)
        total = 0.0
        for i, tok in enumerate(cont):
            (p,) = (await self._score({**base, "prompt": [prompt, *cont[:i]], "n_predict": 1,
                                       "logit_bias": [[tok, FORCE_BIAS]]}, url))[:1]
            if p["id"] != tok:
                raise LLMError(f"server did not honour the forced token {tok} (got {p['id']})")
            total += float(p["logprob"])
        return total

    async def _atoken_logprobs(self, messages: Sequence[dict[str, str]], candidates: Sequence[str]) -> dict:
        """First-token log-probs: one request returns the top ``top_logprobs``; the rest are forced."""
        if self._llamacpp is False:
            return await self._atoken_logprobs_chat(messages, candidates)
        with self._scoring_server() as url:
            return await self._atoken_logprobs_on(url, messages, candidates)

    async def _atoken_logprobs_on(self, url: str, messages: Sequence[dict[str, str]], candidates: Sequence[str]) -> dict:
        try:
            prompt, ids = await self._prompt_and_ids(messages, candidates, url)
        except UnsupportedEndpointError:
            return await self._atoken_logprobs_chat(messages, candidates)
        for c, i in zip(candidates, ids):
            if not i:
                raise ConfigError(f"candidate {c!r} has no tokens")
        base = {"temperature": 0.0, "post_sampling_probs": False, "prompt": prompt, "n_predict": 1}
        first = (await self._score({**base, "n_probs": self.top_logprobs}, url))[0]
        top = {t["id"]: float(t["logprob"]) for t in first.get("top_logprobs", [])}
        top.setdefault(first["id"], float(first["logprob"]))
        out = {}
        for c, i in zip(candidates, ids):
            if i[0] not in top:
                forced = await self._score({**base, "n_probs": 1, "logit_bias": [[i[0], FORCE_BIAS]]}, url)
                top[i[0]] = float(forced[0]["logprob"])
            out[c] = top[i[0]]
        return out

    async def _atoken_logprobs_chat(self, messages, candidates) -> dict:
        """Generic servers: chat ``top_logprobs`` of the first token, matched by token text."""
        body = {"model": self.model or "default", "messages": [dict(m) for m in messages], "max_tokens": 1,
                "temperature": 0.0, "logprobs": True, "top_logprobs": self.top_logprobs}
        data = await self._post("/chat/completions", body)
        try:
            first = data["choices"][0]["logprobs"]["content"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError("server returned no logprobs; it cannot score candidates") from exc
        top: dict[str, float] = {}
        for t in [first, *first.get("top_logprobs", [])]:
            top.setdefault(t["token"], float(t["logprob"]))
        out = {}
        for c in candidates:
            matches = [lp for tok, lp in top.items() if tok and c.startswith(tok)]
            out[c] = max(matches) if matches else float("-inf")
        return out

    def _logprob_one(self, messages, continuation):
        return self._run(self._alogprob(messages, continuation))

    def logprob(self, messages: Sequence[dict[str, str]], continuation: str, per_token: bool = False) -> float:
        """log P(continuation | messages); ``per_token=True`` skips the grammar fast path (for checks)."""
        self._check_scoring()
        return self._run(self._bounded(lambda: self._alogprob(messages, continuation, per_token)))

    def token_logprobs(self, messages: Sequence[dict[str, str]],
                       candidates: Sequence[str] = ("yes", "no")) -> dict[str, float]:
        if not candidates:
            raise ConfigError("token_logprobs needs at least one candidate")
        return self._run(self._bounded(lambda: self._atoken_logprobs(messages, tuple(candidates))))

    def logprob_many(self, items: Sequence[tuple[Sequence[dict[str, str]], str]]) -> list[float]:
        self._check_scoring()
        def score(m: Sequence[dict[str, str]], c: str) -> Callable[[], Awaitable[float]]:
            return lambda: self._alogprob(m, c)

        return self._run(self._gather([self._bounded(score(m, c)) for m, c in items], None))

    def token_logprobs_many(self, messages_list: Sequence[Sequence[dict[str, str]]],
                            candidates: Sequence[str] = ("yes", "no")) -> list[dict[str, float]]:
        if not candidates:
            raise ConfigError("token_logprobs needs at least one candidate")
        cands = tuple(candidates)
        def first_tokens(m: Sequence[dict[str, str]]) -> Callable[[], Awaitable[dict[str, float]]]:
            return lambda: self._atoken_logprobs(m, cands)

        return self._run(self._gather([self._bounded(first_tokens(m)) for m in messages_list], None))

    def _check_scoring(self) -> None:
        if self._llamacpp is False:
            raise ConfigError(f"the server at {self.base_urls[0]} has no llama.cpp /apply-template, /tokenize, "
                              "/completion endpoints, so it cannot score continuations; use a llama.cpp server "
                              "or the 'llamacpp' / 'transformers' / 'vllm' backends")

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._loop = None
        clients, self._clients = self._clients, []
        if threading.current_thread() is loop.thread:  # collected on the loop thread itself: cannot block
            loop.loop.call_soon(loop.loop.stop)
            return
        if clients and loop.thread.is_alive() and not loop.loop.is_closed():
            try:
                loop.run(asyncio.gather(*(c.aclose() for c in clients)), timeout=5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        loop.stop()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _completion_probs(data: dict) -> list[dict]:
    probs = data.get("completion_probabilities")
    if not probs or "logprob" not in probs[0]:
        raise LLMError("the server's /completion returned no per-token log-probabilities "
                       "(needs a llama.cpp server recent enough to report 'logprob')")
    return probs


def _parse_chat(data: dict, latency: float, model: str) -> ChatResponse:
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError) as exc:
        raise TransientLLMError(f"malformed chat response: {str(data)[:200]}") from exc
    usage = data.get("usage") or {}
    extra: dict[str, Any] = {}
    details = usage.get("prompt_tokens_details") or {}
    if details.get("cached_tokens") is not None:
        extra["cached_tokens"] = details["cached_tokens"]
    if message.get("reasoning_content"):
        extra["reasoning"] = message["reasoning_content"]
    if "timings" in data:
        extra["timings"] = data["timings"]
    if data.get("model"):
        extra["server_model"] = data["model"]
    return ChatResponse(text=message.get("content") or "", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                        completion_tokens=int(usage.get("completion_tokens") or 0), latency_s=latency,
                        model=model or data.get("model") or "", finish_reason=choice.get("finish_reason") or "",
                        extra=extra)

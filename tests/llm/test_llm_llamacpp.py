"""The ``openai`` / ``llamacpp`` backends against a real llama.cpp server (xllamacpp, SmolLM2-135M).

SmolLM2-135M ignores instructions; these tests check mechanics that hold for any model: usage
accounting, grammar/JSON-schema constraints, log-probability arithmetic computed by independent
routes, ordering under concurrency, and recovery from a server restart.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from utilabel.errors import ConfigError
from utilabel.llm import ChatRequest, get_backend

pytestmark = pytest.mark.llm

QUESTION = [{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}]


def test_chat_returns_text_and_usage(smol):
    r = smol.chat(ChatRequest(tuple(QUESTION), max_tokens=8))
    assert r.text.strip()
    assert r.prompt_tokens > 10          # the chat template alone adds ~20 tokens
    assert 1 <= r.completion_tokens <= 8
    assert r.finish_reason in ("stop", "length")
    assert r.latency_s > 0 and r.model == "smollm2-135m"


def test_grammar_constrains_output(smol):
    grammar = 'root ::= "My selection:" "[" item ("," item)* "]"\nitem ::= "[" [1-5] "]"'
    r = smol.chat(ChatRequest(({"role": "user", "content": "Pick passages."},), max_tokens=24, grammar=grammar))
    import re

    assert re.fullmatch(r"My selection:\[\[[1-5]\](,\[[1-5]\])*\]", r.text), r.text


def test_json_schema_constrains_output(smol):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    r = smol.chat(ChatRequest(tuple(QUESTION), max_tokens=32, json_schema=schema))
    assert json.loads(r.text)["answer"] in ("yes", "no")


def test_first_token_logprobs_agree_with_chat_logprobs(smol, smol_server):
    """token_logprobs (native /completion) vs the OpenAI chat endpoint's own top_logprobs."""
    lp = smol.token_logprobs(QUESTION, ("Yes", "No", "yes", "Paris"))
    for value in lp.values():
        assert math.isfinite(value) and value < 0
    import httpx

    body = {"messages": QUESTION, "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}
    first = httpx.post(smol_server.base_url + "/v1/chat/completions", json=body, timeout=60).json()[
        "choices"][0]["logprobs"]["content"][0]
    chat_top = {t["token"]: t["logprob"] for t in first["top_logprobs"]}
    for tok in ("Yes", "No"):
        assert lp[tok] == pytest.approx(chat_top[tok], abs=1e-4)
    # a probability distribution: the listed alternatives cannot exceed total mass 1
    assert math.fsum(math.exp(v) for v in chat_top.values()) <= 1.0 + 1e-6


def test_candidate_outside_top_is_forced_not_dropped(smol):
    lp = smol.token_logprobs(QUESTION, ("Yes", "zebra"))
    assert math.isfinite(lp["zebra"]) and lp["zebra"] < lp["Yes"]


def test_continuation_logprob_two_routes_agree(smol):
    answer = "Yes, Paris is the capital of France."
    fast = smol.logprob(QUESTION, answer)                   # one grammar-forced request
    slow = smol.logprob(QUESTION, answer, per_token=True)   # one forced request per token
    assert math.isfinite(fast) and fast < 0
    assert fast == pytest.approx(slow, abs=1e-3)


def test_logprob_is_chain_rule_consistent(smol):
    """log P("Yes") equals the first-token log-prob, and longer continuations only lose mass."""
    lp_yes = smol.logprob(QUESTION, "Yes")
    assert lp_yes == pytest.approx(smol.token_logprobs(QUESTION, ("Yes",))["Yes"], abs=1e-4)
    assert smol.logprob(QUESTION, "Yes, Paris") < lp_yes
    assert smol.logprob(QUESTION, "") == 0.0


def test_logprob_many_preserves_order(smol):
    items = [(QUESTION, "Yes."), (QUESTION, "No."), (QUESTION, "Yes.")]
    out = smol.logprob_many(items)
    assert out[0] == pytest.approx(out[2], abs=1e-4)
    assert out[0] == pytest.approx(smol.logprob(QUESTION, "Yes."), abs=1e-4)
    assert out[1] == pytest.approx(smol.logprob(QUESTION, "No."), abs=1e-4)


def test_chat_many_preserves_order_with_parallel_slots(smol):
    # each request's grammar admits exactly one string, so the right text must land at each index
    reqs = [ChatRequest(({"role": "user", "content": f"Say item {i}."},), max_tokens=8,
                        grammar=f'root ::= "item-{i}"') for i in range(6)]
    out = smol.chat_many(reqs)
    assert [r.text for r in out] == [f"item-{i}" for i in range(6)]


def test_llamacpp_backend_starts_and_stops_its_server():
    pytest.importorskip("xllamacpp")
    import httpx

    backend = get_backend("llamacpp", model="smollm2-135m", n_ctx=512, n_parallel=1)
    url = backend.server.base_url
    assert url.startswith("http://127.0.0.1:") and backend.concurrency == len(backend.servers)  # n_parallel=1 each
    assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"
    r = backend.chat(ChatRequest(tuple(QUESTION), max_tokens=4, grammar='root ::= "yes" | "no"'))
    assert r.text in ("yes", "no")
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=5)


def test_default_servers_one_per_physical_core_group(monkeypatch):
    from utilabel.llm.backends import llamacpp

    monkeypatch.setattr(llamacpp, "physical_cores", lambda: 2)
    monkeypatch.setattr(llamacpp, "default_threads", lambda: 1)
    assert llamacpp.default_servers() == 2  # the 2-core development machine: 2 servers of 1 thread
    assert llamacpp.default_servers(2) == 1
    monkeypatch.setattr(llamacpp, "physical_cores", lambda: 8)
    monkeypatch.setattr(llamacpp, "default_threads", lambda: 8)  # 16 CPUs with SMT: one 8-thread server
    assert llamacpp.default_servers() == 1
    assert llamacpp.default_servers(3) == 2


def test_physical_cores_counts_smt_siblings_once():
    from utilabel.llm.backends.llamacpp import _usable_cpus, physical_cores

    assert 1 <= physical_cores() <= len(_usable_cpus())


def test_llamacpp_backend_starts_the_default_servers(monkeypatch):
    pytest.importorskip("xllamacpp")
    from utilabel.llm.backends import llamacpp

    monkeypatch.setattr(llamacpp, "default_servers", lambda n_threads=None: 2)
    backend = get_backend("llamacpp", model="smollm2-135m", n_ctx=512)
    try:
        assert [s.options.n_threads for s in backend.servers] == [None, None]  # each: default_threads()
        assert backend.base_urls == [s.base_url + "/v1" for s in backend.servers]
        assert backend.concurrency == 2 * backend.server.options.n_parallel
    finally:
        backend.close()
    assert not any(s.running for s in backend.servers)


def test_llamacpp_backend_option_errors():
    with pytest.raises(ConfigError, match="n_parallel must be in"):
        get_backend("llamacpp", model="smollm2-135m", n_parallel=0)
    with pytest.raises(ConfigError, match=r"n_servers must be in \[1, 64\]"):
        get_backend("llamacpp", model="smollm2-135m", n_servers=0)
    with pytest.raises(ConfigError, match="a fixed port serves one server"):
        get_backend("llamacpp", model="smollm2-135m", n_servers=2, port=18080)
    with pytest.raises(ConfigError, match="starts its own server"):
        get_backend("llamacpp", model="smollm2-135m", base_url="http://x/v1")
    from utilabel.llm.backends.llamacpp import start_local_server

    with pytest.raises(ConfigError, match=r"unknown llama.cpp server option\(s\) \['n_gpu'\]"):
        start_local_server("smollm2-135m", n_gpu=1)


LONG = "the quick brown fox jumps over the lazy dog " * 2


def _long_requests(n):
    # each reply is forced to a ~20-word string, so a kill lands while one is being generated
    return [ChatRequest(({"role": "user", "content": f"Say {i}."},), max_tokens=200, grammar=f'root ::= "{i} {LONG}"')
            for i in range(n)]


def test_backend_recovers_when_the_server_is_killed_and_restarted():
    """SIGKILL an isolated server mid-run, bring a new one up on the same port 1 s later: nothing is lost."""
    pytest.importorskip("xllamacpp")
    from utilabel.llm.backends.llamacpp import start_local_server

    server = start_local_server("smollm2-135m", n_ctx=512, n_parallel=1, n_threads=1, isolated=True)
    port = server.port
    backend = get_backend("openai", base_url=server.base_url + "/v1", concurrency=1, max_retries=10,
                          backoff_s=0.2, max_backoff_s=1.0, timeout_s=60)
    holder = {}

    def kill_and_restart():
        time.sleep(0.3)          # the next request is in flight by now
        server.stop()            # SIGKILL of the child process
        holder["killed"] = True
        time.sleep(1.0)
        holder["server"] = start_local_server("smollm2-135m", n_ctx=512, n_parallel=1, n_threads=1, port=port,
                                              isolated=True)

    def on_result(i, response):
        if "thread" not in holder:
            holder["thread"] = threading.Thread(target=kill_and_restart)
            holder["thread"].start()

    try:
        out = backend.chat_many(_long_requests(3), on_result=on_result)
        holder["thread"].join()
        assert [r.text for r in out] == [f"{i} {LONG}" for i in range(3)]
        assert holder["killed"] and not server.running
        assert backend.stats["retries"] >= 1            # connection errors (and 503 while loading) retried
        assert holder["server"].port == port
    finally:
        backend.close()
        server.stop()
        if "server" in holder:
            holder["server"].stop()


def test_in_process_stop_waits_for_a_request_in_flight():
    """In-process, the C++ destructor would deadlock on a request from this process: stop() drains first."""
    pytest.importorskip("xllamacpp")
    import httpx

    from utilabel.llm.backends.llamacpp import start_local_server

    server = start_local_server("smollm2-135m", n_ctx=512, n_parallel=1, n_threads=1)
    backend = get_backend("openai", base_url=server.base_url + "/v1", max_retries=0, timeout_s=60)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", backend.chat(_long_requests(1)[0])))
    try:
        t.start()
        time.sleep(0.3)
        server.stop()
        t.join()
        assert result["r"].text == f"0 {LONG}"
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.base_url + "/health", timeout=5)
    finally:
        backend.close()
        server.stop()


def test_isolated_server_start_failure_is_reported(tmp_path):
    pytest.importorskip("xllamacpp")
    from utilabel.errors import LLMError
    from utilabel.llm.backends.llamacpp import LocalServer, LocalServerOptions

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LLMError, match="isolated llama.cpp server for .*broken.gguf failed to start"):
        LocalServer(broken, LocalServerOptions(isolated=True, n_threads=1))

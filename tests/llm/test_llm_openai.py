"""``openai`` backend control flow against a scripted local HTTP server: retries, request bodies,
API key handling, round-robin, ordering. (Real-model behaviour is in test_llm_llamacpp.py.)"""

from __future__ import annotations

import time

import pytest

from utilabel.errors import ConfigError, LLMError
from utilabel.llm import ChatRequest, get_backend

MSG = ({"role": "user", "content": "hi"},)


def _backend(url, **kw):
    kw.setdefault("backoff_s", 0.01)
    return get_backend("openai", base_url=url, model="stub-model", **kw)


def test_retries_429_and_500_then_succeeds(stub_server, payload):
    statuses = [429, 500, 503]

    def script(n, path, body):
        if n < len(statuses):
            return statuses[n], {"error": "busy"}, {}
        return 200, payload("ok", 13, 2), {}

    s = stub_server(script)
    with _backend(s.url) as b:
        r = b.chat(ChatRequest(MSG, max_tokens=5))
    assert r.text == "ok" and r.prompt_tokens == 13 and r.completion_tokens == 2 and r.model == "stub-model"
    assert len(s.calls) == 4          # 3 failures + 1 success
    assert b.stats["retries"] == 3 and b.stats["requests"] == 4
    assert all(path == "/v1/chat/completions" for path, _, _ in s.calls)


def test_400_is_not_retried(stub_server):
    s = stub_server(lambda n, path, body: (400, {"error": {"message": "bad schema"}}, {}))
    with _backend(s.url) as b, pytest.raises(LLMError, match="HTTP 400 .*bad schema"):
        b.chat(ChatRequest(MSG))
    assert len(s.calls) == 1 and b.stats["retries"] == 0


def test_gives_up_after_max_retries(stub_server):
    s = stub_server(lambda n, path, body: (502, {}, {}))
    with _backend(s.url, max_retries=2) as b, pytest.raises(LLMError, match="gave up after 3 attempts"):
        b.chat(ChatRequest(MSG))
    assert len(s.calls) == 3


def test_retries_count_requests_not_scoring_attempts(stub_server):
    # a scoring call is three requests (template, tokenize, completion); each fails once, then works:
    # with max_retries=1 every request gets its own retry, so the call succeeds with 6 requests
    failed = set()

    def script(n, path, body):
        if path not in failed:
            failed.add(path)
            return 500, {"error": "flaky"}, {}
        if path == "/apply-template":
            return 200, {"prompt": "<|user|>hi<|assistant|>"}, {}
        if path == "/tokenize":
            return 200, {"tokens": [42]}, {}
        top = {"id": 42, "token": "yes", "logprob": -0.25}
        return 200, {"completion_probabilities": [{**top, "top_logprobs": [top]}]}, {}

    s = stub_server(script)
    with _backend(s.url, max_retries=1) as b:
        assert b.token_logprobs(MSG, ("yes",)) == {"yes": -0.25}
    assert [path for path, _, _ in s.calls] == ["/apply-template"] * 2 + ["/tokenize"] * 2 + ["/completion"] * 2
    assert b.stats["retries"] == 3 and b.stats["failures"] == 0


def test_retry_after_header_is_honoured(stub_server, payload):
    s = stub_server(lambda n, path, body: (429, {}, {"Retry-After": "1"}) if n == 0 else (200, payload("ok"), {}))
    with _backend(s.url, backoff_s=0.0) as b:
        t0 = time.perf_counter()
        assert b.chat(ChatRequest(MSG)).text == "ok"
        assert time.perf_counter() - t0 >= 1.0


def test_connection_refused_is_transient(stub_server, payload):
    dead = stub_server(lambda n, path, body: (200, payload("never"), {}))
    dead_url = dead.url
    dead.close()
    alive = stub_server(lambda n, path, body: (200, payload("alive"), {}))
    # round-robin: the first attempt hits the dead server, the retry the live one
    with _backend([dead_url, alive.url]) as b:
        assert b.chat(ChatRequest(MSG)).text == "alive"
    assert b.stats["retries"] == 1 and len(alive.calls) == 1


def test_round_robin_spreads_requests(stub_server, payload):
    a = stub_server(lambda n, path, body: (200, payload("a"), {}))
    c = stub_server(lambda n, path, body: (200, payload("c"), {}))
    with _backend(f"{a.url}, {c.url}") as b:
        texts = [b.chat(ChatRequest(MSG)).text for _ in range(4)]
    assert texts == ["a", "c", "a", "c"]


def test_request_body_carries_options_schema_and_grammar(stub_server, payload):
    s = stub_server(lambda n, path, body: (200, payload("{}"), {}))
    schema = {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}}
    with _backend(s.url, extra_body={"top_k": 1}) as b:
        b.chat(ChatRequest(MSG, max_tokens=7, temperature=0.3, seed=5, stop=("\n",), json_schema=schema))
        b.chat(ChatRequest(MSG, grammar='root ::= "[" [0-9] "]"'))
    body0, body1 = s.calls[0][1], s.calls[1][1]
    assert body0 == {"model": "stub-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7,
                     "temperature": 0.3, "seed": 5, "stop": ["\n"], "top_k": 1,
                     "response_format": {"type": "json_schema",
                                         "json_schema": {"name": "output", "schema": schema, "strict": True}}}
    assert body1["grammar"] == 'root ::= "[" [0-9] "]"' and "response_format" not in body1


def test_grammar_field_is_configurable(stub_server, payload):
    s = stub_server(lambda n, path, body: (200, payload("x"), {}))
    with _backend(s.url, grammar_field="guided_grammar") as b:
        b.chat(ChatRequest(MSG, grammar="root ::= x"))
    assert s.calls[0][1]["guided_grammar"] == "root ::= x" and "grammar" not in s.calls[0][1]


def test_grammar_and_schema_together_rejected(stub_server):
    s = stub_server(lambda n, path, body: (200, {}, {}))
    with _backend(s.url) as b, pytest.raises(ConfigError, match="grammar or a json_schema"):
        b.chat(ChatRequest(MSG, grammar="root ::= x", json_schema={"type": "string"}))
    assert s.calls == []


def test_api_key_comes_from_env_only(stub_server, payload, monkeypatch):
    s = stub_server(lambda n, path, body: (200, payload("x"), {}))
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-123")
    with _backend(s.url, api_key_env="MY_LLM_KEY") as b:
        b.chat(ChatRequest(MSG))
    assert s.calls[0][2]["Authorization"] == "Bearer sk-test-123"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with _backend(s.url) as b:
        b.chat(ChatRequest(MSG))
    assert "Authorization" not in s.calls[1][2]
    with pytest.raises(ConfigError, match=r"environment only: set \$OPENAI_API_KEY"):
        _backend(s.url, api_key="sk-inline")


def test_chat_many_preserves_order_under_concurrency(stub_server, payload):
    # later requests answer faster, so completion order is the reverse of request order
    def script(n, path, body):
        i = int(body["messages"][0]["content"])
        time.sleep(0.05 * (6 - i))
        return 200, payload(f"answer {i}"), {}

    s = stub_server(script)
    seen = []
    with _backend(s.url, concurrency=6) as b:
        out = b.chat_many([ChatRequest(({"role": "user", "content": str(i)},)) for i in range(6)],
                          on_result=lambda i, r: seen.append(i))
    assert [r.text for r in out] == [f"answer {i}" for i in range(6)]
    assert sorted(seen) == list(range(6)) and seen != list(range(6))  # reported as they completed


def test_chat_many_finishes_the_rest_before_raising(stub_server, payload):
    def script(n, path, body):
        i = int(body["messages"][0]["content"])
        return (400, {"error": "no"}, {}) if i == 1 else (200, payload(str(i)), {})

    s = stub_server(script)
    done = []
    with _backend(s.url, concurrency=2) as b, pytest.raises(LLMError, match="HTTP 400"):
        b.chat_many([ChatRequest(({"role": "user", "content": str(i)},)) for i in range(4)],
                    on_result=lambda i, r: done.append(i))
    assert sorted(done) == [0, 2, 3]


def test_timeout_is_retried(stub_server, payload):
    def script(n, path, body):
        if n == 0:
            time.sleep(1.0)  # longer than timeout_s
        return 200, payload("late but fine"), {}

    s = stub_server(script)
    with _backend(s.url, timeout_s=0.3) as b:
        assert b.chat(ChatRequest(MSG)).text == "late but fine"
    assert b.stats["retries"] == 1 and len(s.calls) == 2


def test_bad_options_rejected():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['concurency'\] for LLM backend 'openai'; "
                                          r"valid: api_key_env, backoff_s, base_url, concurrency"):
        get_backend("openai", base_url="http://127.0.0.1:1/v1", concurency=2)
    with pytest.raises(ConfigError, match="concurrency"):
        get_backend("openai", base_url="http://127.0.0.1:1/v1", concurrency=0)
    with pytest.raises(ConfigError, match="http:// or https://"):
        get_backend("openai", base_url="localhost:8080")


def test_scoring_on_a_server_without_llamacpp_endpoints(stub_server):
    def script(n, path, body):
        if path == "/v1/chat/completions":
            first = {"token": "Yes", "logprob": -0.2,
                     "top_logprobs": [{"token": "Yes", "logprob": -0.2}, {"token": "No", "logprob": -1.8}]}
            return 200, {"choices": [{"message": {"content": "Yes"}, "logprobs": {"content": [first]}}]}, {}
        return 404, {"error": "not found"}, {}

    s = stub_server(script)
    with _backend(s.url) as b:
        lp = b.token_logprobs([{"role": "user", "content": "q"}], ("Yes", "No", "Maybe"))
        assert lp == {"Yes": -0.2, "No": -1.8, "Maybe": float("-inf")}
        with pytest.raises(ConfigError, match="cannot score continuations"):
            b.logprob([{"role": "user", "content": "q"}], "an answer")


def test_model_is_named_by_the_server_when_omitted(smol_server, stub_server, payload):
    """Judgments recorded "model": "openai" when --model was omitted; the server's GET /models names it."""
    with get_backend("openai", base_url=smol_server.base_url + "/v1") as b:
        assert "smollm2" in b.model.lower()
    s = stub_server(lambda n, path, body: (200, payload("ok"), {}))  # no GET /models: left unnamed, still works
    with get_backend("openai", base_url=s.url, max_retries=0) as b:
        assert b.model == "" and b.chat(ChatRequest(MSG)).text == "ok"


def test_scorings_spread_over_servers_one_at_a_time_each(stub_server):
    """Scoring with several servers (the llamacpp backend's n_servers): each /completion goes alone to
    its server, and a query's scorings run on all servers at once (the least busy one is picked)."""
    import threading

    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    overlap = []
    lock = threading.Lock()

    def llamacpp(name):
        def script(n, path, body):
            if path.endswith("/apply-template"):
                return 200, {"prompt": "P"}, {}
            if path.endswith("/tokenize"):
                return 200, {"tokens": [1 if body["content"] == "yes" else 2]}, {}
            with lock:
                active[name] = active.get(name, 0) + 1
                peak[name] = max(peak.get(name, 0), active[name])
                overlap.append(sum(active.values()))
            time.sleep(0.05)
            with lock:
                active[name] -= 1
            top = [{"id": 1, "logprob": -0.1}, {"id": 2, "logprob": -2.0}]
            return 200, {"completion_probabilities": [{"id": 1, "logprob": -0.1, "top_logprobs": top}]}, {}
        return script

    a, c = stub_server(llamacpp("a")), stub_server(llamacpp("c"))
    with _backend([a.url + "/v1", c.url + "/v1"], concurrency=4) as b:
        out = b.token_logprobs_many([MSG] * 6, ("yes", "no"))
    assert out == [{"yes": -0.1, "no": -2.0}] * 6
    assert peak == {"a": 1, "c": 1}  # one scoring request at a time per server
    assert max(overlap) == 2  # both servers worked at once

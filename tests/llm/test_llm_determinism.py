"""Scoring on a real llama.cpp server is a function of the inputs, not of the server's prompt cache.

Issue 12, defect 2: with ``cache_prompt`` on, a passage scored on a freshly started server and again on
the same (now warm) server got different log-probabilities (the shared prefix had been evaluated in
other batch splits); and two scoring requests decoded together in one batch (two slots, concurrency 2)
got other numbers than each alone. Scoring requests now bypass the cache and run one at a time per
server; the numbers must be identical, in any order.
"""

from __future__ import annotations


def _items(mirror):
    from utilabel.data.registry import load_dataset

    ds = load_dataset("scifact")
    docs = list(ds.corpus.values())[:5]
    q = "Does vitamin D supplementation reduce the risk of fractures?"
    return [[{"role": "user", "content": f"Question: {q}\nPassage: {d.text[:600]}\n"
                                         "Does the passage help answer the question? Answer yes or no."}] for d in docs]


def test_fresh_and_warm_server_score_alike(start_smol_server, mirror):
    from utilabel.llm import get_backend

    items = _items(mirror)
    server = start_smol_server(n_ctx=1024, n_parallel=2, n_threads=1)
    try:
        backend = get_backend("openai", base_url=server.base_url + "/v1", model="smollm2-135m",
                              concurrency=2)  # two slots decode together
        with backend:
            fresh = backend.token_logprobs_many(items, ("yes", "no"))
            fresh_lp = backend.logprob(items[0], "Yes, it does.")
            warm = backend.token_logprobs_many(items, ("yes", "no"))
            warm_rev = backend.token_logprobs_many(items[::-1], ("yes", "no"))[::-1]
            warm_lp = backend.logprob(items[0], "Yes, it does.")
    finally:
        server.stop()
    assert all(-30 < v < 0 for d in fresh for v in d.values())  # real log-probabilities
    assert warm == fresh  # exact: the same computation, whatever ran before
    assert warm_rev == fresh
    assert warm_lp == fresh_lp


def test_two_servers_score_like_one_request_at_a_time(mirror):
    """The default on a 2-core machine: two single-thread servers, a query's passages scored on both at
    once (issue 21). Every number equals the one-server, one-request-at-a-time number, bit for bit."""
    import pytest

    pytest.importorskip("xllamacpp")
    from utilabel.llm import get_backend
    from utilabel.llm.models import ModelNotInstalledError

    items = _items(mirror)
    results = []
    for n_servers, concurrency in ((1, 1), (2, 4)):
        try:
            backend = get_backend("llamacpp", model="smollm2-135m", n_servers=n_servers, n_ctx=1024,
                                  n_threads=1, concurrency=concurrency)
        except ModelNotInstalledError as exc:
            pytest.skip(str(exc))
        with backend:
            assert len(backend.servers) == n_servers and len(backend.base_urls) == n_servers
            backend.stats.clear()
            scores = backend.token_logprobs_many(items, ("yes", "no"))
            lps = backend.logprob_many([(m, "Yes, it does.") for m in items[:3]])
            results.append((scores, lps))
            if n_servers == 2:  # the scorings went to both servers: each answered /completion requests
                import httpx

                for server in backend.servers:
                    slots = httpx.get(server.base_url + "/slots", timeout=10).json()
                    assert any(slot.get("id_task") is not None for slot in slots)
    assert results[1] == results[0]

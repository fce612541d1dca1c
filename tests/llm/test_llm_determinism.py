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

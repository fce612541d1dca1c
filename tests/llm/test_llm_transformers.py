"""``transformers`` backend on SmolLM2-135M (GGUF dequantised in-process). Slow: loading takes ~40 s here.

Checks: the one-forward-pass continuation log-prob equals a naive token-by-token reference computed
with separate forward passes, agrees with the llama.cpp server's number for the same GGUF (within the
gap llama.cpp's 8-bit activation quantisation leaves), and generation works.
"""

from __future__ import annotations

import math

import pytest

from utilabel.errors import ConfigError
from utilabel.llm import ChatRequest, get_backend

pytestmark = pytest.mark.slow

Q = [{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}]
CONTS = ["Yes", "Yes, Paris is the capital of France.", "No."]


@pytest.fixture(scope="module")
def hf():
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    backend = get_backend("transformers", model="smollm2-135m", dtype="float32")
    yield backend
    backend.close()


def test_logprob_matches_token_by_token_reference(hf):
    import torch

    for cont in CONTS:
        prompt = hf._prompt_ids(Q)
        ids = hf._text_ids(cont)
        ref = 0.0
        for j, tok in enumerate(ids):  # one forward pass per token, prefix only
            with torch.inference_mode():
                logits = hf.hf_model(torch.tensor([prompt + ids[:j]])).logits[0, -1].float()
            ref += float(torch.log_softmax(logits, -1)[tok])
        assert hf.logprob(Q, cont) == pytest.approx(ref, abs=1e-3)


def test_first_token_and_chain_rule(hf):
    lp = hf.token_logprobs(Q, ("Yes", "No"))
    assert all(math.isfinite(v) and v < 0 for v in lp.values())
    assert math.exp(lp["Yes"]) + math.exp(lp["No"]) < 1.0
    assert hf.logprob(Q, "Yes") == pytest.approx(lp["Yes"], abs=1e-5)
    assert hf.logprob(Q, "") == 0.0


def test_agrees_with_llamacpp_on_the_same_gguf(hf, smol):
    for cont in CONTS:
        # measured gaps 0.03–0.14 nats (llama.cpp quantises activations to 8 bits for its matmuls)
        assert hf.logprob(Q, cont) == pytest.approx(smol.logprob(Q, cont), abs=0.35)


def test_chat_generates_and_rejects_grammars(hf):
    r = hf.chat(ChatRequest(tuple(Q), max_tokens=6))
    assert r.text and r.prompt_tokens > 10 and 1 <= r.completion_tokens <= 6 and r.model == "smollm2-135m"
    with pytest.raises(ConfigError, match="cannot constrain output"):
        hf.chat(ChatRequest(tuple(Q), grammar='root ::= "yes"'))


def test_batched_scoring_equals_one_at_a_time(hf):
    """Right-padded batches of prompts of different lengths give each prompt's unpadded numbers."""
    msgs = [[{"role": "user", "content": f"Passage: {'word ' * n}\n\nIs this passage long? Answer Yes or No."}]
            for n in (1, 40, 7, 90)]
    hf.batch_tokens = 250  # two batches: the three shorter prompts padded together, then the longest
    try:
        many = hf.token_logprobs_many(msgs, ("Yes", "No"))
        lps = hf.logprob_many([(m, "Yes, it is.") for m in msgs])
    finally:
        hf.batch_tokens = 4096
    for m, got, lp in zip(msgs, many, lps):
        one = hf.token_logprobs_many([m], ("Yes", "No"))[0]
        assert got == pytest.approx(one, abs=1e-4)
        assert lp == pytest.approx(hf.logprob_many([(m, "Yes, it is.")])[0], abs=1e-4)

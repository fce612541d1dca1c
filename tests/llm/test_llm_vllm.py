"""``vllm`` backend code path with a stub ``vllm`` module injected into sys.modules (no GPU here).

The stub records what the backend hands to vLLM and returns vLLM-shaped outputs; the checks are on
the mapping (sampling params, structured output, batching, order) and on the log-prob arithmetic over
``prompt_logprobs``. Nothing here measures model quality.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field

import pytest

from utilabel.errors import ConfigError, MissingExtraError
from utilabel.llm import ChatRequest, get_backend


@dataclass
class Logprob:
    logprob: float


@dataclass
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    seed: int | None = None
    stop: list = field(default_factory=list)
    prompt_logprobs: int | None = None
    structured_outputs: object = None


@dataclass
class StructuredOutputsParams:
    json: dict | None = None
    grammar: str | None = None


class Tokenizer:
    """Characters are tokens (id = code point); the template is 'U:<content>|A:'."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        assert add_generation_prompt and not tokenize
        return "".join(f"U:{m['content']}|" for m in messages) + "A:"

    def encode(self, text, add_special_tokens):
        assert not add_special_tokens
        return [ord(c) for c in text]


def _token_lp(token: int) -> float:
    """The stub model's log-prob of any token: -(token mod 7 + 1) / 10."""
    return -((token % 7) + 1) / 10


class LLM:
    instances: list = []

    def __init__(self, model, **kwargs):
        self.model, self.kwargs, self.calls = model, kwargs, []
        LLM.instances.append(self)

    def get_tokenizer(self):
        return Tokenizer()

    def chat(self, conversations, params, use_tqdm):
        self.calls.append(("chat", conversations, params))
        outs = []
        for conv, p in zip(conversations, params):
            text = f"echo:{conv[-1]['content']}"[: p.max_tokens]
            outs.append(types.SimpleNamespace(
                prompt_token_ids=list(range(len(conv[-1]["content"]) + 4)),
                outputs=[types.SimpleNamespace(text=text, token_ids=list(text), finish_reason="stop")]))
        return outs

    def generate(self, prompts, params, use_tqdm):
        self.calls.append(("generate", prompts, params))
        assert params.prompt_logprobs == 0 and params.max_tokens == 1
        return [types.SimpleNamespace(prompt_logprobs=[None] + [{t: Logprob(_token_lp(t))} for t in
                                                                p["prompt_token_ids"][1:]]) for p in prompts]


@pytest.fixture()
def stub_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = LLM, SamplingParams
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = StructuredOutputsParams
    mod.sampling_params = sp
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    LLM.instances.clear()
    return mod


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm → ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'utilabel\[vllm\]'"):
        get_backend("vllm", model="Qwen/Qwen2.5-7B-Instruct")


def test_engine_options_and_model_passthrough(stub_vllm):
    b = get_backend("vllm", model="Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2, gpu_memory_utilization=0.8)
    llm = LLM.instances[-1]
    assert llm.model == "Qwen/Qwen2.5-7B-Instruct" and b.model == "Qwen/Qwen2.5-7B-Instruct"
    assert llm.kwargs == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.8}


def test_registered_name_resolves_to_local_gguf(stub_vllm):
    try:
        b = get_backend("vllm", model="smollm2-135m")
    except Exception as exc:  # noqa: BLE001 - model package missing
        pytest.skip(str(exc))
    assert LLM.instances[-1].model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and b.model == "smollm2-135m"


def test_chat_many_is_one_batch_with_per_request_params(stub_vllm):
    b = get_backend("vllm", model="m")
    schema = {"type": "object"}
    reqs = [ChatRequest(({"role": "user", "content": "one"},), max_tokens=50, seed=3, stop=("\n",)),
            ChatRequest(({"role": "user", "content": "two"},), max_tokens=6, json_schema=schema),
            ChatRequest(({"role": "user", "content": "three"},), grammar='root ::= "x"')]
    seen = []
    out = b.chat_many(reqs, on_result=lambda i, r: seen.append(i))
    (call,) = LLM.instances[-1].calls
    kind, convs, params = call
    assert kind == "chat" and [c[0]["content"] for c in convs] == ["one", "two", "three"]
    assert (params[0].max_tokens, params[0].seed, params[0].stop, params[0].temperature) == (50, 3, ["\n"], 0.0)
    assert params[0].structured_outputs is None
    assert params[1].structured_outputs == StructuredOutputsParams(json=schema)
    assert params[2].structured_outputs == StructuredOutputsParams(grammar='root ::= "x"')
    assert [r.text for r in out] == ["echo:one", "echo:t", "echo:three"]   # "echo:two" cut at 6 tokens
    assert out[0].prompt_tokens == 3 + 4 and out[0].completion_tokens == len("echo:one")
    assert seen == [0, 1, 2]


def test_old_vllm_uses_guided_decoding(stub_vllm):
    @dataclass
    class GuidedDecodingParams:
        json: dict | None = None
        grammar: str | None = None

    del stub_vllm.sampling_params.StructuredOutputsParams
    stub_vllm.sampling_params.GuidedDecodingParams = GuidedDecodingParams

    @dataclass
    class OldSamplingParams(SamplingParams):
        guided_decoding: object = None

    stub_vllm.SamplingParams = OldSamplingParams
    b = get_backend("vllm", model="m")
    b.chat(ChatRequest(({"role": "user", "content": "x"},), grammar="root ::= y"))
    params = LLM.instances[-1].calls[0][2][0]
    assert params.guided_decoding == GuidedDecodingParams(grammar="root ::= y")
    with pytest.raises(ConfigError, match="not both"):
        b.chat(ChatRequest(({"role": "user", "content": "x"},), grammar="g", json_schema={}))


def test_logprob_sums_prompt_logprobs_of_the_continuation(stub_vllm):
    b = get_backend("vllm", model="m")
    msgs = [{"role": "user", "content": "q"}]
    # prompt "U:q|A:" has 6 tokens; continuation "ab" = tokens 97, 98 at positions 6 and 7
    # stub log-probs: 97 % 7 = 6 → -0.7 ; 98 % 7 = 0 → -0.1 ; total -0.8
    assert b.logprob(msgs, "ab") == pytest.approx(-0.8)
    out = b.logprob_many([(msgs, "ab"), (msgs, ""), (msgs, "b")])
    assert out == pytest.approx([-0.8, 0.0, -0.1])
    _, prompts, _ = LLM.instances[-1].calls[-1]
    assert len(prompts) == 2  # the empty continuation is not sent


def test_token_logprobs_reads_the_first_generated_position(stub_vllm):
    b = get_backend("vllm", model="m")
    lp = b.token_logprobs([{"role": "user", "content": "q"}], ("yes", "no"))
    # first tokens 'y' (121 % 7 = 2 → -0.3) and 'n' (110 % 7 = 5 → -0.6)
    assert lp == pytest.approx({"yes": -0.3, "no": -0.6})
    many = b.token_logprobs_many([[{"role": "user", "content": "q"}], [{"role": "user", "content": "longer"}]])
    assert many == [pytest.approx({"yes": -0.3, "no": -0.6})] * 2
    assert all(math.isfinite(v) for d in many for v in d.values())

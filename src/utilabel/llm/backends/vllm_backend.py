"""``vllm`` backend: offline batch generation with ``vllm.LLM`` on a GPU (optional extra ``vllm``).

For large annotation runs on a GPU machine: ``chat_many`` hands the whole batch to one
``LLM.chat`` call (vLLM schedules it with continuous batching and prefix caching), each request
with its own ``SamplingParams``. Guided output maps ``ChatRequest.json_schema`` / ``grammar`` to
vLLM's structured-output parameters (``StructuredOutputsParams`` in new releases,
``GuidedDecodingParams`` in older ones).

Scoring is exact and batched: ``logprob`` appends the continuation's tokens to the chat-templated
prompt and reads vLLM's ``prompt_logprobs`` (the log-probability of each given prompt token);
``token_logprobs`` does the same with each candidate's first token.

``model``: a registered name or .gguf path (resolved by :mod:`utilabel.llm.models`; vLLM's GGUF support
wants ``tokenizer=`` pointing at the original HF tokenizer) or anything ``vllm.LLM`` accepts (a HF
repo id or local folder). Other options (``tensor_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``tokenizer``, ``dtype``, ...) are passed to ``vllm.LLM``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConfigError, MissingExtraError
from ..base import ChatRequest, ChatResponse, LLMBackend, register_backend
from ..models import MODELS, resolve_model


def _structured(vllm_sampling, request: ChatRequest) -> dict[str, Any]:
    """SamplingParams keyword(s) for the request's grammar / schema, for old and new vLLM."""
    if request.grammar is None and request.json_schema is None:
        return {}
    if request.grammar is not None and request.json_schema is not None:
        raise ConfigError("a request can carry a grammar or a json_schema, not both")
    spec = {"json": request.json_schema} if request.json_schema is not None else {"grammar": request.grammar}
    if hasattr(vllm_sampling, "StructuredOutputsParams"):
        return {"structured_outputs": vllm_sampling.StructuredOutputsParams(**spec)}
    return {"guided_decoding": vllm_sampling.GuidedDecodingParams(**spec)}


@register_backend
class VLLMBackend(LLMBackend):
    name = "vllm"
    supports_grammar = True
    supports_logprob = True

    def __init__(self, model: str | os.PathLike | None = None, **options: Any):
        try:
            import vllm
            import vllm.sampling_params as vllm_sampling
        except ImportError as exc:
            raise MissingExtraError("vllm", "vllm") from exc
        key = str(model) if model is not None else None
        if key is None or key in MODELS or key.lower().endswith(".gguf"):
            target = str(resolve_model(key))
            name = key if key in MODELS else os.path.basename(target)
        else:
            target = name = key
        engine_keys = {k: options.pop(k) for k in list(options) if k not in ("max_retries", "backoff_s")}
        super().__init__(model=name, **options)
        self._vllm, self._sampling = vllm, vllm_sampling
        self.llm = vllm.LLM(model=target, **engine_keys)
        self.tokenizer = self.llm.get_tokenizer()

    def _params(self, request: ChatRequest):
        kw: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        if request.seed is not None:
            kw["seed"] = request.seed
        if request.stop:
            kw["stop"] = list(request.stop)
        kw.update(_structured(self._sampling, request))
        return self._vllm.SamplingParams(**kw)

    def _response(self, out, latency: float) -> ChatResponse:
        comp = out.outputs[0]
        return ChatResponse(text=comp.text, prompt_tokens=len(out.prompt_token_ids or ()),
                            completion_tokens=len(comp.token_ids or ()), latency_s=latency, model=self.model,
                            finish_reason=comp.finish_reason or "")

    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        return self.chat_many([request])[0]

    def chat(self, request: ChatRequest) -> ChatResponse:
        return self._chat_one(request)

    def chat_many(self, requests: Sequence[ChatRequest],
                  on_result: Callable[[int, ChatResponse], None] | None = None) -> list[ChatResponse]:
        """One offline batch; ``on_result`` is called for every item after the batch returns."""
        if not requests:
            return []
        t0 = time.perf_counter()
        outs = self.llm.chat([[dict(m) for m in r.messages] for r in requests],
                             [self._params(r) for r in requests], use_tqdm=False)
        latency = (time.perf_counter() - t0) / len(requests)
        results = [self._response(o, latency) for o in outs]
        if on_result is not None:
            for i, r in enumerate(results):
                on_result(i, r)
        return results

    # ------------------------------------------------------------------ scoring
    def _prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                  tokenize=False)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _prompt_logprobs(self, sequences: list[list[int]]) -> list[list]:
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids in sequences], params, use_tqdm=False)
        return [o.prompt_logprobs for o in outs]

    @staticmethod
    def _lp(entry: dict, token: int) -> float:
        value = entry[token]
        return float(getattr(value, "logprob", value))

    def logprob_many(self, items: Sequence[tuple[Sequence[dict[str, str]], str]]) -> list[float]:
        seqs, spans = [], []
        for messages, continuation in items:
            prompt, cont = self._prompt_ids(messages), self._text_ids(continuation)
            seqs.append(prompt + cont)
            spans.append((len(prompt), cont))
        scored = self._prompt_logprobs([s for s, (_, c) in zip(seqs, spans) if c]) if seqs else []
        out, k = [], 0
        for (start, cont) in spans:
            if not cont:
                out.append(0.0)
                continue
            plp = scored[k]
            k += 1
            out.append(sum(self._lp(plp[start + j], tok) for j, tok in enumerate(cont)))
        return out

    def _logprob_one(self, messages, continuation) -> float:
        return self.logprob_many([(messages, continuation)])[0]

    def token_logprobs_many(self, messages_list: Sequence[Sequence[dict[str, str]]],
                            candidates: Sequence[str] = ("yes", "no")) -> list[dict[str, float]]:
        if not candidates:
            raise ConfigError("token_logprobs needs at least one candidate")
        firsts = []
        for c in candidates:
            ids = self._text_ids(c)
            if not ids:
                raise ConfigError(f"candidate {c!r} has no tokens")
            firsts.append(ids[0])
        prompts = [self._prompt_ids(m) for m in messages_list]
        scored = self._prompt_logprobs([p + [f] for p in prompts for f in firsts])
        out = []
        for i, p in enumerate(prompts):
            row = scored[i * len(firsts):(i + 1) * len(firsts)]
            out.append({c: self._lp(plp[len(p)], f) for c, f, plp in zip(candidates, firsts, row)})
        return out

    def _token_logprobs_one(self, messages, candidates) -> dict[str, float]:
        return self.token_logprobs_many([messages], candidates)[0]

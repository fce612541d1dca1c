"""``transformers`` backend: a GGUF model loaded in-process with Hugging Face transformers.

The same local files as the ``llamacpp`` backend (a registered name or a .gguf path, see
:mod:`utilabel.llm.models`) are read by transformers' GGUF loader and, by default, dequantised into a
dense bf16 model (``GgufConfig(dequantize=True)``; needs ``accelerate`` and ``gguf``: the ``hf-llm``
extra). On this CPU that processes prompts 2–3× faster than llama.cpp (the bf16 matmuls use the
CPU's matrix units) but generates at about half the speed and loads slowly (≈ 80 s for the 1.5B
model), so it suits scoring — :meth:`logprob` and :meth:`token_logprobs` are one forward pass each —
better than generation.

* ``logprob(messages, continuation)``: the chat template is rendered as text with the assistant turn
  opened (``add_generation_prompt=True``), tokenized without extra special tokens, the continuation
  tokenized on its own and appended; one forward pass gives ``log_softmax`` at every continuation
  position, summed in float32. Exact, and the same definition the llama.cpp route computes.
* ``chat``: ``generate`` (greedy at temperature 0). Grammar / JSON-schema constrained output is not
  supported here (``supports_grammar = False``); use ``llamacpp`` for that.

Options: ``model``, ``dtype`` (``bfloat16`` | ``float32``), ``dequantize`` (False keeps GGUF blocks
with transformers' packed kernels), ``n_threads`` (torch intra-op threads), ``batch_tokens`` (padded tokens per
batched forward pass of ``logprob_many`` / ``token_logprobs_many``; prompts are sorted by length and
right-padded, which leaves every prompt's logits as in an unpadded pass).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from ...errors import ConfigError, MissingExtraError
from ..base import ChatRequest, ChatResponse, LLMBackend, register_backend
from ..models import MODELS, resolve_model

log = logging.getLogger(__name__)


@register_backend
class TransformersBackend(LLMBackend):
    name = "transformers"
    supports_grammar = False
    supports_logprob = True

    def __init__(self, model: str | os.PathLike | None = None, dtype: str = "bfloat16", dequantize: bool = True,
                 n_threads: int | None = None, batch_tokens: int = 4096, **options: Any):
        if dtype not in ("bfloat16", "float32"):
            raise ConfigError(f"dtype must be 'bfloat16' or 'float32', got {dtype!r}")
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be ≥ 1, got {n_threads}")
        if batch_tokens < 1:
            raise ConfigError(f"batch_tokens must be ≥ 1, got {batch_tokens}")
        self.batch_tokens = batch_tokens
        if options:
            raise ConfigError(f"unknown option(s) {sorted(options)} for LLM backend 'transformers'; "
                              "valid: batch_tokens, dequantize, dtype, model, n_threads")
        path = resolve_model(model)
        name = str(model) if model is not None and str(model) in MODELS else path.name
        super().__init__(model=name, **options)
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
        except ImportError as exc:
            raise MissingExtraError("transformers", "hf-llm") from exc
        for dep in ("gguf", "accelerate"):
            try:
                __import__(dep)
            except ImportError as exc:
                raise MissingExtraError(dep, "hf-llm") from exc
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        self._torch = torch
        t0 = time.perf_counter()
        transformers.logging.set_verbosity_error()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.hf_model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype),
            quantization_config=GgufConfig(dequantize=dequantize))
        self.hf_model.eval()
        self.load_s = time.perf_counter() - t0
        log.info("transformers loaded %s in %.1fs", path.name, self.load_s)

    # ------------------------------------------------------------------ tokens
    def _prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                  tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _forward(self, seqs: list[list[int]]):
        """Logits of a right-padded batch (causal attention: padding after a sequence never changes its
        logits, and positions stay 0, 1, … as in an unpadded pass)."""
        torch = self._torch
        width = max(len(x) for x in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in seqs])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs])
        with torch.inference_mode():
            return self.hf_model(input_ids=ids, attention_mask=mask).logits

    def _batches(self, seqs: list[list[int]]):
        """``(indices, logits)`` over batches of similar length (sorted, at most ``batch_tokens``
        padded tokens per batch), so padding stays small."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        batch: list[int] = []
        for i in order:
            if batch and len(seqs[i]) * (len(batch) + 1) > self.batch_tokens:
                yield batch, self._forward([seqs[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            yield batch, self._forward([seqs[j] for j in batch])

    # ------------------------------------------------------------------ scoring
    def logprob_many(self, items: Sequence[tuple[Sequence[dict[str, str]], str]]) -> list[float]:
        """Batched :meth:`logprob`: per item, the continuation's log-probabilities summed in float64."""
        torch = self._torch
        prompts = [self._prompt_ids(m) for m, _ in items]
        conts = [self._text_ids(c) for _, c in items]
        out = [0.0] * len(items)
        seqs = [p + c for p, c in zip(prompts, conts, strict=True)]
        for batch, logits in self._batches(seqs):
            for row, i in enumerate(batch):
                if not conts[i]:
                    continue
                start = len(prompts[i])  # position t predicts token t+1
                lp = torch.log_softmax(logits[row, start - 1: start - 1 + len(conts[i])].float(), dim=-1)
                out[i] = float(lp.gather(1, torch.tensor(conts[i]).unsqueeze(1)).double().sum())
        return out

    def _logprob_one(self, messages: Sequence[dict[str, str]], continuation: str) -> float:
        return self.logprob_many([(messages, continuation)])[0]

    def token_logprobs_many(self, messages_list: Sequence[Sequence[dict[str, str]]],
                            candidates: Sequence[str] = ("yes", "no")) -> list[dict[str, float]]:
        """Batched :meth:`token_logprobs`: one padded forward pass per batch of prompts."""
        if not candidates:
            raise ConfigError("token_logprobs needs at least one candidate")
        firsts = {}
        for c in candidates:
            ids = self._text_ids(c)
            if not ids:
                raise ConfigError(f"candidate {c!r} has no tokens")
            firsts[c] = ids[0]
        seqs = [self._prompt_ids(m) for m in messages_list]
        out: list[dict[str, float]] = [{} for _ in seqs]
        for batch, logits in self._batches(seqs):
            for row, i in enumerate(batch):
                lp = self._torch.log_softmax(logits[row, len(seqs[i]) - 1].float(), dim=-1)
                out[i] = {c: float(lp[t]) for c, t in firsts.items()}
        return out

    def _token_logprobs_one(self, messages: Sequence[dict[str, str]], candidates: Sequence[str]) -> dict[str, float]:
        return self.token_logprobs_many([messages], candidates)[0]

    # ------------------------------------------------------------------ chat
    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        if request.grammar is not None or request.json_schema is not None:
            raise ConfigError("the transformers backend cannot constrain output with a grammar or JSON schema; "
                              "use the 'llamacpp' or 'openai' backend")
        torch = self._torch
        prompt = self._prompt_ids(request.messages)
        gen: dict[str, Any] = {"max_new_tokens": request.max_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        if request.temperature > 0:
            gen.update(do_sample=True, temperature=request.temperature)
            if request.seed is not None:
                torch.manual_seed(request.seed)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if request.stop:
            gen.update(stop_strings=list(request.stop), tokenizer=self.tokenizer)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.hf_model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                                                                           dtype=torch.long), **gen)
        new = out[0, len(prompt):].tolist()
        eos = self.tokenizer.eos_token_id
        finish = "stop" if (new and new[-1] == eos) or len(new) < request.max_tokens else "length"
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        for s in request.stop:  # generate stops *after* the stop string; OpenAI servers cut it off
            if s in text:
                text, finish = text[: text.index(s)], "stop"
        return ChatResponse(text=text, prompt_tokens=len(prompt), completion_tokens=len(new),
                            latency_s=time.perf_counter() - t0, model=self.model, finish_reason=finish)

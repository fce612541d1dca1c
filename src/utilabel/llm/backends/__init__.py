"""LLM backends, one module each; importing this package registers them.

Heavy dependencies (xllamacpp, transformers, vllm) are imported inside each backend's constructor so
that registering costs nothing: ``fake`` (scripted, tests), ``openai`` (any OpenAI-compatible server),
``llamacpp`` (embedded llama.cpp server), ``transformers`` (GGUF dequantised, in-process), ``vllm``.
"""

from . import fake, llamacpp, openai_compat, transformers_backend, vllm_backend  # noqa: F401

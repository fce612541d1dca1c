"""LLM backends, one module each; importing this package registers them.

Heavy dependencies (openai client, xllamacpp, transformers, vllm) are imported inside each
backend's constructor so that registering costs nothing.
"""

from . import fake  # noqa: F401

"""LLM access for annotation and RAG: backend contract (:mod:`.base`), backends by name
(:mod:`.registry`) and the backends themselves (:mod:`.backends`), local model files (:mod:`.models`) and output clean-up (:mod:`.thinking`)."""

from .base import ChatRequest, ChatResponse, LLMBackend, TransientLLMError
from .models import DEFAULT_MODEL, TEST_MODEL, resolve_model
from .registry import backend_class, backend_names, get_backend
from .thinking import strip_thinking

__all__ = ["ChatRequest", "ChatResponse", "DEFAULT_MODEL", "LLMBackend", "TEST_MODEL", "TransientLLMError",
           "backend_class", "backend_names", "get_backend", "resolve_model", "strip_thinking"]

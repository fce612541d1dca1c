"""Backends by name: :func:`get_backend` instantiates a registered :class:`~.base.LLMBackend`.

The backends register themselves (:func:`~.base.register_backend`) when their modules are imported;
this module imports them all (their heavy dependencies load only when a backend is constructed), so
the registry is complete wherever it is read.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnknownNameError
from . import backends  # noqa: F401 - importing the backends registers them
from .base import _BACKENDS, LLMBackend


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[LLMBackend]:
    """The registered backend class called ``name``; an unknown name lists the valid ones."""
    names = backend_names()
    if name not in _BACKENDS:
        raise UnknownNameError("LLM backend", name, names)
    return _BACKENDS[name]


def get_backend(name: str, **options: Any) -> LLMBackend:
    """Instantiate a backend by name (``openai``, ``llamacpp``, ``transformers``, ``vllm``, ``fake``)."""
    return backend_class(name)(**options)

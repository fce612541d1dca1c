"""What every backend declares on :class:`LLMBackend` (so callers never probe with getattr/hasattr)."""

from __future__ import annotations

from utilabel.llm.base import LLMBackend
from utilabel.llm.registry import backend_class, backend_names, get_backend


def test_every_backend_declares_concurrency_model_id_and_option_names():
    for name in backend_names():
        cls = backend_class(name)
        assert issubclass(cls, LLMBackend) and isinstance(cls.option_names(), list), name
        assert isinstance(cls.concurrency, int) and cls.concurrency >= 1, name
    assert {"concurrency", "max_retries", "timeout_s"} <= set(backend_class("openai").option_names())
    assert backend_class("llamacpp").option_names() == backend_class("openai").option_names()
    assert backend_class("fake").option_names() == backend_class("transformers").option_names() == []


def test_model_id_is_the_model_or_the_backend_name():
    assert get_backend("fake", model="m1").model_id == "m1"
    assert get_backend("fake", model="").model_id == "fake"
    assert get_backend("fake").concurrency == 1

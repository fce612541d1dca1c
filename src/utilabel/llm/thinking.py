"""Removal of reasoning traces (``<think>…</think>``) from model output, before any parsing.

Reasoning models wrap their chain of thought in ``<think>`` tags. Three shapes occur:

* closed blocks ``<think>…</think>`` anywhere → removed;
* a dangling ``…</think>`` with no opening tag (the chat template put ``<think>`` in the prompt, as
  DeepSeek-R1 and Qwen3 do) → everything up to the last closing tag is removed;
* an unterminated ``<think>…`` (the token budget ran out while thinking) → removed to the end, so the
  answer is empty and the parser counts an "empty" failure instead of parsing the reasoning.
"""

from __future__ import annotations

import re

_CLOSED = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.S | re.I)
_OPEN = re.compile(r"<think(?:ing)?>", re.I)
_CLOSE = re.compile(r"</think(?:ing)?>", re.I)


def strip_thinking(text: str) -> str:
    """``text`` without reasoning traces, stripped of surrounding whitespace."""
    # a closing tag before any opening tag: the opening one was in the prompt
    first_close, first_open = _CLOSE.search(text), _OPEN.search(text)
    if first_close and (first_open is None or first_close.start() < first_open.start()):
        text = text[first_close.end():]
    text = _CLOSED.sub("", text)
    opened = _OPEN.search(text)
    if opened:  # unterminated: the rest is reasoning, never an answer
        text = text[: opened.start()]
    return text.strip()

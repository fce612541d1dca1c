"""Pure parsers of LLM answers, with failures reported by kind (never turned into labels).

Every parser first strips thinking traces (``<think>...</think>``), then returns a
:class:`Parsed`: the value, or ``failure`` set to one of :data:`FAILURE_KINDS`:

* ``no_selection`` — no selection / ranking / answer could be found in the text;
* ``out_of_range`` — a passage number outside ``1..n``;
* ``duplicate`` — the same passage number twice;
* ``empty`` — an explicitly empty selection (``My selection:[]``) or an empty answer.

The annotator retries a failed call (another seed) and, when every attempt fails, leaves the
query (or step) without labels and counts the failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FAILURE_KINDS = ("no_selection", "out_of_range", "duplicate", "empty")

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_MARKER = re.compile(r"my\s+selection\s*[:：]?", re.I)
_BRACKET_RUN = re.compile(r"\[[\[\]\d\s,;]*\]?")
_BARE_LIST = re.compile(r"^[\s`'\"]*(\[[\[\]\d\s,;]*\])[\s.`'\"]*$")
_NONE_WORDS = re.compile(r"^\W*(none|no passages?|nothing|n/a)\b", re.I)
_ID = re.compile(r"\[\s*(\d+)\s*\]")
_ANSWER = re.compile(r"answer\s*[:：]", re.I)


def _local_strip_thinking(text: str) -> str:
    """Remove ``<think>...</think>`` blocks (an unclosed one runs to the end) and a stray ``</think>``."""
    text = _THINK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text.strip()


try:  # the LLM package owns the canonical helper; same rule otherwise
    from ..llm import strip_thinking as _llm_strip
except ImportError:  # pragma: no cover - depends on which parts are installed
    _llm_strip = None  # type: ignore[assignment]


def strip_thinking(text: str) -> str:
    """Thinking traces removed, surrounding whitespace stripped."""
    if _llm_strip is not None:
        text = _llm_strip(text)
    return _local_strip_thinking(text)


@dataclass(frozen=True)
class Parsed:
    """A parser's result: ``value`` when ``failure`` is None."""

    value: Any = None
    failure: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


def _check_ids(ids: list[int], n: int, allow_empty: bool) -> Parsed:
    if not ids:
        return Parsed(() if allow_empty else None, None if allow_empty else "empty", "empty selection")
    bad = [i for i in ids if not 1 <= i <= n]
    if bad:
        return Parsed(failure="out_of_range", detail=f"ids {bad} not in 1..{n}")
    if len(set(ids)) != len(ids):
        return Parsed(failure="duplicate", detail=f"ids {ids} repeat")
    return Parsed(tuple(ids))


def parse_selection(text: str, n: int, allow_empty: bool = False) -> Parsed:
    """Read ``My selection:[[i],[j],...]`` (lenient about spacing, ``[i, j]`` and a bare list).

    Returns the 1-based passage numbers in the order given.
    """
    text = strip_thinking(text)
    marks = list(_MARKER.finditer(text))
    if marks:
        rest = text[marks[-1].end():].strip()
        if _NONE_WORDS.match(rest):
            return _check_ids([], n, allow_empty)
        run = _BRACKET_RUN.match(rest)
        if run is not None and rest[run.end():].lstrip(" ,").startswith(("...", "…")):
            return Parsed(failure="no_selection", detail="the format template was echoed ('...')")
        if run is None:
            line = rest.split("\n", 1)[0]
            if re.fullmatch(r"[\s\d,;.]*", line) and re.search(r"\d", line):
                return _check_ids([int(x) for x in re.findall(r"\d+", line)], n, allow_empty)
            return Parsed(failure="no_selection", detail="marker without a list")
        return _check_ids([int(x) for x in re.findall(r"\d+", run.group(0))], n, allow_empty)
    bare = _BARE_LIST.match(text)
    if bare:
        return _check_ids([int(x) for x in re.findall(r"\d+", bare.group(1))], n, allow_empty)
    return Parsed(failure="no_selection", detail="no 'My selection' marker")


def parse_ranking(text: str, n: int) -> Parsed:
    """Read ``[i] > [j] > ...``: a full order of ``1..n``.

    Passages the model left out are appended in their presented order (RankGPT's rule); this is
    not a failure. Out-of-range or repeated numbers are failures.
    """
    text = strip_thinking(text)
    ids = [int(x) for x in _ID.findall(text)]
    if not ids:
        return Parsed(failure="no_selection", detail="no [i] in the answer")
    checked = _check_ids(ids, n, allow_empty=False)
    if not checked.ok:
        return checked
    order = list(ids) + [i for i in range(1, n + 1) if i not in set(ids)]
    return Parsed(tuple(order), detail=f"{n - len(ids)} appended" if len(ids) < n else "")


def parse_answer(text: str) -> Parsed:
    """A free-text answer: stripped of thinking and of a leading ``Answer:``; empty is a failure."""
    text = strip_thinking(text)
    m = _ANSWER.match(text)
    if m:
        text = text[m.end():]
    text = " ".join(text.split())
    if not text:
        return Parsed(failure="empty", detail="empty answer")
    return Parsed(text)


def parse_answer_selection(text: str, n: int, allow_empty: bool = False) -> Parsed:
    """Read ``Answer: ...`` followed by ``My selection:[[i],...]``; value is ``(answer, ids)``."""
    stripped = strip_thinking(text)
    marks = list(_MARKER.finditer(stripped))
    if not marks:
        return Parsed(failure="no_selection", detail="no 'My selection' marker")
    sel = parse_selection(stripped[marks[-1].start():], n, allow_empty)
    if not sel.ok:
        return sel
    ans = parse_answer(stripped[: marks[-1].start()])
    if not ans.ok:
        return ans
    return Parsed((ans.value, sel.value))

"""Reading and filtering generated queries: pure functions, every drop named by its reason.

:func:`parse_queries` reads one LLM reply into query texts (one per line; numbering, bullets, a
leading ``Question:``-style label and quotes removed; preamble lines ending in ``:`` skipped). The
text filters run in this order and the first that fires names the drop (:data:`DROP_REASONS`):

* ``too_short`` / ``too_long`` — fewer than ``min_words`` or more than ``max_words`` words;
* ``refers_to_passage`` — the query speaks of "the passage" / "this text" / "the abstract" (it makes no
  sense to a searcher who has not seen the passage, e.g. "The passage provides evidence that ...");
* ``copies_passage`` — the query is a verbatim span of its passage of 8+ words that is the whole
  query (the model copied a sentence instead of asking);
* ``duplicate`` — the same normalised text (lower case, word characters only) as an earlier query
  of any passage;
* ``near_duplicate`` — token Jaccard overlap ≥ ``near_duplicate`` with an earlier kept query of the
  same passage.

The retrieval filter (``round_trip``: the source passage is not in BM25's top-k for its query) and
the judge filter (``judge``: the pointwise judge's P(useful) of the source passage is below the
threshold; ``judge_failed``: no judgment could be read) need an index and a model; :mod:`.engine`
applies them after these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..annotate.parsing import Parsed, strip_thinking

DROP_REASONS = ("too_short", "too_long", "refers_to_passage", "copies_passage", "duplicate", "near_duplicate", "round_trip", "judge",
                "judge_failed")

_LEAD = re.compile(r"^\s*(?:[-*•]+|\(?\d{1,2}[.):]|#+)\s*")
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:question|claim|query|argument|counter-argument|search query)\s*\d*\s*(?:\*\*)?\s*[:：]\s*",
                    re.I)
_WORD = re.compile(r"\w+", re.UNICODE)
_REFERS = re.compile(r"\b(?:the|this|that|given|above)\s+(?:passage|text|article|abstract|paragraph|document|excerpt)s?\b",
                     re.I)


def parse_queries(text: str, count: int, label: str = "") -> Parsed:
    """Up to ``count`` query texts from a reply, in order (failure ``empty`` when there is none).

    ``label`` (the task's ``query_label``, e.g. ``Claim``) is removed from the start of a line too.
    """
    lines = []
    own = re.compile(rf"^\s*{re.escape(label)}\s*\d*\s*[:：]\s*", re.I) if label else None
    for raw in strip_thinking(text).splitlines():
        line = _LEAD.sub("", raw.strip())
        line = _LABEL.sub("", line)
        if own is not None:
            line = own.sub("", line)
        line = line.strip().strip('"“”\'`').strip()
        if not line or line.endswith(":") or not _WORD.search(line):
            continue
        lines.append(" ".join(line.split()))
        if len(lines) == count:
            break
    return Parsed(value=lines) if lines else Parsed(failure="empty", detail=text[:200])


def normalise(text: str) -> str:
    """Lower-case word characters joined by single spaces (what ``duplicate`` compares)."""
    return " ".join(_WORD.findall(text.lower()))


def tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def text_filter(queries: Sequence[str], passage: str, seen: set[str], min_words: int = 3, max_words: int = 40,
                near_duplicate: float = 0.8) -> list[str | None]:
    """The drop reason of each query of one passage (``None``: kept), in order.

    ``seen`` holds the normalised texts of every earlier kept query (all passages) and is updated;
    ``near_duplicate`` ≥ 1 switches that filter off.
    """
    out: list[str | None] = []
    kept: list[set[str]] = []
    flat_passage = normalise(passage)
    for q in queries:
        n = len(q.split())
        norm = normalise(q)
        toks = tokens(q)
        if n < min_words:
            reason: str | None = "too_short"
        elif n > max_words:
            reason = "too_long"
        elif _REFERS.search(q):
            reason = "refers_to_passage"
        elif n >= 8 and norm and norm in flat_passage:
            reason = "copies_passage"
        elif norm in seen:
            reason = "duplicate"
        elif near_duplicate < 1 and any(jaccard(toks, k) >= near_duplicate for k in kept):
            reason = "near_duplicate"
        else:
            reason = None
            seen.add(norm)
            kept.append(toks)
        out.append(reason)
    return out


def count_reasons(reasons: Iterable[str | None]) -> dict[str, int]:
    """Drops per reason (every reason listed, zeros included)."""
    out = dict.fromkeys(DROP_REASONS, 0)
    for r in reasons:
        if r is not None:
            out[r] = out.get(r, 0) + 1
    return out

"""Which passages get queries, and the user's few-shot examples.

:func:`sample_passages` picks source passages from a corpus: all of them (corpus order), or ``n``
drawn with a seed, optionally stratified by length (``stratify="length"``: the passages are cut into
``bins`` equal-count length bins and ``n`` is spread evenly over them, so short and long passages
both get queries). Passages shorter than ``min_words`` are never sources. The result is in corpus
order, so the same seed gives the same folder.

:func:`read_examples` reads ``--examples FILE``: JSONL of ``{"query": ..., "passage": ...}`` or
``{"query": ..., "doc_id": ...}`` (the passage looked up in the corpus); at most
:data:`MAX_EXAMPLES` are used (Promptagator's eight). :func:`render_examples` writes them into the
few-shot prompt.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..annotate.prompts import escape_passage
from ..data.beir import iter_jsonl
from ..errors import ConfigError, DataFormatError
from ..records import Document

MAX_EXAMPLES = 8
STRATIFY = ("none", "length")


def sample_passages(corpus: Mapping[str, Document], n: int | None = None, seed: int = 0, stratify: str = "none",
                    bins: int = 4, min_words: int = 8, exclude: Sequence[str] = ()) -> list[str]:
    """Doc ids of the source passages, in corpus order (see module docstring)."""
    if stratify not in STRATIFY:
        raise ConfigError(f"stratify must be one of {', '.join(STRATIFY)}, got {stratify!r}")
    if n is not None and n < 1:
        raise ConfigError(f"the number of passages must be ≥ 1, got {n}")
    skip = set(exclude)
    words = {d: len(doc.full_text().split()) for d, doc in corpus.items() if d not in skip}
    pool = [d for d, w in words.items() if w >= min_words]
    if not pool:
        raise ConfigError(f"no passage of {min_words}+ words to generate queries for")
    if n is None or n >= len(pool):
        return pool
    rng = random.Random(f"sample:{seed}")
    if stratify == "none":
        chosen = set(rng.sample(pool, n))
    else:
        by_len = sorted(pool, key=lambda d: (words[d], d))
        k = min(bins, n)
        strata = [by_len[i * len(by_len) // k:(i + 1) * len(by_len) // k] for i in range(k)]
        chosen = set()
        for i, stratum in enumerate(strata):
            take = n // k + (1 if i < n % k else 0)
            chosen |= set(rng.sample(stratum, min(take, len(stratum))))
    return [d for d in pool if d in chosen]


@dataclass(frozen=True)
class Example:
    """One few-shot example: the user's query and the passage it was written for."""

    query: str
    passage: str
    doc_id: str | None = None


def read_examples(path: str | Path, corpus: Mapping[str, Document], limit: int = MAX_EXAMPLES) -> list[Example]:
    """The first ``limit`` examples of a JSONL file (see module docstring); errors name file and line."""
    if not 1 <= limit <= MAX_EXAMPLES:
        raise ConfigError(f"the number of examples must be in 1..{MAX_EXAMPLES}, got {limit}")
    out: list[Example] = []
    for lineno, obj in iter_jsonl(path):
        query = obj.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DataFormatError(path, lineno, "each example needs a non-empty 'query'")
        doc_id = obj.get("doc_id")
        passage = obj.get("passage")
        if isinstance(passage, str) and passage.strip():
            out.append(Example(" ".join(query.split()), passage, None if doc_id is None else str(doc_id)))
        elif doc_id is not None:
            doc = corpus.get(str(doc_id))
            if doc is None:
                raise DataFormatError(path, lineno, f"doc_id {doc_id!r} is not in the corpus")
            out.append(Example(" ".join(query.split()), doc.full_text(), str(doc_id)))
        else:
            raise DataFormatError(path, lineno, "each example needs a 'passage' text or a corpus 'doc_id'")
        if len(out) == limit:
            break
    if not out:
        raise DataFormatError(path, None, "no examples in the file")
    return out


def render_examples(examples: Sequence[Example], query_label: str, max_words: int, sanitize: bool = True) -> str:
    """The examples as prompt text: ``Passage: ...`` then ``<query_label>: ...`` blocks."""
    return "\n\n".join(f"Passage: {escape_passage(e.passage, max_words, sanitize)}\n"
                       f"{query_label}: {escape_passage(e.query, None, sanitize)}" for e in examples)

"""Retrieval measures as values parsed from strings: ``nDCG@10``, ``RR@10``, ``R@100``, ``AP``, ``P@5``.

Aliases: ``MRR@k`` → ``RR@k``, ``MAP`` → ``AP``, ``Recall@k`` → ``R@k``. A measure prints back as
its canonical string. Definitions follow trec_eval (the reference the tests compare against):

* ``nDCG@k`` — gains are the raw relevance grades (trec_eval's ``ndcg_cut``), discount
  ``log2(rank + 1)``; the ideal ranking uses all judged grades > 0. Graded, not binarised.
* ``RR@k`` — 1 / rank of the first relevant document (grade ≥ relevance level) in the top k.
* ``R@k`` — relevant documents in the top k / all relevant documents of the query.
* ``P@k`` — relevant documents in the top k / k.
* ``AP`` — mean over relevant documents of precision at their rank (unretrieved count 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

_ALIASES = {"MRR": "RR", "MAP": "AP", "RECALL": "R", "NDCG": "nDCG", "RR": "RR", "AP": "AP", "R": "R", "P": "P"}
_PATTERN = re.compile(r"^([A-Za-z]+)(?:@(\d+))?$")
CUTOFF_REQUIRED = {"R", "P"}


@dataclass(frozen=True, order=True)
class Measure:
    name: str
    cutoff: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.cutoff}" if self.cutoff else self.name


def parse_measure(text: str) -> Measure:
    m = _PATTERN.match(text.strip())
    if not m or m.group(1).upper() not in _ALIASES:
        raise ConfigError(f"unknown measure {text!r}; valid: nDCG@k, RR@k (MRR@k), R@k, P@k, AP (MAP), nDCG, RR")
    name = _ALIASES[m.group(1).upper()]
    cutoff = int(m.group(2)) if m.group(2) else None
    if cutoff is not None and cutoff < 1:
        raise ConfigError(f"cutoff must be ≥ 1 in {text!r}")
    if name == "AP" and cutoff is not None:
        raise ConfigError("AP takes no cutoff; use AP")
    if name in CUTOFF_REQUIRED and cutoff is None:
        raise ConfigError(f"{name} needs a cutoff, e.g. {name}@10")
    return Measure(name, cutoff)


DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "AP")

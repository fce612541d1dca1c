"""The review queue: which queries a person labels, in which order, with what on screen.

:func:`build_queue` reads annotation run folders (``judgments.jsonl``) and a dataset, orders the
run's queries by :func:`utilabel.train.data.uncertain_order` — the function with which
``--mix-strategy uncertain`` spends the human budget, over the same LLM labels the trainer reads —
and keeps the first ``budget`` of them. Each :class:`ReviewItem` carries the query, its candidate
passages in the run's order, every method's LLM label side by side and the suggestion the page
pre-selects (the mean LLM label ≥ 0.5, or rounded onto the grade scale in graded mode).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..records import Judgment
from ..train.data import judgment_label, llm_labels, read_judgments, uncertain_order

#: the suggestion threshold on the mean LLM label (the annotation default)
SUGGEST_AT = 0.5


@dataclass(frozen=True, slots=True)
class Passage:
    doc_id: str
    title: str
    text: str
    #: method → mean LLM label of this passage (None: the method gave no label)
    llm: dict[str, float | None]
    suggestion: int


@dataclass(frozen=True, slots=True)
class ReviewItem:
    query_id: str
    query: str
    passages: tuple[Passage, ...]


@dataclass
class ReviewQueue:
    """``items`` in labelling order; ``total`` queries in the runs; grades ``0..max_grade``."""

    items: list[ReviewItem]
    total: int
    methods: list[str]
    max_grade: int = 1

    def __post_init__(self):
        self.query_ids = frozenset(item.query_id for item in self.items)

    def labelled(self, done: Iterable[str]) -> int:
        """How many queue queries are in ``done`` (e.g. an annotator's submissions)."""
        return len(self.query_ids.intersection(done))


def parse_budget(value: str | float | int, n: int) -> int:
    """``--budget``: a fraction with a decimal point (``0.2`` → ``round(0.2·n)``, as ``--human-ratio``
    counts) or a count of queries (``150``)."""
    text = str(value).strip()
    try:
        if "." in text:
            fraction = float(text)
            if not 0.0 < fraction <= 1.0:
                raise ValueError
            return round(fraction * n)
        count = int(text)
        if count < 1:
            raise ValueError
        return min(count, n)
    except ValueError:
        raise ConfigError(f"--budget must be a fraction in (0, 1] such as 0.2 or a count ≥ 1; got {value!r}") from None


def read_runs(run_dirs: Sequence[str | Path]) -> list[Judgment]:
    judgments: list[Judgment] = []
    for d in run_dirs:
        path = Path(d) / "judgments.jsonl"
        if not Path(d).is_dir():
            raise ConfigError(f"run folder {d} not found")
        if not path.exists():
            raise ConfigError(f"{d} has no judgments.jsonl (not an annotation run?)")
        judgments.extend(read_judgments(path))
    if not judgments:
        raise ConfigError(f"no judgments in {', '.join(map(str, run_dirs))}")
    return judgments


def build_queue(run_dirs: Sequence[str | Path], dataset, split: str, budget: str | float | int = "0.2",
                seed: int = 42, judgment_method: str | None = None) -> ReviewQueue:
    """The review queue of ``run_dirs`` over ``dataset``'s ``split`` (see module docstring); every
    inconsistency (missing folder, query outside the split, unknown passage) is a one-line error."""
    judgments = read_runs(run_dirs)
    llm = llm_labels(judgments, judgment_method)
    if not llm:
        raise ConfigError(f"no usable LLM labels in {', '.join(map(str, run_dirs))}"
                          + (f" for method {judgment_method!r}" if judgment_method else ""))
    queries = dataset.split_queries(split)
    corpus = dataset.corpus
    per_method: dict[tuple[str, str], dict[str, list[float]]] = {}
    doc_order: dict[str, dict[str, None]] = {}
    for j in judgments:
        if j.query_id not in queries:
            raise ConfigError(f"query {j.query_id!r} of the runs is not a {split} query of {dataset.name} "
                              "(annotated on another dataset or split?)")
        if j.doc_id not in corpus:
            raise ConfigError(f"passage {j.doc_id!r} of the runs is not in the corpus of {dataset.name}")
        doc_order.setdefault(j.query_id, {})[j.doc_id] = None
        value = judgment_label(j)
        per_method.setdefault((j.query_id, j.doc_id), {}).setdefault(j.method, [])
        if value is not None:
            per_method[(j.query_id, j.doc_id)][j.method].append(value)
    methods = sorted({j.method for j in judgments})
    max_grade = max([1, *(g for docs in dataset.qrels(split).values() for g in docs.values())])
    order = uncertain_order(llm, sorted(llm), seed)
    size = parse_budget(budget, len(order))
    if size == 0:
        raise ConfigError(f"--budget {budget} of {len(order)} queries selects none; give a larger fraction or a count")
    items = []
    for qid in order[:size]:
        passages = []
        for did in doc_order[qid]:
            values = per_method[(qid, did)]
            mean = llm[qid].get(did)
            suggestion = 0 if mean is None else (round(mean * max_grade) if max_grade > 1 else int(mean >= SUGGEST_AT))
            doc = corpus[did]
            passages.append(Passage(did, doc.title, doc.text,
                                    {m: (sum(v) / len(v) if (v := values.get(m)) else None) for m in methods},
                                    suggestion))
        items.append(ReviewItem(qid, queries[qid].text, tuple(passages)))
    return ReviewQueue(items, len(order), methods, max_grade)

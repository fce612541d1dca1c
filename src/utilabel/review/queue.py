"""The review queue: which queries a person labels, in which order, with what on screen.

:func:`build_queue` reads annotation run folders (``judgments.jsonl``) and a dataset. The LLM labels are
the trainer's (:class:`utilabel.labels.sources.SourceReader` over the same files, method and label rule), the
order is :func:`utilabel.labels.mixing.uncertain_order` — the function with which ``--mix-strategy
uncertain`` spends the human budget — and the first ``budget`` queries form the queue. Each
:class:`ReviewItem` carries the query, its candidate passages in the run's order, every method's soft
value side by side (:func:`utilabel.labels.judgment_value`) and the suggestion the page pre-selects: the
trainer's LLM label (positive or not; in graded mode its weight on the grade scale, a positive ≥ 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.judgments import read_judgments
from ..errors import ConfigError
from ..labels import judgment_value
from ..labels.mixing import uncertain_order
from ..labels.sources import LabelSource, SourceReader
from ..seeding import DEFAULT_SEED


@dataclass(frozen=True, slots=True)
class Passage:
    doc_id: str
    title: str
    text: str
    #: method → mean soft LLM value of this passage (None: the method gave no value)
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


def judgment_files(run_dirs: Sequence[str | Path]) -> list[Path]:
    """The ``judgments.jsonl`` of each run folder; a missing folder or file is a one-line error."""
    files = []
    for d in map(Path, run_dirs):
        if not d.is_dir():
            raise ConfigError(f"run folder {d} not found")
        if not (d / "judgments.jsonl").exists():
            raise ConfigError(f"{d} has no judgments.jsonl (not an annotation run?)")
        files.append(d / "judgments.jsonl")
    return files


def build_queue(run_dirs: Sequence[str | Path], dataset, split: str, budget: str | float | int = "0.2",
                seed: int = DEFAULT_SEED, judgment_method: str | None = None,
                label_rule: str | None = None) -> ReviewQueue:
    """The review queue of ``run_dirs`` over ``dataset``'s ``split`` (see module docstring); ``seed``,
    ``judgment_method`` and ``label_rule`` mean what the trainer's options do (its defaults). Every
    inconsistency (missing folder, query outside the split, unknown passage) is a one-line error."""
    files = judgment_files(run_dirs)
    source = LabelSource("judgments", tuple(map(str, files)), judgment_method, label_rule)
    reader = SourceReader(dataset, split)
    llm = reader.require_labels(source)
    judgments = [j for j in read_judgments(files) if judgment_method in (None, j.method)]
    queries, corpus = dataset.split_queries(split), dataset.corpus
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    for j in judgments:
        if j.query_id not in queries:
            raise ConfigError(f"query {j.query_id!r} of the runs is not a {split} query of {dataset.name} "
                              "(annotated on another dataset or split?)")
        if j.doc_id not in corpus:
            raise ConfigError(f"passage {j.doc_id!r} of the runs is not in the corpus of {dataset.name}")
        per_method = values.setdefault((j.query_id, j.doc_id), {}).setdefault(j.method, [])
        if (value := judgment_value(j)) is not None:
            per_method.append(value)
    methods = sorted({j.method for j in judgments})
    max_grade = max([1, *(g for docs in dataset.qrels(split).values() for g in docs.values())])
    order = uncertain_order(llm, sorted(llm), seed, reader.margins(source))
    size = parse_budget(budget, len(order))
    if size == 0:
        raise ConfigError(f"--budget {budget} of {len(order)} queries selects none; give a larger fraction or a count")
    docs_of: dict[str, list[str]] = {}
    for qid, did in values:  # first-seen order: the runs' candidate order
        docs_of.setdefault(qid, []).append(did)
    items = []
    for qid in order[:size]:
        passages = []
        for did in docs_of[qid]:
            w = llm[qid].get(did, 0.0)
            suggestion = max(1, round(w * max_grade)) if w > 0 else 0
            means = {m: (sum(v) / len(v) if (v := values[(qid, did)].get(m)) else None) for m in methods}
            doc = corpus[did]
            passages.append(Passage(did, doc.title, doc.text, means, suggestion))
        items.append(ReviewItem(qid, queries[qid].text, tuple(passages)))
    return ReviewQueue(items, len(order), methods, max_grade)

"""Label sources: the one place that turns "where labels come from" into ``Labels``.

A :class:`LabelSource` names one source of training labels for a dataset split:

* ``human`` — the dataset's qrels of the split (``paths`` empty) or a TREC qrels file such as
  ``utilabel review serve`` writes (its one path): relevance ≥ the dataset's relevance level → weight 1.0,
  every other judged document 0.0 (:func:`human_labels`);
* ``judgments`` — annotation judgments JSONL file(s) (``paths``): the judgments of
  ``method`` (None = all), each valued by ``field`` (None = the method's own label, see
  :func:`utilabel.labels.judgment_value`), ranked per query (:func:`utilabel.labels.ranked_values`)
  and labelled by ``rule`` — by default the rule the annotation runs recorded
  (:func:`utilabel.labels.run_label_rule` of each file's folder; they must agree). Positives keep their
  soft value as weight (at least 1e-6), other candidates get 0.0;
* ``first_stage`` — the free control where the first-stage (BM25) ranking is the judge: each query's
  candidates valued by rank (1, 0.9, … for ten), through ``rule`` (default ``top1``).

A judgments or first-stage source with ``with_qrels`` also keeps the split's qrels positives of every
query it labels (weight 1.0): on a generated dataset (:mod:`utilabel.generate`) the passage each query
was written from stays a positive whatever the judge or BM25 says of it.

:class:`SourceReader` resolves sources against one dataset split, reading each source once: labels
(:meth:`SourceReader.labels`), the ranked values behind them (:meth:`SourceReader.ranked`) and how
clearly the rule separates each query's positives (:meth:`SourceReader.margins`, the tie-breaker of
:func:`utilabel.labels.mixing.uncertain_order`). The trainer (:func:`utilabel.train.data.build_plan`),
the experiment runner and the review page all read labels through it; :func:`parse_labels_option`
reads the trainer's ``labels`` option, :func:`file_labels` the labels of judgments files alone.

Where the trainer and the runner used to differ, the rules are now: the method filter keeps the
judgments of ``method`` when given (both agreed); the value field defaults to the method's own label
(the runner used to read ``utility`` always — identical for every method but ``relsel``, whose
``utility`` is empty); an explicit ``rule`` wins, else the rule every run folder recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import Judgment
from .rules import (
    LABEL_FIELDS,
    LabelRule,
    Labels,
    parse_rule,
    ranked_labels,
    ranked_values,
    rule_margins,
    run_label_rule,
)

SOURCE_KINDS = ("human", "judgments", "first_stage")
FIRST_STAGE_RULE = "top1"
"""The default rule of a ``first_stage`` source: "BM25's top hit is the positive"."""

Ranked = dict[str, list[tuple[str, float]]]
"""Per query, ``(doc_id, value)`` best first."""


@dataclass(frozen=True)
class LabelSource:
    """One source of training labels (see the module docstring). ``paths``: the judgments files (or
    the one TREC qrels file of a ``human`` source; empty = the dataset's qrels)."""

    kind: str = "judgments"
    paths: tuple[str, ...] = ()
    method: str | None = None
    rule: str | None = None
    field: str | None = None
    with_qrels: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"label source kind must be one of {', '.join(SOURCE_KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        if self.kind == "judgments" and not self.paths:
            raise ConfigError("a judgments label source needs at least one judgments file")
        if self.kind == "human" and len(self.paths) > 1:
            raise ConfigError(f"labels name {len(self.paths)} human sources ({', '.join(self.paths)}); give one")
        if self.field is not None and self.field not in LABEL_FIELDS:
            raise ConfigError(f"label field must be one of {', '.join(LABEL_FIELDS)}, got {self.field!r}")
        if self.with_qrels and self.kind == "human":
            raise ConfigError("with_qrels adds the qrels to judgments or first-stage labels; human labels are the qrels")
        if self.rule is not None:
            object.__setattr__(self, "rule", parse_rule(self.rule).spec)

    def label_rule(self) -> LabelRule:
        """The rule of this source: ``rule`` when given; else ``top1`` for a first stage, the rule the
        annotation runs recorded for judgments (they must agree); human labels need none."""
        if self.rule is not None:
            return parse_rule(self.rule)
        if self.kind == "first_stage":
            return parse_rule(FIRST_STAGE_RULE)
        if self.kind == "human":
            raise ConfigError("human labels take no label rule")
        rules = {run_label_rule(Path(f).parent) for f in self.paths}
        if len(rules) > 1:
            raise ConfigError(f"the annotation runs of {', '.join(self.paths)} declare different label rules "
                              f"({', '.join(sorted(map(str, rules)))}); give one label_rule")
        return rules.pop()


def human_labels(dataset: Any, split: str, qrels_file: str | Path | None = None) -> Labels:
    """Human qrels, relevance ≥ the dataset's relevance level → weight 1.0 (all judged docs kept, 0.0 =
    negative): the dataset's qrels of ``split``, or a TREC qrels file."""
    from ..data.trec import read_trec_qrels

    level = getattr(dataset, "relevance_level", 1)
    qrels = dataset.qrels(split) if qrels_file is None else read_trec_qrels(qrels_file)
    return {qid: {did: 1.0 if rel >= level else 0.0 for did, rel in docs.items()} for qid, docs in qrels.items()}


def with_qrels_positives(labels: Labels, qrels: Labels) -> Labels:
    """``labels`` with every qrels positive (weight > 0) of the queries they label made a positive of
    weight 1.0; queries ``labels`` does not have stay out."""
    out: Labels = {}
    for qid, docs in labels.items():
        merged = dict(docs)
        for did, weight in qrels.get(qid, {}).items():
            if weight > 0:
                merged[did] = max(merged.get(did, 0.0), 1.0)
        out[qid] = merged
    return out


def parse_labels_option(labels: Sequence[str], method: str | None = None,
                        rule: str | None = None) -> tuple[LabelSource | None, LabelSource | None]:
    """A training ``labels`` option as (human source or None, judgments source or None). The human source
    is ``human`` (the dataset's qrels) or a TREC qrels file, told apart from a judgments JSONL by its
    first non-blank line not starting with ``{``; every other entry is a judgments file."""
    human: list[str] = []
    files: list[str] = []
    for x in labels:
        (human if x == "human" or _is_qrels_file(x) else files).append(x)
    if len(human) > 1:
        raise ConfigError(f"labels name {len(human)} human sources ({', '.join(human)}); give one")
    human_src = LabelSource("human", tuple(h for h in human if h != "human")) if human else None
    return human_src, (LabelSource("judgments", tuple(files), method, rule) if files else None)


def _is_qrels_file(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            line = next((x for x in fh if x.strip()), "")
    except OSError:
        return False
    return bool(line) and not line.lstrip().startswith("{")


def first_stage_ranked(candidates: Mapping[str, Sequence[str]]) -> Ranked:
    """First-stage candidates as ranked values: rank ``i`` of ``n`` is worth ``1 - i / n``."""
    return {q: [(d, 1.0 - i / len(docs)) for i, d in enumerate(docs)] for q, docs in candidates.items()}


def judgments_ranked(judgments: Sequence[Judgment], method: str | None = None, field: str | None = None) -> Ranked:
    """The ranked values of the judgments of ``method`` (all when None), valued by ``field``."""
    return ranked_values([j for j in judgments if method in (None, j.method)], field)


def _read_files(paths: Sequence[str]) -> list[Judgment] | None:
    from ..data.judgments import read_judgments

    return read_judgments(list(paths))


class SourceReader:
    """Labels of :class:`LabelSource` s on one dataset split, each source read once.

    ``read_judgments(paths)`` gives the judgments of a source's files, or None when they do not exist
    yet (default: read the files); ``candidates()`` the first-stage candidate lists (needed only by
    ``first_stage`` sources). A source whose judgments are missing gives None, and is looked for again
    on the next call."""

    def __init__(self, dataset: Any, split: str,
                 read_judgments: Callable[[Sequence[str]], list[Judgment] | None] = _read_files,
                 candidates: Callable[[], Mapping[str, Sequence[str]]] | None = None) -> None:
        self.dataset, self.split = dataset, split
        self._read, self._candidates = read_judgments, candidates
        self._ranked: dict[tuple, Ranked] = {}
        self._human: dict[LabelSource, Labels] = {}

    def ranked(self, source: LabelSource) -> Ranked | None:
        """Per query, ``(doc_id, value)`` best first, of a judgments or first-stage source."""
        if source.kind == "human":
            raise ConfigError("human labels have no ranked values")
        key = (source.kind, source.paths, source.method, source.field)  # sources that differ by rule share it
        if key not in self._ranked:
            if source.kind == "first_stage":
                if self._candidates is None:
                    raise ConfigError("a first_stage label source needs first-stage candidates")
                self._ranked[key] = first_stage_ranked(self._candidates())
            else:
                judgments = self._read(source.paths)
                if judgments is None:
                    return None
                self._ranked[key] = judgments_ranked(judgments, source.method, source.field)
        return self._ranked[key]

    def labels(self, source: LabelSource, query_ids: Sequence[str] | None = None) -> Labels | None:
        """The labels of ``source`` (of ``query_ids`` only, when given); None when its judgments are missing."""
        if source.kind == "human":
            labels = self.human(source)
        else:
            ranked = self.ranked(source)
            if ranked is None:
                return None
            labels = ranked_labels(ranked, source.label_rule(), "soft")
            if source.with_qrels:
                labels = with_qrels_positives(labels, self.human(LabelSource("human")))
        if query_ids is None:
            return labels
        keep = set(query_ids)
        return {q: v for q, v in labels.items() if q in keep}

    def human(self, source: LabelSource) -> Labels:
        """The labels of the ``human`` source ``source``, read once."""
        if source not in self._human:
            self._human[source] = human_labels(self.dataset, self.split, source.paths[0] if source.paths else None)
        return self._human[source]

    def require_labels(self, source: LabelSource) -> Labels:
        """The labels of ``source``; judgments that are missing or give no labels are an error."""
        labels = self.labels(source)
        if not labels:
            raise ConfigError(f"no usable judgments in {', '.join(source.paths)}"
                              + (f" for method {source.method!r}" if source.method else ""))
        return labels

    def margins(self, source: LabelSource) -> dict[str, float]:
        """How clearly the source's rule separates each query's positives (:func:`utilabel.labels.rule_margins`)."""
        return rule_margins(self.ranked(source) or {}, source.label_rule())


def file_labels(files: Sequence[str | Path], method: str | None = None, rule: str | None = None) -> Labels:
    """The labels of judgments ``files`` as training reads them (a judgments :class:`LabelSource`; no
    dataset needed); judgments that give no labels are an error."""
    return SourceReader(None, "").require_labels(LabelSource("judgments", tuple(map(str, files)), method, rule))

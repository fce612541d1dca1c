"""Training data: label sources, human/LLM label mixing, and per-epoch group sampling.

* Label sources give ``{query_id: {doc_id: weight}}`` (weight > 0 = positive): :func:`human_labels`
  from qrels, :func:`llm_labels` from annotation judgments (``Judgment`` JSONL; several records of
  one pair, e.g. over permutations, average into a soft label).
* :func:`plan_labels` mixes them: ``replace``, ``union``, ``curriculum``, ``uncertain`` with a human
  ratio; the result (:class:`LabelPlan`) gives the positives of each epoch and the queries that got
  human labels (logged by the trainer).
* :class:`GroupSampler` turns a plan into per-epoch groups: positives (one, rotated over epochs,
  for single-positive losses — "Rand1"; else up to ``max_positives``), hard negatives from the
  candidate list minus every positive of the query, random corpus negatives to fill. Everything is
  derived from ``(seed, epoch, query_id)``, so resuming mid-epoch reproduces the same batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.beir import iter_jsonl
from ..errors import ConfigError, DataFormatError
from ..records import Judgment, TrainingGroup

log = logging.getLogger(__name__)

Labels = dict[str, dict[str, float]]
MIX_STRATEGIES = ("replace", "union", "curriculum", "uncertain")


def _rng(*parts) -> random.Random:
    """A ``random.Random`` seeded from a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def human_labels(dataset, split: str) -> Labels:
    """Qrels of ``split`` with relevance ≥ the dataset's relevance level → weight 1.0 (all judged docs kept, 0.0 = negative)."""
    level = getattr(dataset, "relevance_level", 1)
    return {qid: {did: 1.0 if rel >= level else 0.0 for did, rel in docs.items()} for qid, docs in dataset.qrels(split).items()}


def read_judgments(paths: str | Path | Iterable[str | Path]) -> list[Judgment]:
    """Read ``Judgment`` records from one or more JSONL files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    names = set(Judgment.__slots__)
    out = []
    for path in paths:
        if not Path(path).exists():
            raise ConfigError(f"judgments file {path} not found")
        for lineno, obj in iter_jsonl(path):
            if not isinstance(obj, dict) or "query_id" not in obj or "doc_id" not in obj:
                raise DataFormatError(path, lineno, "judgment needs 'query_id' and 'doc_id'")
            try:
                rec = {k: v for k, v in obj.items() if k in names}
                rec["query_id"], rec["doc_id"] = str(rec["query_id"]), str(rec["doc_id"])
                rec.setdefault("method", "")
                out.append(Judgment(**rec))
            except TypeError as exc:
                raise DataFormatError(path, lineno, f"bad judgment ({exc})") from None
    return out


def judgment_label(j: Judgment) -> float | None:
    """The training label of a judgment: ``utility`` when set, else ``relevance``."""
    value = j.utility if j.utility is not None else j.relevance
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ConfigError(f"judgment label must be in [0, 1]; got {value} for ({j.query_id}, {j.doc_id})")
    return value


def llm_labels(judgments: Iterable[Judgment], method: str | None = None) -> Labels:
    """Average label per (query, doc) over all records (e.g. permutations) of ``method`` (all methods if None)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for j in judgments:
        if method is not None and j.method != method:
            continue
        value = judgment_label(j)
        if value is not None:
            sums.setdefault((j.query_id, j.doc_id), []).append(value)
    out: Labels = {}
    for (qid, did), vals in sums.items():
        out.setdefault(qid, {})[did] = sum(vals) / len(vals)
    return out


def positives(labels: Mapping[str, float]) -> dict[str, float]:
    return {d: w for d, w in labels.items() if w > 0}


def uncertainty(labels: Mapping[str, float]) -> tuple[int, float]:
    """Sort key (higher = less certain) of a query's LLM labels.

    Class 2: labels disagree across permutations (some soft label strictly between 0 and 1),
    ordered by the fraction of such labels; class 1: no positive or every candidate positive;
    class 0: confident binary labels.
    """
    vals = list(labels.values())
    soft = sum(1 for v in vals if 0.0 < v < 1.0)
    if soft:
        return 2, soft / len(vals)
    n_pos = sum(1 for v in vals if v > 0)
    if n_pos == 0 or n_pos == len(vals):
        return 1, 0.0
    return 0, 0.0


@dataclass
class LabelPlan:
    """Labels per epoch: ``stages`` is a list of (first_epoch, labels); ``human_queries`` the queries with human labels."""

    stages: list[tuple[int, Labels]]
    human_queries: list[str] = field(default_factory=list)
    strategy: str = "human"

    def labels(self, epoch: int) -> Labels:
        current = self.stages[0][1]
        for start, labels in self.stages:
            if epoch >= start:
                current = labels
        return current

    def all_positive_ids(self) -> dict[str, set[str]]:
        """Every doc that is a positive of a query in any stage (never used as its negative)."""
        out: dict[str, set[str]] = {}
        for _, labels in self.stages:
            for qid, docs in labels.items():
                out.setdefault(qid, set()).update(d for d, w in docs.items() if w > 0)
        return out


def plan_labels(human: Labels | None, llm: Labels | None, human_ratio: float | None = None,
                strategy: str = "replace", seed: int = 0, epochs: int = 1, curriculum_switch: float = 0.5) -> LabelPlan:
    """Combine human and LLM labels.

    Only ``human``: human labels everywhere. Only ``llm``: LLM labels everywhere. Both: a fraction
    ``human_ratio`` of the queries gets human labels, chosen at random (``replace``, ``union``,
    ``curriculum``) or by LLM-label uncertainty (``uncertain``, ties broken at random):

    * ``replace``: chosen queries use human labels, the rest LLM labels;
    * ``union``: chosen queries use LLM positives ∪ human positives (max weight), the rest LLM;
    * ``curriculum``: LLM labels for every query during the first ``curriculum_switch`` of the
      epochs, then human labels of the chosen queries only;
    * ``uncertain``: like replace, the human budget going to the least certain LLM queries.
    """
    if human is None and llm is None:
        raise ConfigError("no label source given")
    if llm is None:
        return LabelPlan([(0, human)], sorted(human), "human")
    if human is None or not human_ratio:
        return LabelPlan([(0, llm)], [], "llm")
    if strategy not in MIX_STRATEGIES:
        raise ConfigError(f"unknown mix strategy {strategy!r}; valid: {', '.join(MIX_STRATEGIES)}")
    if not 0.0 <= human_ratio <= 1.0:
        raise ConfigError(f"human_ratio must be in [0, 1]; got {human_ratio}")
    qids = sorted(set(llm) | set(human))
    budget = round(human_ratio * len(qids))
    eligible = [q for q in qids if q in human]
    rng = _rng(seed, "human-choice")
    if strategy == "uncertain":
        tiebreak = {q: rng.random() for q in eligible}
        eligible.sort(key=lambda q: (uncertainty(llm.get(q, {})), tiebreak[q]), reverse=True)
        chosen = eligible[:budget]
    else:
        chosen = rng.sample(eligible, min(budget, len(eligible)))
    chosen_set = set(chosen)
    if strategy in ("replace", "uncertain"):
        mixed = {q: dict(human[q]) if q in chosen_set else dict(llm.get(q, {})) for q in qids}
        stages = [(0, mixed)]
    elif strategy == "union":
        mixed = {}
        for q in qids:
            docs = dict(llm.get(q, {}))
            if q in chosen_set:
                for d, w in human[q].items():
                    docs[d] = max(docs.get(d, 0.0), w)
            mixed[q] = docs
        stages = [(0, mixed)]
    else:  # curriculum
        switch = min(max(1, math.ceil(curriculum_switch * epochs)), max(epochs - 1, 1))
        stages = [(0, {q: dict(llm.get(q, {})) for q in qids}), (switch, {q: dict(human[q]) for q in chosen})]
    log.info("label plan %s: %d/%d queries with human labels", strategy, len(chosen), len(qids))
    return LabelPlan(stages, sorted(chosen), strategy)


@dataclass
class SampledGroup:
    """A group for one step: the query, its passages (positives first) and their label weights."""

    query_id: str
    doc_ids: list[str]
    weights: list[float]

    @property
    def has_positive(self) -> bool:
        return any(w > 0 for w in self.weights)


class GroupSampler:
    """Deterministic per-epoch groups of fixed size ``group_size`` (positives + negatives)."""

    def __init__(self, plan: LabelPlan, candidates: Mapping[str, Sequence[str]], corpus_ids: Sequence[str],
                 group_size: int = 8, max_positives: int = 4, single_positive: bool = False,
                 negative_sampling: str = "random", seed: int = 0, query_ids: Sequence[str] | None = None):
        if group_size < 2:
            raise ConfigError(f"group_size must be >= 2; got {group_size}")
        if negative_sampling not in ("random", "top"):
            raise ConfigError(f"negative_sampling must be 'random' or 'top'; got {negative_sampling!r}")
        self.plan, self.group_size, self.seed = plan, group_size, seed
        self.max_positives = 1 if single_positive else max(1, min(max_positives, group_size - 1))
        self.single_positive, self.negative_sampling = single_positive, negative_sampling
        self.corpus_ids = list(corpus_ids)
        self.known_pos = plan.all_positive_ids()
        self.hard = {q: [d for d in dict.fromkeys(cands) if d not in self.known_pos.get(q, ())]
                     for q, cands in candidates.items()}
        qids = set()
        for _, labels in plan.stages:
            qids |= set(labels)
        self.query_ids = sorted(qids if query_ids is None else set(query_ids) & qids)

    def epoch_query_ids(self, epoch: int) -> list[str]:
        labels = self.plan.labels(epoch)
        ids = [q for q in self.query_ids if q in labels]
        _rng(self.seed, "order", epoch).shuffle(ids)
        return ids

    def group(self, query_id: str, epoch: int) -> SampledGroup:
        pos = positives(self.plan.labels(epoch).get(query_id, {}))
        pos_ids = sorted(pos)
        rng = _rng(self.seed, "group", epoch, query_id)
        if self.single_positive and pos_ids:
            perm = list(pos_ids)
            _rng(self.seed, "rotate", query_id).shuffle(perm)
            chosen = [perm[epoch % len(perm)]]  # Rand1: a different positive each epoch
        else:
            chosen = rng.sample(pos_ids, min(len(pos_ids), self.max_positives))
        n_neg = self.group_size - len(chosen)
        hard = self.hard.get(query_id, [])
        if self.negative_sampling == "top":
            negs = hard[:n_neg]
        else:
            negs = rng.sample(hard, min(n_neg, len(hard)))
        exclude = self.known_pos.get(query_id, set()) | set(chosen) | set(negs)
        tries = 0
        while len(negs) < n_neg and tries < 100 * self.group_size:
            d = self.corpus_ids[rng.randrange(len(self.corpus_ids))]
            tries += 1
            if d not in exclude:
                negs.append(d)
                exclude.add(d)
        return SampledGroup(query_id, chosen + negs, [pos[d] for d in chosen] + [0.0] * len(negs))

    def epoch_groups(self, epoch: int) -> list[SampledGroup]:
        return [self.group(q, epoch) for q in self.epoch_query_ids(epoch)]


def to_training_groups(groups: Iterable[SampledGroup], queries: Mapping[str, str]) -> list[TrainingGroup]:
    """Sampled groups as :class:`TrainingGroup` records (for ``utilabel.data.groups.write_groups``)."""
    out = []
    for g in groups:
        pos = {d: w for d, w in zip(g.doc_ids, g.weights, strict=True) if w > 0}
        out.append(TrainingGroup(g.query_id, queries.get(g.query_id, ""), pos, [d for d in g.doc_ids if d not in pos]))
    return out


def write_chosen(path: str | Path, plan: LabelPlan) -> None:
    from ..fileio import atomic_write

    with atomic_write(path) as fh:
        json.dump({"strategy": plan.strategy, "human_queries": plan.human_queries}, fh, indent=1)

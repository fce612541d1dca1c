"""Training data: label sources, human/LLM label mixing, training groups, and per-epoch group sampling.

* :class:`TrainingData` is what the trainer consumes (a label plan, hard-negative candidates,
  texts). Its producers: :func:`data_from_groups` (in-memory or file :class:`TrainingGroup` records
  — utilabel's ``groups.jsonl`` or FlagEmbedding JSONL — no labels to plan, no negatives to mine)
  and :func:`data_from_dataset` (a dataset's qrels and/or judgments, BM25 hard negatives).
* Label sources give ``{query_id: {doc_id: weight}}`` (weight > 0 = positive): :func:`human_labels`
  from the dataset's qrels or a TREC qrels file (:func:`label_sources` tells them from judgments);
  :func:`llm_labels`: judgments through :func:`utilabel.labels.judgment_labels` with the run's label rule
  (the rule recorded with the annotation run unless ``label_rule`` says otherwise; positives keep
  their soft value as weight).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..labels import Labels, positives
from ..records import Document, TrainingGroup

log = logging.getLogger(__name__)

MIX_STRATEGIES = ("replace", "union", "curriculum", "uncertain")


def rng_for(*parts) -> random.Random:
    """A ``random.Random`` seeded from a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def human_labels(dataset, split: str, source: str = "human") -> Labels:
    """Human qrels, relevance ≥ the dataset's relevance level → weight 1.0 (all judged docs kept, 0.0 =
    negative): the dataset's qrels of ``split`` (``source="human"``) or a TREC qrels file."""
    from ..data.trec import read_trec_qrels

    level = getattr(dataset, "relevance_level", 1)
    qrels = dataset.qrels(split) if source == "human" else read_trec_qrels(source)
    return {qid: {did: 1.0 if rel >= level else 0.0 for did, rel in docs.items()} for qid, docs in qrels.items()}


def label_sources(labels: Sequence[str]) -> tuple[str | None, list[str]]:
    """A ``labels`` option as (human source or None, judgment files). The human source is ``human`` (the
    dataset's qrels) or a TREC qrels file such as ``utilabel review serve`` writes, told apart from a
    judgments JSONL by its first non-blank line not starting with ``{``."""
    human, files = [], []
    for x in labels:
        (human if x == "human" or _is_qrels_file(x) else files).append(x)
    if len(human) > 1:
        raise ConfigError(f"labels name {len(human)} human sources ({', '.join(human)}); give one")
    return (human[0] if human else None), files


def _is_qrels_file(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            line = next((x for x in fh if x.strip()), "")
    except OSError:
        return False
    return bool(line) and not line.lstrip().startswith("{")


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


def uncertain_order(llm: Labels, query_ids: Sequence[str], seed: int = 0,
                    margins: Mapping[str, float] | None = None) -> list[str]:
    """``query_ids`` least certain first, ties broken at random by ``seed``: the order in which the
    ``uncertain`` strategy spends the human budget (the review page's queue). Certainty is
    :func:`uncertainty` of the labels; within equal uncertainty, the judgments' ``margins`` when given
    (:func:`utilabel.labels.rule_margins`, smallest first) — what orders pointwise labels, whose
    single soft positive per query makes every query look alike to :func:`uncertainty`."""
    rng = rng_for(seed, "human-choice")
    tiebreak = {q: rng.random() for q in query_ids}
    margin = (lambda q: -margins.get(q, -math.inf)) if margins is not None else (lambda q: 0.0)
    return sorted(query_ids, key=lambda q: (uncertainty(llm.get(q, {})), margin(q), tiebreak[q]), reverse=True)


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
                strategy: str = "replace", seed: int = 0, epochs: int = 1, curriculum_switch: float = 0.5,
                margins: Mapping[str, float] | None = None) -> LabelPlan:
    """Combine human and LLM labels.

    Only ``human``: human labels everywhere. Only ``llm``: LLM labels everywhere. Both: a fraction
    ``human_ratio`` of the queries gets human labels, chosen at random (``replace``, ``union``,
    ``curriculum``) or by LLM-label uncertainty (``uncertain``, ties broken at random):

    * ``replace``: chosen queries use human labels, the rest LLM labels;
    * ``union``: chosen queries use LLM positives ∪ human positives (max weight), the rest LLM;
    * ``curriculum``: LLM labels for every query during the first ``curriculum_switch`` of the
      epochs, then human labels of the chosen queries only;
    * ``uncertain``: like replace, the human budget going to the least certain LLM queries
      (``margins``: see :func:`uncertain_order`).
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
    rng = rng_for(seed, "human-choice")
    if strategy == "uncertain":
        chosen = uncertain_order(llm, eligible, seed, margins)[:budget]
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
        rng_for(self.seed, "order", epoch).shuffle(ids)
        return ids

    def group(self, query_id: str, epoch: int) -> SampledGroup:
        pos = positives(self.plan.labels(epoch).get(query_id, {}))
        pos_ids = sorted(pos)
        rng = rng_for(self.seed, "group", epoch, query_id)
        if self.single_positive and pos_ids:
            perm = list(pos_ids)
            rng_for(self.seed, "rotate", query_id).shuffle(perm)
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


def write_chosen(path: str | Path, plan: LabelPlan) -> None:
    from ..fileio import atomic_write

    with atomic_write(path) as fh:
        json.dump({"strategy": plan.strategy, "human_queries": plan.human_queries}, fh, indent=1)


@dataclass
class TrainingData:
    """What the trainer consumes, whichever producer made it: the label plan, hard-negative
    candidates per query, the pool of random negatives, and texts by id; ``source`` lines describe
    the data in the model card."""

    plan: LabelPlan
    candidates: Mapping[str, Sequence[str]]
    corpus_ids: list[str]
    query_text: Callable[[str], str]
    doc_text: Callable[[str], str]
    query_ids: list[str] | None = None
    source: list[str] = field(default_factory=list)


def data_from_groups(groups: Sequence[TrainingGroup], texts: Mapping[str, str] | None = None,
                     corpus: Mapping[str, Document] | None = None, source: str = "in-memory groups") -> TrainingData:
    """Training data from groups: their positives (weights kept) and negatives (the hard negatives);
    passage texts from ``texts`` (``{doc_id: text}``) or ``corpus``, random negatives from the same pool."""
    if texts is not None:
        known, text_of = texts, texts.__getitem__
    elif corpus is not None:
        known, text_of = corpus, lambda d: corpus[d].full_text()
    else:
        raise ConfigError("training groups name passages by id: give their texts or a dataset's corpus")
    if not groups:
        raise ConfigError(f"no training groups in {source}")
    labels: Labels = {}
    for g in groups:
        missing = next((d for d in (*g.positives, *g.negatives) if d not in known), None)
        if missing is not None:
            raise ConfigError(f"{source}: query {g.query_id!r} names passage {missing!r}, which has no text")
        if g.query_id in labels:
            raise ConfigError(f"{source}: query {g.query_id!r} has two groups")
        labels[g.query_id] = {**dict.fromkeys(g.negatives, 0.0), **g.positives}
    queries = {g.query_id: g.query for g in groups}
    return TrainingData(LabelPlan([(0, labels)], [], "groups"), {g.query_id: list(g.negatives) for g in groups},
                        list(known), queries.__getitem__, text_of,
                        source=[f"groups: {source}", "hard negatives: the groups' negatives, random fill"])


def data_from_dataset(config, dataset, write: bool = True) -> TrainingData:
    """Training data from ``config.labels`` on ``config.dataset``'s ``config.split`` (human qrels and/or
    judgments, mixed as configured), hard negatives from the BM25 top ``config.negatives_k`` (cached
    in ``config.out``, written there when ``write``)."""
    from ..retrieve.bm25 import cached_candidates

    plan = build_plan(config, dataset)
    cands = {}
    if config.negatives_k:
        path = Path(config.out) / f"candidates.{config.split}.k{config.negatives_k}.jsonl"
        cands = cached_candidates(dataset, config.split, config.negatives_k, path, write)
    labels = ", ".join(config.labels) + (f" (mix `{config.mix_strategy}`, human ratio {config.human_ratio})"
                                         if config.human_ratio is not None else "")
    negatives = (f"hard negatives: BM25 top-{config.negatives_k} minus every positive ({config.negative_sampling} "
                 "sampling), random fill" if config.negatives_k else "negatives: random corpus passages")
    return TrainingData(plan, cands, list(dataset.corpus), lambda q: dataset.queries[q].text,
                        lambda d: dataset.corpus[d].full_text(), list(dataset.split_queries(config.split)),
                        [f"dataset: `{dataset.name}`, split `{config.split}`", f"labels: {labels}", negatives])


def build_plan(config, dataset) -> LabelPlan:
    """The label plan of ``config.labels``: human qrels and/or judgments files under the label rule."""
    human_source, files = label_sources(config.labels)
    human = human_labels(dataset, config.split, human_source) if human_source else None
    llm = llm_labels(files, config.judgment_method, config.label_rule) if files else None
    margins = llm_margins(files, config.judgment_method, config.label_rule) \
        if files and config.mix_strategy == "uncertain" else None
    return plan_labels(human, llm, config.human_ratio, config.mix_strategy, config.seed, config.epochs,
                       config.curriculum_switch, margins)


def llm_labels(files: Sequence[str | Path], judgment_method: str | None = None,
               label_rule: str | None = None) -> Labels:
    """The LLM labels training reads from judgments ``files``: ``judgment_method``'s judgments (all when
    None) under ``label_rule``, by default the rule the annotation runs recorded (they must agree)."""
    from ..labels import judgment_labels

    judgments, rule = _llm_judgments(files, judgment_method, label_rule)
    llm = judgment_labels(judgments, rule, weights="soft")
    if not llm:
        raise ConfigError(f"no usable judgments in {', '.join(map(str, files))}"
                          + (f" for method {judgment_method!r}" if judgment_method else ""))
    return llm


def llm_margins(files: Sequence[str | Path], judgment_method: str | None = None,
                label_rule: str | None = None) -> dict[str, float]:
    """How clearly the label rule separates each query's positives (:func:`utilabel.labels.rule_margins`)
    in the judgments of :func:`llm_labels`: the tie-breaker of :func:`uncertain_order`."""
    from ..labels import ranked_values, rule_margins

    judgments, rule = _llm_judgments(files, judgment_method, label_rule)
    return rule_margins(ranked_values(judgments), rule)


def _llm_judgments(files, judgment_method, label_rule):
    """``judgment_method``'s judgments of ``files`` and the label rule to read them with."""
    from ..data.judgments import read_judgments
    from ..labels import run_label_rule

    judgments = [j for j in read_judgments(files) if judgment_method in (None, j.method)]
    rules = {run_label_rule(Path(f).parent) for f in files}
    if label_rule is None and len(rules) > 1:
        raise ConfigError(f"the annotation runs of {', '.join(map(str, files))} declare different label rules "
                          f"({', '.join(sorted(map(str, rules)))}); give one label_rule")
    return judgments, label_rule or rules.pop()


def training_data(config, groups: Sequence[TrainingGroup] | None = None, texts: Mapping[str, str] | None = None,
                  write: bool = True) -> TrainingData:
    """The data of a training run: ``groups`` (in memory), else ``config.groups`` (a file), else
    ``config.labels`` on ``config.dataset``. Groups that name passages by id take their texts from
    ``texts`` or the corpus of ``config.dataset``."""
    from ..data.registry import load_dataset

    source = "in-memory groups"
    if groups is None and config.groups:
        from ..data.groups import read_any_groups

        groups, file_texts = read_any_groups(config.groups)
        texts, source = texts or file_texts, f"`{config.groups}`"
    if groups is None:
        return data_from_dataset(config, load_dataset(config.dataset), write)
    corpus = None if texts is not None else load_dataset(config.dataset).corpus
    return data_from_groups(groups, texts, corpus, source)

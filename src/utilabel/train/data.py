"""Training data: what the trainer consumes, and per-epoch group sampling.

* :class:`TrainingData` is what the trainer consumes (a label plan, hard-negative candidates,
  texts). Its producers: :func:`data_from_groups` (in-memory or file :class:`TrainingGroup` records
  — utilabel's ``groups.jsonl`` or FlagEmbedding JSONL — no labels to plan, no negatives to mine)
  and :func:`data_from_dataset` (labels given in memory, or a dataset's qrels and/or judgments; BM25
  hard negatives).
* :func:`build_plan` reads ``config.labels`` through :mod:`utilabel.labels.sources` (the one
  resolver of label sources) and mixes them with :func:`utilabel.labels.mixing.plan_labels`.
* :class:`GroupSampler` turns a plan into per-epoch groups: positives (one, rotated over epochs,
  for single-positive losses — "Rand1"; else up to ``max_positives``), hard negatives from the
  candidate list minus every positive of the query, random corpus negatives to fill. Everything is
  derived from ``(seed, epoch, query_id)``, so resuming mid-epoch reproduces the same batches.
  With teacher scores (:mod:`utilabel.labels.teacher`) each sampled passage also carries its teacher
  score (None when it has none); sampling itself does not depend on them.
* :func:`resolve_teacher` gives the run's teacher scores: given in memory (used as they are), else
  ``config.teacher`` read and normalised, else the groups' own teacher scores, normalised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..labels import Labels, positives
from ..labels.mixing import LabelPlan, plan_labels
from ..labels.sources import SourceReader, parse_labels_option
from ..labels.teacher import Teacher, normalize_teacher, read_teacher
from ..records import Document, TrainingGroup
from ..seeding import rng_for

log = logging.getLogger(__name__)


@dataclass
class SampledGroup:
    """A group for one step: the query, its passages (positives first), their label weights and, when
    the run has teacher scores, each passage's teacher score (None for a passage without one)."""

    query_id: str
    doc_ids: list[str]
    weights: list[float]
    teacher: list[float | None] | None = None

    @property
    def has_positive(self) -> bool:
        return any(w > 0 for w in self.weights)


class GroupSampler:
    """Deterministic per-epoch groups of fixed size ``group_size`` (positives + negatives)."""

    def __init__(self, plan: LabelPlan, candidates: Mapping[str, Sequence[str]], corpus_ids: Sequence[str],
                 group_size: int = 8, max_positives: int = 4, single_positive: bool = False,
                 negative_sampling: str = "random", seed: int = 0, query_ids: Sequence[str] | None = None,
                 teacher: Mapping[str, Mapping[str, float]] | None = None):
        if group_size < 2:
            raise ConfigError(f"group_size must be >= 2; got {group_size}")
        if negative_sampling not in ("random", "top"):
            raise ConfigError(f"negative_sampling must be 'random' or 'top'; got {negative_sampling!r}")
        self.plan, self.group_size, self.seed = plan, group_size, seed
        self.max_positives = 1 if single_positive else max(1, min(max_positives, group_size - 1))
        self.single_positive, self.negative_sampling = single_positive, negative_sampling
        self.corpus_ids = list(corpus_ids)
        self.teacher = teacher
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
        doc_ids = chosen + negs
        scores = None
        if self.teacher is not None:
            own = self.teacher.get(query_id, {})
            scores = [own.get(d) for d in doc_ids]
        return SampledGroup(query_id, doc_ids, [pos[d] for d in chosen] + [0.0] * len(negs), scores)

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
    teacher: Teacher | None = None


def data_from_groups(groups: Sequence[TrainingGroup], texts: Mapping[str, str] | None = None,
                     corpus: Mapping[str, Document] | None = None, source: str = "in-memory groups") -> TrainingData:
    """Training data from groups: their positives (weights kept) and negatives (the hard negatives);
    passage texts from ``texts`` (``{doc_id: text}``) or ``corpus``, random negatives from the same pool."""
    known: Mapping[str, object]
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
    teacher = {g.query_id: dict(g.teacher) for g in groups if g.teacher}
    return TrainingData(LabelPlan([(0, labels)], [], "groups"), {g.query_id: list(g.negatives) for g in groups},
                        list(known), queries.__getitem__, text_of,
                        source=[f"groups: {source}", "hard negatives: the groups' negatives, random fill"],
                        teacher=teacher or None)


def data_from_dataset(config, dataset, write: bool = True, labels: Labels | LabelPlan | None = None) -> TrainingData:
    """Training data on ``config.dataset``'s ``config.split``: ``labels`` given in memory, else
    ``config.labels`` (human qrels and/or judgments, mixed as configured); hard negatives from the BM25
    top ``config.negatives_k`` (cached in ``config.out``, written there when ``write``)."""
    from ..retrieve.bm25 import cached_candidates

    plan = build_plan(config, dataset) if labels is None else as_plan(labels)
    cands: Mapping[str, Sequence[str]] = {}
    if config.negatives_file:
        cands = file_negatives(config.negatives_file, config.negatives_k, dataset.corpus)
    elif config.negatives_k:
        path = Path(config.out) / f"candidates.{config.split}.k{config.negatives_k}.jsonl"
        cands = cached_candidates(dataset, config.split, config.negatives_k, path, write)
    if labels is not None:
        described = f"given in memory ({len(plan.stages[0][1])} queries, plan `{plan.strategy}`)"
    else:
        described = ", ".join(config.labels) + (f" (mix `{config.mix_strategy}`, human ratio {config.human_ratio})"
                                                if config.human_ratio is not None else "")
    if config.negatives_file:
        pool = (f"the first {config.negatives_k}" if config.negatives_k else "all") + f" of `{config.negatives_file}`"
    else:
        pool = f"BM25 top-{config.negatives_k}" if config.negatives_k else ""
    negatives = (f"hard negatives: {pool} minus every positive ({config.negative_sampling} sampling), random fill"
                 if pool else "negatives: random corpus passages")
    return TrainingData(plan, cands, list(dataset.corpus), lambda q: dataset.queries[q].text,
                        lambda d: dataset.corpus[d].full_text(), list(dataset.split_queries(config.split)),
                        [f"dataset: `{dataset.name}`, split `{config.split}`", f"labels: {described}", negatives])


def file_negatives(path: str | Path, k: int, corpus: Container[str]) -> dict[str, list[str]]:
    """Each query's hard-negative candidates from a candidates JSONL file (``utilabel mine`` or
    ``utilabel retrieve`` output), in the file's order, the first ``k`` (0 = all); a missing file or a
    candidate outside ``corpus`` is a one-line error naming the file."""
    from ..data.candidates import read_candidates

    if not Path(path).is_file():
        raise ConfigError(f"negatives_file {path}: no such file")
    return {g.query_id: [c.doc_id for c in g.candidates][:k or None] for g in read_candidates(path, corpus)}


def as_plan(labels: Labels | LabelPlan) -> LabelPlan:
    """Labels given in memory as a plan: a :class:`LabelPlan` as is, ``Labels`` the same in every epoch."""
    if isinstance(labels, LabelPlan):
        return labels
    if not isinstance(labels, Mapping):
        raise ConfigError(f"labels must be Labels ({{query_id: {{doc_id: weight}}}}) or a LabelPlan, "
                          f"got {type(labels).__name__}")
    if not labels:
        raise ConfigError("the labels given in memory are empty")
    return LabelPlan([(0, dict(labels))], [], "given")


def build_plan(config, dataset) -> LabelPlan:
    """The label plan of ``config.labels``: human qrels and/or judgments files under the label rule
    (read by :class:`utilabel.labels.sources.SourceReader`), mixed by :func:`utilabel.labels.mixing.plan_labels`."""
    human_src, llm_src = parse_labels_option(config.labels, config.judgment_method, config.label_rule)
    reader = SourceReader(dataset, config.split)
    human = reader.labels(human_src) if human_src else None
    llm = reader.require_labels(llm_src) if llm_src else None
    margins = reader.margins(llm_src) if llm_src and config.mix_strategy == "uncertain" else None
    return plan_labels(human, llm, config.human_ratio, config.mix_strategy, config.seed, config.epochs,
                       config.curriculum_switch, margins)


def first_stage_groups(config, dataset, write: bool = True):
    """The BM25 candidate groups (with scores) of ``config.split``, cached in ``config.out`` in the same
    file as the hard negatives (depth ``negatives_k``, 30 when that is 0)."""
    from ..data.candidates import read_candidates, write_candidates
    from ..retrieve.bm25 import bm25_candidates

    k = config.negatives_k or 30
    path = Path(config.out) / f"candidates.{config.split}.k{k}.jsonl"
    if path.exists():
        return read_candidates(path)
    groups = bm25_candidates(dataset, config.split, k=k)
    if write:
        write_candidates(path, groups)
    return groups


def resolve_teacher(config, data: TrainingData, teacher: Mapping[str, Mapping[str, float]] | None = None,
                    write: bool = True) -> Teacher | None:
    """The run's teacher scores (see the module docstring); a distillation loss without any is a ConfigError."""
    from .losses import LOSSES

    if teacher is not None and not LOSSES[config.loss].needs_teacher:
        raise ConfigError(f"teacher scores were given, but loss {config.loss!r} does not use them")
    if teacher is not None:
        out: Teacher | None = {q: dict(docs) for q, docs in teacher.items()}
        where = "given in memory"
    elif config.teacher:
        from ..data.registry import load_dataset

        spec = str(config.teacher)
        needs_dataset = spec == "first_stage" or spec == "human"
        dataset = load_dataset(config.dataset) if needs_dataset else None
        out = read_teacher(spec, dataset, config.split, config.judgment_method,
                           (lambda: first_stage_groups(config, dataset, write)) if spec == "first_stage" else None,
                           config.teacher_normalize)
        where = f"`{spec}`, {config.teacher_normalize}"
    elif data.teacher:
        out = normalize_teacher(data.teacher, config.teacher_normalize)
        where = f"the groups' own, {config.teacher_normalize}"
    else:
        out = None
    if LOSSES[config.loss].needs_teacher:
        if not out:
            raise ConfigError(f"loss {config.loss!r} needs teacher scores: set the training option teacher "
                              "(a judgments file, first_stage, run:PATH or human) or train on groups that carry them")
        data.source.append(f"teacher scores: {where} ({len(out)} queries, {sum(map(len, out.values()))} passages)")
        return out
    return None  # only distillation losses read teacher scores (groups may carry them for any loss)


def training_data(config, groups: Sequence[TrainingGroup] | None = None, texts: Mapping[str, str] | None = None,
                  write: bool = True, labels: Labels | LabelPlan | None = None) -> TrainingData:
    """The data of a training run: ``labels`` (in memory) on ``config.dataset``, else ``groups`` (in
    memory), else ``config.groups`` (a file), else ``config.labels`` on ``config.dataset``. Groups that
    name passages by id take their texts from ``texts`` or the corpus of ``config.dataset``."""
    from ..data.registry import load_dataset

    if labels is not None:
        if groups is not None:
            raise ConfigError("give either labels or groups, not both")
        return data_from_dataset(config, load_dataset(config.dataset), write, labels)

    source = "in-memory groups"
    if groups is None and config.groups:
        from ..data.groups import read_any_groups

        groups, file_texts = read_any_groups(config.groups)
        texts, source = texts or file_texts, f"`{config.groups}`"
    if groups is None:
        return data_from_dataset(config, load_dataset(config.dataset), write)
    corpus = None if texts is not None else load_dataset(config.dataset).corpus
    return data_from_groups(groups, texts, corpus, source)

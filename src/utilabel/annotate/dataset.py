"""Annotating a dataset: its candidates, gold answers and declared task → one annotation run.

:func:`annotate_dataset` is the library entry point that sees the dataset (``utilabel annotate`` is
this function behind flags): it builds BM25 top-``k`` candidates for a split (or takes given ones, a
candidate JSONL or :class:`~utilabel.records.CandidateGroup` lists, cut to their first ``k``),
collects the gold answers, resolves the config with
:meth:`~utilabel.annotate.config.AnnotateConfig.resolve` for the backend *and the dataset* (so
SciFact is annotated with its ``claim`` task without saying so) and runs
:func:`~utilabel.annotate.engine.annotate`, locally or as Ray shards.

:class:`AnnotationJob` is the same in two halves, for callers that need the inputs too (a dry-run
estimate, calibration on the same candidates): :meth:`AnnotationJob.for_dataset` then
:meth:`AnnotationJob.run` or :meth:`AnnotationJob.estimate`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.candidates import read_candidates
from ..data.dataset import Dataset
from ..errors import ConfigError
from ..llm.base import LLMBackend
from ..llm.registry import get_backend
from ..records import CandidateGroup, Document
from ..retrieve.bm25 import bm25_candidates
from .caller import Estimate
from .config import AnnotateConfig
from .distributed import annotate_ray
from .engine import AnnotationRun, annotate, estimate, wanted_queries

EXECUTORS = ("local", "ray")

Candidates = str | Path | Sequence[CandidateGroup]
"""Given candidates: a candidate JSONL (``utilabel retrieve`` output) or candidate groups."""


def dataset_candidates(dataset: Dataset, split: str = "train", candidates: Candidates | None = None, k: int = 10,
                       limit: int | None = None) -> list[CandidateGroup]:
    """The candidate groups of a run: BM25 top-``k`` of ``split``'s queries, or the first ``k`` (by rank) of
    each given group; the first ``limit`` queries either way."""
    if k < 1 or (limit is not None and limit < 1):
        raise ConfigError(f"k and limit must be ≥ 1, got k={k}, limit={limit}")
    if candidates is None:
        return bm25_candidates(dataset, split, k=k, limit=limit)
    groups = read_candidates(candidates, dataset.corpus) if isinstance(candidates, (str, Path)) else list(candidates)
    if limit is not None:
        groups = groups[:limit]
    return [CandidateGroup(g.query_id, g.query, tuple(sorted(g.candidates, key=lambda c: c.rank)[:k])) for g in groups]


@dataclass
class AnnotationJob:
    """What an annotation run of a dataset needs: candidate groups, corpus, gold answers and the config."""

    groups: list[CandidateGroup]
    corpus: Mapping[str, Document]
    answers: dict[str, Sequence[str]]
    config: AnnotateConfig

    @classmethod
    def for_dataset(cls, dataset: Dataset, backend: str, *, split: str = "train", candidates: Candidates | None = None,
                    k: int = 10, limit: int | None = None,
                    config: AnnotateConfig | Mapping[str, Any] | None = None) -> AnnotationJob:
        """The job for ``backend`` (a registered name) on ``dataset``. ``config``: a complete config used as
        is, or the options given explicitly (``None`` values: not given), resolved with
        :meth:`AnnotateConfig.resolve` for the backend and the dataset (its task)."""
        if not isinstance(config, AnnotateConfig):
            config = AnnotateConfig.resolve(backend, dataset, **dict(config or {}))
        groups = dataset_candidates(dataset, split, candidates, k, limit)
        answers: dict[str, Sequence[str]] = {qid: q.answers for qid, q in dataset.queries.items() if q.answers}
        return cls(groups, dataset.corpus, answers, config)

    def estimate(self, **options: Any) -> Estimate:
        """The dry run (:func:`~utilabel.annotate.engine.estimate`) of this job."""
        return estimate(self.groups, self.corpus, self.config, self.answers, **options)

    def run(self, backend: LLMBackend | str, out_dir: str | Path, *, backend_options: Mapping[str, Any] | None = None,
            executor: str = "local", shards: int | None = None, ray_address: str | None = None,
            progress: bool = True, **run_options: Any) -> AnnotationRun:
        """Run the job into ``out_dir``. ``backend``: an open backend, or a registered name opened (and closed)
        with ``backend_options``. ``executor="ray"`` (a name only) runs ``shards`` shards as Ray tasks
        (:func:`~utilabel.annotate.distributed.annotate_ray`; ``ray_address``). ``run_options`` go to
        :func:`~utilabel.annotate.engine.annotate` (``max_concurrency``, ``workers``, ``breaker``, ``shard``,
        ``overwrite``)."""
        if executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        if isinstance(backend, LLMBackend) and backend_options:
            raise ConfigError("backend_options apply to a backend given by name, not to an open backend")
        if executor == "ray":
            return self._run_ray(backend, out_dir, backend_options, shards, ray_address, run_options)
        if isinstance(backend, LLMBackend):
            return annotate(self.groups, self.corpus, backend, out_dir, self.config, answers=self.answers,
                            progress=progress, **run_options)
        with get_backend(backend, **dict(backend_options or {})) as opened:
            return annotate(self.groups, self.corpus, opened, out_dir, self.config, answers=self.answers,
                            progress=progress, **run_options)

    def _run_ray(self, backend: LLMBackend | str, out_dir: str | Path, backend_options: Mapping[str, Any] | None,
                 shards: int | None, address: str | None, run_options: dict[str, Any]) -> AnnotationRun:
        if not isinstance(backend, str):
            raise ConfigError("executor 'ray' builds a backend in every task: give the backend by name")
        if run_options.pop("shard", None):
            raise ConfigError("--shard and --executor ray exclude each other (ray runs all shards)")
        summary = annotate_ray(self.groups, self.corpus, backend, dict(backend_options or {}), out_dir, self.config,
                               shards, answers=self.answers, address=address, **run_options)
        out_dir = Path(out_dir)
        with open(out_dir / "judgments.jsonl", encoding="utf-8") as fh:
            labelled = {json.loads(line)["query_id"] for line in fh}
        wanted = wanted_queries(self.groups, self.answers, self.config)
        return AnnotationRun(summary, out_dir, [q for q in wanted if q not in labelled])


def annotate_dataset(dataset: Dataset, backend: LLMBackend | str, out_dir: str | Path, *, split: str = "train",
                     candidates: Candidates | None = None, k: int = 10, limit: int | None = None,
                     config: AnnotateConfig | Mapping[str, Any] | None = None, **run_options: Any) -> AnnotationRun:
    """Annotate ``dataset``'s ``split`` (BM25 top-``k``, or given ``candidates``) with ``backend`` into
    ``out_dir``; the config is resolved for the backend and the dataset (see :class:`AnnotationJob`).
    ``run_options``: those of :meth:`AnnotationJob.run`."""
    name = backend if isinstance(backend, str) else backend.name
    job = AnnotationJob.for_dataset(dataset, name, split=split, candidates=candidates, k=k, limit=limit, config=config)
    return job.run(backend, out_dir, **run_options)

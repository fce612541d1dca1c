"""The data a grid reads, each piece once: datasets, query samples, judgments snapshots, BM25
candidates, and the labels of the config's named sources.

* ``snapshots/`` (under the grid's ``out``) — judgments files as first read: the first use copies a
  judgments file there, so a background annotation run that keeps adding judgments does not change
  the labels of a resumed grid; a snapshot never changes once taken;
* ``candidates.<split>.k<depth>.jsonl`` — the BM25 candidates of the training split (the
  ``first_stage`` sources, label noise, label statistics).

Labels are resolved by :class:`utilabel.labels.sources.SourceReader`; this module only maps the config's
source names to :class:`utilabel.labels.sources.LabelSource` and reads judgments from snapshots.
Teacher scores of a source (:meth:`GridData.teacher`) come from :mod:`utilabel.labels.teacher`: a
judgments source's snapshot, the first stage's BM25 scores, or the human qrels grades.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ..data.judgments import read_judgments
from ..errors import ConfigError
from ..fileio import atomic_write
from ..labels import Labels
from ..labels.sources import LabelSource, SourceReader
from ..labels.teacher import (
    Teacher,
    candidates_teacher,
    judgments_teacher,
    mapping_teacher,
    normalize_teacher,
)
from ..records import Judgment
from ..seeding import rng_for
from . import label_variants as variants
from .config import ExperimentConfig

log = logging.getLogger(__name__)


def slug(text: str) -> str:
    """A file-name-safe form of a row or file name."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


class GridData:
    """Cached data access of one grid (see the module docstring); ``notes`` collects what the report should say."""

    def __init__(self, config: ExperimentConfig):
        self.config = config
        self.out = Path(config.out)
        self.notes: list[str] = []
        self._datasets: dict = {}
        self._samples: dict[str, list[str]] = {}
        self._cands: dict[int, dict[str, list[str]]] = {}
        self._snapshots: dict[Path, list[Judgment]] = {}
        self._reader: SourceReader | None = None
        self._teachers: dict[tuple[str, str, int], Teacher] = {}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.warning(text)

    def dataset(self, name: str):
        if name not in self._datasets:
            from ..data.registry import load_dataset

            self._datasets[name] = load_dataset(name)
        return self._datasets[name]

    def eval_spec(self, name: str):
        return next(d for d in self.config.datasets if d.name == name)

    def sample(self, name: str) -> list[str]:
        """Evaluation queries of a dataset: all (for a ``heldout`` set, all that no study trains on),
        or a seeded sample of ``max_queries`` of them (split order kept)."""
        if name not in self._samples:
            spec = self.eval_spec(name)
            qids = list(self.dataset(name).split_queries(spec.split))
            if spec.heldout:
                hows = {study.train_queries for study in self.config.studies}
                trained = {q for how in hows for q in self.train_query_ids(how)}
                qids = [q for q in qids if q not in trained]
                if not qids:
                    raise ConfigError(f"dataset {name}/{spec.split}: every query is a training query; "
                                      "nothing is held out")
            if spec.max_queries is not None and spec.max_queries < len(qids):
                chosen = set(rng_for(self.config.sample_seed, "eval", name).sample(qids, spec.max_queries))
                qids = [q for q in qids if q in chosen]
            self._samples[name] = qids
        return self._samples[name]

    def train_query_ids(self, how: str | int) -> list[str]:
        """The training queries of a study: ``all``, ``annotated`` (those of the first judgments source
        that exists; all when none does) or a seeded sample of ``how`` queries (split order kept)."""
        ds = self.dataset(self.config.train_dataset)
        all_q = list(ds.qrels(self.config.train_split))
        if how == "all":
            return all_q
        if how == "annotated":
            annotated = self.annotated_queries()
            if annotated is None:
                self.note("no judgments source available: 'annotated' training queries fall back to all queries")
                return all_q
            return [q for q in all_q if q in annotated]
        n = int(how)
        chosen = set(rng_for(self.config.sample_seed, "train", n).sample(all_q, min(n, len(all_q))))
        return [q for q in all_q if q in chosen]

    def snapshot(self, path: str | Path) -> list[Judgment] | None:
        """The judgments of ``path`` from its snapshot (taken on first use); None while the file is missing or empty."""
        path = Path(path)
        snap = self.out / "snapshots" / f"{slug(path.stem)}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}.jsonl"
        if snap not in self._snapshots:
            if not snap.exists():
                if not path.exists() or path.stat().st_size == 0:
                    return None
                with atomic_write(snap, "wb") as fh:
                    fh.write(path.read_bytes())
            self._snapshots[snap] = read_judgments(snap)
        return self._snapshots[snap]

    def _read_sources(self, paths: Sequence[str]) -> list[Judgment] | None:
        out: list[Judgment] = []
        for path in paths:
            part = self.snapshot(path)
            if part is None:
                return None
            out.extend(part)
        return out

    def annotated_queries(self) -> set[str] | None:
        """Queries labelled by the first judgments source whose file exists."""
        for src in self.config.sources:
            if src.kind == "judgments" and src.path:
                judgments = self.snapshot(src.path)
                if judgments is not None:
                    return {j.query_id for j in judgments}
        return None

    def candidates(self, depth: int = 10) -> dict[str, list[str]]:
        from ..retrieve.bm25 import cached_candidates

        if depth not in self._cands:  # read once: every label source, noise draw and label stat uses them
            path = self.out / f"candidates.{self.config.train_split}.k{depth}.jsonl"
            self._cands[depth] = cached_candidates(self.dataset(self.config.train_dataset), self.config.train_split,
                                                   depth, path)
        return self._cands[depth]

    # ---------------------------------------------------------------------------------- labels
    def label_source(self, name: str) -> LabelSource:
        """The config's source ``name`` as a :class:`LabelSource`: a judgments file, or a human source's
        TREC qrels file (its ``path``; none: the training split's qrels)."""
        src = self.config.source(name)
        return LabelSource(src.kind, (src.path,) if src.path and src.kind in ("judgments", "human") else (),
                           src.method, src.rule, src.label, src.with_qrels)

    @property
    def reader(self) -> SourceReader:
        if self._reader is None:
            self._reader = SourceReader(self.dataset(self.config.train_dataset), self.config.train_split,
                                        self._read_sources, self.candidates)
        return self._reader

    def labels(self, name: str, query_ids: Sequence[str]) -> Labels | None:
        """The labels of source ``name`` on ``query_ids``; None (and a note) while its judgments file is missing."""
        labels = self.reader.labels(self.label_source(name), query_ids)
        if labels is None:
            self.note(f"label source {name!r}: judgments file {self.config.source(name).path} not found; "
                      "its rows are skipped")
        return labels

    def margins(self, name: str) -> dict[str, float]:
        """How certain each query's labels of source ``name`` are (:func:`utilabel.labels.rule_margins`)."""
        return self.reader.margins(self.label_source(name))

    def stats(self, labels: Labels) -> dict:
        """Label statistics plus agreement with the human labels over the BM25 top-10 candidates."""
        return variants.label_stats(labels, self.reader.labels(LabelSource("human")), self.candidates())

    def teacher(self, name: str, normalize: str = "zscore", depth: int = 30) -> Teacher | None:
        """The teacher scores of source ``name``, normalised per query (:func:`utilabel.labels.teacher.normalize_teacher`):
        a judgments source's (its ``method`` only, when set), the first stage's BM25 scores of its top
        ``depth`` (the hard-negative depth, so every hard negative has a score) or the human qrels
        grades. None (and a note) while a judgments file is missing."""
        key = (name, normalize, depth)
        if key not in self._teachers:
            src = self.config.source(name)
            if src.kind == "judgments":
                judgments = self.snapshot(str(src.path))
                if judgments is None:
                    self.note(f"teacher source {name!r}: judgments file {src.path} not found; its rows are skipped")
                    return None
                raw = judgments_teacher(judgments, src.method)
            elif src.kind == "first_stage":
                from ..data.candidates import read_candidates

                self.candidates(depth)  # writes the cache file
                raw = candidates_teacher(read_candidates(self.out / f"candidates.{self.config.train_split}.k{depth}.jsonl"))
            else:
                raw = mapping_teacher(self.dataset(self.config.train_dataset).qrels(self.config.train_split))
            if not raw:
                raise ConfigError(f"teacher source {name!r} gives no teacher scores")
            self._teachers[key] = normalize_teacher(raw, normalize)
        return self._teachers[key]

"""The experiment executor: run a grid's planned models — train each once, evaluate, resume after a kill.

Planning is :class:`~.planner.StudyPlanner`'s (studies → models with labels in memory), data access
:class:`~.grid_data.GridData`'s; this module trains (:func:`utilabel.train.trainer.train` with the labels
in memory), retrieves, evaluates and runs the RAG reader. Artefacts under ``config.out`` (everything
keyed by content, so an interrupted grid resumes):

* ``snapshots/`` — judgments files as first read (see :mod:`.grid_data`);
* ``labels/`` — each trained model's labels as Judgment JSONL named by a hash of their content
  (provenance; the model key hashes the same content);
* ``models/<key>/`` — one training run per model; ``key`` hashes (training settings, labels, loss,
  seed) (:mod:`.keys`), a ``DONE.json`` marks it complete (the trainer itself resumes from its
  checkpoint when killed mid-training);
* ``runs/`` — TREC runs of every evaluated (row, seed, dataset);
* with a ``fusion`` section, every dense row is also fused with BM25 and evaluated as ``<row> +BM25``
  (the BM25 weight, when chosen on the dataset itself, is recorded with the result);
* ``results.jsonl`` — append-only results, one record per (row, seed, dataset, kind): a task
  whose record exists is never redone; ``events.jsonl`` — session start/stop times (:mod:`.results`);
* ``rag/`` — the reader's resumable answer logs; passage embeddings go to the shared cache of
  :mod:`utilabel.retrieve.dense` (keyed by model and corpus content).
* ``rounds/<source>-<loss>-s<seed>-<round-0 key>/`` — a ``round`` study's mined candidates
  (``mined.jsonl``, mined with the round-0 model; ``mined-dropped.jsonl`` in ``drop`` mode) and, unless
  ``round.check_dir`` puts it elsewhere, the judge's check of them (``checked/``, an annotation run
  folder with its own resumable call log).

Tasks run in config order: BM25 on every dataset first, the untrained base model on a study's
datasets just before the study, then each model of the study (train, then evaluate on the
study's datasets). ``deadline`` stops starting new tasks after a wall-clock time.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.trec import write_trec_run
from ..errors import ConfigError
from ..fileio import AppendLog, atomic_write
from . import label_variants as variants
from .config import ExperimentConfig, Study
from .grid_data import GridData, slug
from .planner import ModelSpec, StudyPlanner
from .results import BASE_ROW, BM25_ROW, FUSED_SUFFIX, MEASURES, MODELS_FILE, machine, result_key

log = logging.getLogger(__name__)


def _ds_slug(name: str) -> str:
    """A file-name-safe label of a dataset given by name or by path."""
    return slug(Path(name).name)


def _registry_backend(name: str, model: str | None):
    from ..llm.registry import get_backend

    return get_backend(name, **({"model": model} if model else {}))


class _Stop(Exception):
    """The deadline passed: start no new task."""


class ExperimentRunner:
    """Execute an :class:`ExperimentConfig` (see module docstring); ``data`` and ``planner`` are its
    data access and study planner."""

    def __init__(self, config: ExperimentConfig, show_progress: bool = False,
                 on_event: Callable[[str], None] | None = None, judge: Callable[[str, str | None], Any] | None = None):
        self.config = config
        #: ``judge(backend_name, model)`` → the LLM backend of a round study's check (default: the registry's)
        self.judge = judge or _registry_backend
        self.out = Path(config.out)
        self.show_progress = show_progress
        self.on_event = on_event or (lambda msg: None)
        self.data = GridData(config)
        self.planner = StudyPlanner(config, self.data)
        self._bm25: dict = {}
        self._reader = None
        self._by_model: dict[tuple[str, str, str], dict] = {}
        self._made_by: dict[str, str | None] = {}
        self._deadline: float | None = None

    @property
    def notes(self) -> list[str]:
        return self.data.notes

    def plan(self) -> list[ModelSpec]:
        """Every model of every study (deterministic). :meth:`run` plans each study when it reaches it,
        so judgments that a background annotation run adds meanwhile are used."""
        return [spec for study in self.config.studies for spec in self.planner.plan_study(study)]

    def model_dir(self, spec: ModelSpec) -> Path:
        return self.out / "models" / spec.key

    # -------------------------------------------------------------------------------- execute
    def done_keys(self) -> set[str]:
        recs = AppendLog.read(self.out / "results.jsonl")
        self._by_model = {(r["model_key"], r["dataset"], r["kind"]): r for r in recs
                          if r.get("model_key") and not r.get("alias_of")}
        self._made_by = {r["key"]: r.get("model_key") for r in recs if "key" in r}  # the last record wins
        return {r["key"] for r in recs if "key" in r}

    def _forget_stale(self, spec: ModelSpec, done: set[str]) -> None:
        """A result of ``spec``'s row that another model made (its record names another model key: the
        row's labels, loss or settings changed since) is not done: it is computed again, and its new
        record supersedes the old one (the last record of a key wins)."""
        kinds = [("retrieval", spec.row)] + ([("retrieval", spec.row + FUSED_SUFFIX)] if self.config.fusion else []) \
            + ([("rag", spec.row)] if self.config.rag else [])
        for ds_name in spec.datasets:
            for kind, row in kinds:
                key = self._key(row, spec.seed, ds_name, kind)
                made_by = self._made_by.get(key)
                if key in done and made_by and made_by not in (spec.key, row):
                    done.discard(key)
                    self.on_event(f"{row} seed {spec.seed} on {ds_name}: its {kind} result came from another model "
                                  f"({made_by[:12]}, now {spec.key[:12]}); computing it again")

    def run(self, deadline: float | None = None) -> dict:
        """Execute every task not done yet (stopping before ``deadline``, a ``time.time()`` value)."""
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.out / "config.json") as fh:
            json.dump(self.config.to_dict(), fh, indent=2)
        events = AppendLog(self.out / "events.jsonl")
        events.append({"event": "start", "time": time.time()})
        results = AppendLog(self.out / "results.jsonl")
        done = self.done_keys()
        counts = {"trained": 0, "evaluated": 0, "skipped": 0, "stopped_early": False}
        self._deadline = deadline
        try:
            self._run_all(results, done, counts)
        except _Stop:
            counts["stopped_early"] = True
        finally:
            events.append({"event": "stop", "time": time.time(), **counts})
            events.close()
            results.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        return counts

    def _check_deadline(self) -> None:
        if self._deadline and time.time() > self._deadline:
            raise _Stop

    def _run_all(self, results: AppendLog, done: set[str], counts: dict) -> None:
        """BM25 on every dataset, then study by study: its reference rows, then its models."""
        ref_done: set[tuple[str, str]] = set()
        if self.config.reference_rows:  # BM25 is cheap: every dataset first
            for d in self.config.datasets:
                ref_done.add((BM25_ROW, d.name))
                self._evaluate(BM25_ROW, "reference", 0, None, d.name, results, done, counts)
        for study in self.config.studies:
            if self.config.reference_rows:
                for ds_name in self.planner.study_datasets(study):
                    for row in (BM25_ROW, BASE_ROW):
                        if (row, ds_name) in ref_done:
                            continue
                        self._check_deadline()
                        ref_done.add((row, ds_name))
                        self._evaluate(row, "reference", 0, None, ds_name, results, done, counts)
            for spec in self.planner.plan_study(study):
                self._check_deadline()
                self._run_model(spec, results, done, counts)
                if study.kind == "round":
                    for nxt in self._next_round(study, spec, done, counts):
                        self._check_deadline()
                        self._run_model(nxt, results, done, counts)

    def _next_round(self, study: Study, first: ModelSpec, done: set[str], counts: dict) -> list[ModelSpec]:
        """The round-1 models after the round-0 model ``first`` (a ``round`` study, see
        :mod:`.config`): mine hard negatives for ``first``'s training queries with its model (positive-aware
        margins to its own positives), let the annotation run's judge check the first ``round.top`` mined
        candidates it has not judged yet (resumable: the check's call log replays), and plan the checked
        row and its no-check control. Nothing is mined or judged when every result of both rows exists."""
        rows = self.planner.round_rows(study, first)
        if not any(self._key(r, first.seed, d, "retrieval") not in done or self._fusion_pending(r, first.seed, d, done)
                   for r in rows for d in first.datasets):
            counts["skipped"] += 2
            return []
        from ..annotate.check import (
            CHECK_DIR,
            check_backend,
            check_negatives,
            run_checked_labels,
            without_excluded,
        )
        from ..data.candidates import read_candidates, write_candidates
        from ..data.judgments import read_judgments
        from ..labels import positives
        from ..retrieve.mine import MineConfig, mine_negatives

        rs = study.round_settings()
        src = self.config.source(first.source or "")
        if src.kind != "judgments" or not src.path:
            raise ConfigError(f"study {study.name!r}: a round needs a judgments source (the judge checks the "
                              f"mined negatives); {src.name!r} is {src.kind}")
        run_dir = Path(rs.run) if rs.run else Path(src.path).parent
        name = f"{slug(first.source or '')}-{first.loss}-s{first.seed}-{first.key[:10]}"
        folder = self.out / "rounds" / name
        check_dir = Path(rs.check_dir) / name if rs.check_dir else folder / CHECK_DIR
        model_path = self.train_model(first, counts)
        train_ds = self.data.dataset(self.config.train_dataset)
        mined_path = folder / "mined.jsonl"
        if not mined_path.exists():
            self.on_event(f"round: mine with {first.row} seed {first.seed}")
            mine_negatives(train_ds, self.config.train_split, model_path,
                           MineConfig(rank_hi=rs.rank_hi, relative_margin=rs.relative_margin,
                                      positive_score=rs.positive_score),
                           self.config.dense_config(show_progress=self.show_progress),
                           positives={q: positives(v) for q, v in first.labels.items()}, out=mined_path,
                           show_progress=self.show_progress)
        all_mined = read_candidates(mined_path)
        mined = [g for g in all_mined if g.query_id in first.labels]
        earlier = run_dir / CHECK_DIR
        seen = read_judgments(earlier / "judgments.jsonl") if (earlier / "judgments.jsonl").exists() else []
        backend_name, model = check_backend(run_dir, rs.backend, rs.model)
        self.on_event(f"round: the judge ({backend_name}) checks the top {rs.top} unjudged mined candidates "
                      f"of {len(mined)} queries into {check_dir}")
        with self.judge(backend_name, model) as backend:
            res = check_negatives(run_dir, mined, train_ds.corpus, backend, top=rs.top, out_dir=check_dir, seen=seen,
                                  progress=self.show_progress)
        labels, exclude = run_checked_labels(run_dir, rs.mode, src.rule, [earlier, check_dir])
        checked = {q: labels.get(q, {}) for q in first.labels}
        negatives = mined_path
        if rs.mode == "drop":  # rewritten from the current check (its content is in the model key)
            negatives = folder / "mined-dropped.jsonl"
            write_candidates(negatives, without_excluded(all_mined, exclude))
        added = sum(len(positives(checked[q])) - len(positives(first.labels[q])) for q in first.labels)
        self.on_event(f"round: {res.candidates} mined candidates checked ({(res.summary or {}).get('calls_new', 0)} "
                      f"new calls); {added} new positives, {sum(map(len, exclude.values()))} dropped")
        return self.planner.round_specs(study, first, checked, str(negatives), str(mined_path))

    def _run_model(self, spec: ModelSpec, results: AppendLog, done: set[str], counts: dict) -> None:
        """Train the model (unless every result it serves exists) and evaluate it on its datasets."""
        self._forget_stale(spec, done)
        pending = [d for d in spec.datasets if self._key(spec.row, spec.seed, d, "retrieval") not in done]
        if not pending and not self._rag_pending(spec.row, spec.seed, spec.datasets, done):
            counts["skipped"] += 1
            return
        model_path = self.train_model(spec, counts)
        for ds_name in spec.datasets:
            self._check_deadline()
            self._evaluate(spec.row, spec.study, spec.seed, model_path, ds_name, results, done, counts, spec=spec)

    def train_model(self, spec: ModelSpec, counts: dict) -> Path:
        """Train ``spec``'s model on its labels (in memory) unless ``models/<key>/DONE.json`` exists; the
        labels also go to ``labels/`` for provenance. Returns the model folder."""
        folder = self.model_dir(spec)
        marker = folder / "DONE.json"
        if marker.exists():
            return Path(json.loads(marker.read_text())["model"])
        from ..train.trainer import train

        self.on_event(f"train {spec.row} seed {spec.seed} ({spec.label_stats.get('queries', 0)} queries)")
        start = time.time()
        labels_path = variants.write_labels(self.out / "labels", spec.labels, spec.method)
        cfg = self.config.train_config(
            dataset=self.config.train_dataset, split=self.config.train_split, labels=[str(labels_path.resolve())],
            loss=spec.loss, out=str(folder), seed=spec.seed, device="cpu", save_every=0, show_progress=self.show_progress,
            **spec.train_options, **({"epochs": spec.epochs} if spec.epochs is not None else {}))
        model_path = Path(train(cfg, labels=spec.labels, teacher=spec.teacher))
        seconds = time.time() - start
        with atomic_write(marker) as fh:
            json.dump({"model": str(model_path), "row": spec.row, "seed": spec.seed, "seconds": seconds,
                       "labels": str(labels_path), "label_stats": spec.label_stats}, fh)
        with AppendLog(self.out / MODELS_FILE) as models:  # what the archive keeps of the model
            models.append({"model_key": spec.key, "row": spec.row, "seed": spec.seed, "seconds": seconds,
                           "label_stats": spec.label_stats, "time": time.time(), "machine": machine()})
        counts["trained"] += 1
        return model_path

    def _key(self, row: str, seed: int, dataset: str, kind: str) -> str:
        return result_key(self.config, row, seed, dataset, kind)

    def _rag_pending(self, row: str, seed: int, datasets: list[str], done: set[str]) -> bool:
        rag = self.config.rag
        if rag is None or row not in rag.rows:
            return False
        return any(self.data.eval_spec(d).rag and self._key(row, seed, d, "rag") not in done for d in datasets)

    def _retrieve(self, row: str, model_path: Path | None, ds_name: str) -> dict:
        ds = self.data.dataset(ds_name)
        qids = self.data.sample(ds_name)
        queries = {q: ds.queries[q] for q in qids}
        k = self.config.k + (1 if ds.ignore_identical_ids else 0)
        if row == BM25_ROW:
            from ..retrieve.bm25 import BM25Retriever

            if ds_name not in self._bm25:
                self._bm25[ds_name] = BM25Retriever(ds.corpus)
            return self._bm25[ds_name].search(queries, k=k)
        from ..retrieve.dense import DenseRetriever

        cfg = self.config.dense_config(show_progress=self.show_progress)
        retriever = DenseRetriever(ds.corpus, model_path or self.config.train_config().base_model, cfg)
        return retriever.search(queries, k=k)

    def _evaluate(self, row, study, seed, model_path, ds_name, results, done, counts, spec: ModelSpec | None = None):
        rkey = self._key(row, seed, ds_name, "retrieval")
        run_path = self.out / "runs" / f"{slug(row)}-s{seed}-{_ds_slug(ds_name)}.trec"
        need_rag = self._rag_pending(row, seed, [ds_name], done)
        need_fusion = self._fusion_pending(row, seed, ds_name, done)
        if (need_rag or need_fusion) and rkey in done and not run_path.exists():
            done.discard(rkey)  # the run file the reader or the fusion needs is gone: retrieve again
        if rkey in done and not (need_rag or need_fusion):
            counts["skipped"] += 1
            return
        run = None
        model_key = spec.key if spec is not None else row
        alias = self._by_model.get((model_key, ds_name, "retrieval"))
        alias_run = self.out / "runs" / f"{slug(alias['row'])}-s{seed}-{_ds_slug(ds_name)}.trec" if alias else None
        if rkey not in done and alias is not None and alias_run is not None and alias["row"] != row \
                and alias["seed"] == seed and alias_run.exists():
            # the same model (identical labels, loss, seed) was evaluated under another row name
            results.append({**alias, "key": rkey, "row": row, "study": study, "alias_of": alias["row"],
                            **self._spec_fields(spec), "time": time.time(), "seconds": 0.0})
            done.add(rkey)
            counts["evaluated"] += 1
            shutil.copyfile(alias_run, run_path)
        if rkey not in done:
            self.on_event(f"evaluate {row} seed {seed} on {ds_name} ({len(self.data.sample(ds_name))} queries)")
            start = time.time()
            run = self._retrieve(row, model_path, ds_name)
            write_trec_run(run_path, run, tag=slug(row))
            rec = {"key": rkey, "row": row, "study": study, "seed": seed, **self._scored(run, ds_name),
                   "seconds": time.time() - start, "time": time.time(), "model_key": model_key,
                   **self._spec_fields(spec)}
            results.append(rec)
            self._by_model[(model_key, ds_name, "retrieval")] = rec
            done.add(rkey)
            counts["evaluated"] += 1
        if need_rag or need_fusion:
            from ..data.trec import read_trec_run

            run = run if run is not None else read_trec_run(run_path)
        if need_rag:
            self._rag(row, study, seed, ds_name, run, results, done, counts)
        if need_fusion:
            self._fuse(row, study, seed, ds_name, run, results, done, counts, spec)

    def _scored(self, run: dict, ds_name: str) -> dict:
        """A run's result fields on a dataset's evaluation queries: the measures and, per query, the main
        metric (the paired significance tests of the report)."""
        from ..evaluate.retrieval import evaluate_run

        ds, es = self.data.dataset(ds_name), self.data.eval_spec(ds_name)
        qrels = {q: ds.qrels(es.split)[q] for q in self.data.sample(ds_name)}
        res = evaluate_run(run, qrels, measures=tuple(dict.fromkeys((*MEASURES, self.config.main_metric))),
                           relevance_level=ds.relevance_level, ignore_identical_ids=ds.ignore_identical_ids)
        return {"dataset": ds_name, "kind": "retrieval", "metrics": res.mean, "n_queries": len(qrels),
                "n_docs": len(ds.corpus), "machine": machine(),
                "per_query": {q: round(v[self.config.main_metric], 5) for q, v in sorted(res.per_query.items())}}

    def _fusion_pending(self, row: str, seed: int, ds_name: str, done: set[str]) -> bool:
        return (self.config.fusion is not None and row != BM25_ROW
                and self._key(row + FUSED_SUFFIX, seed, ds_name, "retrieval") not in done)

    def _fuse(self, row, study, seed, ds_name, run, results, done, counts, spec: ModelSpec | None = None) -> None:
        """``row``'s run fused with BM25's (:class:`~.config.FusionSettings`), evaluated as ``row +BM25``."""
        from ..evaluate.fusion import choose_fusion_weight
        from ..retrieve.hybrid import fuse, top_k

        fusion = self.config.fusion
        assert fusion is not None  # _fusion_pending checked it
        start = time.time()
        bm25 = self._bm25_run(ds_name)
        weight: float | None = None
        if fusion.weight == "choose" and fusion.method != "rrf":
            ds, es = self.data.dataset(ds_name), self.data.eval_spec(ds_name)
            qrels = {q: ds.qrels(es.split)[q] for q in self.data.sample(ds_name)}
            weight = choose_fusion_weight(bm25, run, qrels, fusion.grid, self.config.main_metric, fusion.method,
                                          ds.relevance_level, ds.ignore_identical_ids).weight
        elif fusion.method != "rrf":
            weight = float(fusion.weight)
        k = self.config.k + (1 if self.data.dataset(ds_name).ignore_identical_ids else 0)
        fused = top_k(fuse([bm25, run], fusion.method, weight, fusion.rrf_k), k)
        frow = row + FUSED_SUFFIX
        self.on_event(f"evaluate {frow} seed {seed} on {ds_name} (BM25 weight {weight})")
        rec = {"key": self._key(frow, seed, ds_name, "retrieval"), "row": frow, "study": study, "seed": seed,
               **self._scored(fused, ds_name), "fusion": {**fusion.settings(), "weight": weight},
               "seconds": time.time() - start, "time": time.time(), **self._spec_fields(spec)}
        results.append(rec)
        done.add(rec["key"])
        counts["evaluated"] += 1

    def _bm25_run(self, ds_name: str) -> dict:
        """BM25's run on a dataset (its run file, else retrieved now)."""
        from ..data.trec import read_trec_run

        path = self.out / "runs" / f"{slug(BM25_ROW)}-s0-{_ds_slug(ds_name)}.trec"
        return read_trec_run(path) if path.exists() else self._retrieve(BM25_ROW, None, ds_name)

    @staticmethod
    def _spec_fields(spec: ModelSpec | None) -> dict:
        if spec is None:
            return {}
        out = {"loss": spec.loss, "source": spec.source, "noise_rate": spec.noise_rate,
               "human_ratio": spec.human_ratio, "label_stats": spec.label_stats, "model_key": spec.key}
        if spec.teacher_source is not None:  # only teacher rows: other records stay as they were
            out["teacher"] = spec.teacher_source
        return out

    def reader(self):
        if self._reader is None:
            from ..llm.registry import get_backend

            rag = self.config.rag
            self._reader = get_backend(rag.reader, model=rag.model, **rag.options)
        return self._reader

    def _rag(self, row, study, seed, ds_name, run, results, done, counts):
        from ..evaluate.rag import RAGConfig, evaluate_rag

        rag = self.config.rag
        es = self.data.eval_spec(ds_name)
        self.on_event(f"RAG {row} seed {seed} on {ds_name} ({rag.limit} questions, k={rag.k})")
        start = time.time()
        res = evaluate_rag(run, self.data.dataset(ds_name), es.split, self.reader(),
                           RAGConfig(k=rag.k, limit=rag.limit, passage_chars=rag.passage_chars),
                           log_path=self.out / "rag" / f"{_ds_slug(ds_name)}.jsonl", query_ids=self.data.sample(ds_name))
        key = self._key(row, seed, ds_name, "rag")
        results.append({"key": key, "row": row, "study": study, "seed": seed, "dataset": ds_name, "kind": "rag",
                        "metrics": res.mean, "n_queries": len(res.per_query), "reader": f"{rag.reader}:{rag.model}",
                        "seconds": time.time() - start, "time": time.time()})
        done.add(key)
        counts["evaluated"] += 1



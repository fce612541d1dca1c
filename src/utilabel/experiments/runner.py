"""The experiment runner: expand a grid, train every model once, evaluate, resume after a kill.

Artefacts under ``config.out`` (everything keyed by content, so an interrupted grid resumes):

* ``snapshots/`` — judgments files as first read (see :meth:`ExperimentRunner._judgment_records`);
* ``labels/`` — training labels as Judgment JSONL named by a hash of their content;
* ``models/<key>/`` — one training run per model; ``key`` hashes (training settings,
  labels file, loss, seed), a ``DONE.json`` marks it complete (the trainer itself resumes from its
  checkpoint when killed mid-training);
* ``runs/`` — TREC runs of every evaluated (row, seed, dataset);
* ``results.jsonl`` — append-only results, one record per (row, seed, dataset, kind): a task
  whose record exists is never redone; ``events.jsonl`` — session start/stop times;
* ``rag/`` — the reader's resumable answer logs; passage embeddings go to the shared cache of
  :mod:`utilabel.retrieve.dense` (keyed by model and corpus content).

Tasks run in config order: BM25 on every dataset first, the untrained base model on a study's
datasets just before the study, then each model of the study (train, then evaluate on the
study's datasets). ``deadline`` stops starting new tasks after a wall-clock time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data.judgments import read_judgments
from ..data.trec import write_trec_run
from ..errors import ConfigError
from ..fileio import AppendLog, atomic_write
from ..labels import Labels, ranked_labels, ranked_values, rule_margins, run_label_rule
from ..records import Judgment
from ..train.data import human_labels, plan_labels, rng_for
from . import label_variants as variants
from .config import ExperimentConfig, Study

log = logging.getLogger(__name__)

BM25_ROW, BASE_ROW = "BM25", "base"
#: the label rule of the grid's labels files, which hold final weights (soft positives ≥ 1e-6, see
#: utilabel.labels.judgment_labels): every weight > 0 is a positive
FINAL_WEIGHTS = "threshold:1e-6"
MEASURES = ("nDCG@10", "R@100")


@dataclass
class ModelSpec:
    """One trained model of the grid."""

    study: str
    kind: str
    row: str
    loss: str
    seed: int
    datasets: list[str]
    source: str | None = None
    noise_rate: float | None = None
    human_ratio: float | None = None
    train_queries: str | int = "annotated"
    epochs: int | None = None
    labels_path: Path | None = None
    label_stats: dict = field(default_factory=dict)
    key: str = ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def _ds_slug(name: str) -> str:
    """A file-name-safe label of a dataset given by name or by path."""
    return _slug(Path(name).name)


def _fmt_rate(x: float) -> str:
    return f"{round(100 * x)}%"


class ExperimentRunner:
    """Plan and execute an :class:`ExperimentConfig` (see module docstring)."""

    def __init__(self, config: ExperimentConfig, show_progress: bool = False,
                 on_event: Callable[[str], None] | None = None):
        self.config = config
        self.out = Path(config.out)
        self.show_progress = show_progress
        self.on_event = on_event or (lambda msg: None)
        self._datasets: dict = {}
        self._samples: dict[str, list[str]] = {}
        self._bm25: dict = {}
        self._cands: dict[int, dict[str, list[str]]] = {}
        self._ranked_of: dict[str, dict[str, list[tuple[str, float]]] | None] = {}
        self._snapshots: dict[Path, list[Judgment]] = {}
        self._reader = None
        self.notes: list[str] = []
        self._by_model: dict[tuple[str, str, str], dict] = {}

    # ----------------------------------------------------------------------------- data access
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
        ds = self.dataset(self.config.train_dataset)
        all_q = list(ds.qrels(self.config.train_split))
        if how == "all":
            return all_q
        if how == "annotated":
            annotated = self.annotated_queries()
            if annotated is None:
                self._note("no judgments source available: 'annotated' training queries fall back to all queries")
                return all_q
            return [q for q in all_q if q in annotated]
        n = int(how)
        chosen = set(rng_for(self.config.sample_seed, "train", n).sample(all_q, min(n, len(all_q))))
        return [q for q in all_q if q in chosen]

    def _judgments(self, source_name: str) -> list[Judgment] | None:
        """Judgments of a source, from its snapshot in ``out/snapshots/``.

        The first use copies the judgments file into the snapshot, so a background annotation run
        that keeps adding judgments does not change the labels of a resumed grid. A snapshot never
        changes once taken, so it is read once (sources that share a file share the read).
        """
        src = self.config.source(source_name)
        path = Path(src.path or "")
        snap = self.out / "snapshots" / f"{_slug(path.stem)}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}.jsonl"
        if snap not in self._snapshots:
            if not snap.exists():
                if not path.exists() or path.stat().st_size == 0:
                    return None
                with atomic_write(snap, "wb") as fh:
                    fh.write(path.read_bytes())
            self._snapshots[snap] = read_judgments(snap)
        return self._snapshots[snap]

    def annotated_queries(self) -> set[str] | None:
        """Queries labelled by the first judgments source whose file exists."""
        for src in self.config.sources:
            if src.kind == "judgments":
                judgments = self._judgments(src.name)
                if judgments is not None:
                    return {j.query_id for j in judgments}
        return None

    def source_labels(self, name: str, query_ids: list[str]) -> Labels | None:
        src = self.config.source(name)
        if src.kind == "human":
            return variants.restrict(human_labels(self.dataset(self.config.train_dataset), self.config.train_split), query_ids)
        ranked = self._ranked(name)
        if ranked is None:
            return None
        return variants.restrict(ranked_labels(ranked, self._rule(name), "soft"), query_ids)

    def _rule(self, name: str) -> str:
        src = self.config.source(name)
        return src.rule or ("top1" if src.kind == "first_stage" else run_label_rule(Path(src.path).parent))

    def _ranked(self, name: str) -> dict[str, list[tuple[str, float]]] | None:
        """Per query, ``(doc_id, value)`` best first: the judgments' values (:func:`ranked_values`),
        or for a ``first_stage`` source the BM25 candidates, valued by rank (1, 0.9, …). Read once per
        source once it exists: a source's snapshot never changes once taken (a judgments file not written
        yet is looked for again by the next study)."""
        if self._ranked_of.get(name) is None:
            self._ranked_of[name] = self._read_ranked(name)
        return self._ranked_of[name]

    def _read_ranked(self, name: str) -> dict[str, list[tuple[str, float]]] | None:
        src = self.config.source(name)
        if src.kind == "first_stage":
            return {q: [(d, 1.0 - i / len(docs)) for i, d in enumerate(docs)] for q, docs in self.candidates().items()}
        judgments = self._judgments(name)
        if judgments is None:
            self._note(f"label source {name!r}: judgments file {src.path} not found; its rows are skipped")
            return None
        return ranked_values([j for j in judgments if src.method in (None, j.method)], src.label)

    def source_margins(self, name: str) -> dict[str, float]:
        """How certain each query's labels of a source are (:func:`utilabel.labels.rule_margins`)."""
        return rule_margins(self._ranked(name) or {}, self._rule(name))

    def _stats(self, labels: Labels) -> dict:
        """Label statistics plus agreement with the human labels over the BM25 top-10 candidates."""
        human = human_labels(self.dataset(self.config.train_dataset), self.config.train_split)
        return variants.label_stats(labels, human, self.candidates())

    def candidates(self, depth: int = 10) -> dict[str, list[str]]:
        from ..retrieve.bm25 import cached_candidates

        if depth not in self._cands:  # read once: every label source, noise draw and label stat uses them
            path = self.out / f"candidates.{self.config.train_split}.k{depth}.jsonl"
            self._cands[depth] = cached_candidates(self.dataset(self.config.train_dataset), self.config.train_split,
                                                   depth, path)
        return self._cands[depth]

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.warning(text)

    # ----------------------------------------------------------------------------------- plan
    def study_datasets(self, study: Study) -> list[str]:
        return list(study.datasets) if study.datasets else [d.name for d in self.config.datasets]

    def plan(self) -> list[ModelSpec]:
        """Every model of every study, with its labels written to disk (deterministic)."""
        return [spec for study in self.config.studies for spec in self.plan_study(study)]

    def plan_study(self, study: Study) -> list[ModelSpec]:
        """The models of one study. :meth:`run` plans each study when it reaches it, so judgments
        that a background annotation run adds meanwhile are used (their count is recorded)."""
        qids = self.train_query_ids(study.train_queries)
        datasets = self.study_datasets(study)
        specs: list[ModelSpec] = []
        for seed in study.seeds:
            for loss in study.losses:
                specs.extend(self._study_models(study, qids, datasets, loss, seed))
        return specs

    def _study_models(self, study: Study, qids, datasets, loss: str, seed: int) -> list[ModelSpec]:
        lab_dir = self.out / "labels"
        out: list[ModelSpec] = []
        if study.kind == "labels":
            for name in study.sources:
                labels = self.source_labels(name, qids)
                if labels is None:
                    continue
                out.append(ModelSpec(study.name, "labels", f"{name}/{loss}", loss, seed, datasets, source=name,
                                     train_queries=study.train_queries, labels_path=variants.write_labels(lab_dir, labels, name),
                                     label_stats=self._stats(labels)))
        elif study.kind == "noise":
            human = self.source_labels(study.sources[0], qids)
            cands = self.candidates()
            for rate in study.noise_rates:
                noisy = variants.add_false_positives(human, cands, rate, seed)
                method = f"{study.sources[0]}-noise{_fmt_rate(rate)}-s{seed}"
                out.append(ModelSpec(study.name, "noise", f"noise {_fmt_rate(rate)}/{loss}", loss, seed, datasets,
                                     source=study.sources[0], noise_rate=rate, train_queries=study.train_queries,
                                     labels_path=variants.write_labels(lab_dir, noisy, method), label_stats=self._stats(noisy)))
        else:
            llm = self.source_labels(study.llm_source, qids)
            if llm is None:
                return out
            human = self.source_labels(study.sources[0], qids)
            margins = self.source_margins(study.llm_source) if "uncertain" in study.human_choice else None
            for ratio, choice in ((r, c) for r in study.human_ratios for c in study.human_choice):
                if choice != study.human_choice[0] and ratio in (0.0, 1.0):
                    continue  # all or none of the queries: the choice makes no difference
                strategy = "uncertain" if choice == "uncertain" else "replace"
                mixed = plan_labels(human, llm, ratio, strategy, seed, margins=margins).labels(0)
                method = f"{study.llm_source}-human{ratio:g}-{choice}-s{seed}"
                row = f"human ratio {ratio:g}" + (f" ({choice})" if study.human_choice != ["random"] else "")
                out.append(ModelSpec(study.name, "ratio", f"{row}/{loss}", loss, seed, datasets,
                                     source=study.llm_source, human_ratio=ratio, train_queries=study.train_queries,
                                     labels_path=variants.write_labels(lab_dir, mixed, method), label_stats=self._stats(mixed)))
        for spec in out:
            spec.epochs = study.epochs
            spec.key = self.model_key(spec)
            if study.tag:
                spec.row = f"{spec.row} [{study.tag}]"
        return out

    def model_key(self, spec: ModelSpec) -> str:
        train = self.config.train_settings(**({"epochs": spec.epochs} if spec.epochs is not None else {}))
        # the labels file is named "<method>-<content hash>": only the content matters
        payload = {"train": train, "dataset": self.config.train_dataset, "split": self.config.train_split,
                   "labels": spec.labels_path.stem.rsplit("-", 1)[-1], "loss": self._objective(spec), "seed": spec.seed}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    @staticmethod
    def _objective(spec: ModelSpec) -> str:
        """The loss as the key sees it: with at most one positive per query, the losses whose gradient
        is then InfoNCE's (disj, infonce) are one objective, and their model is trained once."""
        from ..train.losses import LOSSES

        if spec.label_stats.get("max_positives", 2) <= 1 and LOSSES[spec.loss].infonce_with_one_positive:
            return "infonce"
        return spec.loss

    def model_dir(self, spec: ModelSpec) -> Path:
        return self.out / "models" / spec.key

    # -------------------------------------------------------------------------------- execute
    def done_keys(self) -> set[str]:
        recs = AppendLog.read(self.out / "results.jsonl")
        self._by_model = {(r["model_key"], r["dataset"], r["kind"]): r for r in recs
                          if r.get("model_key") and not r.get("alias_of")}
        return {r["key"] for r in recs if "key" in r}

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
        try:
            ref_done: set[str] = set()
            if self.config.reference_rows:  # BM25 is cheap: every dataset first
                for d in self.config.datasets:
                    ref_done.add((BM25_ROW, d.name))
                    self._evaluate(BM25_ROW, "reference", 0, None, d.name, results, done, counts)
            for study in self.config.studies:
                if self.config.reference_rows:
                    for ds_name in self.study_datasets(study):
                        for row in (BM25_ROW, BASE_ROW):
                            if (row, ds_name) in ref_done:
                                continue
                            if deadline and time.time() > deadline:
                                counts["stopped_early"] = True
                                return counts
                            ref_done.add((row, ds_name))
                            self._evaluate(row, "reference", 0, None, ds_name, results, done, counts)
                for spec in self.plan_study(study):
                    if deadline and time.time() > deadline:
                        counts["stopped_early"] = True
                        return counts
                    pending = [d for d in spec.datasets if self._key(spec.row, spec.seed, d, "retrieval") not in done]
                    if not pending and not self._rag_pending(spec.row, spec.seed, spec.datasets, done):
                        counts["skipped"] += 1
                        continue
                    model_path = self.train_model(spec, counts)
                    for ds_name in spec.datasets:
                        if deadline and time.time() > deadline:
                            counts["stopped_early"] = True
                            return counts
                        self._evaluate(spec.row, spec.study, spec.seed, model_path, ds_name, results, done, counts,
                                       spec=spec)
        finally:
            events.append({"event": "stop", "time": time.time(), **counts})
            events.close()
            results.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        return counts

    def train_model(self, spec: ModelSpec, counts: dict) -> Path:
        folder = self.model_dir(spec)
        marker = folder / "DONE.json"
        if marker.exists():
            return Path(json.loads(marker.read_text())["model"])
        from ..train.trainer import train

        self.on_event(f"train {spec.row} seed {spec.seed} ({spec.label_stats.get('queries', 0)} queries)")
        start = time.time()
        cfg = self.config.train_config(
            dataset=self.config.train_dataset, split=self.config.train_split, labels=[str(spec.labels_path.resolve())],
            label_rule=FINAL_WEIGHTS,
            loss=spec.loss, out=str(folder), seed=spec.seed, device="cpu", save_every=0, show_progress=self.show_progress,
            **({"epochs": spec.epochs} if spec.epochs is not None else {}))
        model_path = Path(train(cfg))
        with atomic_write(marker) as fh:
            json.dump({"model": str(model_path), "row": spec.row, "seed": spec.seed, "seconds": time.time() - start,
                       "labels": str(spec.labels_path), "label_stats": spec.label_stats}, fh)
        counts["trained"] += 1
        return model_path

    def _key(self, row: str, seed: int, dataset: str, kind: str) -> str:
        """Result key; dense rows carry a hash of the encoding settings, RAG rows of the reader
        settings too, so changing them never silently reuses results computed under others."""
        parts = []
        if row != BM25_ROW:
            parts.append(self.config.dense_settings())
        if kind == "rag":
            parts.append(asdict(self.config.rag))
        tag = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8] if parts else ""
        return f"{row}|s{seed}|{dataset}|{kind}" + (f"|{tag}" if tag else "")

    def _rag_pending(self, row: str, seed: int, datasets: list[str], done: set[str]) -> bool:
        rag = self.config.rag
        if rag is None or row not in rag.rows:
            return False
        return any(self.eval_spec(d).rag and self._key(row, seed, d, "rag") not in done for d in datasets)

    def _retrieve(self, row: str, model_path: Path | None, ds_name: str) -> dict:
        ds = self.dataset(ds_name)
        qids = self.sample(ds_name)
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
        from ..evaluate.retrieval import evaluate_run

        ds = self.dataset(ds_name)
        es = self.eval_spec(ds_name)
        rkey = self._key(row, seed, ds_name, "retrieval")
        run_path = self.out / "runs" / f"{_slug(row)}-s{seed}-{_ds_slug(ds_name)}.trec"
        need_rag = self._rag_pending(row, seed, [ds_name], done)
        if need_rag and rkey in done and not run_path.exists():
            done.discard(rkey)  # the run file the reader needs is gone: retrieve again
        if rkey in done and not need_rag:
            counts["skipped"] += 1
            return
        run = None
        model_key = spec.key if spec is not None else row
        alias = self._by_model.get((model_key, ds_name, "retrieval"))
        alias_run = self.out / "runs" / f"{_slug(alias['row'])}-s{seed}-{_ds_slug(ds_name)}.trec" if alias else None
        if rkey not in done and alias is not None and alias["row"] != row and alias["seed"] == seed \
                and alias_run.exists():
            # the same model (identical labels, loss, seed) was evaluated under another row name
            results.append({**alias, "key": rkey, "row": row, "study": study, "alias_of": alias["row"],
                            **self._spec_fields(spec), "time": time.time(), "seconds": 0.0})
            done.add(rkey)
            counts["evaluated"] += 1
            shutil.copyfile(alias_run, run_path)
        if rkey not in done:
            self.on_event(f"evaluate {row} seed {seed} on {ds_name} ({len(self.sample(ds_name))} queries)")
            start = time.time()
            run = self._retrieve(row, model_path, ds_name)
            write_trec_run(run_path, run, tag=_slug(row))
            qrels = {q: ds.qrels(es.split)[q] for q in self.sample(ds_name)}
            res = evaluate_run(run, qrels, measures=tuple(dict.fromkeys((*MEASURES, self.config.main_metric))), relevance_level=ds.relevance_level,
                               ignore_identical_ids=ds.ignore_identical_ids)
            rec = {"key": rkey, "row": row, "study": study, "seed": seed, "dataset": ds_name, "kind": "retrieval",
                   "metrics": res.mean, "n_queries": len(qrels), "n_docs": len(ds.corpus),
                   # per-query values of the main metric: the paired significance tests of the report
                   "per_query": {q: round(v[self.config.main_metric], 5) for q, v in sorted(res.per_query.items())},
                   "seconds": time.time() - start, "time": time.time(), "model_key": model_key,
                   **self._spec_fields(spec)}
            results.append(rec)
            self._by_model[(model_key, ds_name, "retrieval")] = rec
            done.add(rkey)
            counts["evaluated"] += 1
        if need_rag:
            from ..data.trec import read_trec_run

            run = run if run is not None else read_trec_run(run_path)
            self._rag(row, study, seed, ds_name, run, results, done, counts)

    @staticmethod
    def _spec_fields(spec: ModelSpec | None) -> dict:
        if spec is None:
            return {}
        return {"loss": spec.loss, "source": spec.source, "noise_rate": spec.noise_rate,
                "human_ratio": spec.human_ratio, "label_stats": spec.label_stats, "model_key": spec.key}

    def reader(self):
        if self._reader is None:
            from ..llm.registry import get_backend

            rag = self.config.rag
            self._reader = get_backend(rag.reader, model=rag.model, **rag.options)
        return self._reader

    def _rag(self, row, study, seed, ds_name, run, results, done, counts):
        from ..evaluate.rag import RAGConfig, evaluate_rag

        rag = self.config.rag
        es = self.eval_spec(ds_name)
        self.on_event(f"RAG {row} seed {seed} on {ds_name} ({rag.limit} questions, k={rag.k})")
        start = time.time()
        res = evaluate_rag(run, self.dataset(ds_name), es.split, self.reader(),
                           RAGConfig(k=rag.k, limit=rag.limit, passage_chars=rag.passage_chars),
                           log_path=self.out / "rag" / f"{_ds_slug(ds_name)}.jsonl", query_ids=self.sample(ds_name))
        key = self._key(row, seed, ds_name, "rag")
        results.append({"key": key, "row": row, "study": study, "seed": seed, "dataset": ds_name, "kind": "rag",
                        "metrics": res.mean, "n_queries": len(res.per_query), "reader": f"{rag.reader}:{rag.model}",
                        "seconds": time.time() - start, "time": time.time()})
        done.add(key)
        counts["evaluated"] += 1


#: the files that make a grid's results: what an archive keeps and a fresh machine resumes from
RESULT_FILES = ("results.jsonl", "events.jsonl")


def restore_results(out: str | Path, archive: str | Path) -> bool:
    """Seed an empty output folder with an archive's results (e.g. the committed ones), so a fresh
    machine continues the grid instead of redoing it; returns whether anything was copied."""
    out, archive = Path(out), Path(archive)
    if (out / RESULT_FILES[0]).exists() or not (archive / RESULT_FILES[0]).exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if (archive / name).exists():
            with atomic_write(out / name, "wb") as fh:
                fh.write((archive / name).read_bytes())
    return True


def archive_results(out: str | Path, archive: str | Path) -> None:
    """Copy the grid's result files into ``archive`` (next to a committed report)."""
    out, archive = Path(out), Path(archive)
    for name in RESULT_FILES:
        if (out / name).exists():
            with atomic_write(archive / name, "wb") as fh:
                fh.write((out / name).read_bytes())


def run_experiment(config: ExperimentConfig, deadline: float | None = None, show_progress: bool = False,
                   on_event: Callable[[str], None] | None = None, archive: str | Path | None = None) -> Path:
    """Run (or resume) the grid, then write the report; returns the report path. With ``archive``
    (a folder holding committed results), an empty output folder starts from the archived results
    and the results are copied back there at the end."""
    from .report import write_report

    if not config.studies:
        raise ConfigError("the experiment config has no studies")
    if archive is not None and restore_results(config.out, archive):
        log.warning("resuming from the results archived in %s", archive)
    runner = ExperimentRunner(config, show_progress=show_progress, on_event=on_event)
    try:
        runner.run(deadline=deadline)
    finally:
        if archive is not None:
            archive_results(config.out, archive)
    return write_report(config, notes=runner.notes)

"""A small end-to-end run for a laptop CPU (``utilabel demo``): BM25 candidates → live LLM
annotation (the embedded llama.cpp model, with the config ``utilabel annotate`` would use for it on
SciFact: :meth:`~utilabel.annotate.config.AnnotateConfig.resolve`, only the prompt sizes made smaller)
→ training on human vs LLM labels → evaluation on SciFact test (in-domain) and ArguAna
(out-of-domain) → a table and a report.

To fit in minutes on two CPU cores the demo annotates a handful of queries, trains a few steps and
evaluates by *re-ranking the BM25 top-``pool`` of sampled test queries* (the full experiment, with
full-corpus dense retrieval, is ``utilabel experiment run``; see docs/experiments.md). Every step
is cached in ``out`` (annotation calls, models, embeddings), so a re-run is fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..annotate.config import AnnotateConfig
from ..annotate.dataset import AnnotationJob
from ..errors import ConfigError
from ..fileio import atomic_write
from ..labels import Labels, judgment_labels
from ..llm.registry import get_backend

log = logging.getLogger(__name__)

GPU_HINT = ("This was a small CPU demo (a handful of queries, a few training steps, re-ranking evaluation). "
            "For the full experiment on a GPU server: `utilabel experiment run docs/results/scifact-cpu.yaml` "
            "with the sizes raised as described in docs/experiments.md (all SciFact-train queries annotated "
            "with a 7B+ model through `--backend openai`/vLLM, epochs 2+, max lengths 256, all test queries, 3 seeds).")


DEMO_ANNOTATION_SIZES: dict[str, Any] = {"max_passage_words": 60, "retries": 1}
"""The only annotation options the demo sets itself (shorter prompts, fewer retries, to fit a CPU);
everything else is the library's default for the annotator backend and SciFact."""


@dataclass
class DemoConfig:
    """Sizes of the demo. ``annotator_model``: the embedded llama.cpp model that annotates.
    ``method`` and ``label_rule``: ``None`` = the library's default for the ``annotator`` backend
    (:meth:`~utilabel.annotate.config.AnnotateConfig.resolve`: pointwise with llamacpp, P(useful)
    from token log-probabilities fused with the BM25 score, top-1 positives), or a method such as
    ``utilsel`` (with a larger model) and a rule of :mod:`utilabel.labels`."""

    out: str = "runs/demo"
    train_queries: int = 6
    candidates: int = 5
    annotator: str = "llamacpp"
    annotator_model: str = "smollm2-135m"
    method: str | None = None
    label_rule: str | None = None
    eval_queries: int = 30
    pool: int = 20
    train_steps: int = 6
    max_length: int = 64
    seed: int = 0
    eval_datasets: tuple[str, ...] = ("scifact", "arguana")

    def __post_init__(self):
        for name, lo, hi in (("train_queries", 1, 1000), ("candidates", 2, 50), ("eval_queries", 1, 10000),
                             ("pool", 5, 1000), ("train_steps", 1, 10000), ("max_length", 8, 512)):
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"demo {name} must be an integer in [{lo}, {hi}], got {v!r}")


@dataclass
class DemoResult:
    table: dict[str, dict[str, float]]
    report: Path
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_demo(config: DemoConfig | None = None, on_event: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo (see module docstring); returns the nDCG@10 table and the report path."""
    from ..data.registry import load_dataset
    from ..labels.sources import human_labels
    from ..retrieve.bm25 import bm25_candidates
    from ..seeding import rng_for
    from . import label_variants as variants

    cfg = config or DemoConfig()
    say = on_event or (lambda msg: None)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    steps: dict[str, float] = {}
    notes: list[str] = []

    say(f"1/4 BM25 top-{cfg.candidates} candidates for {cfg.train_queries} SciFact train queries")
    scifact = load_dataset("scifact")
    qids = sorted(rng_for(cfg.seed, "demo").sample(list(scifact.qrels("train")), cfg.train_queries),
                  key=list(scifact.qrels("train")).index)
    groups = [g for g in bm25_candidates(scifact, "train", k=cfg.candidates) if g.query_id in set(qids)]
    steps["candidates"] = time.time() - t0

    t = time.time()
    annotation = annotation_config(cfg, scifact)
    cfg = replace(cfg, method=annotation.method, label_rule=annotation.label_rule)  # the report names them
    say(f"2/4 live LLM annotation ({annotation.method}, {annotation.task} task, labels {annotation.label_rule}) "
        f"with {cfg.annotator}:{cfg.annotator_model}")
    llm = annotate_demo(cfg, scifact, groups, out / "annotation", annotation)
    human = variants.restrict(human_labels(scifact, "train"), qids)
    notes.append(f"LLM labels: {variants.label_stats(llm)['queries_with_positive']}/{len(qids)} queries with a useful "
                 f"passage; precision of LLM positives against human qrels: {_agreement(human, llm)}")
    steps["annotation"] = time.time() - t

    t = time.time()
    say(f"3/4 training on human vs LLM labels ({cfg.train_steps} steps each)")
    models = train_demo_models(cfg, out, {"human": human, "LLM": llm}, notes)
    steps["training"] = time.time() - t

    t = time.time()
    say(f"4/4 evaluation: re-ranking BM25 top-{cfg.pool} of {cfg.eval_queries} test queries per dataset")
    table = evaluate_demo_models(cfg, models)
    steps["evaluation"] = time.time() - t
    seconds = time.time() - t0
    report = _write_report(out / "report.md", cfg, table, steps, seconds, notes, len(qids))
    return DemoResult(table, report, seconds, steps, notes)


def train_demo_models(cfg: DemoConfig, out: Path, label_sets: dict[str, Labels],
                      notes: list[str]) -> dict[str, Path | None]:
    """One small model per label set with a positive (the untrained base as ``base``); a label set
    without a positive gets a note instead of a model."""
    from ..train.config import TrainConfig
    from ..train.trainer import train
    from . import label_variants as variants

    models: dict[str, Path | None] = {"base": None}
    for name, labels in label_sets.items():
        if not any(w > 0 for v in labels.values() for w in v.values()):
            notes.append(f"{name} labels have no positive: no {name} model")
            continue
        path = variants.write_labels(out / "labels", labels, name.lower())  # provenance and the folder's name
        tc = TrainConfig(dataset="scifact", split="train", labels=[str(path.resolve())], loss="disj",
                         out=str(out / "models" / f"{name.lower()}-{path.stem.rsplit('-', 1)[-1]}"),
                         epochs=100, max_steps=cfg.train_steps, batch_size=min(4, len(labels)), group_size=4,
                         query_max_len=32, passage_max_len=cfg.max_length, seed=cfg.seed, device="cpu",
                         save_every=0, show_progress=False)
        models[name] = Path(train(tc, labels=labels))
    return models


def evaluate_demo_models(cfg: DemoConfig, models: dict[str, Path | None]) -> dict[str, dict[str, float]]:
    """nDCG@10 of BM25 and of every model re-ranking BM25's top ``pool`` for a seeded sample of
    ``eval_queries`` test queries of each evaluation dataset."""
    from ..data.registry import load_dataset
    from ..evaluate.retrieval import evaluate_run
    from ..retrieve.bm25 import BM25Retriever
    from ..retrieve.dense import rerank
    from ..retrieve.encoder import Encoder
    from ..seeding import rng_for

    table: dict[str, dict[str, float]] = {"BM25": {}, **{m: {} for m in models}}
    encoders = {m: Encoder(p, "cpu", query_max_len=32, passage_max_len=cfg.max_length) for m, p in models.items()}
    for ds_name in cfg.eval_datasets:
        ds = load_dataset(ds_name)
        all_q = list(ds.qrels("test"))
        sample = set(rng_for(cfg.seed, "demo-eval", ds_name).sample(all_q, min(cfg.eval_queries, len(all_q))))
        eq = [q for q in all_q if q in sample]
        pool = BM25Retriever(ds.corpus).search({q: ds.queries[q] for q in eq},
                                               k=cfg.pool + (1 if ds.ignore_identical_ids else 0))
        qrels = {q: ds.qrels("test")[q] for q in eq}

        def ndcg(run, ds=ds, qrels=qrels):
            return evaluate_run(run, qrels, measures=["nDCG@10"], relevance_level=ds.relevance_level,
                                ignore_identical_ids=ds.ignore_identical_ids).mean["nDCG@10"]

        table["BM25"][ds_name] = ndcg(pool)
        for m, enc in encoders.items():
            table[m][ds_name] = ndcg(rerank(enc, ds.corpus, {q: ds.queries[q] for q in eq}, pool))
    return table


def annotation_config(cfg: DemoConfig, dataset) -> AnnotateConfig:
    """The demo's annotation config: the library's resolution for the annotator backend and ``dataset``
    (its task), with the demo's sizes (:data:`DEMO_ANNOTATION_SIZES`) and its method/rule if set."""
    return AnnotateConfig.resolve(cfg.annotator, dataset, method=cfg.method, label_rule=cfg.label_rule,
                                  **DEMO_ANNOTATION_SIZES)


def annotate_demo(cfg: DemoConfig, dataset, groups, out: Path, config: AnnotateConfig) -> Labels:
    """Annotate ``groups`` live with the demo's annotator into ``out`` with ``config`` (from
    :func:`annotation_config`); the LLM labels under the run's label rule. A folder from an earlier demo
    with other settings is re-labelled (its call log is reused)."""
    job = AnnotationJob.for_dataset(dataset, cfg.annotator, candidates=groups, k=cfg.candidates, config=config)
    with get_backend(cfg.annotator, model=cfg.annotator_model) as backend:
        run = job.run(backend, out, progress=False, overwrite=True)
    return judgment_labels(run.judgments, config.label_rule, field="utility")


def _agreement(human, llm) -> str:
    pos = [(q, d) for q, v in llm.items() for d, w in v.items() if w > 0]
    if not pos:
        return "n/a (no LLM positives)"
    hit = sum(1 for q, d in pos if human.get(q, {}).get(d, 0) > 0)
    return f"{hit}/{len(pos)}"


def format_table(table: dict[str, dict[str, float]]) -> str:
    datasets = list(next(iter(table.values())).keys()) if table else []
    lines = ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for row, vals in table.items():
        lines.append(f"| {row} | " + " | ".join(f"{vals.get(d, float('nan')):.3f}" for d in datasets) + " |")
    return "\n".join(lines)


def _write_report(path: Path, cfg: DemoConfig, table, steps, seconds, notes, n_train) -> Path:
    text = "\n".join([
        "# utilabel demo (small CPU run)", "",
        f"{n_train} SciFact train queries × {cfg.candidates} BM25 candidates annotated live by "
        f"`{cfg.annotator}:{cfg.annotator_model}` ({cfg.method}); bi-encoders (all-MiniLM-L6-v2, Disj-InfoNCE, "
        f"{cfg.train_steps} steps) trained on human vs LLM labels of the same queries; nDCG@10 of re-ranking the "
        f"BM25 top-{cfg.pool} for {cfg.eval_queries} sampled test queries per dataset "
        "(SciFact in-domain, ArguAna out-of-domain).", "",
        format_table(table), "",
        *[f"- {n}" for n in notes], "",
        f"Wall time {seconds / 60:.1f} min (" + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()) + ").", "",
        GPU_HINT, ""])
    with atomic_write(path) as fh:
        fh.write(text)
    return path

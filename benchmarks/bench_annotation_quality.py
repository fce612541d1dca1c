"""Label quality of the embedded model's pointwise judge: the grid that picks the local defaults.

For one dataset split (first ``--limit`` queries, BM25 top-``--k`` candidates), runs ``utilabel
annotate`` (pointwise, no pseudo-answer, the ``transformers`` backend: batched forward passes) once per
variant into ``--root/<dataset>-<split>/<variant>/`` (resumable: every scored call is in the variant's
``calls.jsonl``; a variant that only re-weights signals replays the calls of the ``all`` variant and
costs nothing), then reports, per variant and label rule, the ranking measures of the LLM order against
the BM25 order and the agreement of the labels with human qrels next to the free baseline "BM25 top-1
is the positive" (:mod:`utilabel.annotate.report`).

Variants (``--variants``, comma-separated):

* ``yesno`` — the dataset's task wording (e.g. ``claim`` for SciFact), log-odds of Yes/No;
* ``yesno-qa`` — the generic question wording (task ``qa``) on the same passages;
* ``graded`` / ``ql`` — expected 0–3 grade / query likelihood alone;
* ``all`` — yesno + graded + ql + first_stage, weights 1 (computes every signal once);
* ``fused:<g>,<q>,<f>`` — yesno + graded·g + ql·q + first_stage·f, replayed from ``all``'s calls;
* ``search`` — every ``fused`` weight combination in {0, 0.5, 1, 2}³, replayed; the best by kappa of
  ``top1+threshold:0.5`` (ties: precision@1) is reported. Choose on training queries only;
* ``fs:<f>`` — yesno + first_stage·f, replayed from ``yesno``'s calls (free);
* ``search-fs`` — ``fs`` for f in {0.25, 0.5, 1, 2, 4}, the best reported as above;
* ``gfs:<f>`` / ``search-gfs`` — the same with ``graded`` as the base signal (replayed from ``graded``,
  which replays ``all``; a final run computes only the graded prompt).

Run (resumable; writes the markdown to ``--out`` and prints it)::

    python benchmarks/bench_annotation_quality.py --dataset scifact --split train --limit 20 \
        --variants yesno,yesno-qa,all,search --out docs/results/annotation/screen-scifact-train.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(REPO.parent / "shared" / "data"))

from _report import machine  # noqa: E402

from utilabel.annotate import AnnotateConfig, annotate  # noqa: E402
from utilabel.annotate.report import failure_table, quality_tables, run_quality  # noqa: E402
from utilabel.data.registry import load_dataset  # noqa: E402
from utilabel.retrieve.bm25 import bm25_candidates  # noqa: E402

RULES = ("threshold:0.5", "top1", "top1+threshold:0.5", "top2")
ALL = ("yesno", "graded", "ql", "first_stage")
GRID = (0.0, 0.5, 1.0, 2.0)


class ReplayOnly:
    """Stands in for the model when every call is in the log (call keys include the model name)."""

    def __init__(self, model: str):
        self.model = model

    def __getattr__(self, name):
        if name.startswith("_") or name not in ("chat", "chat_many", "logprob", "logprob_many", "token_logprobs",
                                                "token_logprobs_many"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            raise SystemExit(f"a replayed variant needed a new call ({name}); run its source variant first")
        return call


def variant_config(name: str, task: str) -> tuple[dict, str | None]:
    """``(AnnotateConfig kwargs, variant whose calls it replays)`` for a variant name."""
    base = {"method": "pointwise", "answer_source": "none", "task": task}
    if name == "yesno":
        return {**base, "signals": ("yesno",)}, None
    if name == "yesno-qa":
        return {**base, "task": "qa", "signals": ("yesno",)}, None
    if name in ("graded", "ql"):
        return {**base, "signals": (name,)}, "all"
    if name == "all":
        return {**base, "signals": ALL}, "yesno"
    if name.startswith("gfs:"):
        return {**base, "signals": ("graded", "first_stage"), "weights": {"first_stage": float(name[4:])}}, "graded"
    if name.startswith("fs:"):
        return {**base, "signals": ("yesno", "first_stage"), "weights": {"first_stage": float(name[3:])}}, "yesno"
    if name.startswith("fused:"):
        g, q, f = (float(x) for x in name.split(":", 1)[1].split(","))
        return {**base, "signals": ALL, "weights": {"graded": g, "ql": q, "first_stage": f}}, "all"
    raise SystemExit(f"unknown variant {name!r}")


def calibration_table(runs, folder, groups, qrels, n, level) -> list[str]:
    """Thresholds chosen on the first ``n`` queries (kappa), agreement on the remaining ones."""
    from utilabel.data.judgments import read_judgments
    from utilabel.labels import LabelRule, calibrate, ranked_values, rule_agreement

    order = [g.query_id for g in groups]
    fit, held = set(order[:n]), set(order[n:])
    human = {q: {d for d, g in qrels[q].items() if g >= level} for q in order}
    first = {g.query_id: [(c.doc_id, -float(c.rank)) for c in g.candidates] for g in groups}
    base = rule_agreement({q: first[q] for q in held}, human, LabelRule(top=1))
    lines = [f"Calibrated thresholds (kappa) chosen on the first {len(fit)} queries, agreement on the other "
             f"{len(held)}; free baseline on those: kappa {base.kappa:.3f}, F1 {base.f1:.3f}.", "",
             "| run | rule (chosen) | precision | recall | F1 | kappa | LLM pos/q |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        ranked = ranked_values(read_judgments(folder / r.name / "judgments.jsonl"))
        for top in (0, 1):
            rule, _ = calibrate({q: ranked[q] for q in fit if q in ranked}, human, top, "kappa")
            a = rule_agreement({q: ranked[q] for q in held if q in ranked}, human, rule)
            lines.append(f"| {r.name} | {rule.spec} | {a.precision:.3f} | {a.recall:.3f} | {a.f1:.3f} | "
                         f"{a.kappa:.3f} | {(a.tp + a.fp) / max(len(held), 1):.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--max-passage-words", type=int, default=100)
    ap.add_argument("--variants", default="yesno")
    ap.add_argument("--root", default=str(REPO / "runs" / "quality"))
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--out", help="write the markdown report here")
    ap.add_argument("--calibrate", type=int, default=0,
                    help="calibrate thresholds (kappa) on the first N queries, evaluate on the rest")
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    qrels = ds.qrels(args.split)
    groups = [g for g in bm25_candidates(ds, args.split, k=args.k, limit=args.limit) if g.query_id in qrels]
    folder = Path(args.root) / f"{args.dataset}-{args.split}"
    names = [v for v in args.variants.split(",") if v]
    if "search-gfs" in names:
        names = [n for n in names if n != "search-gfs"] + [f"gfs:{f:g}" for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    if "search-fs" in names:
        names = [n for n in names if n != "search-fs"] + [f"fs:{f:g}" for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    if "search" in names:
        names = [n for n in names if n != "search"] + [f"fused:{g:g},{q:g},{f:g}" for g, q, f in
                                                        itertools.product(GRID, repeat=3)]
    backend = None
    results, timing = [], {}
    for name in names:
        kwargs, replay = variant_config(name, ds.task or "qa")
        cfg = AnnotateConfig(max_passage_words=args.max_passage_words, **kwargs)
        out = folder / name.replace(":", "_").replace(",", "-")
        seeded_only = name in ("all", "graded", "ql")  # seeded with earlier calls, computes what is missing
        src = folder / replay / "calls.jsonl" if replay else None
        if replay and not seeded_only:  # makes no calls of its own: always replay the source's current log
            if not src.exists():
                raise SystemExit(f"variant {name} replays {replay}: run that variant first")
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / "calls.jsonl")
        elif replay and src.exists() and not (out / "calls.jsonl").exists():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / "calls.jsonl")
        summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
        done = summary.get("complete") and summary.get("queries") == len(groups)
        if backend is None and (seeded_only or not replay) and not done:  # replay-only variants never load it
            from utilabel.llm import get_backend

            backend = get_backend("transformers", model=args.model)
        t0 = time.perf_counter()
        model = backend if (seeded_only or not replay) and backend is not None else ReplayOnly(args.model)
        annotate(groups, ds.corpus, model, out, cfg, progress=not replay or seeded_only)
        timing[name] = time.perf_counter() - t0
        results.append(run_quality(out, qrels, RULES, ds.relevance_level))
    keep, fused = [], []
    for prefix in ("fused_", "fs_", "gfs_"):
        group = [r for r in results if r.name.startswith(prefix)]
        if len(group) > 1:
            best = max(group, key=lambda r: (r.rules["top1+threshold:0.5"].kappa, r.llm["P@1"]))
            fused += group
            keep.append(best)
            print(f"best {prefix[:-1]} weighting by kappa of top1+threshold:0.5: {best.name}")
    keep = [r for r in results if r not in fused] + keep
    lines = [f"### {args.dataset} {args.split}: first {args.limit} queries with qrels ({len(groups)}), "
             f"BM25 top-{args.k}, passages ≤ {args.max_passage_words} words, {args.model}", "",
             f"Machine: {machine()}. Variants: {', '.join(r.name for r in keep)}"
             + (f" (best of {len(fused)} fusion weightings, chosen here)" if fused else "") + ".", "",
             *quality_tables(keep), "", *failure_table([folder / r.name for r in keep])]
    if args.calibrate:
        lines += ["", *calibration_table(keep, folder, groups, qrels, args.calibrate, ds.relevance_level)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

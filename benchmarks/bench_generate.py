"""Query generation with the embedded default model: speed, the dry-run estimate against the real run,
and what each filter drops.

``utilabel generate``'s library path on ``--passages N`` (default 20) SciFact passages (a seeded sample),
task ``claim`` (SciFact's), two queries per passage, Qwen2.5-Coder-1.5B on the embedded llama.cpp
server (``llamacpp`` backend, its default slots and threads). Reported:

* the dry-run estimate (calls, tokens, minutes at the CLI's default 15 prompt / 4 generated tok/s)
  next to the real run's tokens and wall time (model loading excluded: the server starts before the
  clock), and queries generated per second;
* the filters: the text filters' drops, and the BM25 round trip at k = 1, 5, 10, 20, 100 (the run
  records the source passage's rank up to 100, so one run gives every k);
* the same round trip for SciFact's human train claims (the rank of their best gold passage): what a
  filter at k would drop of real queries;
* with ``--judge``: the pointwise judge's P(useful) of each source passage (one scoring call per query
  left after the text filters and round trip at k=100), and how it agrees with the round trip.

Writes JSON and markdown to ``--out`` (default ``runs/bench-generate``; BENCHMARKS.md is merged by hand):

    python benchmarks/bench_generate.py [--passages 20] [--judge]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
from _report import machine  # noqa: E402

from utilabel.annotate.engine import estimate_summary  # noqa: E402
from utilabel.data.registry import load_dataset  # noqa: E402
from utilabel.generate import GenerateConfig, estimate_generation, generate  # noqa: E402
from utilabel.llm import get_backend  # noqa: E402

PROMPT_TPS, GEN_TPS = 15.0, 4.0  # the CLI's dry-run defaults (cli/annotate.py)
KS = (1, 5, 10, 20, 100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=20)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--judge", action="store_true")
    ap.add_argument("--out", default="runs/bench-generate")
    args = ap.parse_args(argv)
    out = Path(args.out)
    ds = load_dataset("scifact")
    config = GenerateConfig(passages=args.passages, task="claim", queries_per_passage=2, round_trip_k=100,
                            judge=args.judge)
    est = estimate_summary(estimate_generation(ds, config), PROMPT_TPS, GEN_TPS)
    with get_backend("llamacpp", model=args.model) as backend:
        t0 = time.perf_counter()
        run = generate(ds, backend, out / "folder", config, progress=True, max_concurrency=None, overwrite=True)
        wall = time.perf_counter() - t0
    s = run.summary
    rows = [json.loads(x) for x in (out / "folder" / "generations.jsonl").read_text().splitlines()]
    text_reasons = ("too_short", "too_long", "refers_to_passage", "copies_passage", "duplicate", "near_duplicate")
    passed_text = [r for r in rows if r["reason"] not in text_reasons]
    round_trip = {k: sum(1 for r in passed_text if r["bm25_rank"] is not None and r["bm25_rank"] <= k) for k in KS}
    result = {
        "machine": machine(), "model": args.model, "passages": s["passages"], "generated": s["generated"],
        "estimate": est, "real": {"calls": s["calls_new"] + s["calls_cached"], "calls_new": s["calls_new"],
                                  "prompt_tokens": s["prompt_tokens"], "completion_tokens": s["completion_tokens"],
                                  "wall_s": round(wall, 1)},
        "generation_s": round(wall - (s["judge"] or {}).get("elapsed_s_this_run", 0.0), 1),
        "queries_per_s": round(s["generated"] / wall, 3), "dropped": s["dropped"], "kept": s["kept"],
        "after_text_filters": len(passed_text), "round_trip_kept_at_k": round_trip, "judge": s["judge"],
    }
    result["human_train_round_trip_at_k"] = _human_round_trip(ds)
    if args.judge:
        judged = [r for r in rows if r["judge_utility"] is not None]
        result["judge_utility_by_round_trip"] = {
            f"rank<={k}": _mean([r["judge_utility"] for r in judged if r["bm25_rank"] and r["bm25_rank"] <= k])
            for k in (1, 20)} | {"rank>20": _mean([r["judge_utility"] for r in judged
                                                   if not r["bm25_rank"] or r["bm25_rank"] > 20])}
        result["judge_kept_at_0.5"] = sum(r["judge_utility"] >= 0.5 for r in judged)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    (out / "bench.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _human_round_trip(ds) -> dict[int, float]:
    """Fraction of SciFact's human train claims with a gold passage in BM25's top-k."""
    from utilabel.retrieve.bm25 import BM25Retriever

    queries, qrels = ds.split_queries("train"), ds.qrels("train")
    run = BM25Retriever(ds.corpus).search(queries, k=max(KS))
    best = []
    for q in queries:
        ranked = [d for d, _ in sorted(run[q].items(), key=lambda kv: (-kv[1], kv[0]))]
        ranks = [ranked.index(d) + 1 for d, rel in qrels[q].items() if rel > 0 and d in ranked]
        best.append(min(ranks) if ranks else None)
    return {k: round(sum(1 for r in best if r and r <= k) / len(best), 3) for k in KS}


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def _markdown(r: dict) -> str:
    e, real = r["estimate"], r["real"]
    lines = [
        f"## Query generation ({r['model']}, embedded llama.cpp, {r['passages']} SciFact passages, claim task, 2 per passage)",
        "",
        f"Machine: {r['machine']}.",
        "",
        "| | calls | prompt tokens | completion tokens | time |",
        "|---|---:|---:|---:|---:|",
        f"| dry-run estimate | {e['calls']} | {e['prompt_tokens']:,} | {e['completion_tokens']:,} | "
        f"{e['estimated_seconds'] / 60:.1f} min |",
        f"| real run{' (replayed from the call log)' if not real['calls_new'] else ''} | {real['calls']} | {real['prompt_tokens']:,} | {real['completion_tokens']:,} | "
        f"{real['wall_s'] / 60:.1f} min |",
        "",
        f"{r['generated']} queries generated, {r['queries_per_s']} queries/s; kept {r['kept']} with the round trip "
        f"at k=100 (the bench's setting).",
        "",
        f"Text filters dropped: {json.dumps({k: v for k, v in r['dropped'].items() if v})}; "
        f"{r['after_text_filters']} left.",
        "",
        "Round trip (source passage in BM25's top-k), of those: "
        + ", ".join(f"k={k}: {n}" for k, n in r["round_trip_kept_at_k"].items()) + ".",
        "",
        "SciFact's human train claims with a gold passage in BM25's top-k: "
        + ", ".join(f"k={k}: {v:.1%}" for k, v in r["human_train_round_trip_at_k"].items()) + ".",
    ]
    if "judge_utility_by_round_trip" in r:
        lines += ["", f"Judge P(useful) mean by source rank: {json.dumps(r['judge_utility_by_round_trip'])}; "
                      f"{r['judge_kept_at_0.5']} at ≥ 0.5."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

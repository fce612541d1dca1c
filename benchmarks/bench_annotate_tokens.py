"""Annotation cost and agreement on SciFact train (BM25 top-10), Qwen2.5-Coder-1.5B.

1. Tokens per annotated query, ``utilsel`` compact (default: relevance selection, then one call
   that writes the pseudo-answer from the relevance-selected passages and selects among them) vs
   the same pipeline in the paper's multi-turn prompt format (relsel, pseudo-answer, utilsel;
   one user/assistant turn per passage), on the same 50 queries × 10 candidates. Prompt tokens
   are exact: every prompt is rendered and tokenized with the model's own tokenizer and chat
   template (no generation); completions are the same synthetic well-formed outputs for both
   formats (40-word answer, selection of ``f`` of the passages), for several selection rates f
   because later steps only see the relevance-selected passages.
2. Seconds per query and agreement with human qrels, read from real annotation runs made with
   ``utilabel annotate`` (background, resumable) under ``runs/annotations/``.

Run: ``python benchmarks/bench_annotate_tokens.py [--runs DIR ...]``. Writes the BENCHMARKS.md
section ``annotate`` and ``docs/results/annotation/scifact-train-qwen1.5b.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(REPO.parent / "shared" / "data"))

from _report import machine, update_section  # noqa: E402

from utilabel.annotate import AnnotateConfig, estimate  # noqa: E402
from utilabel.data.judgments import read_judgments  # noqa: E402
from utilabel.data.registry import load_dataset  # noqa: E402
from utilabel.labels import LabelRule, rule_agreement  # noqa: E402
from utilabel.records import Judgment  # noqa: E402
from utilabel.retrieve.bm25 import bm25_candidates  # noqa: E402

RESULTS = REPO / "docs" / "results" / "annotation" / "scifact-train-qwen1.5b.md"
DEFAULT_RUNS = [REPO / "runs" / "annotations" / n for n in (
    "scifact-train-utilsel-qwen1.5b", "scifact-train-pointwise-noanswer-qwen1.5b",
    "scifact-train-pointwise-qwen1.5b", "scifact-train-relsel-qwen1.5b", "scifact-train-relsel-paper-qwen1.5b")]



def agreement(js, qrels, field: str, threshold: float):
    """Agreement of ``field`` ≥ ``threshold`` with qrels over the judged queries (``.queries`` added)."""
    ranked: dict[str, list] = {}
    for j in js:
        value = getattr(j, field)
        if value is not None and j.query_id in qrels:
            ranked.setdefault(j.query_id, []).append((j.doc_id, float(value)))
    human = {q: {d for d, g in qrels[q].items() if g >= 1} for q in ranked}
    a = rule_agreement(ranked, human, LabelRule(threshold=threshold))
    a.queries = len(ranked)
    return a

def tokenizer():
    from transformers import AutoTokenizer

    from utilabel.llm.models import resolve_model

    path = resolve_model("qwen2.5-coder-1.5b")
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def token_table(ds, groups, tok, words: int) -> tuple[list[str], dict]:
    def count_messages(messages):
        out = tok.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True)
        return len(out["input_ids"] if hasattr(out, "keys") else out)

    def count_text(text):
        return len(tok(text, add_special_tokens=False)["input_ids"]) + 1  # + end-of-turn token

    variants = [("compact (default, joint answer+selection)", dict(style="compact")),
                ("compact, separate pseudo-answer call", dict(style="compact", joint=False)),
                ("paper multi-turn", dict(style="paper"))]
    rows, raw = [], {}
    for f in (0.2, 0.5, 1.0):
        per = {}
        for name, kw in variants:
            cfg = AnnotateConfig(method="utilsel", max_passage_words=words, **kw)
            est = estimate(groups, ds.corpus, cfg, count_tokens=count_messages, count_text=count_text,
                           select_fraction=f)
            per[name] = (est.prompt_tokens + est.completion_tokens) / est.queries, est
        paper = per["paper multi-turn"][0]
        for name, (tokens, est) in per.items():
            rows.append(f"| {f:.1f} | {name} | {est.calls / est.queries:.0f} | {est.prompt_tokens / est.queries:,.0f} | "
                        f"{est.completion_tokens / est.queries:,.0f} | {tokens:,.0f} | {tokens / paper:.2f}× |")
            raw[f"{f}:{name}"] = tokens
    return rows, raw


def run_stats(run_dir: Path) -> dict | None:
    if not (run_dir / "judgments.jsonl").exists():
        return None
    calls = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines() if x.strip()]
    per_q: dict[str, float] = {}
    for c in calls:
        per_q[c["query_id"]] = per_q.get(c["query_id"], 0.0) + c.get("latency_s", 0.0)
    summary = json.loads((run_dir / "summary.json").read_text())
    times = [c["time"] for c in calls]
    return {
        "summary": summary,
        "judgments": read_judgments(run_dir / "judgments.jsonl"),
        "sec_per_query": statistics.median(per_q.values()) if per_q else float("nan"),
        "mean_sec_per_query": statistics.mean(per_q.values()) if per_q else float("nan"),
        "wall_h": (max(times) - min(times)) / 3600 if times else 0.0,
        "span": (time.strftime("%H:%M", time.gmtime(min(times))) + "–" + time.strftime("%H:%M UTC", time.gmtime(max(times))))
        if times else "",
        "calls": len(calls),
        "raw_calls": calls,
        "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in calls),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--words", type=int, default=150, help="passage truncation for the token comparison")
    ap.add_argument("--runs", nargs="*", default=[str(p) for p in DEFAULT_RUNS])
    args = ap.parse_args()
    t0 = time.perf_counter()
    ds = load_dataset("scifact")
    groups = bm25_candidates(ds, "train", k=10, limit=args.queries)
    tok = tokenizer()
    rows, raw = token_table(ds, groups, tok, args.words)
    qrels = ds.qrels("train")

    agree_rows, speed_rows, coverage, dry_rows = [], [], [], []
    labelled_qids: set[str] = set()
    for d in map(Path, args.runs):
        st = run_stats(d)
        if st is None:
            continue
        s = st["summary"]
        js = st["judgments"]
        label = "relevance" if s["method"] == "relsel" else "utility"
        labelled_qids |= {j.query_id for j in js}
        fails = {k: v for step in s["failures"].values() for k, v in step.items() if v}
        for lab in ([label, "relevance"] if s["method"] in ("utilsel", "pointwise") and label != "relevance" else [label]):
            a = agreement(js, qrels, lab, 0.5)
            if a.queries == 0:
                continue
            agree_rows.append(f"| {d.name} | {lab} | {a.queries} | {a.precision:.3f} | {a.recall:.3f} | {a.f1:.3f} | "
                              f"{a.kappa:.3f} | {(a.tp + a.fp) / a.queries:.2f} | {(a.tp + a.fn) / a.queries:.2f} |")
        if any(j.rank is not None for j in js):
            for m in (1, 3):
                top = [Judgment(j.query_id, j.doc_id, j.method, utility=float(j.rank <= m)) for j in js if j.rank]
                a = agreement(top, qrels, "utility", 0.5)
                agree_rows.append(f"| {d.name} | rank ≤ {m} | {a.queries} | {a.precision:.3f} | {a.recall:.3f} | "
                                  f"{a.f1:.3f} | {a.kappa:.3f} | {(a.tp + a.fp) / a.queries:.2f} | "
                                  f"{(a.tp + a.fn) / a.queries:.2f} |")
        speed_rows.append(f"| {d.name} | `{s['prompt_id']}` | {s['queries_labelled']}/{s['queries']} (failed {s['queries_failed']}) | "
                          f"{st['calls']} | {st['sec_per_query']:.0f} s (mean {st['mean_sec_per_query']:.0f} s) | "
                          f"{st['wall_h']:.2f} h ({st['span']}) | {json.dumps(fails) if fails else 'none'} |")
        coverage.append(d.name)
        done = {j.query_id for j in js}
        if s["method"] == "utilsel" and done:
            cfg = AnnotateConfig(**{k: v for k, v in s["config"].items() if k in AnnotateConfig.__dataclass_fields__})
            sub = [g for g in bm25_candidates(ds, "train", k=10, limit=max(args.queries, 60)) if g.query_id in done]
            est = estimate(sub, ds.corpus, cfg)
            real = sum(c.get("prompt_tokens", 0) + c.get("completion_tokens", 0) for c in st["raw_calls"]
                       if c["query_id"] in done)
            dry_rows.append(f"| {d.name} | {len(sub)} | {est.calls} | {st['calls']} | "
                            f"{(est.prompt_tokens + est.completion_tokens) / len(sub):,.0f} | {real / len(sub):,.0f} |")
    # trivial baselines on the same queries and candidates: every candidate positive; BM25 top-1 positive
    base_rows = []
    if labelled_qids:
        by_q = {g.query_id: g for g in groups}
        extra = bm25_candidates(ds, "train", k=10, limit=max(args.queries, 60))
        by_q.update({g.query_id: g for g in extra})
        for name, rule in (("all candidates positive", lambda c: 1.0), ("BM25 top-1 positive", lambda c: float(c.rank == 1))):
            js = [Judgment(q, c.doc_id, "baseline", utility=rule(c)) for q in labelled_qids if q in by_q
                  for c in by_q[q].candidates]
            a = agreement(js, qrels, "utility", 0.5)
            base_rows.append(f"| {name} | utility | {a.queries} | {a.precision:.3f} | {a.recall:.3f} | {a.f1:.3f} | "
                             f"{a.kappa:.3f} | {(a.tp + a.fp) / a.queries:.2f} | {(a.tp + a.fn) / a.queries:.2f} |")

    ratio = raw["0.5:compact (default, joint answer+selection)"] / raw["0.5:paper multi-turn"]
    md = [
        "## Annotation: tokens, speed and agreement (SciFact train, BM25 top-10, Qwen2.5-Coder-1.5B Q4_K_M)",
        "",
        f"Machine: {machine()}; shared with other jobs (load average 6–8 during the runs). "
        f"Bench wall time {time.perf_counter() - t0:.0f} s.",
        "",
        f"### Tokens per annotated query, `utilsel`, {len(groups)} queries × 10 candidates, passages ≤ {args.words} words",
        "",
        "Exact prompt tokens (Qwen tokenizer + chat template, no generation); completions synthetic and equal in "
        "both formats. *f* = fraction of candidates relevance-selected (later steps only see those).",
        "",
        "| f | format | calls/q | prompt tok/q | completion tok/q | total tok/q | vs paper |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"At f = 0.5 the compact default needs **{ratio:.2f}×** the paper format's tokens "
        f"(target ≤ 0.5×: {'met' if ratio <= 0.5 else 'not met'}).",
        "",
        "### Real runs (`utilabel annotate`, embedded llama.cpp, 1 thread, passages ≤ 80 words)",
        "",
        "| run | prompts | queries labelled | calls | median (mean) s/query | wall span | parse failures |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(speed_rows or ["| (no runs found) | | | | | | |"]),
        "",
        "### `--dry-run` estimate vs the real run (same queries; ≈ 4 chars/token, 40 % selected assumed)",
        "",
        "| run | queries | estimated calls | real calls | estimated tok/q | real tok/q |",
        "| --- | --- | --- | --- | --- | --- |",
        *(dry_rows or ["| (no utilsel run) | | | | | |"]),
        "",
        "### Agreement with SciFact human qrels (positive = label ≥ 0.5; unjudged candidates = negative)",
        "",
        "| run / baseline | label | queries | precision | recall | F1 | kappa | LLM pos/q | human pos/q |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(agree_rows or ["| (no runs found) | | | | | | | | |"]),
        *base_rows,
    ]
    text = "\n".join(md)
    update_section("annotate", text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SciFact: nDCG@10 on test of the untrained base model vs a model trained on SciFact train human labels.

    python benchmarks/bench_train_scifact.py                       # trains (disj, 1 epoch) then evaluates
    python benchmarks/bench_train_scifact.py --model runs/x/model  # evaluates an existing training run

Exact inner-product search over the 5,183 documents, scored by utilabel.evaluate.retrieval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="trained model folder (default: train one into --out)")
    ap.add_argument("--out", default="runs/bench-scifact-human")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--base-result", help="JSON file with a previous base evaluation (skip re-encoding)")
    args = ap.parse_args()

    import torch

    from utilabel.data.registry import load_dataset
    from utilabel.train.config import TrainConfig
    from utilabel.train.evaluation import evaluate_model
    from utilabel.train.trainer import train

    torch.set_num_threads(args.threads)
    ds = load_dataset("scifact")
    cfg = None
    if args.model:
        model_dir = Path(args.model)
        summary = json.loads((model_dir.parent / "summary.json").read_text())
    else:
        cfg = TrainConfig(dataset="scifact", labels="human", loss="disj", epochs=1, batch_size=16, group_size=4,
                          lr=3e-5, out=args.out, num_threads=args.threads, show_progress=True)
        model_dir = train(cfg)
        summary = json.loads((Path(args.out) / "summary.json").read_text())
    c = summary["config"]
    if args.base_result:
        base = json.loads(Path(args.base_result).read_text())
    else:
        t = time.perf_counter()
        base = evaluate_model("default", ds, "test")
        base["seconds"] = time.perf_counter() - t
    trained = summary.get("eval", {}).get("test") or evaluate_model(model_dir, ds, "test")
    rows = ["| model | nDCG@10 | R@100 | RR@10 |", "|---|---|---|---|"]
    for name, r in (("all-MiniLM-L6-v2 (untrained base)", base), (f"+ {c['loss']} on SciFact train, human labels", trained)):
        rows.append(f"| {name} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | {r['RR@10']:.4f} |")
    md = "\n".join([
        "## Training: SciFact human labels vs base model (`bench_train_scifact.py`)", "",
        f"Machine: {machine()} (shared with other jobs). Exact dense search over 5,183 docs, SciFact test (300 queries).", "",
        *rows, "",
        f"Training: loss `{c['loss']}`, {summary['train_queries']} queries, {c['epochs']} epoch(s), {summary['steps']} steps, "
        f"batch {c['batch_size']} queries × group {c['group_size']} (positives, at most {c['max_positives']}, + BM25 top-{c['negatives_k']} "
        f"hard negatives; in-batch negatives), lengths "
        f"{c['query_max_len']}/{c['passage_max_len']}, lr {c['lr']}, temperature {c['temperature']}; "
        f"{summary['seconds'] / 60:.1f} min of training on 2 shared CPU cores ({summary['examples_per_second']} queries/s), "
        "plus about 20 min per model to encode the corpus for evaluation.",
    ])
    update_section("train_scifact", md)
    print(md)


if __name__ == "__main__":
    main()

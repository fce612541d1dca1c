"""Training and encoding speed vs sentence-transformers, same model, batch, group size, lengths, data.

* training: examples (queries) per second and peak RSS of ``utilabel.train.trainer.train`` (loss
  ``infonce``, 1 positive + 3 BM25 negatives per query, in-batch negatives) vs
  ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (scale 20 = temperature 0.05)
  on the identical groups (our sampler's first batches, as columns anchor/positive/negative_1..3).
  Each trainer runs in its own subprocess; peak RSS is that process's ``ru_maxrss``; the first step
  is warm-up and not timed.
* encoding: passages per second of ``utilabel.train.model.Encoder.encode`` vs
  ``SentenceTransformer.encode`` on the same SciFact abstracts, same batch size and max length,
  best of ``--rounds`` alternating rounds; the embeddings are checked to agree.

    python benchmarks/bench_train_speed.py [--steps 5 --batch 8 --group 4 --max-len 128 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402


def _groups(args, tmp: Path):
    """Our trainer's epoch-0 batches as texts, plus the candidate file our child reuses (no BM25 in either child)."""
    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.bm25 import bm25_candidates, write_candidates
    from utilabel.train.config import TrainConfig
    from utilabel.train.data import GroupSampler
    from utilabel.train.trainer import build_plan

    cfg = _our_config(args, tmp / "ours")
    ds = load_dataset("scifact")
    cand_groups = bm25_candidates(ds, "train", k=cfg.negatives_k)
    write_candidates(Path(cfg.out) / f"candidates.train.k{cfg.negatives_k}.jsonl", cand_groups)
    cands = {g.query_id: [c.doc_id for c in g.candidates] for g in cand_groups}
    sampler = GroupSampler(build_plan(cfg, ds), cands, list(ds.corpus), cfg.group_size, cfg.max_positives, True,
                           cfg.negative_sampling, cfg.seed, query_ids=list(ds.split_queries("train")))
    n = (args.steps + 1) * args.batch
    rows = []
    for g in sampler.epoch_groups(0)[:n]:
        rows.append([ds.queries[g.query_id].text] + [ds.corpus[d].full_text() for d in g.doc_ids])
    assert isinstance(cfg, TrainConfig)
    return rows


def _our_config(args, out: Path):
    from utilabel.train.config import TrainConfig

    return TrainConfig(dataset="scifact", labels="human", loss="infonce", epochs=1, max_steps=args.steps + 1,
                       batch_size=args.batch, group_size=args.group, query_max_len=args.max_len,
                       passage_max_len=args.max_len, lr=2e-5, save_every=0, num_threads=args.threads,
                       show_progress=False, out=str(out), negatives_k=30)


def _rate(times: list[float], batch: int) -> float:
    """Examples/s over steps 2..N from cumulative end-of-step times (step 1 = warm-up)."""
    return (len(times) - 1) * batch / (times[-1] - times[0])


def child_ours(args) -> dict:
    from utilabel.train.trainer import read_log, train

    out = Path(args.tmp) / "ours"
    train(_our_config(args, out))
    times = [r["time"] for r in read_log(out)]
    return {"rate": _rate(times, args.batch), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_st(args) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from transformers import TrainerCallback

    from utilabel.train.model import default_base_model

    torch.set_num_threads(args.threads)
    rows = json.loads((Path(args.tmp) / "groups.json").read_text())
    cols = {"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows]}
    for i in range(2, len(rows[0])):
        cols[f"negative_{i - 1}"] = [r[i] for r in rows]
    model = SentenceTransformer(str(default_base_model()), device="cpu")
    model.max_seq_length = args.max_len
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *a, **k):
            times.append(time.perf_counter())

    targs = SentenceTransformerTrainingArguments(
        output_dir=str(Path(args.tmp) / "st"), per_device_train_batch_size=args.batch, max_steps=args.steps + 1,
        learning_rate=2e-5, warmup_ratio=0.1, save_strategy="no", report_to="none", logging_steps=1000,
        dataloader_num_workers=0, use_cpu=True, seed=42, disable_tqdm=True)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=Dataset.from_dict(cols),
                                         loss=losses.MultipleNegativesRankingLoss(model, scale=20.0),
                                         callbacks=[Timer()])
    trainer.train()
    return {"rate": _rate(times, args.batch), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_encode(args) -> dict:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from utilabel.data.registry import load_dataset
    from utilabel.train.model import Encoder, default_base_model

    torch.set_num_threads(args.threads)
    ds = load_dataset("scifact")
    texts = [d.full_text() for d in list(ds.corpus.values())[: args.encode_docs]]
    ours = Encoder(None, device="cpu")
    ours.config.passage_max_len = args.encode_len
    st = SentenceTransformer(str(default_base_model()), device="cpu")
    st.max_seq_length = args.encode_len
    ours.encode(texts[:64], "passage", args.encode_batch)
    st.encode(texts[:64], batch_size=args.encode_batch)
    queries = [q.text for q in ds.queries.values()][: args.encode_queries]
    best = {"ours": float("inf"), "st": float("inf"), "ours_q": float("inf"), "st_q": float("inf")}
    for _ in range(args.rounds):
        t = time.perf_counter()
        a = ours.encode(texts, "passage", args.encode_batch)
        best["ours"] = min(best["ours"], time.perf_counter() - t)
        t = time.perf_counter()
        b = st.encode(texts, batch_size=args.encode_batch)
        best["st"] = min(best["st"], time.perf_counter() - t)
        t = time.perf_counter()
        ours.encode(queries, "passage", args.encode_batch)
        best["ours_q"] = min(best["ours_q"], time.perf_counter() - t)
        t = time.perf_counter()
        st.encode(queries, batch_size=args.encode_batch)
        best["st_q"] = min(best["st_q"], time.perf_counter() - t)
    return {"ours": len(texts) / best["ours"], "st": len(texts) / best["st"], "max_abs_diff": float(np.abs(a - b).max()),
            "ours_q": len(queries) / best["ours_q"], "st_q": len(queries) / best["st_q"], "n_q": len(queries)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (one more is warm-up)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encode-docs", type=int, default=256)
    ap.add_argument("--encode-len", type=int, default=256)
    ap.add_argument("--encode-batch", type=int, default=32)
    ap.add_argument("--encode-queries", type=int, default=512, help="short texts (SciFact claims) for the extra row")
    ap.add_argument("--rounds", type=int, default=3, help="encoding rounds (best of)")
    ap.add_argument("--train-rounds", type=int, default=2, help="alternating subprocess runs per trainer (best rate, max RSS)")
    ap.add_argument("--child", choices=["ours", "st"])
    ap.add_argument("--tmp")
    args = ap.parse_args()
    if args.child:
        res = child_ours(args) if args.child == "ours" else child_st(args)
        print("RESULT " + json.dumps(res))
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        (Path(tmp) / "groups.json").write_text(json.dumps(_groups(args, Path(tmp))))
        res: dict = {}
        for who in ("st", "ours") * args.train_rounds:  # alternate: load on the shared machine drifts
            cmd = [sys.executable, __file__, "--child", who, "--tmp", tmp, "--steps", str(args.steps), "--batch",
                   str(args.batch), "--group", str(args.group), "--max-len", str(args.max_len), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"{who} child failed:\n{proc.stderr[-3000:]}")
            got = json.loads(line[-1][7:])
            prev = res.get(who, {"rate": 0.0, "rss_mb": 0.0})
            res[who] = {"rate": max(prev["rate"], got["rate"]), "rss_mb": max(prev["rss_mb"], got["rss_mb"])}
    enc = bench_encode(args)
    speed = res["ours"]["rate"] / res["st"]["rate"]
    mem = res["ours"]["rss_mb"] / res["st"]["rss_mb"]
    enc_speed = enc["ours"] / enc["st"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    md = "\n".join([
        "## Training and encoding speed vs sentence-transformers (`bench_train_speed.py`)", "",
        f"Machine: {machine()}, torch threads {args.threads}; the machine is shared with other jobs, so absolute "
        "numbers are noisy — ratios come from the same run.", "",
        f"Training: all-MiniLM-L6-v2, batch {args.batch} queries × group {args.group} (1 positive + {args.group - 1} BM25 "
        f"negatives, identical groups for both), max length {args.max_len}, in-batch negatives, temperature 0.05 "
        f"(scale 20), AdamW lr 2e-5; {args.steps} timed steps after 1 warm-up step; each trainer in its own subprocess, "
        f"{args.train_rounds} alternating runs each (best rate, largest peak RSS).", "",
        "| | utilabel `train` | ST trainer + MNRL | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| training examples/s | {res['ours']['rate']:.2f} | {res['st']['rate']:.2f} | {speed:.2f}× | ≥ 1.2× | {verdict(speed >= 1.2)} |",
        f"| peak RSS (MB) | {res['ours']['rss_mb']:.0f} | {res['st']['rss_mb']:.0f} | {mem:.2f}× | ≤ 1.0× | {verdict(mem <= 1.0)} |",
        f"| encoding passages/s | {enc['ours']:.1f} | {enc['st']:.1f} | {enc_speed:.2f}× | ≥ 1.2× | {verdict(enc_speed >= 1.2)} |",
        f"| encoding short texts/s (claims, extra) | {enc['ours_q']:.1f} | {enc['st_q']:.1f} | {enc['ours_q'] / enc['st_q']:.2f}× | | |",
        "",
        f"Encoding: {args.encode_docs} SciFact abstracts, max length {args.encode_len}, batch {args.encode_batch}, best of "
        f"{args.rounds} alternating rounds; max |difference| of the embeddings {enc['max_abs_diff']:.1e}. "
        "Passage encoding is compute-bound (SciFact abstracts fill the 256-token limit, so sorting by length "
        "saves little padding); repeated runs on this busy machine moved the ratios by ±0.5×.",
    ])
    update_section("train_speed", md)
    print(md)


if __name__ == "__main__":
    main()

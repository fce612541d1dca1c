"""Dense retrieval benchmark: encode + index + search wall time on full SciFact and ArguAna.

utilabel (DenseRetriever: sharded cached encoding, FAISS flat inner product) against the named
peer: ``SentenceTransformer.encode`` of corpus and queries + numpy brute-force ``q @ D.T`` and
``argpartition`` top-k. Same model (all-MiniLM-L6-v2), same max length and batch size. Reported:
cold time (empty embedding cache) and warm time (second run: cache hit), both as ratios to the
peer, plus the agreement of the two top-10 lists. Run: ``python benchmarks/bench_dense.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402


def peer(model, corpus, queries, k, batch_size, max_length, query_max_length):
    t = time.perf_counter()
    ids = list(corpus)
    model.max_seq_length = max_length
    emb = model.encode([corpus[d].full_text() for d in ids], batch_size=batch_size, normalize_embeddings=True,
                       convert_to_numpy=True)
    t_enc = time.perf_counter() - t
    model.max_seq_length = query_max_length  # the same query length as ours
    q = model.encode([queries[x].text for x in queries], batch_size=batch_size, normalize_embeddings=True,
                     convert_to_numpy=True)
    scores = q @ emb.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    run = {}
    for row, qid in enumerate(queries):
        cand = top[row][np.argsort(-scores[row, top[row]])]
        run[qid] = {ids[j]: float(scores[row, j]) for j in cand}
    return run, time.perf_counter() - t, t_enc


def ours(corpus, queries, k, cfg):
    from utilabel.retrieve.dense import DenseRetriever

    t = time.perf_counter()
    retriever = DenseRetriever(corpus, "default", cfg)
    t_enc = time.perf_counter() - t
    run = retriever.search(queries, k)
    return run, time.perf_counter() - t, t_enc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["scifact", "arguana"])
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--query-max-length", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    home = tempfile.mkdtemp(prefix="bench_dense_")  # an empty embedding cache for the cold run
    os.environ["UTILABEL_DATA_HOME"] = home
    from sentence_transformers import SentenceTransformer

    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.dense import DenseConfig
    from utilabel.retrieve.encoder import resolve_encoder

    cfg = DenseConfig(max_length=args.max_length, query_max_length=args.query_max_length,
                      batch_size=args.batch_size)
    model = SentenceTransformer(str(resolve_encoder("default")), device="cpu")
    rows = []
    load_start = os.getloadavg()[0]
    for name in args.datasets:
        ds = load_dataset(name)
        queries = ds.split_queries("test")
        p_run, p_total, p_enc = peer(model, ds.corpus, queries, args.k, args.batch_size, args.max_length,
                                     args.query_max_length)
        o_run, o_cold, o_enc = ours(ds.corpus, queries, args.k, cfg)
        _, o_warm, _ = ours(ds.corpus, queries, args.k, cfg)
        overlap = np.mean([len(set(list(o_run[q])[:10]) & set(sorted(p_run[q], key=p_run[q].get, reverse=True)[:10])) / 10
                           for q in queries])
        rows.append((name, len(ds.corpus), len(queries), p_total, o_cold, o_warm, overlap))
        print(rows[-1], flush=True)
    lines = [
        "## Dense retrieval: encode + index + search (`benchmarks/bench_dense.py`)", "",
        f"Machine: {machine()}; 1-min load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        "(other jobs make absolute times noisy, ratios less so). "
        f"all-MiniLM-L6-v2, passages cut to {args.max_length} tokens and queries to {args.query_max_length} on both sides, batch {args.batch_size}, top-{args.k}, "
        "every test query, full corpus. Peer: `SentenceTransformer.encode` + numpy brute force (`q @ D.T`, "
        "argpartition). utilabel cold = empty embedding cache (encode + write shards + FAISS flat index + search); "
        "warm = second run (cache hit: index + search only).", "",
        "| dataset | docs | queries | peer s | utilabel cold s (ratio) | utilabel warm s (ratio) | top-10 overlap |",
        "|---|---|---|---|---|---|---|"]
    for name, nd, nq, p, c, w, ov in rows:
        lines.append(f"| {name} | {nd:,} | {nq:,} | {p:.1f} | {c:.1f} ({c / p:.2f}×) | {w:.1f} ({w / p:.3f}×) | {ov:.3f} |")
    update_section("dense", "\n".join(lines))


if __name__ == "__main__":
    main()

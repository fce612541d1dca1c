"""Hard-negative mining benchmark: wall time of ``mine_negatives`` for the first 300 SciFact train
queries with all-MiniLM-L6-v2 (5,183 abstracts, 256 passage tokens), default options (ranks 1-100,
relative margin 0.95) and with a BM25 top-100 union.

Corpus encoding is the dense embedding cache's job and dominates a cold run; pass ``--cold`` to
encode into a fresh data home (minutes on CPU), otherwise the cached embeddings are used and the
time is query encoding + exact search + positive scoring + filtering. Prints a table (does not
write BENCHMARKS.md). Run: ``python benchmarks/bench_mine.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--cold", action="store_true", help="encode the corpus into a fresh data home")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.cold:
        os.environ["UTILABEL_DATA_HOME"] = tempfile.mkdtemp(prefix="bench_mine_")

    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.dense import DenseConfig
    from utilabel.retrieve.mine import MineConfig, mine_negatives

    ds = load_dataset("scifact")
    dense = DenseConfig(max_length=args.max_length)
    rows = []
    for label, cfg in [("dense top-100, margin 0.95", MineConfig()),
                       ("+ BM25 top-100 union", MineConfig(bm25_k=100))]:
        times = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                groups, st = mine_negatives(ds, "train", "default", cfg, dense, limit=args.queries,
                                            out=Path(tmp) / "mined.jsonl")
                times.append(time.perf_counter() - t)
        kept = sum(len(g.candidates) for g in groups)
        rows.append(f"| {label} | {min(times):.1f} | {max(times):.1f} | {kept / len(groups):.1f} | "
                    f"{st.dropped_margin / len(groups):.1f} | {st.bm25_added / len(groups):.1f} |")
    print(f"mining {args.queries} SciFact train queries, all-MiniLM-L6-v2, L{args.max_length}, "
          f"{'cold' if args.cold else 'warm (cached corpus embeddings)'}; {machine()}")
    print("| options | best s | worst s | kept / query | dropped by margin / query | BM25 added / query |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Our generated ArguAna queries against BEIR's docT5query queries, same recipe, paired over queries.

    python docs/results/arguana-our-queries/compare.py

Both rows train MiniLM-L6 on 200 generated queries with their source document as the one positive
(3 seeds each); this reads the two committed results files (this folder's and
docs/results/arguana-generated's), averages each row's per-query nDCG@10 over its seeds, and prints the
paired comparison on ArguAna test (1,406 queries), alone and fused with BM25. The rows come from two
runs: each line names the machines that computed them (the same model gives up to ~0.006 apart across
CPUs, BENCHMARKS.md), so a cross-machine difference smaller than that is not evidence.
"""

from pathlib import Path

from utilabel.experiments.report import latest_records, per_query_values, row_machines
from utilabel.experiments.stats import paired
from utilabel.fileio import AppendLog

HERE = Path(__file__).parent
OURS = AppendLog.read(HERE / "results.jsonl")
T5 = AppendLog.read(HERE.parent / "arguana-generated" / "results.jsonl")
DATASET = "arguana"
LATEST_OURS, LATEST_T5 = latest_records(OURS), latest_records(T5)

for suffix in ("", " +BM25"):
    a, b = "ours-source-only/disj" + suffix, "t5-source-only/disj" + suffix
    res = paired(a, b, DATASET, per_query_values(OURS, a, DATASET), per_query_values(T5, b, DATASET))
    if res is None:
        print(f"{a} vs {b}: not both computed yet")
        continue
    machines = sorted(row_machines(LATEST_OURS, a, DATASET) | row_machines(LATEST_T5, b, DATASET))
    print(f"{a} {res.mean_a:.3f} vs {b} {res.mean_b:.3f}: Δ {res.diff:+.3f} "
          f"[{res.ci_low:+.3f}, {res.ci_high:+.3f}], p {res.p:.3g}, n {res.n}; machines: {'; '.join(machines)}")

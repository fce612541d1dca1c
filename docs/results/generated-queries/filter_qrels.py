"""The judge filter of issue 22 on the 200 judged generated claims, as label sources of the grid:

    python docs/results/generated-queries/filter_qrels.py
      → runs/gen-filter/judge-0.9.qrels    each claim whose source abstract the judge rates ≥ 0.9 (its fused
                                            pointwise utility, the committed judge/judgments.jsonl), with
                                            that abstract as its one positive (the source-only recipe)
      → runs/gen-filter/random.qrels       the same number of claims drawn at random (seed 0) from the 200:
                                            the size control (is a change the filter's, or fewer claims'?)

The threshold is fixed in advance, not chosen on data: this setting has no labelled query to choose
on. At the generator's default (0.5) the filter would drop 3 of the 200; 0.9 keeps 116.
"""

import random
from collections import defaultdict
from pathlib import Path

from utilabel.data.judgments import read_judgments
from utilabel.data.trec import format_trec_qrels

THRESHOLD = 0.9
HERE = Path(__file__).parent
qrels: dict[str, set[str]] = defaultdict(set)
for line in (HERE.parent / "generate" / "scifact-1000" / "qrels" / "train.tsv").read_text().splitlines()[1:]:
    query_id, doc_id = line.split("\t")[:2]
    qrels[query_id].add(doc_id)
source_value = {j.query_id: j.utility for j in read_judgments(HERE / "judge" / "judgments.jsonl")
                if j.doc_id in qrels[j.query_id]}
claims = sorted(source_value)
kept = [q for q in claims if (source_value[q] or 0.0) >= THRESHOLD]
control = sorted(random.Random(0).sample(claims, len(kept)))
out = Path("runs/gen-filter")
out.mkdir(parents=True, exist_ok=True)
for name, chosen in ((f"judge-{THRESHOLD:g}", kept), ("random", control)):
    (out / f"{name}.qrels").write_text(format_trec_qrels({q: {d: 1 for d in qrels[q]} for q in chosen}))
print(f"{len(claims)} judged claims; {len(kept)} with the source abstract rated ≥ {THRESHOLD:g}; "
      f"{len(set(kept) & set(control))} of them also in the random control")

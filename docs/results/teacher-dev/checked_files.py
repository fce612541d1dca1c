"""Turn the judge's check of the mined negatives into the two training inputs of the dev rows
``mined-checked`` (a useful negative becomes a positive) and ``mined-dropped`` (it leaves the negatives),
under the rows' label rule (top 3), through :func:`utilabel.annotate.check.checked_labels`:

    utilabel annotate check runs/ann-check --mined runs/mined/llm-top3-max.jsonl --dataset scifact --top 2
    python docs/results/teacher-dev/checked_files.py
      → runs/mined/llm-top3-checked.qrels        the top-3 positives plus every useful checked negative
      → runs/mined/llm-top3-max-dropped.jsonl    the mined negatives minus every useful checked negative

``runs/ann-check`` is a copy of docs/results/annotation/scifact-train-pointwise-qwen1.5b; the check's
folder is committed there as ``checked/`` (call log, judgments, summary), so this script runs without
the copy, and a check of the committed run replays every call.
"""

from pathlib import Path

from utilabel.annotate.check import checked_labels, without_excluded
from utilabel.data.candidates import read_candidates, write_candidates
from utilabel.data.judgments import read_judgments
from utilabel.data.trec import format_trec_qrels
from utilabel.labels import positives

RUN = Path("docs/results/annotation/scifact-train-pointwise-qwen1.5b/judgments.jsonl")
CHECKED = RUN.parent / "checked" / "judgments.jsonl"

run, checked = read_judgments(RUN), read_judgments(CHECKED)
with_useful, _ = checked_labels(run, checked, "top3", "positive")
_, useful = checked_labels(run, checked, "top3", "drop")
queries = {j.query_id for j in run}
qrels = {q: {d: 1 for d in positives(with_useful.get(q, {}))} for q in sorted(queries)}
Path("runs/mined/llm-top3-checked.qrels").write_text(format_trec_qrels(qrels))
mined = read_candidates("runs/mined/llm-top3-max.jsonl")
write_candidates("runs/mined/llm-top3-max-dropped.jsonl", without_excluded(mined, useful))
n = sum(len(v) for v in useful.values())
print(f"{len(checked)} checked negatives, {n} useful (≥ the query's third-best judged candidate) in "
      f"{len(useful)} queries")

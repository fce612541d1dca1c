"""Write each label source's positives on the grid's training queries as TREC qrels, for
``utilabel mine --qrels`` (the positive-aware margin then uses the row's own positives, not human ones).

    python docs/results/teacher-dev/positives_qrels.py     # → runs/mined/{llm-top3,bm25-top3}.qrels
"""

from pathlib import Path

from utilabel.data.trec import format_trec_qrels
from utilabel.experiments.config import ExperimentConfig
from utilabel.experiments.grid_data import GridData
from utilabel.labels import positives

config = ExperimentConfig.from_yaml(Path(__file__).with_name("config.yaml"))
grid = GridData(config)
query_ids = grid.train_query_ids("annotated")
Path("runs/mined").mkdir(parents=True, exist_ok=True)
for name in ("llm-top3", "bm25-top3"):
    labels = grid.labels(name, query_ids) or {}
    qrels = {q: {d: 1 for d in positives(labels.get(q, {}))} for q in query_ids}
    Path(f"runs/mined/{name}.qrels").write_text(format_trec_qrels(qrels))

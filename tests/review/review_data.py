"""The tiny review data set: a BEIR folder with an annotation run over it (one passage and one query
carry HTML/script that must show as text)."""

from __future__ import annotations

from pathlib import Path

from utilabel.data import beir
from utilabel.data.judgments import write_judgments
from utilabel.records import Document, Judgment, Query

XSS = "<script>window.__xss = 1; alert('xss')</script><img src=x onerror=\"window.__xss = 2; alert('img')\">"

# query → [(doc, mean LLM utility)]; uncertainty (class, soft fraction): q4 (2, 2/3), q2 (2, 1/3),
# q3 and q5 (1: no positive / all positive, in seeded order), then q1 and q6 (0: confident)
LLM = {
    "q1": [("d1", 1.0), ("d2", 0.0), ("d3", 0.0)],
    "q2": [("d4", 0.5), ("d5", 0.0), ("d6", 1.0)],
    "q3": [("d7", 0.0), ("d8", 0.0), ("d9", 0.0)],
    "q4": [("d10", 0.5), ("d11", 0.5), ("d12", 0.0)],
    "q5": [("d13", 1.0), ("d14", 1.0), ("d1", 1.0)],
    "q6": [("d2", 1.0), ("d3", 0.0), ("d4", 0.0)],
}


def make_review_run(root: Path, grades: dict[str, int] | None = None) -> tuple[Path, Path]:
    """A BEIR folder (14 passages, 6 train queries; ``grades`` per query's qrel, default 1) and an
    annotation run folder over it (soft labels as two votes of 1 and 0)."""
    data, run = root / "mini", root / "run"
    docs = [Document(f"d{i}", f"Passage {i} about topic {i % 4}.", f"Title {i}") for i in range(1, 15)]
    docs[12] = Document("d13", f"A passage that tries {XSS} to run code.", "<i>XSS</i> title")
    beir.write_corpus(data / "corpus.jsonl", docs)
    texts = {q: f"question {q} about topic {i % 4}" for i, q in enumerate(LLM)}
    texts["q5"] = "what does <b>bold</b> & <script>alert(1)</script> do?"
    beir.write_queries(data / "queries.jsonl", [Query(q, t) for q, t in texts.items()])
    beir.write_qrels_tsv(data / "qrels" / "train.tsv", {q: {docs_[0][0]: (grades or {}).get(q, 1)}
                                                        for q, docs_ in LLM.items()})
    votes = []
    for q, pairs in LLM.items():
        for d, u in pairs:
            votes += [Judgment(q, d, "utilsel", utility=1.0 if u > 0 else 0.0),
                      Judgment(q, d, "utilsel", utility=1.0 if u == 1.0 else 0.0)]
    run.mkdir(parents=True)
    write_judgments(run / "judgments.jsonl", votes)
    return data, run

"""A generated folder goes through the existing pipeline unchanged: ``utilabel retrieve bm25 --split train``
(the real CLI), annotation of its candidates, and training whose labels keep each query's source passage
a positive next to the judge's positives (``labels: [human, judgments]``, ``human_ratio: 1``,
``mix_strategy: union``). The LLM is the scripted fake (control flow), the encoder a tiny random BERT."""

from __future__ import annotations

import json

from generate_scripted import TOPICS, respond

from utilabel.annotate import annotate_dataset
from utilabel.cli.main import main
from utilabel.data.dataset import Dataset
from utilabel.generate import GenerateConfig, generate
from utilabel.llm import get_backend
from utilabel.train.config import TrainConfig
from utilabel.train.data import build_plan


def judge_says_next_passage(messages, continuation):
    """Yes for the passage after the query's own topic (a second, other positive), no otherwise."""
    text = messages[-1]["content"]
    query = text.split(": ", 2)[-1]
    topic = next((i for i, t in enumerate(TOPICS) if t.split()[0] in query), None)
    yes = topic is not None and TOPICS[(topic + 1) % len(TOPICS)].split()[0] in text.split("\n")[0]
    return -0.05 if continuation.strip().lower().startswith("yes") == yes else -3.0


def test_generated_folder_through_retrieve_annotate_train(corpus_dir, tmp_path, tiny_model_dir):
    gen = generate(Dataset.from_folder(corpus_dir), get_backend("fake", responses=respond), tmp_path / "gen",
                   GenerateConfig(queries_per_passage=2), progress=False)
    folder = str(gen.out_dir)
    assert main(["retrieve", "bm25", "--dataset", folder, "--split", "train", "--k", "4",
                 "--out", str(tmp_path / "bm25.trec"), "--candidates", str(tmp_path / "cands.jsonl")]) == 0
    cands = [json.loads(x) for x in (tmp_path / "cands.jsonl").read_text().splitlines()]
    assert len(cands) == gen.summary["kept"]

    ds = Dataset.from_folder(folder)
    run = annotate_dataset(ds, get_backend("fake", logprobs=judge_says_next_passage), tmp_path / "ann",
                           candidates=str(tmp_path / "cands.jsonl"), k=4, progress=False,
                           config={"method": "pointwise", "answer_source": "none", "signals": ("yesno",),
                                   "label_rule": "threshold:0.5"})
    assert run.summary["queries_labelled"] == len(cands)

    config = TrainConfig(dataset=folder, labels=["human", str(tmp_path / "ann" / "judgments.jsonl")],
                         human_ratio=1.0, mix_strategy="union", base_model=str(tiny_model_dir),
                         out=str(tmp_path / "train"), max_steps=1, batch_size=2, group_size=2, negatives_k=4,
                         device="cpu", show_progress=False, save_every=0)
    labels = build_plan(config, ds).stages[0][1]
    qrels = ds.qrels("train")
    llm_pos = {(j.query_id, j.doc_id) for j in run.judgments if j.utility is not None and j.utility >= 0.5}
    assert llm_pos  # the judge found other positives ...
    for qid, docs in qrels.items():  # ... and every source passage stays a positive next to them
        positives = {d for d, w in labels[qid].items() if w > 0}
        assert set(docs) <= positives
        assert {d for q, d in llm_pos if q == qid} <= positives
    assert any(len({d for d, w in labels[q].items() if w > 0}) > 1 for q in qrels)  # multi-positive

    from utilabel.train.trainer import train

    model_dir = train(config)
    assert (model_dir / "config.json").exists() or any(model_dir.iterdir())

"""End to end: annotate SciFact queries (scripted LLM) → label the uncertain ones on the review page in
Chromium → train with the mix → the trained run's human_queries.json lists exactly those queries."""

from __future__ import annotations

import hashlib
import json
import re

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.cli.main import main
from utilabel.data.registry import load_dataset
from utilabel.data.trec import read_trec_qrels
from utilabel.labels.mixing import uncertainty
from utilabel.labels.sources import file_labels
from utilabel.llm import get_backend
from utilabel.retrieve.bm25 import bm25_candidates


def scripted(request):
    """Selects passages by a hash of the prompt, so the two shuffled votes of a query may disagree."""
    text = request.messages[-1]["content"]
    h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    shown = [int(i) for i in re.findall(r"^\[(\d+)\] ", text, flags=re.M)]
    sel = ",".join(f"[{i}]" for i in shown if (h >> i) & 1) or "[1]"
    if "Answer: <your" in request.messages[-1]["content"]:
        return f"Answer: a\nMy selection:{sel}"
    return f"My selection:{sel}"


def test_annotate_review_train(mirror, serve, page, tmp_path):
    ds = load_dataset("scifact")
    run = tmp_path / "ann"
    annotate(bm25_candidates(ds, "train", k=5, limit=20), ds.corpus, get_backend("fake", responses=scripted), run,
             AnnotateConfig(method="utilsel", votes=2), progress=False)
    out = tmp_path / "human.qrels"
    server = serve(run, "--dataset", "scifact", "--split", "train", "--budget", "0.25", "--out", out)
    assert "review 5 of 20 queries" in server.banner
    page.goto(server.url)
    labelled = []
    for n in range(5):
        qid = page.locator("input[name=query_id]").get_attribute("value")
        if n == 1:  # skip the second query of the queue
            with page.expect_navigation():
                page.keyboard.press("s")
            continue
        page.keyboard.press("1")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        labelled.append(qid)
    assert page.inner_text("#progress") == "4 / 5 labelled" and page.url.endswith("/q/1")  # the skipped one is back
    assert sorted(read_trec_qrels(out)) == sorted(labelled)
    llm = file_labels([run / "judgments.jsonl"])
    assert uncertainty(llm[labelled[0]]) >= max(uncertainty(v) for q, v in llm.items() if q not in labelled)

    train_out = tmp_path / "trained"
    rc = main(["train", "--dataset", "scifact", "--split", "train", "--labels", str(out), str(run / "judgments.jsonl"),
               "--human-ratio", "0.25", "--mix-strategy", "uncertain", "--epochs", "1", "--max-steps", "2",
               "--batch-size", "4", "--group-size", "2", "--query-max-len", "16", "--passage-max-len", "32",
               "--negatives-k", "0", "--save-every", "0", "--num-threads", "1", "--no-show-progress",
               "--out", str(train_out)])
    assert rc == 0
    chosen = json.loads((train_out / "human_queries.json").read_text())
    assert chosen == {"strategy": "uncertain", "human_queries": sorted(labelled)}

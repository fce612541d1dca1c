"""Checking mined negatives with a real model: SmolLM2-135M through the embedded ``llamacpp`` backend,
a pointwise run on 2 SciFact queries × 2 BM25 candidates, then 2 more candidates per query checked
(BM25 ranks 3-4 stand in for mined negatives). Nothing here asserts label quality."""

from __future__ import annotations

import pytest

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.annotate.check import check_negatives
from utilabel.llm import get_backend
from utilabel.records import CandidateGroup

pytestmark = pytest.mark.llm


def test_check_negatives_with_smollm2(mirror, tmp_path):
    pytest.importorskip("xllamacpp")
    from utilabel.data.registry import load_dataset
    from utilabel.retrieve.bm25 import bm25_candidates

    ds = load_dataset("scifact")
    mined = bm25_candidates(ds, "train", k=4, limit=2)
    first2 = [CandidateGroup(g.query_id, g.query, g.candidates[:2]) for g in mined]
    cfg = AnnotateConfig(method="pointwise", answer_source="none", task="claim", max_passage_words=20)
    with get_backend("llamacpp", model="smollm2-135m", n_ctx=2048, n_parallel=1) as backend:
        annotate(first2, ds.corpus, backend, tmp_path, cfg, progress=False)
        res = check_negatives(tmp_path, mined, ds.corpus, backend, top=2)
        again = check_negatives(tmp_path, mined, ds.corpus, backend, top=2)
    expected = {(g.query_id, c.doc_id) for g in mined for c in g.candidates[2:]}
    checked = res.judgments
    assert {(j.query_id, j.doc_id) for j in checked} == expected and len(checked) == 4
    assert all(j.utility is not None and 0.0 <= j.utility <= 1.0 for j in checked)
    assert res.summary["calls_new"] == 4
    assert again.summary["calls_new"] == 0 and again.judgments == checked

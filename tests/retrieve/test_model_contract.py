"""One ``utilabel_model.json`` contract: a model saved with ``normalize=False`` is scored by dot product
in the trainer's evaluation, in ``utilabel retrieve dense`` and in the experiment runner alike, equal to
sentence-transformers' own stack (no Normalize module saved) as the reference."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def unnormalised(tiny_model_dir, beir_subset, tmp_path_factory):
    from utilabel.train.model import BiEncoder, ModelConfig

    tmp = tmp_path_factory.mktemp("contract")
    data = beir_subset("scifact", 3, 30, tmp / "ds")
    model = BiEncoder(ModelConfig(base_model=str(tiny_model_dir), normalize=False)).save(tmp / "model")
    return data, model


def test_no_normalize_model_scores_the_same_everywhere(unnormalised, tmp_path):
    from sentence_transformers import SentenceTransformer

    from utilabel.cli.main import main
    from utilabel.data.registry import load_dataset
    from utilabel.data.trec import read_trec_run
    from utilabel.experiments.config import ExperimentConfig
    from utilabel.experiments.runner import ExperimentRunner
    from utilabel.train.evaluation import exact_search

    data, model = unnormalised
    ds = load_dataset(str(data))
    queries = ds.split_queries("test")
    doc_ids = list(ds.corpus)
    st = SentenceTransformer(str(model), device="cpu")
    st.max_seq_length = 64
    q = st.encode([queries[i].text for i in queries])
    st.max_seq_length = 256
    p = st.encode([ds.corpus[d].full_text() for d in doc_ids])
    assert np.abs(np.linalg.norm(p, axis=1) - 1).min() > 0.1  # really unnormalised vectors
    reference = {qid: dict(zip(doc_ids, map(float, q[i] @ p.T), strict=True)) for i, qid in enumerate(queries)}

    trainer_eval = exact_search(model, ds, "test", k=10)
    out = tmp_path / "dense.trec"
    assert main(["retrieve", "dense", "--model", str(model), "--dataset", str(data), "--out", str(out),
                 "--k", "10", "--no-cache"]) == 0
    cli = read_trec_run(out)
    cfg = ExperimentConfig.from_dict({"out": str(tmp_path / "exp"), "datasets": [{"name": str(data)}],
                                      "dense": {"max_length": 256, "query_max_length": 64, "k": 10}})
    runner = ExperimentRunner(cfg)._retrieve("m", model, str(data))
    for name, run in (("trainer evaluation", trainer_eval), ("retrieve dense", cli), ("experiment runner", runner)):
        assert set(run) == set(queries), name
        for qid, hits in run.items():
            assert len(hits) == 10, name
            for d, s in hits.items():
                assert s == pytest.approx(reference[qid][d], rel=1e-4, abs=1e-4), (name, qid, d)


def test_other_sentence_transformers_stacks_load_through_sentence_transformers(tiny_model_dir, tmp_path):
    """A stack the fast path does not cover (max pooling, a Dense layer) loads whole and encodes as
    sentence-transformers does; a plain stack takes the fast path."""
    from sentence_transformers import SentenceTransformer, models

    from utilabel.retrieve.encoder import Encoder

    word = models.Transformer(str(tiny_model_dir), max_seq_length=64)
    pooling = models.Pooling(32, pooling_mode="max")
    st = SentenceTransformer(modules=[word, pooling, models.Dense(32, 8)], device="cpu")
    st.save(str(tmp_path / "st"))
    texts = ["Vitamin D deficiency is linked to rickets.", "short", "The cell membrane is a lipid bilayer. " * 5]
    enc = Encoder(tmp_path / "st", "cpu")
    assert not enc.plain and enc.dim == 8
    np.testing.assert_allclose(enc.encode(texts, "passage"), st.encode(texts), atol=1e-5)
    assert Encoder(tiny_model_dir, "cpu").plain

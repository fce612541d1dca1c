"""Dense retrieval on real SciFact passages with the bundled MiniLM: exact search against numpy
brute force, the embedding cache (no re-encode, shard resume, model-content keys), ANN indexes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from utilabel.errors import ConfigError, UnknownNameError
from utilabel.records import Query
from utilabel.retrieve.dense import (
    DenseConfig,
    DenseIndex,
    DenseRetriever,
    _cache_folder,
    corpus_fingerprint,
    encode_corpus,
    model_fingerprint,
)
from utilabel.retrieve.encoder import Encoder, resolve_encoder

CONFIG = DenseConfig(max_length=96, batch_size=32, shard_size=100)

N_DOCS = 240


@pytest.fixture(scope="module")
def scifact(mirror):
    from utilabel.data.registry import load_dataset

    return load_dataset("scifact")


@pytest.fixture(scope="module")
def small_corpus(scifact):
    return dict(list(scifact.corpus.items())[:N_DOCS])


@pytest.fixture(scope="module")
def encoder():
    return Encoder("default", "cpu", passage_max_len=96)


def test_flat_search_matches_numpy_brute_force(encoder, small_corpus, scifact):
    retriever = DenseRetriever(small_corpus, config=CONFIG, encoder=encoder)
    queries = dict(list(scifact.split_queries("test").items())[:8])
    run = retriever.search(queries, k=10)
    doc_ids = list(small_corpus)
    emb = encoder.encode([small_corpus[d].full_text() for d in doc_ids], "passage")
    q = encoder.encode([queries[i].text for i in queries], "query")
    scores = q @ emb.T
    for row, qid in enumerate(queries):
        top = np.argsort(-scores[row])[:10]
        assert list(run[qid]) == [doc_ids[j] for j in top]
        np.testing.assert_allclose(list(run[qid].values()), scores[row, top], rtol=1e-5, atol=1e-5)


def test_vectors_are_normalised_and_self_retrieval_ranks_first(encoder, small_corpus):
    retriever = DenseRetriever(small_corpus, config=CONFIG, encoder=encoder)
    # a passage's own text as the query retrieves that passage first (cosine 1 up to truncation)
    some = list(small_corpus)[:5]
    queries = {d: Query(d, small_corpus[d].full_text()) for d in some}
    run = retriever.search(queries, k=1)
    assert all(next(iter(run[d])) == d for d in some)
    _, emb = encode_corpus(encoder, small_corpus, CONFIG)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_second_run_reads_the_cache_and_does_not_encode(encoder, small_corpus):
    _, first = encode_corpus(encoder, small_corpus, CONFIG)
    before = encoder.passages_encoded
    _, second = encode_corpus(encoder, small_corpus, CONFIG)
    assert encoder.passages_encoded == before  # nothing encoded the second time
    np.testing.assert_array_equal(first, second)


def test_interrupted_encode_resumes_from_complete_shards(encoder, scifact):
    corpus = dict(list(scifact.corpus.items())[N_DOCS:N_DOCS + 250])  # 3 shards of ≤ 100
    _, full = encode_corpus(encoder, corpus, CONFIG)
    ids = list(corpus)
    cache = _cache_folder(model_fingerprint(encoder.path),
                          corpus_fingerprint(ids, [corpus[d].full_text() for d in ids]), encoder)
    # simulate a kill after the first two shards: final file gone, shards 0 and 1 on disk
    np.save(cache / "shard-00000.npy", full[:100])
    np.save(cache / "shard-00001.npy", full[100:200])
    (cache / "embeddings.npy").unlink()
    before = encoder.passages_encoded
    _, resumed = encode_corpus(encoder, corpus, CONFIG)
    assert encoder.passages_encoded - before == 50  # only the last shard (250 - 200)
    np.testing.assert_allclose(resumed, full, atol=1e-6)
    assert not list(cache.glob("shard-*.npy"))


def test_model_key_follows_model_content(tmp_path):
    base = resolve_encoder("default")
    copy = tmp_path / "m"
    shutil.copytree(base, copy)
    assert model_fingerprint(copy) == model_fingerprint("default")  # same content, different path
    cfg = copy / "config_sentence_transformers.json"
    cfg.write_text(cfg.read_text() + " ")
    assert model_fingerprint(copy) != model_fingerprint("default")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_indexes_agree_with_exact_search(kind):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2000, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q = emb[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    ids = [f"d{i}" for i in range(2000)]
    _, exact = DenseIndex(ids, emb).search(q, 1)
    cfg = DenseConfig(index=kind, nlist=16, nprobe=8)
    _, approx = DenseIndex(ids, emb, cfg).search(q, 1)
    # each query is a slightly perturbed copy of row i, so both must find row i nearly always
    assert (exact[:, 0] == np.arange(50)).all()
    assert (approx[:, 0] == exact[:, 0]).mean() >= 0.9


def test_int8_retrieval_stays_close_to_float32_and_is_cached_apart(encoder, small_corpus, scifact):
    """quantize='int8' (CPU) on real SciFact claims, their cited abstracts among 240 others: nDCG@10 stays
    within 0.03 of float32 (full SciFact test: 0.640 vs 0.645), and int8 embeddings have their own cache
    folder, never mixed with float32 ones."""
    from utilabel.evaluate.retrieval import evaluate_run

    qrels = dict(list(scifact.qrels("test").items())[:40])
    corpus = {**small_corpus, **{d: scifact.corpus[d] for rel in qrels.values() for d in rel}}
    queries = {q: scifact.queries[q] for q in qrels}
    int8 = Encoder("default", "cpu", "int8", passage_max_len=96)
    exact = DenseRetriever(corpus, config=CONFIG, encoder=encoder).search(queries, k=10)
    quant = DenseRetriever(corpus, config=CONFIG, encoder=int8).search(queries, k=10)
    ndcg32 = evaluate_run(exact, qrels).mean["nDCG@10"]
    ndcg8 = evaluate_run(quant, qrels).mean["nDCG@10"]
    print(f"nDCG@10 float32 {ndcg32:.4f} int8 {ndcg8:.4f}")
    assert ndcg32 > 0.5 and abs(ndcg8 - ndcg32) <= 0.03
    assert any(exact[q] != quant[q] for q in queries)  # the scores really differ
    keys = model_fingerprint("default"), corpus_fingerprint(["a"], ["b"])
    assert _cache_folder(*keys, int8).name == _cache_folder(*keys, encoder).name + "-int8"
    _, emb8 = encode_corpus(int8, small_corpus, CONFIG)
    _, emb32 = encode_corpus(encoder, small_corpus, CONFIG)
    assert np.abs(emb8 - emb32).max() > 1e-3


def test_config_and_input_validation(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown index type 'annoy'; valid: flat, hnsw, ivf"):
        DenseConfig(index="annoy")
    with pytest.raises(ConfigError, match="batch_size must be an integer ≥ 1"):
        DenseConfig(batch_size=0)
    with pytest.raises(UnknownNameError, match="unknown quantize mode 'fp8'; valid: int8, none"):
        DenseConfig(quantize="fp8")
    with pytest.raises(ConfigError, match="is neither a folder nor one of default"):
        resolve_encoder(tmp_path / "missing")
    with pytest.raises(ConfigError, match="k must be ≥ 1"):
        DenseIndex(["a"], np.ones((1, 4), dtype=np.float32)).search(np.ones((1, 4), dtype=np.float32), 0)
    with pytest.raises(ConfigError, match="2 doc ids but embeddings of shape"):
        DenseIndex(["a", "b"], np.ones((3, 4), dtype=np.float32))


@pytest.mark.slow
def test_minilm_on_full_scifact_test_matches_published_quality(scifact):
    """all-MiniLM-L6-v2 scores nDCG@10 ≈ 0.64–0.65 on SciFact (BEIR/MTEB leaderboard)."""
    from utilabel.evaluate.retrieval import evaluate_dataset
    from utilabel.retrieve.dense import dense_search

    run = dense_search(scifact, "test", "default", k=100, config=DenseConfig(max_length=256))
    ndcg = evaluate_dataset(run, scifact, "test").mean["nDCG@10"]
    assert 0.60 <= ndcg <= 0.69

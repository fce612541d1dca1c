"""Saved models load in sentence-transformers and reproduce our embeddings; encode keeps order."""

from __future__ import annotations

import numpy as np
import pytest

from utilabel.errors import ConfigError
from utilabel.retrieve.encoder import Encoder, ModelConfig
from utilabel.train.model import BiEncoder

TEXTS = ["Vitamin D deficiency is linked to rickets in children.", "short",
         "The cell membrane is a lipid bilayer that separates the interior of cells. " * 6,
         "Aspirin reduces the risk of heart attacks.", ""]


@pytest.mark.parametrize("tied", [True, False])
def test_saved_model_loads_in_sentence_transformers(tiny_model_dir, tmp_path, tied):
    from sentence_transformers import SentenceTransformer

    model = BiEncoder(ModelConfig(base_model=str(tiny_model_dir), tied=tied, passage_max_len=48, query_max_len=16))
    if not tied:  # make the towers differ
        import torch

        with torch.no_grad():
            next(model.query_model.parameters()).add_(0.5)
    out = model.save(tmp_path / "m", card="# card\n")
    st = SentenceTransformer(str(out), device="cpu")
    enc = Encoder(out, "cpu")
    ours = enc.encode(TEXTS, "passage", batch_size=2)
    np.testing.assert_allclose(st.encode(TEXTS, batch_size=2), ours, atol=1e-5)
    assert st.max_seq_length == 48
    assert (out / "README.md").read_text() == "# card\n"
    queries = enc.encode(TEXTS, "query")
    if tied:
        np.testing.assert_allclose(queries[:2], ours[:2], atol=1e-5)  # short texts: same tower, no truncation
    else:
        stq = SentenceTransformer(str(out / "query_encoder"), device="cpu")
        np.testing.assert_allclose(stq.encode(TEXTS), queries, atol=1e-5)
        assert np.abs(queries - ours).max() > 1e-3
        import torch

        int8 = Encoder(out, "cpu", quantize="int8")  # both towers quantised, still two towers
        assert int8.query_model is not int8.passage_model
        for m in (int8.query_model, int8.passage_model):
            assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
        assert np.abs(int8.encode(TEXTS, "query") - int8.encode(TEXTS, "passage")).max() > 1e-3


def test_base_model_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from utilabel.retrieve.encoder import default_base_model

    st = SentenceTransformer(str(default_base_model()), device="cpu")
    ours = Encoder(None, "cpu").encode(TEXTS, "passage", batch_size=3)
    np.testing.assert_allclose(st.encode(TEXTS), ours, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_encode_order_and_errors(tiny_model_dir):
    enc = Encoder(tiny_model_dir, "cpu")
    full = enc.encode(TEXTS, "passage", batch_size=16)
    one_by_one = np.stack([enc.encode([t], "passage")[0] for t in TEXTS])
    np.testing.assert_allclose(full, one_by_one, atol=1e-5)
    assert enc.encode([], "query").shape == (0, 32)
    with pytest.raises(ConfigError, match="kind must be 'query' or 'passage'"):
        enc.encode(TEXTS, "doc")
    with pytest.raises(ConfigError, match="pooling must be one of mean, cls"):
        ModelConfig(pooling="max")


def test_int8_encoder_quantises_every_linear_layer_and_stays_close(mirror):
    """quantize='int8' replaces each nn.Linear by a dynamic int8 one; on real SciFact abstracts the
    embeddings stay close to float32 (measured on 128 abstracts: cosine min 0.97, mean 0.98)."""
    import torch

    from utilabel.data.registry import load_dataset

    texts = [d.full_text() for d in list(load_dataset("scifact").corpus.values())[:48]]
    fp32 = Encoder(None, "cpu")
    int8 = Encoder(None, "cpu", quantize="int8")
    assert int8 is not fp32 and int8.query_model is int8.passage_model
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in fp32.passage_model.modules())  # float32 untouched
    assert n_linear == 6 * 6 + 1  # q, k, v, attention out, FFN in, FFN out per layer + pooler
    assert not any(isinstance(m, torch.nn.Linear) for m in int8.passage_model.modules())
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.passage_model.modules()) == n_linear
    a, b = fp32.encode(texts, "passage", 16), int8.encode(texts, "passage", 16)
    cos = (a * b).sum(axis=1)
    assert np.abs(a - b).max() > 1e-3  # really quantised
    assert cos.min() > 0.93 and cos.mean() > 0.96
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="quantize must be one of none, int8; got 'fp4'"):
        Encoder(None, "cpu", quantize="fp4")
    with pytest.raises(ConfigError, match="runs on the CPU only; got device 'cuda'"):
        from utilabel.retrieve.encoder import check_quantize

        check_quantize("int8", "cuda")

"""Saved models load in sentence-transformers and reproduce our embeddings; encode keeps order."""

from __future__ import annotations

import numpy as np
import pytest

from utilabel.errors import ConfigError
from utilabel.train.model import BiEncoder, ModelConfig, encode, load_encoder

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
    ours = encode(out, TEXTS, "passage", batch_size=2)
    np.testing.assert_allclose(st.encode(TEXTS, batch_size=2), ours, atol=1e-5)
    assert st.max_seq_length == 48
    assert (out / "README.md").read_text() == "# card\n"
    queries = encode(out, TEXTS, "query")
    if tied:
        np.testing.assert_allclose(queries[:2], ours[:2], atol=1e-5)  # short texts: same tower, no truncation
    else:
        stq = SentenceTransformer(str(out / "query_encoder"), device="cpu")
        np.testing.assert_allclose(stq.encode(TEXTS), queries, atol=1e-5)
        assert np.abs(queries - ours).max() > 1e-3


def test_base_model_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from utilabel.train.model import default_base_model

    st = SentenceTransformer(str(default_base_model()), device="cpu")
    ours = encode(None, TEXTS, "passage", batch_size=3)
    np.testing.assert_allclose(st.encode(TEXTS), ours, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_encode_order_and_errors(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    full = enc.encode(TEXTS, "passage", batch_size=16)
    one_by_one = np.stack([enc.encode([t], "passage")[0] for t in TEXTS])
    np.testing.assert_allclose(full, one_by_one, atol=1e-5)
    assert enc.encode([], "query").shape == (0, 32)
    with pytest.raises(ConfigError, match="kind must be 'query' or 'passage'"):
        enc.encode(TEXTS, "doc")
    with pytest.raises(ConfigError, match="pooling must be one of mean, cls"):
        ModelConfig(pooling="max")

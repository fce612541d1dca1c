"""Fixtures of the training tests: a tiny randomly initialised BERT (MiniLM's tokenizer) saved as a
base-model folder, so trainer/DDP/GradCache/resume tests run in seconds on CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    import torch
    import transformers

    from utilabel.train.model import default_base_model

    path = tmp_path_factory.mktemp("tiny_bert")
    tok = transformers.AutoTokenizer.from_pretrained(str(default_base_model()))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path

"""Session-wide test settings: a private data home, the read-only source mirror, and a tiny random
BERT (MiniLM's tokenizer) saved as a base-model folder so training tests run in seconds on CPU.

The mirror defaults to ``../shared/data`` next to the repository (override with
``UTILABEL_SOURCE_MIRROR``). Prepared datasets are cached per session under pytest's temp dir
unless ``UTILABEL_TEST_DATA_HOME`` names a persistent folder (CI uses one to prepare once).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("UTILABEL_SOURCE_MIRROR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _data_home(tmp_path_factory):
    home = os.environ.get("UTILABEL_TEST_DATA_HOME") or str(tmp_path_factory.mktemp("data_home"))
    old = {k: os.environ.get(k) for k in ("UTILABEL_DATA_HOME", "UTILABEL_SOURCE_MIRROR")}
    os.environ["UTILABEL_DATA_HOME"] = home
    os.environ["UTILABEL_SOURCE_MIRROR"] = str(MIRROR)
    yield Path(home)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"source mirror {MIRROR} not found")
    return MIRROR


@pytest.fixture(scope="session")
def start_smol_server():
    """``start(**kw)``: a real llama.cpp server (xllamacpp, 127.0.0.1, free port) with SmolLM2-135M, or
    skip the test when xllamacpp or the model package is missing; the caller stops it. ``kw``:
    ``n_ctx``, ``n_parallel``, ``n_threads``."""

    def start(**kw):
        pytest.importorskip("xllamacpp")
        from utilabel.llm.backends.llamacpp import start_local_server
        from utilabel.llm.models import ModelNotInstalledError

        try:
            return start_local_server("smollm2-135m", **kw)
        except ModelNotInstalledError as exc:
            pytest.skip(str(exc))

    return start



@pytest.fixture(scope="session")
def beir_subset(mirror):
    """``make(dataset, n_queries, n_docs, out)``: a BEIR folder at ``out`` with the first ``n_queries``
    test queries of ``dataset`` and ``n_docs`` passages — their gold ones first, then other passages in
    corpus order."""

    def make(dataset: str, n_queries: int, n_docs: int, out: Path) -> Path:
        from utilabel.data import beir
        from utilabel.data.registry import load_dataset

        ds = load_dataset(dataset)
        qrels = dict(list(ds.qrels("test").items())[:n_queries])
        gold = {d for v in qrels.values() for d in v}
        rest = [doc for did, doc in ds.corpus.items() if did not in gold][: n_docs - len(gold)]
        beir.write_corpus(out / "corpus.jsonl", [ds.corpus[d] for d in gold] + rest)
        beir.write_queries(out / "queries.jsonl", [ds.queries[q] for q in qrels])
        (out / "qrels").mkdir()
        beir.write_qrels_tsv(out / "qrels" / "test.tsv", qrels)
        return out

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    import torch
    import transformers

    from utilabel.retrieve.encoder import default_base_model

    path = tmp_path_factory.mktemp("tiny_bert")
    tok = transformers.AutoTokenizer.from_pretrained(str(default_base_model()))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path

"""The bi-encoder for training: query and passage towers (tied or untied) of any Hugging Face /
sentence-transformers model, with the pooling, normalisation, prefixes and temperature of a
:class:`~utilabel.retrieve.encoder.ModelConfig`, batched encoding with gradients (:class:`BiEncoder`)
and saving in sentence-transformers layout plus ``utilabel_model.json`` (the contract read by
:mod:`utilabel.retrieve.encoder`), so ``SentenceTransformer(model_dir)`` reproduces our passage embeddings.
Untied towers keep the query tower in ``model_dir/query_encoder/``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..retrieve.encoder import (
    MODEL_META,
    QUERY_TOWER,
    ModelConfig,
    batch_tensors,
    load_hf,
    pool,
    resolve_encoder,
)


class BiEncoder:
    """Query and passage towers (shared when tied) plus pooling, normalisation and temperature."""

    def __init__(self, config: ModelConfig, gradient_checkpointing: bool = False, device: str = "cpu"):
        import torch

        self.config = config
        self.device = torch.device(device)
        base = resolve_encoder(config.base_model)
        q_path = base
        if isinstance(base, Path) and (base / MODEL_META).exists() and (base / QUERY_TOWER).exists():
            q_path = base / QUERY_TOWER  # continue training an untied utilabel model
        self.tokenizer, self.passage_model = load_hf(base, gradient_checkpointing)
        if config.tied:
            self.query_model = self.passage_model
        else:
            _, self.query_model = load_hf(q_path, gradient_checkpointing)
        for m in self.modules():
            m.to(self.device)

    def modules(self):
        return [self.passage_model] if self.config.tied else [self.query_model, self.passage_model]

    def parameters(self):
        for m in self.modules():
            yield from m.parameters()

    def named_parameters(self):
        for i, m in enumerate(self.modules()):
            for n, p in m.named_parameters():
                yield f"{i}.{n}", p

    def train(self, mode: bool = True):
        for m in self.modules():
            m.train(mode)

    def state_dict(self) -> dict:
        return {str(i): m.state_dict() for i, m in enumerate(self.modules())}

    def load_state_dict(self, state: dict) -> None:
        for i, m in enumerate(self.modules()):
            m.load_state_dict(state[str(i)])

    def tokenize(self, texts: list[str], kind: str) -> list[list[int]]:
        texts = self.config.prefixed(texts, kind)
        return self.tokenizer(texts, truncation=True, max_length=self.config.max_len(kind))["input_ids"]

    def embed(self, ids_list: list[list[int]], kind: str):
        """Pooled (and normalised) embeddings ``[N, dim]`` of pre-tokenised texts, with gradients."""
        import torch.nn.functional as F

        model = self.query_model if kind == "query" else self.passage_model
        batch = batch_tensors(ids_list, self.tokenizer.pad_token_id or 0, self.device)
        hidden = model(**batch).last_hidden_state
        emb = pool(hidden, batch["attention_mask"], self.config.pooling)
        return F.normalize(emb.float(), dim=-1) if self.config.normalize else emb.float()

    def scores(self, q, p):
        """Logits ``q @ p.T / temperature``."""
        return q @ p.T / self.config.temperature

    def save(self, out_dir: str | Path, card: str | None = None, meta: dict | None = None) -> Path:
        """Write a sentence-transformers folder (root = passage tower; ``query_encoder/`` if untied)."""
        out_dir = Path(out_dir)
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _save_st(self.passage_model, self.tokenizer, tmp, self.config, self.config.passage_max_len)
        if not self.config.tied:
            _save_st(self.query_model, self.tokenizer, tmp / QUERY_TOWER, self.config, self.config.query_max_len)
        (tmp / MODEL_META).write_text(json.dumps({"model": asdict(self.config), **(meta or {})}, indent=2, default=str))
        if card:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
        return out_dir


def _save_st(model, tokenizer, path: Path, config: ModelConfig, max_len: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if config.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    (path / "modules.json").write_text(json.dumps(modules, indent=2))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_len, "do_lower_case": False}, indent=2))
    (path / "1_Pooling").mkdir(exist_ok=True)
    dim = model.config.hidden_size
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": config.pooling == "cls",
        "pooling_mode_mean_tokens": config.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (path / "config_sentence_transformers.json").write_text(json.dumps({
        "similarity_fn_name": "cosine" if config.normalize else "dot",
    }, indent=2))

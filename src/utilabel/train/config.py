"""``TrainConfig``: every training option as a typed dataclass with help text and bounds.

Load from Python, a YAML file (:meth:`TrainConfig.from_yaml`) or CLI flags (the CLI builds its
flags from :func:`config_help`). Unknown keys and out-of-range values raise :class:`ConfigError`.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..data.textio import read_config_file
from ..errors import ConfigError, UnknownNameError
from ..labels import parse_rule
from ..labels.mixing import MIX_STRATEGIES
from ..labels.sources import parse_labels_option
from ..labels.teacher import NORMALIZATIONS, parse_teacher_spec
from ..retrieve.encoder import POOLINGS, ModelConfig
from ..seeding import DEFAULT_SEED

AMP = ("no", "fp16", "bf16")


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Options of :func:`utilabel.train.trainer.train`."""

    dataset: str = _f("scifact", "dataset name (utilabel data list) or BEIR folder")
    split: str = _f("train", "split whose queries are trained on")
    labels: list[str] = _f(None, "'human' (the dataset's qrels) or a TREC qrels file, and/or judgments JSONL "
                                 "path(s); both = a mix (default: human)", nargs="+")
    groups: str | None = _f(None, "training groups JSONL instead of labels: utilabel groups.jsonl (passages by id, "
                                  "texts from --dataset) or FlagEmbedding {query, pos, neg} (texts, no dataset needed)")
    label_rule: str | None = _f(None, "how judgments become positives (threshold:T, topM, topM+threshold:T, "
                                      "calibrated:T); default: the rule recorded with the annotation run")
    judgment_method: str | None = _f(None, "use only judgments of this annotation method")
    human_ratio: float | None = _f(None, "fraction of queries with human labels when mixing")
    mix_strategy: str = _f("replace", "how to mix human and LLM labels", choices=MIX_STRATEGIES)
    loss: str = _f("disj", "loss name, one registered in utilabel.train.losses (infonce, joint, disj, lsep; "
                           "distillation, needing teacher scores: kl, margin_mse, disj_kl)")
    teacher: str | None = _f(None, "teacher scores of the distillation losses: a judgments JSONL file, "
                                   "'first_stage' (BM25's own scores), 'run:PATH' (a TREC run), 'human' "
                                   "(qrels grades; 'human:PATH' a qrels file); default: the groups' own scores")
    teacher_normalize: str = _f("zscore", "per-query normalisation of the teacher scores", choices=NORMALIZATIONS)
    teacher_temperature: float = _f(1.0, "distillation: the teacher scores are divided by this (> 0) before "
                                         "the softmax (kl, disj_kl) or the margins (margin_mse)")
    distill_weight: float = _f(1.0, "disj_kl: weight λ ≥ 0 of the KL term (0 = plain disj)")
    out: str = _f("runs/train", "output folder (model/, log.jsonl, summary.json, loss_curve.png, checkpoint.pt)")
    base_model: str = _f("default", "HF / sentence-transformers model folder or name; 'default' = all-MiniLM-L6-v2")
    pooling: str = _f("mean", "pooling", choices=POOLINGS)
    normalize: bool = _f(True, "L2-normalise embeddings")
    temperature: float = _f(0.05, "softmax temperature (scores / temperature)")
    tied: bool = _f(True, "share one encoder for queries and passages")
    query_max_len: int = _f(64, "max query tokens")
    passage_max_len: int = _f(256, "max passage tokens")
    epochs: int = _f(2, "epochs over the training queries")
    max_steps: int | None = _f(None, "stop after this many optimizer steps (default: all epochs)")
    batch_size: int = _f(16, "queries per step (global, over all DDP ranks)")
    group_size: int = _f(8, "passages per query: positives + hard/random negatives")
    max_positives: int = _f(4, "most positives per group (multi-positive losses)")
    negatives_k: int = _f(30, "BM25 depth of the hard-negative candidate list")
    negatives_file: str | None = _f(None, "hard-negative candidates JSONL (utilabel mine or utilabel retrieve "
                                          "output) instead of BM25's: each query's first negatives_k, positives removed")
    negative_sampling: str = _f("random", "sample hard negatives at random from the top-k, or take the top", choices=("random", "top"))
    in_batch_negatives: bool = _f(True, "softmax also over other queries' passages")
    lr: float = _f(2e-5, "peak learning rate (AdamW)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    warmup_ratio: float = _f(0.1, "linear warm-up fraction of the steps")
    max_grad_norm: float = _f(1.0, "gradient clipping norm (0 = off)")
    seed: int = _f(DEFAULT_SEED, "seed of sampling, label mixing and model RNG")
    device: str | None = _f(None, "cpu, cuda, cuda:1 (default: cuda if available)")
    num_threads: int | None = _f(None, "torch CPU threads (default: torch's choice; 1 is best on a busy machine)")
    amp: str = _f("no", "mixed precision on GPU", choices=AMP)
    gradient_checkpointing: bool = _f(False, "recompute activations in backward (less memory)")
    grad_cache_chunk: int = _f(0, "GradCache chunk size (0 = off): large batches in small memory")
    save_every: int = _f(100, "checkpoint every N steps (0 = only at the end)")
    resume: bool = _f(True, "resume from out/checkpoint.pt when present")
    eval_split: str | None = _f(None, "after training, evaluate exact dense search on this split")
    curriculum_switch: float = _f(0.5, "curriculum: fraction of epochs trained on LLM labels first")
    show_progress: bool = _f(True, "tqdm progress bar")

    def __post_init__(self):
        if self.groups is not None and self.labels:
            raise ConfigError("give either labels or groups, not both")
        if self.labels is None and self.groups is None:
            self.labels = ["human"]
        if isinstance(self.labels, str):
            self.labels = [self.labels]
        self.labels = [str(x) for x in self.labels or []]
        if self.label_rule is not None:
            self.label_rule = parse_rule(self.label_rule).spec
        checks = [
            ("epochs", 1, 1000), ("batch_size", 1, 65536), ("group_size", 2, 1024), ("max_positives", 1, 1024),
            ("negatives_k", 0, 10000), ("query_max_len", 4, 8192), ("passage_max_len", 4, 8192),
            ("save_every", 0, 10**9), ("grad_cache_chunk", 0, 65536),
        ]
        for name, lo, hi in checks:
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}]; got {v!r}")
        if self.num_threads is not None and not 1 <= self.num_threads <= 1024:
            raise ConfigError(f"num_threads must be in [1, 1024]; got {self.num_threads}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1; got {self.max_steps}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1); got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}")
        for name in ("weight_decay", "max_grad_norm"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ConfigError(f"{name} must be a finite number ≥ 0; got {getattr(self, name)}")
        if not 0 <= self.curriculum_switch <= 1:
            raise ConfigError(f"curriculum_switch must be in [0, 1]; got {self.curriculum_switch}")
        if self.amp not in AMP:
            raise ConfigError(f"amp must be one of {', '.join(AMP)}; got {self.amp!r}")
        if self.grad_cache_chunk and self.amp == "fp16":
            raise ConfigError("grad_cache_chunk does not support amp=fp16 (loss scaling); use amp=bf16")
        if self.mix_strategy not in MIX_STRATEGIES:
            raise ConfigError(f"unknown mix strategy {self.mix_strategy!r}; valid: {', '.join(MIX_STRATEGIES)}")
        if self.human_ratio is not None and not 0 <= self.human_ratio <= 1:
            raise ConfigError(f"human_ratio must be in [0, 1]; got {self.human_ratio}")
        human_source, judgment_source = parse_labels_option(self.labels)
        has_human, has_llm = human_source is not None, judgment_source is not None
        if self.human_ratio is not None and not (has_human and has_llm):
            raise ConfigError("human_ratio needs both 'human' and a judgments file in labels")
        if has_human and has_llm and self.human_ratio is None:
            raise ConfigError("labels name both 'human' and judgments: give human_ratio (and mix_strategy)")
        from .losses import LOSSES, teacher_loss_names

        if self.loss not in LOSSES:
            raise UnknownNameError("loss", self.loss, list(LOSSES))
        if self.teacher_normalize not in NORMALIZATIONS:
            raise ConfigError(f"teacher_normalize must be one of {', '.join(NORMALIZATIONS)}; got {self.teacher_normalize!r}")
        if not (isinstance(self.teacher_temperature, int | float) and 0 < self.teacher_temperature < float("inf")):
            raise ConfigError(f"teacher_temperature must be a finite number > 0; got {self.teacher_temperature!r}")
        if not (isinstance(self.distill_weight, int | float) and 0 <= self.distill_weight < float("inf")):
            raise ConfigError(f"distill_weight must be a finite number >= 0; got {self.distill_weight!r}")
        if self.teacher is not None:
            self.teacher = str(parse_teacher_spec(self.teacher))
            if not LOSSES[self.loss].needs_teacher:
                raise ConfigError(f"teacher scores are used only by the distillation losses "
                                  f"({', '.join(teacher_loss_names())}); loss {self.loss!r} would ignore them")

    def loss_options(self) -> dict:
        """The options of the loss (:func:`utilabel.train.losses.get_loss` passes each loss those it takes)."""
        return {"teacher_temperature": self.teacher_temperature, "kl_weight": self.distill_weight}
        self.model_config()  # validates pooling/temperature/lengths

    def model_config(self) -> ModelConfig:
        return ModelConfig(base_model=self.base_model, pooling=self.pooling, normalize=self.normalize,
                           temperature=self.temperature, tied=self.tied, query_max_len=self.query_max_len,
                           passage_max_len=self.passage_max_len)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> TrainConfig:
        """Options from a YAML file (:func:`utilabel.data.textio.read_config_file`), then ``overrides`` not None."""
        data = read_config_file(path, "training config")
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)


def config_help() -> list[tuple[str, object, dict]]:
    """``(name, default, metadata)`` of every option (the CLI builds its flags from this)."""
    out = []
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        out.append((f.name, default, dict(f.metadata)))
    return out

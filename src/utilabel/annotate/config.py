"""The options of an annotation run (:class:`AnnotateConfig`) and the one place that decides their defaults.

:meth:`AnnotateConfig.resolve` turns the options a caller gave (the CLI's flags, the demo's sizes, a
Python caller's keywords) into a config for a backend and a dataset: :data:`LOCAL_DEFAULTS` with a
local backend and its default method, else the dataclass defaults (``pointwise`` gets a top-1 rule
too), and the dataset's task. ``utilabel annotate``, :func:`~utilabel.annotate.dataset.annotate_dataset`,
the Ray executor and ``utilabel demo`` all resolve through it, so the same backend and dataset give the
same labels whichever way a run is started.

Every option is part of the call keys through the rendered requests, so a run folder holds one setting.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..labels import DEFAULT_RULE, parse_rule
from .fusion import check_signals
from .prompts import STYLES
from .tasks import DEFAULT_TASK, resolve_task

if TYPE_CHECKING:
    from ..data.dataset import Dataset

LOCAL_BACKENDS = ("llamacpp", "transformers", "vllm")
"""Backends that run a model in this process or machine: they get :data:`LOCAL_DEFAULTS`."""

LOCAL_DEFAULTS: dict[str, Any] = {
    "method": "pointwise", "answer_source": "none", "signals": ("yesno", "first_stage"),
    "weights": {"first_stage": 0.25}, "label_rule": "top1", "max_passage_words": 100,
}
"""What ``utilabel annotate`` uses with a local model unless told otherwise: the variant that labelled
best on training queries in docs/results/annotation/quality.md (the embedded 1.5B model cannot write
reliable selections; its pointwise judgment fused with the first-stage score ranks best)."""

POINTWISE_RULE = "top1+threshold:0.5"
"""The label rule of ``pointwise`` where :data:`LOCAL_DEFAULTS` do not apply: the best-scored passage
and every passage with P(useful) ≥ 0.5 (a query keeps a positive when no score reaches 0.5)."""


@dataclass
class AnnotateConfig:
    """Options of an annotation run (all part of the call keys through the rendered requests).

    method: registered method name (``relsel``, ``utilsel``, ``utilrank``, ``direct-utilsel``,
        ``pointwise``, ``answer-likelihood``).
    style: prompt style, ``compact`` (single-turn, default) or ``paper`` (multi-turn wording).
    seed: seeds candidate shuffling and the first attempt of every call.
    shuffle: shuffle candidates before listwise prompting (position bias).
    votes: k-permutation voting: run listwise methods on k shuffles, labels = fraction selecting.
    retries: extra attempts after a parse failure (seed + attempt, ``retry_temperature``).
    max_passage_words: passages are truncated to this many words in prompts.
    sanitize: replace instruction-like sentences in passages (prompt-injection phrasings) by a marker.
    allow_empty: accept an explicitly empty selection instead of counting it as a failure.
    joint: utilsel/direct-utilsel: write the pseudo-answer and select in one call over the
        relevance-selected passages (default: True for compact, False for paper style).
    window, stride, top_m: utilrank sliding window size, step, and number of graded positives.
    answer_source: pointwise: pseudo-answer from relevance selection (``relsel``) or ``none``.
    contrast: pointwise: utility = P(yes) / (P(yes) + P(no)) (two scored continuations) instead
        of P(yes) alone.
    signals: pointwise: the scores computed per passage, combined by :mod:`.fusion` —
        ``yesno`` (log-odds of the task's yes/no question), ``graded`` (expected 0–3 grade),
        ``ql`` (mean log P(query | passage)), ``first_stage`` (the retriever's score).
    weights: pointwise: fusion weight per signal other than ``yesno`` (see :mod:`.fusion`).
    task: what "useful" means (a built-in task name, see :mod:`.tasks`); ``task_instruction``: a
        user's own yes/no question instead (task ``custom``).
    label_rule: how soft values become positives (a spec of :mod:`utilabel.labels`, e.g.
        ``top1+threshold:0.5``); recorded with the run and applied by groups, reports and training.
    margin: answer-likelihood: a passage is useful when it raises the gold answer's
        log-likelihood over the closed-book baseline by more than ``margin`` nats.
    answer_max_tokens: completion budget of pseudo-answers; ``extra_tokens`` is added to every
        budget (for thinking models).
    """

    method: str = "utilsel"
    style: str = "compact"
    seed: int = 0
    shuffle: bool = True
    votes: int = 1
    retries: int = 2
    temperature: float = 0.0
    retry_temperature: float = 0.7
    max_passage_words: int = 150
    sanitize: bool = True
    allow_empty: bool = False
    joint: bool | None = None
    window: int = 10
    stride: int = 5
    top_m: int = 3
    answer_source: str = "relsel"
    contrast: bool = True
    signals: tuple[str, ...] = ("yesno",)
    weights: dict[str, float] = field(default_factory=dict)
    task: str = DEFAULT_TASK
    task_instruction: str | None = None
    label_rule: str = DEFAULT_RULE.spec
    margin: float = 0.0
    answer_max_tokens: int = 128
    extra_tokens: int = 0

    def __post_init__(self):
        if self.style not in STYLES:
            raise ConfigError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not 1 <= self.votes <= 50:
            raise ConfigError(f"votes must be in 1..50, got {self.votes}")
        if not 0 <= self.retries <= 10:
            raise ConfigError(f"retries must be in 0..10, got {self.retries}")
        for name in ("temperature", "retry_temperature"):
            if not 0.0 <= getattr(self, name) <= 2.0:
                raise ConfigError(f"{name} must be in [0, 2], got {getattr(self, name)}")
        if self.max_passage_words < 8:
            raise ConfigError(f"max_passage_words must be ≥ 8, got {self.max_passage_words}")
        if self.window < 2:
            raise ConfigError(f"window must be ≥ 2, got {self.window}")
        if not 1 <= self.stride < self.window:
            raise ConfigError(f"stride must be in 1..window-1 ({self.window - 1}), got {self.stride}")
        if self.top_m < 1:
            raise ConfigError(f"top_m must be ≥ 1, got {self.top_m}")
        if self.answer_source not in ("relsel", "none"):
            raise ConfigError(f"answer_source must be 'relsel' or 'none', got {self.answer_source!r}")
        self.label_rule = parse_rule(self.label_rule).spec
        self.signals, self.weights = check_signals(self.signals, self.weights)
        resolve_task(self.task, self.task_instruction)  # unknown names fail here, before any call
        if self.answer_max_tokens < 8 or self.extra_tokens < 0:
            raise ConfigError("answer_max_tokens must be ≥ 8 and extra_tokens ≥ 0")
        if self.joint is None:
            self.joint = self.style == "compact"
        if self.joint and self.style != "compact":
            raise ConfigError("joint answer+selection exists only in the compact style")

    @classmethod
    def defaults(cls, backend: str, method: str | None = None) -> dict[str, Any]:
        """The options a run with ``backend`` (a registered name) and ``method`` (None: the backend's
        default) gets unless given: :data:`LOCAL_DEFAULTS` with a local backend (:data:`LOCAL_BACKENDS`)
        and the local default method; else the dataclass defaults of the same fields (``utilsel``;
        ``pointwise`` asks a pseudo-answer from a relevance selection) with :data:`POINTWISE_RULE` for
        ``pointwise``."""
        local = backend in LOCAL_BACKENDS
        method = method or (LOCAL_DEFAULTS["method"] if local else _field_default("method"))
        if local and method == LOCAL_DEFAULTS["method"]:
            return dict(LOCAL_DEFAULTS)
        out = {name: _field_default(name) for name in LOCAL_DEFAULTS}
        out["method"] = method
        if method == "pointwise":
            out["label_rule"] = POINTWISE_RULE
        return out

    @classmethod
    def resolve(cls, backend: str, dataset: Dataset | None = None, **given: Any) -> AnnotateConfig:
        """The config of a run with ``backend`` (a registered name) on ``dataset``: the options ``given``
        (``None`` = not given) over :meth:`defaults`; ``task`` when not given is the dataset's declared
        task (e.g. ``claim`` for scifact), else ``qa``. Giving ``signals`` without ``weights`` means no
        weights (the defaults' weights belong to the defaults' signals)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise ConfigError(f"unknown annotation option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        given = {k: v for k, v in given.items() if v is not None}
        if "signals" in given:
            given.setdefault("weights", {})
        options = {**cls.defaults(backend, given.get("method")), **given}
        options["task"] = given.get("task") or (dataset.task if dataset is not None else None) or DEFAULT_TASK
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def task_spec(self):
        """The :class:`~.tasks.Task` whose texts fill every prompt of the run."""
        return resolve_task(self.task, self.task_instruction)


def _field_default(name: str) -> Any:
    f = AnnotateConfig.__dataclass_fields__[name]
    return f.default_factory() if f.default_factory is not MISSING else f.default

"""Typed configuration of an experiment grid, loadable from YAML (unknown keys are errors).

An :class:`ExperimentConfig` names the in-domain training set, the label sources (human qrels or
annotation judgments), the evaluation datasets (with query sampling), the shared training and
dense-encoding settings, the RAG reader, and a list of *studies*. The ``train`` and ``dense``
sections are options of :class:`~utilabel.train.config.TrainConfig` and
:class:`~utilabel.retrieve.dense.DenseConfig` (plus ``k``, the retrieval depth), over the grid's own
defaults :data:`TRAIN_DEFAULTS` / :data:`DENSE_DEFAULTS`. Each study expands into models:

* ``labels`` — every label source × loss × seed (the paper's main table);
* ``noise`` — human labels plus false positives drawn from BM25 candidates at each noise rate × loss × seed;
* ``ratio`` — per query, human labels for a fraction ``human_ratio`` of the queries and labels of
  ``llm_source`` for the rest, × loss × seed (the human-ratio curve); ``human_choice`` picks those
  queries at ``random`` and/or by LLM ``uncertain``-ty (smallest label margin first, see
  :func:`utilabel.labels.rule_margins`).
* ``round`` — annotate → train → mine → judge → retrain: every judgments source × loss × seed trains
  a round-0 model (``<row> [round 0]``), which mines hard negatives for the training queries; the
  annotation run's judge checks the first of them it has not judged yet, and two round-1 models
  retrain with the mined negatives: on the labels plus the check (``<row> [round 1]``) and, the free
  control, on the same labels with the same negatives and no check (``<row> [round 1, no check]``).
  Its ``round`` mapping is a :class:`RoundSettings`.

A study may also name a ``teacher``: a source of the grid (kind ``judgments``, ``first_stage`` or
``human``) whose teacher scores (:mod:`utilabel.labels.teacher`) the study's distillation losses
(``kl``, ``margin_mse``, ``disj_kl``) learn from; its row names read ``<labels>+teacher(<teacher>)/<loss>``.
A study's ``train`` mapping overrides the grid's ``train`` options for its models (e.g.
``teacher_temperature``, ``distill_weight``); the options it gives are hashed into its model keys.

Studies run in the order given, so the cheapest, most important results land first in a tight
compute budget; identical models (same labels, loss, seed, settings) are trained once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data.textio import read_config_file
from ..errors import ConfigError
from ..labels import LABEL_FIELDS, parse_rule
from ..labels.sources import SOURCE_KINDS
from ..retrieve.dense import DenseConfig
from ..train.config import TrainConfig

STUDY_KINDS = ("labels", "noise", "ratio", "round")
#: how a ratio study chooses the human-labelled queries: at random, or the least certain LLM queries first
HUMAN_CHOICES = ("random", "uncertain")
#: the grid's training defaults (small models on a CPU), over TrainConfig's own
TRAIN_DEFAULTS = {"epochs": 1, "group_size": 4, "query_max_len": 32, "passage_max_len": 128}
#: the grid's encoding defaults for evaluation, over DenseConfig's own
DENSE_DEFAULTS = {"max_length": 128, "query_max_length": 32, "k": 100}
#: options always shown in the report and hashed into keys (any other option given is added)
TRAIN_KEYED = ("base_model", "epochs", "max_steps", "batch_size", "group_size", "max_positives", "negatives_k",
               "query_max_len", "passage_max_len", "lr", "temperature")
DENSE_KEYED = ("max_length", "query_max_length", "batch_size", "index", "k")
#: TrainConfig options the runner sets per model
RUNNER_OPTIONS = ("dataset", "split", "labels", "groups", "loss", "out", "seed", "device", "save_every", "show_progress")


def _check_range(owner: str, name: str, value, lo, hi) -> None:
    if value is None or not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name} must be in [{lo}, {hi}], got {value!r}")


@dataclass
class LabelSource:
    """A named label source of the grid, resolved by :mod:`utilabel.labels.sources`: ``human`` (qrels of
    the training split, or the TREC qrels file ``path``), a judgments JSONL file, or ``first_stage``: the free control where the
    first-stage (BM25) ranking is the judge — its candidates ranked by BM25 go through ``rule``
    (default ``top1``: "BM25's top hit is the positive").

    ``label``: which judgment field becomes the training label (None = the method's own label, as in
    training: ``relevance`` for relevance selection, ``utility`` for every other method; ``utility`` or
    ``relevance`` — e.g. the relevance-selection step of a utilsel run — to choose); ``method``:
    keep only judgments of this annotation method (None = all); ``rule``: the label rule
    (:mod:`utilabel.labels`; None = the rule recorded with the annotation run); ``with_qrels``: also keep
    the training split's qrels positives of every labelled query (on a generated dataset: the passage each
    query was written from).
    """

    name: str
    kind: str = "judgments"
    path: str | None = None
    label: str | None = None
    method: str | None = None
    rule: str | None = None
    with_qrels: bool = False

    def __post_init__(self):
        if self.rule is not None:
            self.rule = parse_rule(self.rule).spec
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"label source {self.name!r}: kind must be one of {', '.join(SOURCE_KINDS)}, "
                              f"got {self.kind!r}")
        if self.kind == "judgments" and not self.path:
            raise ConfigError(f"label source {self.name!r}: a judgments source needs 'path'")
        if self.label is not None and self.label not in LABEL_FIELDS:
            raise ConfigError(f"label source {self.name!r}: label must be one of {', '.join(LABEL_FIELDS)}")
        if self.with_qrels and self.kind == "human":
            raise ConfigError(f"label source {self.name!r}: with_qrels is for judgments or first_stage sources "
                              "(human labels are the qrels)")


@dataclass
class EvalDataset:
    """One evaluation dataset: ``max_queries`` sampled queries (None = all; the corpus is never
    sampled); ``rag``: also run the RAG reader on it (needs gold answers); ``heldout``: only for the
    training dataset and split, keep only the queries no study trains on — a development set for
    choosing settings (label rule, epochs) without touching the test split."""

    name: str
    split: str = "test"
    max_queries: int | None = None
    rag: bool = False
    heldout: bool = False

    def __post_init__(self):
        if self.max_queries is not None:
            _check_range(f"dataset {self.name}", "max_queries", self.max_queries, 1, 10**7)


@dataclass
class RAGSettings:
    """The reader: backend name and options, passages per question, questions per dataset, and
    which rows get RAG (``rows``: row names such as ``BM25``, ``base``, ``human/infonce``)."""

    reader: str = "llamacpp"
    model: str = "qwen2.5-coder-1.5b"
    options: dict[str, Any] = field(default_factory=dict)
    k: int = 3
    limit: int = 20
    passage_chars: int = 500
    rows: list[str] = field(default_factory=lambda: ["BM25", "base"])

    def __post_init__(self):
        _check_range("rag", "k", self.k, 1, 100)
        _check_range("rag", "limit", self.limit, 1, 10**6)


FUSION_METHODS = ("rrf", "minmax", "zscore")


@dataclass
class FusionSettings:
    """Every dense row also fused with BM25 (a row ``<row> +BM25``, see :mod:`utilabel.retrieve.hybrid`):
    ``method`` ``rrf`` (``rrf_k``) or a convex combination of ``minmax`` / ``zscore`` normalised scores
    with BM25's weight ``weight`` — a number, or ``choose``: the grid value that maximises the main
    metric on that very dataset, recorded with the result. ``choose`` belongs in a grid on a
    development set (``heldout: true``); a test grid takes the number chosen there."""

    method: str = "zscore"
    weight: float | str = 0.5
    rrf_k: float = 60.0
    grid: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])

    def __post_init__(self):
        if self.method not in FUSION_METHODS:
            raise ConfigError(f"fusion.method must be one of {', '.join(FUSION_METHODS)}, got {self.method!r}")
        if self.weight != "choose":
            if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
                raise ConfigError(f"fusion.weight must be a number in [0, 1] or 'choose', got {self.weight!r}")
            _check_range("fusion", "weight", self.weight, 0.0, 1.0)
        _check_range("fusion", "rrf_k", self.rrf_k, 0.0, 1e6)
        if not self.grid or any(not 0.0 <= w <= 1.0 for w in self.grid):
            raise ConfigError("fusion.grid must be a non-empty list of weights in [0, 1]")

    def settings(self) -> dict[str, Any]:
        """What identifies a fused result (its result key)."""
        if self.method == "rrf":
            return {"method": "rrf", "rrf_k": self.rrf_k}
        out: dict[str, Any] = {"method": self.method, "weight": self.weight}
        if self.weight == "choose":
            out["grid"] = list(self.grid)
        return out


@dataclass
class RoundSettings:
    """The second round of a ``round`` study (see the module docstring and
    :meth:`~utilabel.experiments.runner.ExperimentRunner` ``_next_round``).

    ``run``: the pointwise annotation run folder whose judge checks the mined negatives (default: the
    folder of the source's judgments file; its ``checked/`` folder, if any, counts as judged already);
    ``backend``/``model``: default the engine the run's call log records and the run's model
    (:func:`utilabel.annotate.check.check_backend`); ``top``: not-yet-judged mined candidates judged per
    query; ``mode``: a useful one becomes a ``positive`` or is ``drop``-ped from the negatives;
    mining with the round-0 model (:class:`utilabel.retrieve.mine.MineConfig`): ``rank_hi`` dense hits,
    ``relative_margin``, ``positive_score`` (the source's own positives, never human ones);
    ``check_dir``: the folder that holds each round's check (default ``<out>/rounds``; a path in the
    repository keeps the judge's call log with the results)."""

    run: str | None = None
    backend: str | None = None
    model: str | None = None
    top: int = 2
    mode: str = "positive"
    rank_hi: int = 100
    relative_margin: float | None = 0.95
    positive_score: str = "max"
    check_dir: str | None = None

    def __post_init__(self):
        from ..annotate.check import MODES
        from ..retrieve.mine import POSITIVE_SCORES

        _check_range("round", "top", self.top, 1, 1000)
        _check_range("round", "rank_hi", self.rank_hi, 1, 10000)
        if self.relative_margin is not None:
            _check_range("round", "relative_margin", self.relative_margin, 0.0, 1.0)
        if self.mode not in MODES:
            raise ConfigError(f"round.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.positive_score not in POSITIVE_SCORES:
            raise ConfigError(f"round.positive_score must be one of {', '.join(POSITIVE_SCORES)}, "
                              f"got {self.positive_score!r}")


@dataclass
class Study:
    """One block of the grid (see the module docstring). ``datasets``: names among the
    experiment's eval datasets (None = all); ``train_queries``: ``annotated`` (the queries of the
    first judgments source — human vs LLM on the same queries), ``all``, or a number (seeded sample);
    ``epochs`` overrides the shared training epochs (small label sets need more passes); ``tag``
    is appended to the study's row names (``llm/disj [3 epochs]``) so that its rows stay apart from
    rows of the same sources and loss trained otherwise. ``teacher``: the name of a grid source whose
    teacher scores the study's (distillation) losses learn from; ``train``: training options of this
    study's models over the grid's ``train`` (not the runner's per-model options, ``epochs`` or
    ``teacher``) — give a ``tag`` when two studies differ only there. ``round``: the
    :class:`RoundSettings` of a ``round`` study."""

    name: str
    kind: str = "labels"
    sources: list[str] = field(default_factory=lambda: ["human"])
    losses: list[str] = field(default_factory=lambda: ["infonce"])
    seeds: list[int] = field(default_factory=lambda: [0])
    noise_rates: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6])
    human_ratios: list[float] = field(default_factory=lambda: [0.0, 0.2, 1.0])
    human_choice: list[str] = field(default_factory=lambda: ["random"])
    llm_source: str | None = None
    datasets: list[str] | None = None
    train_queries: str | int = "annotated"
    epochs: int | None = None
    tag: str | None = None
    teacher: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    round: dict[str, Any] | None = None

    def __post_init__(self):
        if self.round is not None and self.kind != "round":
            raise ConfigError(f"study {self.name!r}: round settings need kind round")
        if self.kind == "round":
            self.round_settings()  # validates
            if self.teacher is not None:
                raise ConfigError(f"study {self.name!r}: a round study trains without a teacher")
            if "negatives_file" in self.train:
                raise ConfigError(f"study {self.name!r}: a round study mines its own negatives; remove train.negatives_file")
        if self.epochs is not None:
            _check_range(f"study {self.name}", "epochs", self.epochs, 1, 100)
        if self.kind not in STUDY_KINDS:
            raise ConfigError(f"study {self.name!r}: unknown kind {self.kind!r}; valid: {', '.join(STUDY_KINDS)}")
        from ..train.losses import LOSSES

        bad = [x for x in self.losses if x not in LOSSES]
        if bad:
            raise ConfigError(f"study {self.name!r}: unknown loss {bad[0]!r}; valid: {', '.join(LOSSES)}")
        if not self.seeds:
            raise ConfigError(f"study {self.name!r}: needs at least one seed")
        for r in self.noise_rates:
            _check_range(f"study {self.name}", "noise_rates", r, 0.0, 0.95)
        for r in self.human_ratios:
            _check_range(f"study {self.name}", "human_ratios", r, 0.0, 1.0)
        bad = [x for x in self.human_choice if x not in HUMAN_CHOICES]
        if bad or not self.human_choice:
            raise ConfigError(f"study {self.name!r}: human_choice must be a non-empty list of {', '.join(HUMAN_CHOICES)}")
        needs = sorted(x for x in self.losses if LOSSES[x].needs_teacher)
        if self.teacher is None and needs:
            raise ConfigError(f"study {self.name!r}: loss {needs[0]!r} needs teacher scores; name a source as teacher")
        if self.teacher is not None and len(needs) < len(self.losses):
            plain = next(x for x in self.losses if not LOSSES[x].needs_teacher)
            raise ConfigError(f"study {self.name!r}: loss {plain!r} does not use the teacher; "
                              "put it in a study without one")
        bad = sorted(set(self.train) & {*RUNNER_OPTIONS, "epochs", "teacher"})
        if bad:
            raise ConfigError(f"study {self.name!r}: train.{bad[0]} cannot be set per study")
        if self.kind == "ratio" and not self.llm_source:
            raise ConfigError(f"study {self.name!r}: a ratio study needs llm_source")
        if not (self.train_queries in ("annotated", "all") or (isinstance(self.train_queries, int)
                                                                and self.train_queries > 0)):
            raise ConfigError(f"study {self.name!r}: train_queries must be 'annotated', 'all' or a positive number")

    def round_settings(self) -> RoundSettings:
        """The study's :class:`RoundSettings` (defaults where it gives none)."""
        return _build(RoundSettings, self.round or {}, f"study {self.name}.round")


COMPARISON_KINDS = ("superiority", "equivalence")


@dataclass
class Comparison:
    """A paired comparison the report tests (:mod:`utilabel.experiments.stats`): row ``a`` against
    row ``b`` (row names as in the report, e.g. ``llm/disj``, ``base``) on ``datasets`` (None =
    every dataset both rows have); ``kind``: does a beat b (``superiority``) or is it within the
    grid's ``equivalence_margin`` of b (``equivalence``); ``claim``: the id of the claim it tests."""

    a: str
    b: str
    datasets: list[str] | None = None
    kind: str = "superiority"
    claim: str | None = None

    def __post_init__(self):
        if self.kind not in COMPARISON_KINDS:
            raise ConfigError(f"comparison {self.a} vs {self.b}: kind must be one of {', '.join(COMPARISON_KINDS)}")


@dataclass
class ExperimentConfig:
    """The whole grid. ``out``: folder of every artefact (labels, models, runs, results, report)."""

    name: str = "experiment"
    out: str = "runs/experiment"
    train_dataset: str = "scifact"
    train_split: str = "train"
    sources: list[LabelSource] = field(default_factory=lambda: [LabelSource("human", kind="human")])
    datasets: list[EvalDataset] = field(default_factory=lambda: [EvalDataset("scifact")])
    studies: list[Study] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    dense: dict[str, Any] = field(default_factory=dict)
    rag: RAGSettings | None = None
    fusion: FusionSettings | None = None
    reference_rows: bool = True
    main_metric: str = "nDCG@10"
    sample_seed: int = 13
    claims: dict[str, str] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    equivalence_margin: float = 0.02

    def __post_init__(self):
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError("label source names must be unique")
        ds_names = [d.name for d in self.datasets]
        for d in self.datasets:
            if d.heldout and (d.name, d.split) != (self.train_dataset, self.train_split):
                raise ConfigError(f"dataset {d.name}/{d.split}: heldout needs the training dataset and split "
                                  f"({self.train_dataset}/{self.train_split})")
        for study in self.studies:
            for s in study.sources + ([study.llm_source] if study.llm_source else []):
                if s not in names:
                    raise ConfigError(f"study {study.name!r}: unknown label source {s!r}; valid: {', '.join(names)}")
            for d in study.datasets or []:
                if d not in ds_names:
                    raise ConfigError(f"study {study.name!r}: dataset {d!r} is not among the eval datasets "
                                      f"({', '.join(ds_names)})")
            if study.teacher is not None and study.teacher not in names:
                raise ConfigError(f"study {study.name!r}: unknown teacher source {study.teacher!r}; valid: {', '.join(names)}")
            if study.train:
                try:
                    self.train_config(**study.train)
                except ConfigError as exc:
                    raise ConfigError(f"study {study.name!r}: {exc}") from None

        for c in self.comparisons:
            if c.claim is not None and c.claim not in self.claims:
                raise ConfigError(f"comparison {c.a} vs {c.b}: unknown claim {c.claim!r}; valid: {', '.join(self.claims)}")
            for d in c.datasets or []:
                if d not in ds_names:
                    raise ConfigError(f"comparison {c.a} vs {c.b}: dataset {d!r} is not among the eval datasets")
        _check_range("experiment", "equivalence_margin", self.equivalence_margin, 0.0, 1.0)
        set_by_runner = sorted(set(self.train) & set(RUNNER_OPTIONS))
        if set_by_runner:
            raise ConfigError(f"train.{set_by_runner[0]} is set per model by the runner; remove it")
        self.train_config()  # validates the options with TrainConfig's / DenseConfig's bounds and messages
        self.dense_config()
        _check_range("dense", "k", self.k, 10, 10000)

    def train_config(self, **per_model) -> TrainConfig:
        """The :class:`TrainConfig` of a model: grid defaults, the ``train`` section, then ``per_model``."""
        return TrainConfig.from_dict({**TRAIN_DEFAULTS, **self.train, **per_model})

    def train_settings(self, **per_model) -> dict:
        """The training settings that identify a model (report, model keys)."""
        cfg = self.train_config(**per_model)
        return {k: getattr(cfg, k) for k in dict.fromkeys([*TRAIN_KEYED, *self.train, *per_model])}

    def dense_config(self, **options) -> DenseConfig:
        """The :class:`DenseConfig` of evaluation: grid defaults, the ``dense`` section, then ``options``."""
        d = {**DENSE_DEFAULTS, **self.dense, **options}
        d.pop("k")
        try:
            return DenseConfig(**d)
        except TypeError as exc:
            raise ConfigError(f"dense: {exc}") from None

    @property
    def k(self) -> int:
        """Hits retrieved per query."""
        return {**DENSE_DEFAULTS, **self.dense}["k"]

    def dense_settings(self) -> dict:
        """The encoding settings that identify a result (report, result keys); float32 (``quantize:
        none``) leaves the quantisation out, so keys made before the option existed stay valid."""
        cfg, extra = asdict(self.dense_config()), {**DENSE_DEFAULTS, **self.dense}
        out = {k: extra["k"] if k == "k" else cfg[k] for k in dict.fromkeys([*DENSE_KEYED, *self.dense])}
        if out.get("quantize") == "none":
            del out["quantize"]
        return out

    def source(self, name: str) -> LabelSource:
        return next(s for s in self.sources if s.name == name)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        return _build(cls, data, "experiment")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        """A grid from a YAML file (:func:`utilabel.data.textio.read_config_file`)."""
        return cls.from_dict(read_config_file(path, "experiment config"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_NESTED = {
    "sources": (list, LabelSource), "datasets": (list, EvalDataset), "studies": (list, Study),
    "rag": (None, RAGSettings), "fusion": (None, FusionSettings), "comparisons": (list, Comparison),
}


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(known))}")
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        nested = _NESTED.get(key) if cls is ExperimentConfig else None
        if not nested and not _is_a(value, hints[key]):
            raise ConfigError(f"{where}.{key}: expected {_type_name(hints[key])}, got {value!r}")
        if nested and value is not None:
            kind, sub = nested
            if kind is list:
                if not isinstance(value, list):
                    raise ConfigError(f"{where}.{key}: expected a list")
                value = [_build(sub, v if isinstance(v, dict) else {"name": v}, f"{where}.{key}[{i}]")
                         for i, v in enumerate(value)]
            else:
                value = _build(sub, value, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _is_a(value, hint) -> bool:
    """Whether a YAML value fits a field's type hint (ints count as floats; bools are not numbers)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_a(value, a) for a in args)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_is_a(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    """``int | None`` → "an integer or null", ``list[float]`` → "a list of numbers"."""
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return "a list of " + _type_name(args[0]).removeprefix("an ").removeprefix("a ") + "s"
    if origin is dict:
        return "a mapping"
    return names.get(hint, getattr(hint, "__name__", str(hint)))

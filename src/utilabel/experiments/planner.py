"""The study planner: studies + label access → the models of the grid (:class:`ModelSpec`), pure.

:class:`StudyPlanner` expands each study of an :class:`~.config.ExperimentConfig` into models — label
sources × losses × seeds, noise rates, human ratios — with their labels in memory, label statistics and
model key (:func:`.keys.model_key`). It reads nothing itself: labels, margins, candidates, teacher
scores and training queries come from the ``data`` it is given (a :class:`~.grid_data.GridData` in the
runner). A study with a ``teacher`` gives each of its models the teacher scores (normalised as the
study's training options say) and the study's ``train`` options; its rows read
``<labels>+teacher(<teacher>)/<loss>`` and its keys hash the teacher scores and those options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..labels import Labels
from ..labels.mixing import plan_labels
from ..labels.teacher import Teacher, teacher_digest
from . import label_variants as variants
from .config import ExperimentConfig, Study
from .keys import model_key


class LabelAccess(Protocol):
    """What the planner reads: a study's training queries, a source's labels and margins, candidates, stats."""

    def train_query_ids(self, how: str | int) -> list[str]: ...
    def labels(self, name: str, query_ids: list[str]) -> Labels | None: ...
    def margins(self, name: str) -> dict[str, float]: ...
    def candidates(self, depth: int = 10) -> dict[str, list[str]]: ...
    def stats(self, labels: Labels) -> dict: ...
    def teacher(self, name: str, normalize: str = "zscore", depth: int = 30) -> Teacher | None: ...


@dataclass
class ModelSpec:
    """One trained model of the grid: its row, loss, seed, evaluation datasets and training labels."""

    study: str
    kind: str
    row: str
    loss: str
    seed: int
    datasets: list[str]
    source: str | None = None
    noise_rate: float | None = None
    human_ratio: float | None = None
    train_queries: str | int = "annotated"
    epochs: int | None = None
    labels: Labels = field(default_factory=dict, repr=False)
    method: str = ""
    label_stats: dict = field(default_factory=dict)
    key: str = ""
    #: the teacher source's name, its (normalised) scores, and the study's own training options
    teacher_source: str | None = None
    teacher: Teacher | None = field(default=None, repr=False)
    train_options: dict = field(default_factory=dict)

    @property
    def labels_digest(self) -> str:
        return variants.labels_digest(self.labels)


def fmt_rate(x: float) -> str:
    return f"{round(100 * x)}%"


def tagged(row: str, study: Study, round_tag: str) -> str:
    """``row`` with the study's tag and, in a ``round`` study, the round (``llm/disj [tag, round 1]``)."""
    tags = [t for t in (study.tag, round_tag if study.kind == "round" else None) if t]
    return f"{row} [{', '.join(tags)}]" if tags else row


class StudyPlanner:
    """The models of each study (see the module docstring)."""

    def __init__(self, config: ExperimentConfig, data: LabelAccess):
        self.config, self.data = config, data
        self._teacher: Teacher | None = None  # the teacher scores of the study being planned

    def study_datasets(self, study: Study) -> list[str]:
        return list(study.datasets) if study.datasets else [d.name for d in self.config.datasets]

    def plan_study(self, study: Study) -> list[ModelSpec]:
        """The models of one study, seed by seed, loss by loss."""
        qids = self.data.train_query_ids(study.train_queries)
        datasets = self.study_datasets(study)
        teacher = None
        if study.teacher is not None:
            cfg = self.config.train_config(**study.train)
            teacher = self.data.teacher(study.teacher, cfg.teacher_normalize, cfg.negatives_k or 30)
            if teacher is None:
                return []
        self._teacher = teacher
        specs: list[ModelSpec] = []
        for seed in study.seeds:
            for loss in study.losses:
                new = {"labels": self._label_models, "noise": self._noise_models, "round": self._label_models}.get(
                    study.kind, self._ratio_models)(study, qids, datasets, loss, seed)
                specs.extend(self._finish(study, spec) for spec in new)
        return specs

    def _spec(self, study: Study, row: str, loss: str, seed: int, datasets, labels: Labels, method: str,
              **extra) -> ModelSpec:
        if study.teacher is not None:
            row = f"{row}+teacher({study.teacher})"
            extra = {**extra, "teacher_source": study.teacher, "teacher": self._teacher}
        return ModelSpec(study.name, study.kind, f"{row}/{loss}", loss, seed, datasets, train_queries=study.train_queries,
                         labels=labels, method=method, label_stats=self.data.stats(labels),
                         train_options=dict(study.train), **extra)

    def _label_models(self, study: Study, qids, datasets, loss: str, seed: int) -> list[ModelSpec]:
        out = []
        for name in study.sources:
            labels = self.data.labels(name, qids)
            if labels is not None:
                out.append(self._spec(study, name, loss, seed, datasets, labels, name, source=name))
        return out

    def _noise_models(self, study: Study, qids, datasets, loss: str, seed: int) -> list[ModelSpec]:
        human = self.data.labels(study.sources[0], qids)
        if human is None:
            return []
        cands = self.data.candidates()
        out = []
        for rate in study.noise_rates:
            noisy = variants.add_false_positives(human, cands, rate, seed)
            method = f"{study.sources[0]}-noise{fmt_rate(rate)}-s{seed}"
            out.append(self._spec(study, f"noise {fmt_rate(rate)}", loss, seed, datasets, noisy, method,
                                  source=study.sources[0], noise_rate=rate))
        return out

    def _ratio_models(self, study: Study, qids, datasets, loss: str, seed: int) -> list[ModelSpec]:
        llm = self.data.labels(study.llm_source, qids) if study.llm_source else None
        if llm is None or study.llm_source is None:
            return []
        human = self.data.labels(study.sources[0], qids)
        margins = self.data.margins(study.llm_source) if "uncertain" in study.human_choice else None
        out = []
        for ratio, choice in ((r, c) for r in study.human_ratios for c in study.human_choice):
            if choice != study.human_choice[0] and ratio in (0.0, 1.0):
                continue  # all or none of the queries: the choice makes no difference
            strategy = "uncertain" if choice == "uncertain" else "replace"
            mixed = plan_labels(human, llm, ratio, strategy, seed, margins=margins).labels(0)
            method = f"{study.llm_source}-human{ratio:g}-{choice}-s{seed}"
            row = f"human ratio {ratio:g}" + (f" ({choice})" if study.human_choice != ["random"] else "")
            out.append(self._spec(study, row, loss, seed, datasets, mixed, method, source=study.llm_source,
                                  human_ratio=ratio))
        return out

    def _finish(self, study: Study, spec: ModelSpec, round_tag: str = "round 0") -> ModelSpec:
        spec.epochs = study.epochs
        spec.key = model_key(self.config, spec.labels_digest, spec.loss, spec.label_stats.get("max_positives", 2),
                             spec.seed, spec.epochs, teacher_digest(spec.teacher) if spec.teacher is not None else None,
                             spec.train_options)
        spec.row = tagged(spec.row, study, round_tag)
        return spec

    # ------------------------------------------------------------------------------------- round studies
    ROUND_TAGS = ("round 1", "round 1, no check")

    def round_rows(self, study: Study, first: ModelSpec) -> list[str]:
        """The rows of the two round-1 models that follow ``first`` (a round-0 model of ``study``)."""
        return [tagged(f"{first.source}/{first.loss}", study, tag) for tag in self.ROUND_TAGS]

    def round_specs(self, study: Study, first: ModelSpec, checked: Labels, negatives_file: str,
                    control_negatives_file: str) -> list[ModelSpec]:
        """The round-1 models after ``first``: ``checked`` labels (the round-0 labels plus the judge's
        check) with ``negatives_file``, and the free control: ``first``'s own labels with
        ``control_negatives_file`` (the same mining, no judge)."""
        out = []
        for tag, labels, negatives, method in (
                (self.ROUND_TAGS[0], checked, negatives_file, f"{first.method}-round1-s{first.seed}"),
                (self.ROUND_TAGS[1], first.labels, control_negatives_file, f"{first.method}-round1-nocheck-s{first.seed}")):
            spec = ModelSpec(study.name, study.kind, f"{first.source}/{first.loss}", first.loss, first.seed,
                             list(first.datasets), source=first.source, train_queries=first.train_queries,
                             labels=labels, method=method, label_stats=self.data.stats(labels),
                             train_options={**study.train, "negatives_file": negatives})
            out.append(self._finish(study, spec, tag))
        return out

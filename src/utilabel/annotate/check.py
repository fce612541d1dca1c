"""The judge checks mined negatives: the run's method on the top mined candidates it has not judged yet.

:func:`check_negatives` takes an annotation run folder and mined candidate groups
(:func:`~utilabel.retrieve.mine.mine_negatives`, ``utilabel mine``). For each query of the run it
keeps the first ``top`` mined candidates (rank order) whose ``(query, doc)`` pair is not in the
run's ``judgments.jsonl`` and judges them with the run's settings (its ``config.json``: method,
prompts, options; the backend must serve the run's model with the run's engine — log-probabilities of
llama.cpp and transformers differ, so a check with another engine is refused where the run's call log
records its engine, :func:`run_engines`) into the sibling folder
``run_dir/checked/``. That folder is an ordinary run folder (:func:`~.engine.annotate`): its own
``config.json`` (equal to the run's), its own append-only ``calls.jsonl`` (so it is resumable: a
re-run replays every logged call and makes none; the run's own files are never touched, so the run
stays valid for ``report``/``merge``), ``judgments.jsonl`` of the checked candidates only, and
``summary.json``. Nothing is judged twice: the run's judged pairs are skipped by construction, and
the checked folder's calls replay from its log. ``dry_run=True`` estimates the calls and tokens
(:func:`~.engine.estimate`) without a backend.

Supported method: ``pointwise`` with ``answer_source="none"`` — each passage is judged alone, so
judging extra candidates is the same judgment the run would have made. Listwise methods (and
pointwise with a pseudo-answer from a relevance *selection*) judge a passage in the context of the
others, so they are refused (:class:`~utilabel.errors.ConfigError`). Caveat: the ``first_stage``
signal is standardised within the judged group, here the checked candidates with their mined
(dense) scores, so its shift is relative to the other checked negatives, not to the run's BM25 list.

:func:`checked_labels` turns a check into labels (see its docstring for the "useful" bar) and
:func:`checked_groups` into training groups for ``utilabel train --groups``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.groups import read_groups
from ..data.judgments import read_judgments
from ..errors import ConfigError
from ..labels import LabelRule, Labels, judgment_labels, parse_rule, ranked_values, run_label_rule
from ..llm.base import LLMBackend
from ..records import Candidate, CandidateGroup, Document, Judgment, TrainingGroup
from .caller import Estimate
from .config import AnnotateConfig
from .engine import annotate, estimate
from .methods import get_method
from .runfolder import run_settings, settings_diff
from .store import logged_engines

CHECK_DIR = "checked"
"""The sibling folder, inside the run folder, that holds the checked candidates' run."""

MODES = ("positive", "drop")


@dataclass
class CheckResult:
    """What :func:`check_negatives` returns: the checked candidate groups and either the run's summary
    or (``dry_run``) the estimate."""

    out_dir: Path
    groups: list[CandidateGroup]
    summary: dict[str, Any] | None = None
    estimate: Estimate | None = None

    @property
    def candidates(self) -> int:
        return sum(len(g.candidates) for g in self.groups)

    @property
    def judgments(self) -> list[Judgment]:
        path = self.out_dir / "judgments.jsonl"
        return read_judgments(path) if path.exists() else []


def run_engines(run_dir: str | Path) -> set[str]:
    """The backends (``engine`` field) the calls of the run in ``run_dir`` were made with; empty when its
    call log is missing or older than the field."""
    return logged_engines(Path(run_dir) / "calls.jsonl")


def check_backend(run_dir: str | Path, backend: str | None = None, model: str | None = None) -> tuple[str, str | None]:
    """The backend name and model a check of the run in ``run_dir`` uses: those given, else the engine
    its call log records (a log older than that field: the engine its ``checked/`` folder's log records;
    llama.cpp when neither records exactly one) and the model its ``config.json`` names."""
    engines = run_engines(run_dir) or logged_engines(Path(run_dir) / CHECK_DIR / "calls.jsonl")
    name = backend or (next(iter(engines)) if len(engines) == 1 else "llamacpp")
    return name, model or run_folder_settings(run_dir)[0].get("model")


def run_folder_settings(run_dir: str | Path) -> tuple[dict[str, Any], AnnotateConfig]:
    """The run's ``config.json`` and its :class:`AnnotateConfig`; a method the check cannot repeat
    on extra candidates alone is refused."""
    path = Path(run_dir) / "config.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        config = AnnotateConfig(**settings["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not an annotation run's config ({exc})") from None
    if config.method != "pointwise" or config.answer_source != "none":
        raise ConfigError(f"checking negatives needs a pointwise run with answer_source none (each passage judged "
                          f"alone); {run_dir} used {config.method} with answer_source {config.answer_source}")
    return settings, config


def unchecked_candidates(judgments: Sequence[Judgment], mined: Sequence[CandidateGroup],
                         top: int) -> list[CandidateGroup]:
    """Per query of ``judgments`` (in ``mined`` order), the first ``top`` mined candidates by rank whose
    pair is not judged yet; queries with none are left out."""
    if top < 1:
        raise ConfigError(f"top must be ≥ 1, got {top}")
    judged = {(j.query_id, j.doc_id) for j in judgments}
    queries = {q for q, _ in judged}
    out = []
    for g in mined:
        if g.query_id not in queries:
            continue
        new: dict[str, Candidate] = {}  # a doc listed twice counts once, at its best rank
        for c in sorted(g.candidates, key=lambda c: c.rank):
            if len(new) < top and (g.query_id, c.doc_id) not in judged:
                new.setdefault(c.doc_id, c)
        if new:
            out.append(CandidateGroup(g.query_id, g.query, tuple(new.values())))
    return out


def check_negatives(run_dir: str | Path, mined: Sequence[CandidateGroup], corpus: Mapping[str, Document],
                    backend: LLMBackend | None = None, top: int = 5, answers: Mapping[str, Sequence[str]] | None = None,
                    dry_run: bool = False, progress: bool = False, out_dir: str | Path | None = None,
                    seen: Sequence[Judgment] = (), **run_options: Any) -> CheckResult:
    """Judge the top ``top`` not-yet-judged mined candidates of every query of the run in ``run_dir``
    into ``out_dir`` (default ``run_dir/checked/``) with the run's settings (see the module docstring).
    ``seen``: judgments of earlier checks, whose pairs count as judged too (a later round judges only
    what is new). ``run_options`` go to :func:`~.engine.annotate` (``max_concurrency``, ``workers``,
    ``breaker``)."""
    run_dir = Path(run_dir)
    settings, config = run_folder_settings(run_dir)
    run_path = run_dir / "judgments.jsonl"
    if not run_path.exists():
        raise ConfigError(f"{run_dir} has no judgments.jsonl: annotate it first")
    groups = unchecked_candidates([*read_judgments(run_path), *seen], mined, top)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / CHECK_DIR
    if dry_run:
        return CheckResult(out_dir, groups, estimate=estimate(groups, corpus, config, answers))
    if backend is None:
        raise ConfigError("checking negatives needs a backend (or dry_run=True)")
    engines = run_engines(run_dir)
    if engines and backend.name not in engines:
        raise ConfigError(f"{run_dir} was annotated with the {', '.join(sorted(engines))} backend; check it with "
                          f"that backend, not {backend.name} (their log-probabilities differ)")
    now = run_settings(config, get_method(config.method, config), backend.model_id, None)
    diff = settings_diff(settings, json.loads(json.dumps(now)), ignore=("shard",))
    if diff:
        raise ConfigError(f"{run_dir} was annotated with other settings than this check would use "
                          f"({'; '.join(diff[:3])}); give the run's backend and model")
    run = annotate(groups, corpus, backend, out_dir, config, answers=answers, progress=progress, **run_options)
    return CheckResult(out_dir, groups, summary=run.summary)


def useful_bar(run_values: Sequence[tuple[str, float]], rule: LabelRule) -> float | None:
    """The value a checked negative needs to count as useful: the value of the query's weakest
    positive in the run under ``rule``; a query without a positive falls back to the rule's threshold
    (None: nothing is useful)."""
    pos = rule.select(run_values)
    if pos:
        return min(v for d, v in run_values if d in pos)
    return rule.threshold


def checked_labels(run_judgments: Sequence[Judgment], checked_judgments: Sequence[Judgment],
                   rule: LabelRule | str, mode: str = "positive") -> tuple[Labels, dict[str, set[str]]]:
    """The run's labels (binary, under ``rule``) plus the checked negatives, and the doc ids to exclude
    as hard negatives per query.

    A checked negative is *useful* when its value is ≥ :func:`useful_bar` (the judge rates it at least
    as high as a passage the run made a positive). ``mode="positive"``: it becomes an extra positive
    (weight 1.0, multi-positive) and nothing is excluded; ``mode="drop"``: it is left out of the labels
    and its doc id is in the query's exclusion set. Every other checked negative is a confirmed hard
    negative (0.0). A checked judgment without a value (its step failed) is left out. A run label is never
    changed (a checked pair that the run judged keeps the run's label).
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    rule = parse_rule(rule)
    run_ranked = ranked_values(run_judgments)
    labels = judgment_labels(run_judgments, rule)
    exclude: dict[str, set[str]] = {}
    for qid, items in ranked_values(checked_judgments).items():
        bar = useful_bar(run_ranked.get(qid, []), rule)
        per = labels.setdefault(qid, {})
        for doc_id, value in items:
            if doc_id in per:
                continue
            useful = bar is not None and value >= bar
            if useful and mode == "drop":
                exclude.setdefault(qid, set()).add(doc_id)
            else:
                per[doc_id] = 1.0 if useful else 0.0
    return labels, exclude


def run_checked_labels(run_dir: str | Path, mode: str = "positive", rule: LabelRule | str | None = None,
                       checked_dirs: Sequence[str | Path] | None = None) -> tuple[Labels, dict[str, set[str]]]:
    """:func:`checked_labels` of a run folder and its checks (``checked_dirs``, default its ``checked/``
    folder; missing ones are skipped), under ``rule`` (default the run's label rule,
    :func:`~utilabel.labels.run_label_rule`: its calibrated rule if any)."""
    run_dir = Path(run_dir)
    dirs = [run_dir / CHECK_DIR] if checked_dirs is None else [Path(d) for d in checked_dirs]
    checked = [j for d in dirs if (d / "judgments.jsonl").exists() for j in read_judgments(d / "judgments.jsonl")]
    return checked_labels(read_judgments(run_dir / "judgments.jsonl"), checked,
                          run_label_rule(run_dir) if rule is None else rule, mode)


def without_excluded(groups: Sequence[CandidateGroup], exclude: Mapping[str, set[str]]) -> list[CandidateGroup]:
    """``groups`` with each query's excluded doc ids (``checked_labels(..., mode="drop")``) removed: the
    hard-negative candidates of drop mode."""
    return [CandidateGroup(g.query_id, g.query, tuple(c for c in g.candidates if c.doc_id not in exclude.get(g.query_id, ())))
            for g in groups]


NEGATIVE_POOLS = ("mined", "run")
"""Where :func:`checked_groups` takes a query's hard negatives from: every mined candidate (the
measured recipe, docs/results/teacher-dev), or the run's own candidates followed by the checked ones."""


def checked_groups(run_dir: str | Path, mined: Sequence[CandidateGroup], mode: str = "positive",
                   rule: LabelRule | str | None = None, negatives: str = "mined",
                   checked_dirs: Sequence[str | Path] | None = None) -> list[TrainingGroup]:
    """Training groups (``utilabel train --groups``) of :func:`run_checked_labels`: per query of the run
    (in ``mined`` order, then the run's other queries), the positives (the run's under ``rule``, then the
    useful checked ones in ``positive`` mode) and the hard negatives: with ``negatives="mined"`` every
    mined candidate of the query in rank order, judged or not; with ``"run"`` the run's judged candidates
    (its ``groups.jsonl`` order) followed by the checked ones in mined rank order. Positives and excluded
    (``drop``) doc ids are never negatives. The run's teacher scores are kept for its passages. Queries
    without a positive are skipped."""
    if negatives not in NEGATIVE_POOLS:
        raise ConfigError(f"negatives must be one of {', '.join(NEGATIVE_POOLS)}, got {negatives!r}")
    run_dir = Path(run_dir)
    labels, exclude = run_checked_labels(run_dir, mode, rule, checked_dirs)
    path = run_dir / "groups.jsonl"
    run_groups = {g.query_id: g for g in read_groups(path)} if path.exists() and path.stat().st_size else {}
    mined_by = {g.query_id: g for g in mined}
    texts = {g.query_id: g.query for g in mined} | {q: g.query for q, g in run_groups.items()}
    out = []
    for qid in dict.fromkeys([g.query_id for g in mined] + list(run_groups)):
        per = labels.get(qid)
        if not per:
            continue
        rg = run_groups.get(qid)
        mined_order = [c.doc_id for c in sorted(mined_by[qid].candidates, key=lambda c: c.rank)] if qid in mined_by else []
        order = [d for d in dict.fromkeys([*(rg.positives if rg else ()), *(rg.negatives if rg else ()), *mined_order,
                                           *per]) if d in per]
        pos = {d: per[d] for d in order if per[d] > 0}
        if not pos:
            continue
        if negatives == "mined":
            skip = pos.keys() | exclude.get(qid, set())
            negs = [d for d in dict.fromkeys(mined_order) if d not in skip]
        else:
            negs = [d for d in order if d not in pos]
        out.append(TrainingGroup(qid, texts[qid], pos, negs, rg.teacher if rg else None))
    return out

"""Teacher scores: real-valued scores of (query, passage) pairs that distillation losses learn from.

A :data:`Teacher` is ``{query_id: {doc_id: score}}``. It is a product of a label source, like labels
are, but keeps the scores instead of choosing positives. Sources (:func:`parse_teacher_spec`):

* a judgments JSONL file (``PATH`` or ``judgments:PATH``) — per judgment (:func:`judgment_teacher_score`):
  a ``pointwise`` judgment's ``score`` when set (the fused log-odds of "yes"), else the logit of its
  ``utility`` clipped to ``[1e-4, 1 - 1e-4]``; every other method (utilrank grades, vote shares) its
  ``utility``. Several judgments of one pair are averaged;
* ``run:PATH`` — a TREC run file: its scores (e.g. a cross-encoder's);
* ``human`` — the dataset's qrels of the split (``human:PATH``: a TREC qrels file): the grade;
* ``first_stage`` — the free control: the first stage's (BM25) own scores of its candidates.

Scores are then normalised per query in one place, :func:`normalize_teacher`: ``zscore`` (default;
a query whose scores are all equal gets zeros), ``minmax`` (to ``[0, 1]``; all equal → zeros) or
``none``. :func:`teacher_digest` hashes a teacher for model keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import CandidateGroup, Judgment

Teacher = dict[str, dict[str, float]]
"""``{query_id: {doc_id: teacher score}}``."""

TEACHER_KINDS = ("judgments", "run", "human", "first_stage")
NORMALIZATIONS = ("zscore", "minmax", "none")
POINTWISE_METHODS = frozenset({"pointwise"})
LOGIT_CLIP = 1e-4


def logit(p: float, clip: float = LOGIT_CLIP) -> float:
    """``log(p / (1 - p))`` of ``p`` clipped to ``[clip, 1 - clip]``."""
    p = min(max(p, clip), 1.0 - clip)
    return math.log(p / (1.0 - p))


def judgment_teacher_score(j: Judgment) -> float | None:
    """The teacher score of one judgment (None when it has none): pointwise → ``score`` when set,
    else ``logit(utility)``; other methods → ``utility``."""
    if j.method in POINTWISE_METHODS:
        if j.score is not None:
            return float(j.score)
        return None if j.utility is None else logit(float(j.utility))
    return None if j.utility is None else float(j.utility)


def judgments_teacher(judgments: Iterable[Judgment], method: str | None = None) -> Teacher:
    """Teacher scores of the judgments of ``method`` (all when None); a pair judged several times gets the mean."""
    acc: dict[str, dict[str, list[float]]] = {}
    for j in judgments:
        if method not in (None, j.method):
            continue
        s = judgment_teacher_score(j)
        if s is None or not math.isfinite(s):
            continue
        acc.setdefault(j.query_id, {}).setdefault(j.doc_id, []).append(s)
    return {q: {d: sum(v) / len(v) for d, v in docs.items()} for q, docs in acc.items()}


def mapping_teacher(scores: Mapping[str, Mapping[str, float]]) -> Teacher:
    """A run (``{query: {doc: score}}``) or graded qrels as a teacher (values as floats, non-finite dropped)."""
    out: Teacher = {}
    for q, docs in scores.items():
        per = {str(d): float(s) for d, s in docs.items() if math.isfinite(float(s))}
        if per:
            out[str(q)] = per
    return out


def candidates_teacher(groups: Sequence[CandidateGroup]) -> Teacher:
    """The first stage's own scores of its candidates."""
    return mapping_teacher({g.query_id: {c.doc_id: c.score for c in g.candidates} for g in groups})


def normalize_teacher(teacher: Mapping[str, Mapping[str, float]], how: str = "zscore") -> Teacher:
    """Per-query normalisation: ``zscore`` ((s - mean) / population std), ``minmax`` ((s - min) /
    (max - min)), ``none``; a query whose scores are all equal gets zeros under zscore and minmax."""
    if how not in NORMALIZATIONS:
        raise ConfigError(f"teacher_normalize must be one of {', '.join(NORMALIZATIONS)}, got {how!r}")
    out: Teacher = {}
    for q, docs in teacher.items():
        vals = list(docs.values())
        if how == "none" or not vals:
            out[q] = dict(docs)
            continue
        if how == "zscore":
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
            out[q] = {d: (s - mean) / std if std > 0 else 0.0 for d, s in docs.items()}
        else:
            lo, hi = min(vals), max(vals)
            out[q] = {d: (s - lo) / (hi - lo) if hi > lo else 0.0 for d, s in docs.items()}
    return out


@dataclass(frozen=True)
class TeacherSpec:
    """A parsed teacher source: ``kind`` (one of :data:`TEACHER_KINDS`) and its file, when it has one."""

    kind: str
    path: str | None = None

    def __str__(self) -> str:
        if self.kind == "first_stage" or (self.kind == "human" and self.path is None):
            return self.kind
        return f"{self.kind}:{self.path}"


def parse_teacher_spec(spec: str) -> TeacherSpec:
    """``first_stage``, ``human``, ``human:QRELS``, ``run:PATH``, ``judgments:PATH`` or a judgments file path."""
    spec = str(spec).strip()
    if not spec:
        raise ConfigError("the teacher source is empty; give a judgments file, run:PATH, human or first_stage")
    if spec in ("first_stage", "human"):
        return TeacherSpec(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("run", "human", "judgments"):
        if not rest:
            raise ConfigError(f"teacher source {spec!r} names no file")
        return TeacherSpec(kind, rest)
    return TeacherSpec("judgments", spec)


def read_teacher(spec: str | TeacherSpec, dataset: Any = None, split: str = "train", method: str | None = None,
                 candidates: Callable[[], Sequence[CandidateGroup]] | None = None,
                 normalize: str = "zscore") -> Teacher:
    """The normalised teacher scores of ``spec`` on ``dataset``'s ``split`` (a dataset is needed for
    ``human`` without a file; ``candidates()`` the first-stage candidate groups for ``first_stage``).
    A source that gives no score is an error."""
    src = spec if isinstance(spec, TeacherSpec) else parse_teacher_spec(spec)
    raw: Teacher
    if src.kind == "first_stage":
        if candidates is None:
            raise ConfigError("a first_stage teacher needs first-stage candidates")
        raw = candidates_teacher(candidates())
    elif src.kind == "run":
        from ..data.trec import read_trec_run

        raw = mapping_teacher(read_trec_run(str(src.path)))
    elif src.kind == "human":
        from ..data.trec import read_trec_qrels

        if src.path is None and dataset is None:
            raise ConfigError("a human teacher needs a dataset (or human:QRELS_FILE)")
        raw = mapping_teacher(read_trec_qrels(src.path) if src.path else dataset.qrels(split))
    else:
        from ..data.judgments import read_judgments

        if not Path(str(src.path)).exists():
            raise ConfigError(f"teacher judgments file {src.path} does not exist")
        raw = judgments_teacher(read_judgments([str(src.path)]) or [], method)
    if not raw:
        raise ConfigError(f"teacher source {src} gives no scores" + (f" for method {method!r}" if method else ""))
    return normalize_teacher(raw, normalize)


def teacher_digest(teacher: Mapping[str, Mapping[str, float]]) -> str:
    """A short stable hash of teacher scores (sorted; floats as ``repr``), for model keys."""
    canon = json.dumps({q: {d: repr(float(s)) for d, s in sorted(docs.items())} for q, docs in sorted(teacher.items())},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]

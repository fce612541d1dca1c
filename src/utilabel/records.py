"""Typed records shared by every stage.

Names follow ir_measures / ir_datasets conventions: ``query_id``, ``doc_id``, ``relevance``,
``score``. Lenient input (ints as ids, missing titles) is converted once, at the reader edge;
everything inside the library speaks these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: qrels as nested mapping ``{query_id: {doc_id: relevance}}`` (pytrec_eval's shape)
Qrels = dict[str, dict[str, int]]
#: a run as nested mapping ``{query_id: {doc_id: score}}``
Run = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Document:
    """A passage or document of a corpus."""

    doc_id: str
    text: str
    title: str = ""

    def full_text(self) -> str:
        """Title and text joined the way BEIR encoders see them."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    """A query/question; ``answers`` holds gold answers where the dataset has them (for RAG)."""

    query_id: str
    text: str
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A first-stage candidate for annotation: rank is 1-based."""

    doc_id: str
    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class CandidateGroup:
    """All first-stage candidates of one query, best first."""

    query_id: str
    query: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Judgment:
    """One LLM (or human) label of a (query, doc) pair produced by an annotation method.

    ``relevance`` is the relevance-selection label (1 selected, 0 not, None if the method has no
    relevance step), ``utility`` the utility label (1/0, or a soft/graded value in [0, 1]),
    ``rank`` the utility rank (1 = best) when the method ranks, ``score`` a real-valued score
    (e.g. log-probability of "yes"), ``model`` and ``prompt_id`` identify how it was produced.
    """

    query_id: str
    doc_id: str
    method: str
    relevance: int | None = None
    utility: float | None = None
    rank: int | None = None
    score: float | None = None
    model: str = ""
    prompt_id: str = ""


@dataclass(slots=True)
class TrainingGroup:
    """A training example: one query, weighted positives and hard negatives (doc ids).

    ``positives`` maps doc_id → weight (1.0 for binary labels; graded/soft labels allowed).
    ``teacher`` maps doc_id → teacher score (raw, e.g. an LLM's log-odds; see
    :mod:`utilabel.labels.teacher`) for the passages that have one; None when the group has none.
    """

    query_id: str
    query: str
    positives: dict[str, float] = field(default_factory=dict)
    negatives: list[str] = field(default_factory=list)
    teacher: dict[str, float] | None = None

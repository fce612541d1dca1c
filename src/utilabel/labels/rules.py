"""How an LLM judgment becomes a training label: the one place that decides.

An annotation run stores *soft* values per candidate (a selection fraction, a graded utility, or
``P(yes)`` of a pointwise judge). A :class:`LabelRule` turns the values of one query's candidates into
positives. Rules are named by a short spec, stored with the run and read back by every stage:

* ``threshold:T`` — every candidate with value ≥ ``T`` (the old global rule; ``threshold:0.5``).
* ``topM`` (``top1``, ``top3``) — the ``M`` best-valued candidates of the query, whatever their values.
* ``topM+threshold:T`` — the ``M`` best, plus any other candidate with value ≥ ``T``.
* ``calibrated:T`` / ``topM+calibrated:T`` — as ``threshold:T``, where ``T`` was chosen on a small
  human-labelled sample by :func:`calibrate` (the spec records the chosen number, so applying it needs
  no human labels).

"Best" orders candidates by value, then by ``score`` (a finer real-valued score such as log-odds), then
by the LLM's ``rank``, then by first-stage order (the order in which judgments were written). A
candidate without a value (its LLM step failed) is never a positive nor a negative. A query whose
values are all equal gets no positive from ``topM`` alone (nothing distinguishes its candidates).

Agreement with human labels and calibration live in :mod:`.agreement`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..records import Judgment

Labels = dict[str, dict[str, float]]
"""``{query_id: {doc_id: weight}}``: weight > 0 is a positive, 0.0 a labelled negative."""

RULE_HELP = "threshold:T, topM, topM+threshold:T, calibrated:T or topM+calibrated:T (e.g. top1+threshold:0.5)"
_SPEC = re.compile(r"^(?:top(?P<m>\d+))?(?:(?(m)\+)(?P<kind>threshold|calibrated):(?P<t>[-+0-9.eE]+))?$")


@dataclass(frozen=True)
class LabelRule:
    """How one query's soft values become positives (see the module docstring)."""

    top: int = 0
    threshold: float | None = None
    calibrated: bool = False

    def __post_init__(self) -> None:
        if self.top < 0:
            raise ConfigError(f"label rule: top must be ≥ 0, got {self.top}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"label rule: threshold must be a finite number, got {self.threshold}")
        if self.top == 0 and self.threshold is None:
            raise ConfigError(f"a label rule needs topM and/or a threshold; valid: {RULE_HELP}")
        if self.calibrated and self.threshold is None:
            raise ConfigError("a calibrated label rule needs its threshold")

    @property
    def spec(self) -> str:
        parts = [f"top{self.top}"] if self.top else []
        if self.threshold is not None:
            parts.append(f"{'calibrated' if self.calibrated else 'threshold'}:{self.threshold:g}")
        return "+".join(parts)

    def __str__(self) -> str:
        return self.spec

    def select(self, ranked: Sequence[tuple[str, float]]) -> set[str]:
        """Positives among ``ranked`` ``(doc_id, value)`` pairs, best first."""
        chosen: set[str] = set()
        if self.top and ranked and ranked[0][1] != ranked[-1][1]:
            chosen.update(d for d, _ in ranked[: self.top])
        if self.threshold is not None:
            chosen.update(d for d, v in ranked if v >= self.threshold)
        return chosen

    def with_threshold(self, threshold: float) -> LabelRule:
        """The same rule with a calibrated threshold."""
        return LabelRule(self.top, float(threshold), calibrated=True)


DEFAULT_RULE = LabelRule(threshold=0.5)


def parse_rule(text: str | LabelRule) -> LabelRule:
    """A :class:`LabelRule` from its spec; bad specs raise :class:`ConfigError` listing valid forms.

    ``calibrated`` without a number (what ``--label-rule calibrated`` means before calibration) is
    returned as ``threshold`` ``None`` only through :func:`parse_rule_template`.
    """
    if isinstance(text, LabelRule):
        return text
    m = _SPEC.match(str(text).strip().replace(" ", ""))
    if not m or not (m.group("m") or m.group("kind")):
        raise ConfigError(f"bad label rule {text!r}; valid: {RULE_HELP}")
    try:
        threshold = float(m.group("t")) if m.group("t") is not None else None
    except ValueError:
        raise ConfigError(f"bad label rule {text!r}: threshold {m.group('t')!r} is not a number") from None
    return LabelRule(int(m.group("m") or 0), threshold, calibrated=m.group("kind") == "calibrated")


def parse_rule_template(text: str) -> tuple[LabelRule | None, int]:
    """For CLIs: ``calibrated`` / ``topM+calibrated`` (threshold still to be chosen) give
    ``(None, M)``; any complete spec gives ``(rule, M)``."""
    t = str(text).strip().replace(" ", "")
    m = re.fullmatch(r"(?:top(\d+)\+)?calibrated", t)
    if m:
        return None, int(m.group(1) or 0)
    rule = parse_rule(t)
    return rule, rule.top


RULE_FILE = "label_rule.json"


def run_label_rule(run_dir: str | Path) -> LabelRule:
    """The label rule an annotation run folder declares: its calibrated rule (``label_rule.json``),
    else the ``label_rule`` of its ``config.json``, else :data:`DEFAULT_RULE`."""
    run_dir = Path(run_dir)
    for name, get in ((RULE_FILE, lambda d: d.get("rule")), ("config.json", lambda d: d.get("config", {}).get("label_rule"))):
        path = run_dir / name
        if path.exists():
            try:
                spec = get(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, AttributeError) as exc:
                raise ConfigError(f"{path}: not a valid run file ({exc})") from None
            if spec:
                return parse_rule(spec)
    return DEFAULT_RULE


# ---------------------------------------------------------------------------- judgments → labels
RELEVANCE_METHODS = frozenset({"relsel"})
"""Methods whose label is the relevance selection; every other method's label is its ``utility``."""
LABEL_FIELDS = ("utility", "relevance")


def judgment_value(j: Judgment, field: str | None = None) -> float | None:
    """The soft value of a judgment: its method's label — ``relevance`` for relevance selection,
    ``utility`` for every other method (None when that step failed: no fallback to the relevance
    step); for records without a method (hand-made files), ``utility`` when set, else ``relevance``.
    ``field`` reads that field instead (e.g. the relevance step of a utilsel run). Checked to lie in [0, 1]."""
    if field is not None and field not in LABEL_FIELDS:
        raise ConfigError(f"label field must be one of {', '.join(LABEL_FIELDS)}, got {field!r}")
    if field:
        value = getattr(j, field)
    elif j.method in RELEVANCE_METHODS:
        value = j.relevance
    elif j.method:
        value = j.utility
    else:
        value = j.utility if j.utility is not None else j.relevance
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ConfigError(f"judgment value must be in [0, 1]; got {value} for ({j.query_id}, {j.doc_id})")
    return value


def _order_key(value: float, score: float | None, rank: int | None, position: int) -> tuple:
    return (-value, -(score if score is not None else -math.inf), rank if rank is not None else math.inf, position)


def ranked_values(judgments: Iterable[Judgment], field: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Per query, ``(doc_id, value)`` best first (value, then score, LLM rank, written order).

    Several judgments of one pair (e.g. permutation votes written separately) are averaged.
    """
    acc: dict[str, dict[str, list]] = {}
    for pos, j in enumerate(judgments):
        value = judgment_value(j, field)
        if value is None:
            continue
        per = acc.setdefault(j.query_id, {})
        if j.doc_id in per:
            rec = per[j.doc_id]
            rec[0] += value
            rec[1] += 1
            if j.score is not None:
                rec[2] = (rec[2] or 0.0) + j.score
        else:
            per[j.doc_id] = [value, 1, j.score, j.rank, pos]
    out = {}
    for qid, per in acc.items():
        items = [(d, v / n, None if s is None else s / n, r, p) for d, (v, n, s, r, p) in per.items()]
        items.sort(key=lambda t: _order_key(t[1], t[2], t[3], t[4]))
        out[qid] = [(d, v) for d, v, *_ in items]
    return out


def judgment_labels(judgments: Iterable[Judgment], rule: LabelRule | str = DEFAULT_RULE,
                    weights: str = "binary", field: str | None = None) -> Labels:
    """Training labels: per query, the rule's positives get weight 1.0 (``binary``) or their value
    (``soft``, at least a tiny positive), every other labelled candidate 0.0."""
    return ranked_labels(ranked_values(judgments, field), rule, weights)


def ranked_labels(ranked: Mapping[str, Sequence[tuple[str, float]]], rule: LabelRule | str = DEFAULT_RULE,
                  weights: str = "binary") -> Labels:
    """:func:`judgment_labels` of per-query ``(doc_id, value)`` lists, best first."""
    if weights not in ("binary", "soft"):
        raise ConfigError(f"weights must be 'binary' or 'soft', got {weights!r}")
    rule = parse_rule(rule)
    out: Labels = {}
    for qid, items in ranked.items():
        pos = rule.select(items)
        out[qid] = {d: ((1.0 if weights == "binary" else max(v, 1e-6)) if d in pos else 0.0) for d, v in items}
    return out


def rule_margins(ranked: Mapping[str, Sequence[tuple[str, float]]], rule: LabelRule | str) -> dict[str, float]:
    """Per query, how clearly ``rule`` separates its positives from the other candidates: the
    weakest positive's value minus the strongest negative's, both as log-odds (values clipped to
    [1e-4, 1 - 1e-4]). Small or negative = uncertain; a query where the rule selects no candidate
    or every candidate gets 0.0. The order in which a human budget goes to the least certain
    LLM-labelled queries (:func:`utilabel.labels.mixing.uncertain_order`)."""
    rule = parse_rule(rule)

    def logit(v: float) -> float:
        v = min(max(v, 1e-4), 1.0 - 1e-4)
        return math.log(v / (1.0 - v))

    out = {}
    for qid, items in ranked.items():
        pos = rule.select(items)
        pos_vals = [v for d, v in items if d in pos]
        neg_vals = [v for d, v in items if d not in pos]
        out[qid] = logit(min(pos_vals)) - logit(max(neg_vals)) if pos_vals and neg_vals else 0.0
    return out


def positives(labels: Mapping[str, float]) -> dict[str, float]:
    """The positives (weight > 0) of one query's labels."""
    return {d: w for d, w in labels.items() if w > 0}

"""Labels: how judgments, qrels and first-stage lists become training labels — the one place that decides.

* :mod:`.rules` — label rules (``threshold:T``, ``topM``, ...) and judgments → ``Labels``;
* :mod:`.sources` — the one resolver of label sources (human qrels, judgments files, first-stage lists)
  used by training, the experiment grid and the review page;
* :mod:`.mixing` — human/LLM label mixing (``plan_labels``, ``LabelPlan``, ``uncertain_order``);
* :mod:`.agreement` — agreement with human labels, threshold calibration;
* :mod:`.groups` — judgments → training groups.

``Labels`` is ``{query_id: {doc_id: weight}}`` (weight > 0 = positive, 0.0 = a labelled negative).
"""

from .agreement import CALIBRATION_OBJECTIVES, Agreement, calibrate, rule_agreement
from .groups import groups_from_judgments
from .rules import (
    DEFAULT_RULE,
    LABEL_FIELDS,
    RELEVANCE_METHODS,
    RULE_FILE,
    RULE_HELP,
    LabelRule,
    Labels,
    judgment_labels,
    judgment_value,
    parse_rule,
    parse_rule_template,
    positives,
    ranked_labels,
    ranked_values,
    rule_margins,
    run_label_rule,
)

__all__ = [
    "CALIBRATION_OBJECTIVES", "DEFAULT_RULE", "LABEL_FIELDS", "RELEVANCE_METHODS", "RULE_FILE", "RULE_HELP",
    "Agreement", "LabelRule", "Labels", "calibrate", "groups_from_judgments", "judgment_labels", "judgment_value",
    "parse_rule", "parse_rule_template", "positives", "ranked_labels", "ranked_values", "rule_agreement",
    "rule_margins", "run_label_rule",
]

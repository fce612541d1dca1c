"""Tasks: what "useful" means for a collection, as small data files every prompt fills in.

A passage's utility depends on the task: evidence for or against a claim (SciFact), an answer to a
question (SQuAD, HotpotQA, NQ, MS MARCO, TREC DL), a counter-argument (ArguAna). Each task lives in
``annotate/tasks/<name>.yaml`` with a ``name``, a ``version`` and three texts that prompts use as
placeholders:

* ``query_label`` — how the query is introduced (``Question``, ``Claim``, ``Argument``);
* ``utility`` — what a useful passage does, completing "a useful passage ..." (listwise prompts);
* ``judge_question`` — the yes/no question asked about one passage (pointwise prompts);
* ``query_noun`` (derived) — the label in lower case ("the claim");
* ``generation`` (optional, default ``zeroshot``) — the zero-shot prompt ``utilabel generate`` writes
  queries with (``rebutted`` where a passage replies to its query, as a counter-argument does). Only
  generation reads it, so it is outside the task's hash and annotation prompts do not change with it.

Datasets declare their default task (:attr:`utilabel.data.dataset.Dataset.task`); ``--task NAME``
or ``--task-instruction "…"`` (a user's own yes/no question, task ``custom``) override it. The task
text reaches every rendered prompt, so call keys — and with them resume — cover it, and judgments
record it in their ``prompt_id`` (``…+task:claim@v1``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from ..errors import ConfigError, DataFormatError, UnknownNameError

TASK_FIELDS = ("query_label", "utility", "judge_question")
GENERATION_PROMPTS = ("zeroshot", "rebutted")  # generate/prompts/<name>.compact.yaml
DEFAULT_TASK = "qa"


@dataclass(frozen=True)
class Task:
    name: str
    version: int
    description: str
    query_label: str
    utility: str
    judge_question: str
    generation: str = "zeroshot"

    @property
    def ref(self) -> str:
        return f"task:{self.name}@v{self.version}"

    @property
    def hash(self) -> str:
        data = {k: getattr(self, k) for k in ("name", "version", *TASK_FIELDS)}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def values(self) -> dict[str, str]:
        """The placeholder values prompts use (``query_noun`` is the label in lower case)."""
        return {**{k: getattr(self, k) for k in TASK_FIELDS}, "query_noun": self.query_label.lower()}


def _check(data, path: str) -> Task:
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "a task file must be a mapping")
    for key in ("name", "version", *TASK_FIELDS):
        if key not in data:
            raise DataFormatError(path, None, f"missing field {key!r}")
    for key in TASK_FIELDS:
        if not isinstance(data[key], str) or not data[key].strip() or "{" in data[key]:
            raise DataFormatError(path, None, f"{key} must be a non-empty text without braces")
    if not isinstance(data["version"], int) or data["version"] < 1:
        raise DataFormatError(path, None, "version must be a positive integer")
    generation = data.get("generation", "zeroshot")
    if generation not in GENERATION_PROMPTS:
        raise DataFormatError(path, None, f"generation must be one of {', '.join(GENERATION_PROMPTS)}")
    query_label, utility, judge_question = (" ".join(str(data[k]).split()) for k in TASK_FIELDS)
    return Task(str(data["name"]), int(data["version"]), str(data.get("description", "")), query_label, utility,
                judge_question, generation)


@cache
def _builtin() -> dict[str, Task]:
    out = {}
    folder = resources.files("utilabel.annotate") / "tasks"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as real:
                task = _check(yaml.safe_load(real.read_text(encoding="utf-8")), str(real))
            out[task.name] = task
    return out


def task_names() -> list[str]:
    return sorted(_builtin())


def get_task(name: str) -> Task:
    """A built-in task by name; an unknown name lists the valid ones."""
    found = _builtin().get(name)
    if found is None:
        raise UnknownNameError("task", name, task_names())
    return found


def custom_task(instruction: str, query_label: str = "Query") -> Task:
    """Task ``custom`` from a user's own yes/no question (used for ``utility`` too)."""
    text = " ".join(str(instruction).split())
    if not text or "{" in text or "}" in text:
        raise ConfigError("--task-instruction must be a non-empty text without braces")
    return Task("custom", 1, "user instruction", query_label, f"answers yes to: {text}", text)


def resolve_task(name: str | None = None, instruction: str | None = None, default: str = DEFAULT_TASK) -> Task:
    """``instruction`` (custom) over ``name`` over the dataset's ``default``."""
    if instruction:
        return custom_task(instruction)
    return get_task(name or default)

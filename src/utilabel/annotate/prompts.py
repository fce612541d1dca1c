"""Prompts as versioned data files: loading, checking and rendering.

Each prompt lives in ``annotate/prompts/<task>.<style>.yaml`` with an ``id``, a ``version``, the
``task`` it serves, its ``style`` (``compact`` single-turn default, or ``paper``: the multi-turn
wording of Zhang et al.'s prompts.md), the parser that reads its output (``output``) and an
example of the expected output next to it. Placeholders (``{question}``, ``{passages}``...) are
declared in ``placeholders`` and checked at load: a template using an undeclared name, or a
declared name no template uses, is an error.

Rendering substitutes only declared placeholders, in one pass, so braces inside passage texts are
never interpreted. Passage texts are *escaped* before they enter a prompt (:func:`escape_passage`):
sentences that address the annotator are replaced by a marker (:func:`neutralize_instructions`),
whitespace collapsed to one line, square brackets turned into parentheses, so a passage cannot fake
a passage number (``[3]``), a selection (``My selection:[[1]]``) or a new passage line. Paper-style
prompts expand ``- expand: passages`` into one user turn and one assistant acknowledgement per
passage (RankGPT style).

Every call logs :attr:`Prompt.ref` (``id@vN``) and :attr:`Prompt.hash` (of the loaded file).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..errors import ConfigError, DataFormatError, UnknownNameError

STYLES = ("compact", "paper")
PARSERS = ("selection", "ranking", "answer", "answer_selection", "yes_no", "continuation", "queries")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
#: placeholders filled per passage inside ``passage_template`` / ``passage_turns``
_PASSAGE_VARS = {"i", "passage"}


@dataclass(frozen=True)
class Prompt:
    """One loaded, checked prompt file."""

    id: str
    version: int
    task: str
    style: str
    description: str
    output: str
    output_example: str
    placeholders: tuple[str, ...]
    messages: tuple[dict[str, str], ...]
    passage_template: str | None
    passage_turns: tuple[dict[str, str], ...]
    hash: str
    path: str

    @property
    def ref(self) -> str:
        """``id@vN``: what judgments and logs record as the prompt id."""
        return f"{self.id}@v{self.version}"

    def render(self, **values: Any) -> tuple[dict[str, str], ...]:
        """Chat messages with placeholders filled.

        ``passages`` must be a sequence of (already escaped) passage texts; it is numbered from 1
        and formatted with ``passage_template`` or expanded into ``passage_turns``.
        """
        missing = [p for p in self.placeholders if p not in values and p != "num"]
        if missing:
            raise ConfigError(f"prompt {self.ref}: missing value(s) for {', '.join(missing)}")
        values = dict(values)
        passages = values.get("passages")
        if "passages" in self.placeholders:
            if isinstance(passages, str) or passages is None:
                raise ConfigError(f"prompt {self.ref}: 'passages' must be a list of texts")
            values.setdefault("num", len(passages))
            if self.passage_template is not None:
                values["passages"] = "\n".join(
                    _fill(self.passage_template, {"i": i, "passage": p}) for i, p in enumerate(passages, 1)
                )
        out: list[dict[str, str]] = []
        for msg in self.messages:
            if msg.get("expand") == "passages":
                for i, p in enumerate(passages or [], 1):
                    for turn in self.passage_turns:
                        out.append({"role": turn["role"], "content": _fill(turn["content"], {"i": i, "passage": p})})
                continue
            out.append({"role": msg["role"], "content": _fill(msg["content"], values)})
        return tuple(out)


def _fill(template: str, values: dict[str, Any]) -> str:
    """Replace ``{name}`` for names in ``values`` in one pass (inserted text is never re-scanned)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


_INSTRUCTION_LIKE = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?]{0,80}\b(above|previous|prior|earlier|preceding|instructions?|prompt|rules)\b"
    r"|\bselect\b[^.!?]{0,40}\b(every|all|each)\b[^.!?]{0,20}\bpassages?\b"
    r"|\bmy\s+selection\b"
    r"|\ball\s+(the\s+)?passages\s+are\s+(relevant|useful)\b",
    re.I,
)
REMOVED = "(instruction-like text removed)"


def neutralize_instructions(text: str) -> str:
    """Replace sentences that address the annotator (canonical prompt-injection phrasings such as
    "ignore the above instructions", "select every passage", a fake "My selection") by a marker.

    A blocklist: it stops the common attack, not a paraphrase; the prompts also tell the model that
    passages are data, and pointwise methods see one passage per call.
    """
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return " ".join(REMOVED if _INSTRUCTION_LIKE.search(p) else p for p in parts if p.strip())


def escape_passage(text: str, max_words: int | None = None, sanitize: bool = True) -> str:
    """Make a passage safe to embed: instruction-like sentences neutralized (``sanitize``), one line,
    no square brackets, optionally truncated to ``max_words`` words."""
    if sanitize:
        text = neutralize_instructions(text)
    words = text.split()
    if max_words is not None and len(words) > max_words:
        words = words[:max_words] + ["..."]
    return " ".join(words).replace("[", "(").replace("]", ")")


def _check(data: Any, path: str) -> Prompt:
    if not isinstance(data, dict):
        raise DataFormatError(path, None, "a prompt file must be a mapping")
    for key in ("id", "version", "task", "style", "output", "output_example", "placeholders", "messages"):
        if key not in data:
            raise DataFormatError(path, None, f"missing field {key!r}")
    if data["style"] not in STYLES:
        raise DataFormatError(path, None, f"style must be one of {', '.join(STYLES)}, got {data['style']!r}")
    if data["output"] not in PARSERS:
        raise DataFormatError(path, None, f"output must be one of {', '.join(PARSERS)}, got {data['output']!r}")
    if not isinstance(data["version"], int) or data["version"] < 1:
        raise DataFormatError(path, None, "version must be a positive integer")
    declared = set(data["placeholders"])
    used: set[str] = set()
    messages = []
    expands = 0
    for msg in data["messages"]:
        if not isinstance(msg, dict):
            raise DataFormatError(path, None, "each message must be a mapping")
        if "expand" in msg:
            if msg["expand"] != "passages" or not data.get("passage_turns"):
                raise DataFormatError(path, None, "'expand: passages' needs a 'passage_turns' list")
            expands += 1
            used.add("passages")
            messages.append({"expand": "passages"})
            continue
        if msg.get("role") not in ("system", "user", "assistant") or not isinstance(msg.get("content"), str):
            raise DataFormatError(path, None, f"bad message {msg!r}: needs role system/user/assistant and content")
        used |= set(_PLACEHOLDER.findall(msg["content"]))
        messages.append({"role": msg["role"], "content": msg["content"]})
    turns = tuple({"role": t["role"], "content": t["content"]} for t in data.get("passage_turns") or ())
    template = data.get("passage_template")
    per_passage = [t["content"] for t in turns] + ([template] if template else [])
    for text in per_passage:
        extra = set(_PLACEHOLDER.findall(text)) - _PASSAGE_VARS
        if extra:
            raise DataFormatError(path, None, f"passage template uses unknown placeholder(s) {sorted(extra)}")
    if "passages" in used and not template and not expands:
        raise DataFormatError(path, None, "uses {passages} but has no 'passage_template'")
    undeclared = used - declared
    if undeclared:
        raise DataFormatError(path, None, f"undeclared placeholder(s): {', '.join(sorted(undeclared))}")
    unused = declared - used
    if unused:
        raise DataFormatError(path, None, f"declared placeholder(s) never used: {', '.join(sorted(unused))}")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    return Prompt(
        id=str(data["id"]),
        version=int(data["version"]),
        task=str(data["task"]),
        style=str(data["style"]),
        description=str(data.get("description", "")),
        output=str(data["output"]),
        output_example=str(data["output_example"]),
        placeholders=tuple(data["placeholders"]),
        messages=tuple(messages),
        passage_template=template,
        passage_turns=turns,
        hash=digest,
        path=path,
    )


def load_prompt_file(path: str) -> Prompt:
    """Load and check one prompt file (also for user-supplied prompts)."""
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise DataFormatError(path, None, f"invalid YAML ({exc})") from None
    return _check(data, str(path))


@cache
def _builtin() -> dict[tuple[str, str], Prompt]:
    out: dict[tuple[str, str], Prompt] = {}
    folder = resources.files("utilabel.annotate") / "prompts"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as real:
                prompt = load_prompt_file(str(real))
            out[(prompt.task, prompt.style)] = prompt
    return out


def prompt_names() -> list[str]:
    """``task.style`` names of the built-in prompts."""
    return sorted(f"{t}.{s}" for t, s in _builtin())


def get_prompt(task: str, style: str = "compact") -> Prompt:
    """The built-in prompt for ``task`` in ``style``; unknown combinations list the valid ones."""
    found = _builtin().get((task, style))
    if found is None:
        raise UnknownNameError("prompt", f"{task}.{style}", prompt_names())
    return found

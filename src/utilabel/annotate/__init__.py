"""LLM annotation of candidate lists with utility-focused labels.

Public entry points: :func:`annotate_dataset` (a dataset's split: candidates, answers, task),
:func:`annotate` (run a method over candidate groups, resumable), :func:`estimate` (dry run),
:class:`AnnotateConfig` (:meth:`AnnotateConfig.resolve`: the defaults for a backend and dataset),
:func:`read_judgments` / :func:`write_judgments`, :func:`groups_from_judgments` (judgments → training groups),
:func:`agreement` (vs human qrels), :func:`method_names`, prompts via :func:`get_prompt`.
Methods live in :mod:`utilabel.annotate.methods`, prompts as versioned files in
``annotate/prompts/``, parsers in :mod:`utilabel.annotate.parsing`, the call log in
:mod:`utilabel.annotate.store`.
"""

from ..data.judgments import read_judgments, write_judgments
from ..labels import groups_from_judgments
from .config import AnnotateConfig
from .dataset import AnnotationJob, annotate_dataset
from .engine import annotate, estimate, estimate_summary
from .methods import get_method, method_names
from .prompts import get_prompt, prompt_names

__all__ = [
    "AnnotateConfig", "AnnotationJob", "annotate", "annotate_dataset", "estimate", "estimate_summary",
    "groups_from_judgments", "read_judgments", "write_judgments", "get_method", "method_names", "get_prompt", "prompt_names",
]

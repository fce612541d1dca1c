"""Training queries for a corpus that has none: the LLM writes them, filters drop the bad ones.

Public entry points: :func:`generate` (passages → queries → filters → a BEIR folder with a ``train``
split whose qrels name each query's source passage), :func:`estimate_generation` (the dry run),
:class:`GenerateConfig`, :func:`sample_passages` and :func:`read_examples` (few-shot examples).
Prompts are versioned files in ``generate/prompts/``; calls go through the annotation call log and
caller (:mod:`utilabel.annotate.caller`), so a run resumes like an annotation run; the optional judge
filter is a pointwise annotation run. Filters and their reasons: :mod:`.filters`.
"""

from .engine import GenerateConfig, GenerationRun, estimate_generation, generate, generation_prompt
from .filters import DROP_REASONS, parse_queries
from .sampling import MAX_EXAMPLES, Example, read_examples, sample_passages

__all__ = ["DROP_REASONS", "MAX_EXAMPLES", "Example", "GenerateConfig", "GenerationRun", "estimate_generation",
           "generate", "generation_prompt", "parse_queries", "read_examples", "sample_passages"]

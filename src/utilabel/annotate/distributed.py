"""``--executor ray``: the shards of an annotation run as Ray tasks, merged at the end.

:func:`annotate_ray` connects to a Ray cluster (``address``; ``None`` starts a local one, or uses the
one this process already joined), puts the candidates, corpus and answers in the object store once,
and runs one task per shard: :func:`~utilabel.annotate.engine.annotate` with ``shard=(i, n)`` into
``out_dir/shards/i-of-n``, with a backend built inside the task from its registered name and
options (e.g. ``openai`` with one or more ``base_url`` servers: each task spreads its calls over
all of them). A task whose worker dies is retried by Ray (``task_retries``) and resumes from its
shard's call log, so no finished call is made again; ``out_dir`` must be on a file system every
node sees. When every shard is done, :func:`~utilabel.annotate.shards.merge_runs` joins them into
``out_dir``. A shard that fails (e.g. its circuit breaker opened) is reported by index; the others'
work is kept and a re-run makes only what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LLMError, require
from ..llm.registry import get_backend
from ..records import CandidateGroup, Document
from .config import AnnotateConfig
from .engine import annotate
from .shards import merge_runs


def shard_dir(out_dir: str | Path, index: int, n: int) -> Path:
    return Path(out_dir) / "shards" / f"{index}-of-{n}"


def _run_shard(data, backend_name: str, backend_options: dict[str, Any], out: str, config: AnnotateConfig,
               shard: tuple[int, int], run_options: dict[str, Any]) -> dict[str, Any]:
    groups, corpus, answers = data
    with get_backend(backend_name, **backend_options) as backend:
        run = annotate(groups, corpus, backend, out, config, answers=answers, progress=False, shard=shard,
                       **run_options)
    return run.summary


def annotate_ray(
    groups: Sequence[CandidateGroup],
    corpus: Mapping[str, Document],
    backend_name: str,
    backend_options: Mapping[str, Any],
    out_dir: str | Path,
    config: AnnotateConfig | None = None,
    shards: int | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    address: str | None = None,
    task_retries: int = 3,
    overwrite: bool = False,
    **run_options: Any,
) -> dict[str, Any]:
    """Annotate ``shards`` slices (default: one per CPU of the cluster) as Ray tasks and merge them into
    ``out_dir``; returns the merged summary.

    ``config``: default :meth:`AnnotateConfig.resolve` for ``backend_name`` (as a local run's).
    ``run_options`` go to :func:`~utilabel.annotate.engine.annotate` in every task
    (``max_concurrency``, ``workers``, ``breaker``, ``overwrite``).
    """
    ray = require("ray", "ray")
    if shards is not None and shards < 1:
        raise ConfigError(f"shards must be ≥ 1, got {shards}")
    config = config or AnnotateConfig.resolve(backend_name)
    joined_here = not ray.is_initialized()
    if joined_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        shards = shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(max_retries=task_retries)(_run_shard)
        data = ray.put((list(groups), dict(corpus), dict(answers or {})))
        dirs = [shard_dir(out_dir, i, shards) for i in range(shards)]
        refs = [task.remote(data, backend_name, dict(backend_options), str(d), config, (i, shards),
                            {**run_options, "overwrite": overwrite}) for i, d in enumerate(dirs)]
        errors = []
        for i, ref in enumerate(refs):
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if exc.cause is not None else exc
                if not isinstance(cause, (LLMError, ConfigError)):
                    raise
                errors.append(f"shard {i}/{shards}: {cause}")
        if errors:
            raise LLMError(f"{len(errors)} of {shards} shards failed ({'; '.join(errors)}); "
                           "re-run the same command to finish them")
        return merge_runs(dirs, out_dir, overwrite=True)
    finally:
        if joined_here:
            ray.shutdown()

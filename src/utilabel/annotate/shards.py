"""Shards of an annotation run: which queries a shard owns, and joining shard folders exactly once.

A run split ``n`` ways gives query ``q`` to shard ``int(sha256(q)[:16], 16) % n`` — stable across
processes, machines and Python versions, independent of the input order — so any scheduler (a SLURM
array, Kubernetes jobs, :mod:`utilabel.annotate.distributed` on Ray) can run ``annotate(...,
shard=(i, n))`` for each ``i`` into its own folder, and :func:`merge_runs` joins the folders:

* every folder must be a shard of the same run: the same config, prompts (hashes), model and
  ``n``; mixed settings are refused naming the differences;
* each shard index ``0..n-1`` exactly once (missing or repeated shards are refused), every query in
  exactly one shard, and in the shard its hash names (a duplicated query is refused);
* ``judgments.jsonl`` and ``groups.jsonl`` are the shards' files joined in shard order (a shard's
  own lines keep its input order), so after sorting they equal the unsharded run's byte for byte;
  ``summary.json`` adds up the shards' counts; queries a shard failed to label are listed.

Merging streams the shard files (nothing is held in memory but the set of query ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataFormatError
from ..fileio import atomic_write
from .runfolder import settings_diff


def shard_of(query_id: str, n: int) -> int:
    """The shard (0-based, of ``n``) that owns ``query_id``."""
    return int(hashlib.sha256(query_id.encode("utf-8")).hexdigest()[:16], 16) % n


def in_shard(query_id: str, index: int, n: int) -> bool:
    return shard_of(query_id, n) == index


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (0 ≤ i < N) → ``(i, N)``; a one-line error otherwise."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard i/N needs 0 ≤ i < N, got {text!r}")
    return i, n


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path.parent} is not an annotation run folder (no {path.name})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, None, f"not JSON ({exc})") from None


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Sum of two nested count dicts."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _add(out.get(k, {}), v) if isinstance(v, dict) else out.get(k, 0) + v
    return out


SUMMED = ("queries", "queries_done", "queries_labelled", "queries_failed", "queries_errored", "judgments",
          "calls_new", "calls_cached", "calls_failed", "prompt_tokens", "completion_tokens")


def merge_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Join shard folders of one run into ``out_dir`` (see module docstring); returns the summary."""
    out_dir = Path(out_dir)
    ordered, settings = _shard_folders([Path(d) for d in run_dirs], out_dir, overwrite)
    n = len(ordered)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [_read_json(d / "summary.json") for d in ordered]
    seen: dict[str, int] = {}
    with atomic_write(out_dir / "judgments.jsonl") as fh:
        for i, d in enumerate(ordered):
            path = d / "judgments.jsonl"
            with open(path, encoding="utf-8") as src:
                for lineno, line in enumerate(src, 1):
                    try:
                        qid = json.loads(line)["query_id"]
                    except (ValueError, KeyError, TypeError):
                        raise DataFormatError(path, lineno, "not a judgment") from None
                    if seen.setdefault(qid, i) != i:
                        raise ConfigError(f"query {qid!r} is in shard {seen[qid]}/{n} and in shard {i}/{n}")
                    if shard_of(qid, n) != i:
                        raise ConfigError(f"{path}:{lineno}: query {qid!r} belongs to shard {shard_of(qid, n)}/{n}")
                    fh.write(line)
    with atomic_write(out_dir / "groups.jsonl") as fh:
        for d in ordered:
            with open(d / "groups.jsonl", encoding="utf-8") as src:
                fh.writelines(src)
    merged = _merged_summary(ordered, summaries)
    with atomic_write(out_dir / "config.json") as fh:
        json.dump({**settings, "shard": None, "merged_from": [str(d) for d in ordered]}, fh, indent=2)
    with atomic_write(out_dir / "summary.json") as fh:
        json.dump(merged, fh, indent=2)
    return merged


def _shard_folders(dirs: list[Path], out_dir: Path, overwrite: bool) -> tuple[list[Path], dict[str, Any]]:
    """The shard folders in shard order and their common settings; refuses folders that are not exactly
    the shards ``0..n-1`` of one run, and an ``out_dir`` that is one of them or already holds a run."""
    if not dirs:
        raise ConfigError("merge needs at least one shard folder")
    if any(d.resolve() == out_dir.resolve() for d in dirs):
        raise ConfigError(f"--out {out_dir} is one of the shard folders; merge into a new folder")
    settings = [_read_json(d / "config.json") for d in dirs]
    by_index: dict[int, Path] = {}
    n: int | None = None
    for d, s in zip(dirs, settings):
        if not s.get("shard"):
            raise ConfigError(f"{d} is not a shard (it was run without --shard i/N)")
        i, count = s["shard"]
        if n is not None and count != n:
            raise ConfigError(f"{d} is shard {i}/{count} but {dirs[0]} is of {n} shards")
        n = count
        if i in by_index:
            raise ConfigError(f"shard {i}/{n} given twice: {by_index[i]} and {d}")
        by_index[i] = d
        diff = settings_diff(settings[0], s, ignore=("shard",))
        if diff:
            raise ConfigError(f"{d} was run with other settings than {dirs[0]} ({'; '.join(diff[:3])}); "
                              "only shards of one run can be merged")
    assert n is not None  # dirs is not empty and each is a shard
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ConfigError(f"missing shard(s) {', '.join(f'{i}/{n}' for i in missing)} of {n}")
    if (out_dir / "config.json").exists() and not overwrite:
        raise ConfigError(f"{out_dir} already holds a run; merge into a new folder or pass --overwrite")
    return [by_index[i] for i in range(n)], settings[0]


def _merged_summary(ordered: list[Path], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' summaries added up (counts summed, failures and errors joined)."""
    merged: dict[str, Any] = {k: v for k, v in summaries[0].items() if k not in SUMMED}
    for k in SUMMED:
        merged[k] = sum(s.get(k, 0) for s in summaries)
    merged["complete"] = all(s.get("complete") for s in summaries)
    merged["shard"] = None
    merged["shards"] = [str(d) for d in ordered]
    merged["incomplete_shards"] = [str(d) for d, s in zip(ordered, summaries) if not s.get("complete")]
    merged["query_errors"] = {q: r for s in summaries for q, r in s.get("query_errors", {}).items()}
    for key in ("failures", "failed_steps", "positives_per_query"):
        total: dict[str, Any] = {}
        for s in summaries:
            total = _add(total, s.get(key, {}))
        merged[key] = total
    merged["positives_per_query"] = dict(sorted(merged["positives_per_query"].items(), key=lambda kv: int(kv[0])))
    merged["latency_s"] = round(sum(s.get("latency_s", 0.0) for s in summaries), 3)
    merged["elapsed_s_this_run"] = max(s.get("elapsed_s_this_run", 0.0) for s in summaries)
    merged["call_log_corrupt_lines"] = []
    return merged

"""The grid's results: reference row names, measures, result files and their keys, archive and restore.

Both the executor (:mod:`.runner`) and the report (:mod:`.report`) import these, so neither imports the other.

* ``results.jsonl`` — append-only, one record per (row, seed, dataset, kind), keyed by :func:`result_key`;
  ``events.jsonl`` — session start/stop times (:data:`RESULT_FILES`, what an archive keeps);
* :func:`restore_results` / :func:`archive_results` — seed a fresh output folder from committed results,
  copy them back at the end.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from ..fileio import atomic_write

BM25_ROW, BASE_ROW = "BM25", "base"
#: appended to a dense row's name for its fusion with BM25 (``llm/disj +BM25``)
FUSED_SUFFIX = " +BM25"
MEASURES = ("nDCG@10", "R@100")
#: the files that make a grid's results: what an archive keeps and a fresh machine resumes from
RESULT_FILES = ("results.jsonl", "events.jsonl")


def result_key(config, row: str, seed: int, dataset: str, kind: str) -> str:
    """Result key; dense rows carry a hash of the encoding settings, RAG rows of the reader
    settings too, so changing them never silently reuses results computed under others."""
    parts = []
    if row != BM25_ROW:
        parts.append(config.dense_settings())
    if kind == "rag":
        parts.append(asdict(config.rag))
    if row.endswith(FUSED_SUFFIX):
        parts.append(config.fusion.settings())
    tag = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8] if parts else ""
    return f"{row}|s{seed}|{dataset}|{kind}" + (f"|{tag}" if tag else "")


def restore_results(out: str | Path, archive: str | Path) -> bool:
    """Seed an empty output folder with an archive's results (e.g. the committed ones), so a fresh
    machine continues the grid instead of redoing it; returns whether anything was copied."""
    out, archive = Path(out), Path(archive)
    if (out / RESULT_FILES[0]).exists() or not (archive / RESULT_FILES[0]).exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        if (archive / name).exists():
            with atomic_write(out / name, "wb") as fh:
                fh.write((archive / name).read_bytes())
    return True


def archive_results(out: str | Path, archive: str | Path) -> None:
    """Copy the grid's result files into ``archive`` (next to a committed report)."""
    out, archive = Path(out), Path(archive)
    for name in RESULT_FILES:
        if (out / name).exists():
            with atomic_write(archive / name, "wb") as fh:
                fh.write((out / name).read_bytes())

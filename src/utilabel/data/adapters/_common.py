"""Helpers shared by the adapters: copying an already-BEIR folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from ...errors import DataFormatError


def copy_beir_folder(source: Path, out: Path, splits: tuple[str, ...] | None = None) -> None:
    """Copy ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/*.tsv`` from a BEIR folder."""
    for fname in ("corpus.jsonl", "queries.jsonl"):
        if not (source / fname).exists():
            raise DataFormatError(source / fname, None, "file not found")
        shutil.copyfile(source / fname, out / fname)
    (out / "qrels").mkdir(exist_ok=True)
    for tsv in sorted((source / "qrels").glob("*.tsv")):
        if splits is None or tsv.stem in splits:
            shutil.copyfile(tsv, out / "qrels" / tsv.name)

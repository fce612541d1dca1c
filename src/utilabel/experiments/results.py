"""The grid's results: reference row names, measures, result files and their keys, archive and restore.

Both the executor (:mod:`.runner`) and the report (:mod:`.report`) import these, so neither imports the other.

* ``results.jsonl`` — append-only, one record per (row, seed, dataset, kind), keyed by :func:`result_key`;
  ``events.jsonl`` — session start/stop times; ``models.jsonl`` — one record per trained model (key, row,
  seed, training seconds, label statistics), so a report rebuilt from an archive knows what training cost
  without the model folders (:data:`RESULT_FILES`, what an archive keeps);
* :func:`restore_results` / :func:`archive_results` — seed a fresh output folder from committed results,
  copy them back at the end;
* :func:`machine` — what computed a result (CPU model, its vector extensions, torch version): the same
  model and settings have given nDCG@10 values 0.006 apart on two CPUs, so the report flags comparisons
  whose rows were computed on different machines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from dataclasses import asdict
from pathlib import Path

from ..fileio import AppendLog, atomic_write

BM25_ROW, BASE_ROW = "BM25", "base"
#: appended to a dense row's name for its fusion with BM25 (``llm/disj +BM25``)
FUSED_SUFFIX = " +BM25"
MEASURES = ("nDCG@10", "R@100")
#: the files that make a grid's results: what an archive keeps and a fresh machine resumes from
RESULT_FILES = ("results.jsonl", "events.jsonl", "models.jsonl")
MODELS_FILE = RESULT_FILES[2]


#: the CPU extensions that change float kernels (and so embeddings) on a CPU: the widest one present is named
ISA_LEVELS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


@functools.lru_cache(maxsize=1)
def machine() -> str:
    """``"<cpu model> | <widest ISA of ISA_LEVELS> | torch <version>"`` of this process's machine."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    isa = next((f for f in ISA_LEVELS if f in flags), "baseline")
    try:
        from importlib.metadata import version

        torch = version("torch")
    except Exception:  # noqa: BLE001 - no torch: the fingerprint says so
        torch = "none"
    return f"{cpu} | {isa} | torch {torch}"


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


def trained_models(out: str | Path) -> dict[str, dict]:
    """The grid's trained models by key: ``models.jsonl``'s records, plus any ``models/<key>/DONE.json``
    marker not recorded there (models trained before the file existed)."""
    out = Path(out)
    models = {r["model_key"]: r for r in AppendLog.read(out / MODELS_FILE)} if (out / MODELS_FILE).exists() else {}
    for marker in sorted((out / "models").glob("*/DONE.json")):
        if marker.parent.name not in models:
            info = json.loads(marker.read_text(encoding="utf-8"))
            models[marker.parent.name] = {"model_key": marker.parent.name, "row": info.get("row"),
                                          "seed": info.get("seed"), "seconds": info.get("seconds", 0.0),
                                          "label_stats": info.get("label_stats", {})}
    return models


def record_trained_models(out: str | Path) -> None:
    """Append to ``models.jsonl`` every trained model (a ``DONE.json`` marker) it does not list yet."""
    out = Path(out)
    known = {r["model_key"] for r in AppendLog.read(out / MODELS_FILE)} if (out / MODELS_FILE).exists() else set()
    missing = [r for k, r in trained_models(out).items() if k not in known]
    if missing:
        with AppendLog(out / MODELS_FILE) as log:
            for r in missing:
                log.append(r)


def archive_results(out: str | Path, archive: str | Path) -> None:
    """Copy the grid's result files into ``archive`` (next to a committed report); trained models not yet
    in ``models.jsonl`` are recorded there first."""
    out, archive = Path(out), Path(archive)
    record_trained_models(out)
    for name in RESULT_FILES:
        if (out / name).exists():
            with atomic_write(archive / name, "wb") as fh:
                fh.write((out / name).read_bytes())

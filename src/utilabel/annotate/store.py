"""The call store: every LLM call of an annotation run, append-only, keyed for resume.

Each record is one call (chat completion or continuation log-probability) with its key, the prompt
id and hash, method, step, query, vote, attempt, model, request options, raw output, parse result,
token usage and latency. The key is a SHA-256 of (prompt id, prompt hash, rendered messages,
model, request options) — not of the method, so methods sharing a step (``utilsel`` and
``pointwise`` both start with relevance selection) reuse each other's calls when they share a store.

Records are appended with group-committed fsyncs (:class:`~utilabel.fileio.AppendLog`): ``put``
returns once its record is on disk, so a call whose output is used is never lost; a call killed
before its record is written is simply made again. Opening reads the log once and keeps only an
index (key → offset and length of the line); ``get`` reads a record back from the file, so memory
does not grow with the size of the records. A record whose output failed to parse is replayed
within the run that made it, but a later run asks the server again (a garbage reply must not
decide the labels forever). Each record names the backend that made it (``engine``): a run with
another backend is refused on a log that holds another's calls (llama.cpp and transformers give the
same model other log-probabilities, and the key names the model, not the engine); logs written before
records named it are not checked. A corrupt line in the middle of the log (a disk or hand-editing
accident) is skipped with a warning naming file and line, and its call is made again. A lock file
keeps two annotators off the same store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import AppendLog

log = logging.getLogger(__name__)


def call_key(prompt_ref: str, prompt_hash: str, model: str, payload: dict[str, Any]) -> str:
    """Stable key of one call: hash of prompt identity, model and the full request payload."""
    blob = json.dumps(
        {"prompt": prompt_ref, "prompt_hash": prompt_hash, "model": model, "request": payload},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def record_engine(rec: Any) -> str | None:
    """The backend a call record names (``engine``), None for records written before the field."""
    engine = rec.get("engine") if isinstance(rec, dict) else None
    return engine if isinstance(engine, str) and engine else None


def logged_engines(path: str | Path) -> set[str]:
    """The backends a call log's records name, read without opening the store (no lock, no repair):
    empty for a missing log or one older than the field; torn or corrupt lines are skipped."""
    engines: set[str] = set()
    if Path(path).exists():
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    engine = record_engine(json.loads(line))
                except ValueError:
                    continue
                if engine:
                    engines.add(engine)
    return engines


class CallStore:
    """Append-only JSONL call log with an in-memory index by key (offsets, not records)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the run
        try:
            import fcntl

            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise ConfigError(f"another annotator is using {self.path}; wait for it or use another --out") from None
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        self._log = AppendLog(self.path)  # repairs a torn last line first
        self._index: dict[str, tuple[int, int]] = {}
        self.corrupt_lines: list[int] = []
        self.engines: set[str] = set()
        """The backends (``engine`` field) the logged calls were made with; empty for older logs."""
        self._load()
        self._rfd = os.open(self.path, os.O_RDONLY)
        self._lock = threading.Lock()

    def _load(self) -> None:
        offset = 0
        with open(self.path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    rec = json.loads(line)
                    key, failed = rec["key"], rec.get("failure") is not None
                    if not isinstance(key, str):
                        raise TypeError(key)
                except (ValueError, KeyError, TypeError, AttributeError):
                    if line.strip():
                        self.corrupt_lines.append(lineno)
                        log.warning("%s:%d: corrupt call record skipped; its call will be made again",
                                    self.path, lineno)
                else:
                    engine = record_engine(rec)
                    if engine:
                        self.engines.add(engine)
                    if not failed:
                        self._index.setdefault(key, (offset, len(line)))
                offset += len(line)

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: str) -> dict[str, Any] | None:
        where = self._index.get(key)
        if where is None:
            return None
        return json.loads(os.pread(self._rfd, where[1], where[0]))

    def check_engine(self, engine: str) -> None:
        """Refuse to mix backends: a one-line error when the log holds calls of another backend."""
        others = self.engines - {engine}
        if engine and others:
            raise ConfigError(f"{self.path} holds calls made with the {', '.join(sorted(others))} backend; this run "
                              f"uses {engine}, whose outputs differ: use another --out (or the same backend)")

    def put(self, record: dict[str, Any]) -> None:
        """Append ``record`` (once per key) and return when it is on disk."""
        key = record.get("key")
        if key is None:
            raise ConfigError("a call record needs a 'key'")
        if key in self._index:
            return
        where = self._log.append(record)
        with self._lock:
            self._index.setdefault(key, where)

    def close(self) -> None:
        self._log.close()
        os.close(self._rfd)
        self._lock_fh.close()  # releases the lock; the lock file stays (unlinking it would race)

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The call store: every LLM call of an annotation run, append-only, keyed for resume.

Each record is one call (chat completion or continuation log-probability) with its key, the prompt
id and hash, method, step, query, vote, attempt, model, request options, raw output, parse result,
token usage and latency. The key is a SHA-256 of (prompt id, prompt hash, rendered messages,
model, request options) — not of the method, so methods sharing a step (``utilsel`` and
``pointwise`` both start with relevance selection) reuse each other's calls when they share a store.

Records are appended with fsync (:class:`~utilabel.fileio.AppendLog`); a call killed before its
record is written is simply made again. A lock file keeps two annotators off the same store.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import AppendLog


def call_key(prompt_ref: str, prompt_hash: str, model: str, payload: dict[str, Any]) -> str:
    """Stable key of one call: hash of prompt identity, model and the full request payload."""
    blob = json.dumps(
        {"prompt": prompt_ref, "prompt_hash": prompt_hash, "model": model, "request": payload},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallStore:
    """Append-only JSONL call log with an in-memory index by key."""

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
        self._index: dict[str, dict[str, Any]] = {}
        for rec in AppendLog.read(self.path):
            self._index.setdefault(rec["key"], rec)
        self._log = AppendLog(self.path)
        self._write_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._index.get(key)

    def put(self, record: dict[str, Any]) -> None:
        if "key" not in record:
            raise ConfigError("a call record needs a 'key'")
        with self._write_lock:
            if record["key"] in self._index:
                return
            self._log.append(record)
            self._index[record["key"]] = record

    def close(self) -> None:
        self._log.close()
        self._lock_fh.close()  # releases the lock; the lock file stays (unlinking it would race)

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Crash-safe file writing shared by every stage.

``atomic_write`` writes to a temporary file next to the target and renames it into place, so a
reader never sees half a file. ``AppendLog`` is an append-only JSONL log, the building block of
resumable jobs: ``append`` returns only once its record is fsynced, so a record is either fully on
disk or absent; a torn last line (killed mid-write) is dropped on reading. Appends from many threads
share fsyncs (group commit): while one thread syncs, the others' records queue up and the next
sync covers them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file for writing; on success rename it to ``path`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class AppendLog:
    """Append-only JSONL file; ``append`` returns once the record is fsynced (thread-safe, group commit)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - long-lived handle
        self._size = self._fh.tell()
        self._lock = threading.Lock()       # orders writes
        self._sync_lock = threading.Lock()  # one fsync at a time; waiters ride on the next one
        self._written = self._synced = 0    # sequence numbers of records written / known on disk

    def _repair(self) -> None:
        """Truncate a torn trailing line left by a kill mid-write (reads only the file's tail)."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            end = pos = fh.seek(0, os.SEEK_END)
            while pos > 0:
                step = min(1 << 16, pos)
                fh.seek(pos - step)
                chunk = fh.read(step)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    if pos - step + cut + 1 < end:
                        fh.truncate(pos - step + cut + 1)
                    return
                pos -= step
            fh.truncate(0)

    def append(self, record: dict[str, Any]) -> tuple[int, int]:
        """Write ``record`` as one line and return ``(offset, length)`` of the line once it is on disk."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            offset = self._size
            self._fh.write(line)
            self._fh.flush()
            self._size += len(line)
            self._written += 1
            seq = self._written
        with self._sync_lock:
            if self._synced < seq:
                with self._lock:
                    upto = self._written
                os.fsync(self._fh.fileno())
                self._synced = upto
        return offset, len(line)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """All complete records of a log (a torn last line is ignored)."""
        path = Path(path)
        if not path.exists():
            return []
        out = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out

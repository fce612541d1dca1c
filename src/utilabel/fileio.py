"""Crash-safe file writing shared by every stage.

``atomic_write`` writes to a temporary file next to the target and renames it into place, so a
reader never sees half a file. ``AppendLog`` is an append-only JSONL log, the building block of
resumable jobs: ``append`` returns only once its record is fsynced, so a record is either fully on
disk or absent; a torn last line (killed mid-write) is dropped on reading. Appends from many threads
share fsyncs (group commit): while one thread syncs, the others' records queue up and the next
sync covers them all.

Temporary files and folders are named ``.{target}.{pid}.{random}.tmp``; :func:`sweep_stale_temps`
removes those whose process is gone (a SIGKILL mid-write leaves them behind), and long jobs call it on
start. Files and folders made here follow the process umask, like any ``open``/``mkdir`` (``mkstemp``
and ``mkdtemp`` alone would make them private). :func:`file_lock` serialises work across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+\.tmp$")


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A new folder ``parent/.{name}.{pid}.{random}.tmp`` with umask permissions (rename it into place when done)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.{os.getpid()}.", suffix=".tmp"))
    tmp.chmod(0o777 & ~_umask())
    return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temp files/folders of our naming in ``folder`` whose writing process no longer runs.

    Those of this process and of live processes are kept (they may be mid-write). Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        m = _TEMP_NAME.match(entry.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):  # another process swept it first
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) across processes; released on exit or death."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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

    def __exit__(self, *exc: object) -> None:
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

"""Where review labels live: one append-only log per annotator, and the qrels derived from them.

For ``--out human.qrels`` and annotator ``alice``:

* ``human.qrels.alice.log.jsonl`` — one record per submitted query (``query_id``, ``labels``
  ``{doc_id: grade}``, ``annotator``, ``time``), appended and fsync'd before the page moves on, so a
  killed server loses at most the query on screen. A later record of the same query replaces it.
* ``human.qrels`` — TREC qrels (``qid 0 docid grade``) of every labelled query, rewritten atomically
  after each submission from all annotators' logs beside it; per query the latest submission wins.
* ``human.qrels.annotators.tsv`` — ``query_id<TAB>annotator<TAB>time`` of the submission each query's
  qrels come from.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..data.trec import format_trec_qrels
from ..errors import ConfigError
from ..fileio import AppendLog, atomic_write
from ..records import Qrels

ANNOTATOR = re.compile(r"[A-Za-z0-9_-]{1,64}")
LOG_SUFFIX = ".log.jsonl"

#: per query, the latest submission record
Submissions = dict[str, dict]


def log_path(out: str | Path, annotator: str) -> Path:
    if not ANNOTATOR.fullmatch(annotator):
        raise ConfigError(f"--annotator must be 1-64 letters, digits, '-' or '_'; got {annotator!r}")
    out = Path(out)
    return out.with_name(f"{out.name}.{annotator}{LOG_SUFFIX}")


def read_log(path: str | Path) -> Submissions:
    """The latest record of each query in one annotator's log (a torn last line is ignored)."""
    latest: Submissions = {}
    for rec in AppendLog.read(path):
        latest[rec["query_id"]] = rec
    return latest


def log_files(out: str | Path) -> dict[str, Path]:
    """``{annotator: log path}`` of every annotator's log beside the qrels file ``out``."""
    out = Path(out)
    prefix = out.name + "."
    found = {}
    if out.parent.is_dir():
        for path in sorted(out.parent.iterdir()):
            name = path.name[len(prefix): -len(LOG_SUFFIX)]
            if path.name.startswith(prefix) and path.name.endswith(LOG_SUFFIX) and ANNOTATOR.fullmatch(name):
                found[name] = path
    return found


def read_logs(out: str | Path) -> dict[str, Submissions]:
    """Every annotator's submissions beside the qrels file ``out``: ``{annotator: {query_id: record}}``."""
    return {name: read_log(path) for name, path in log_files(out).items()}


def to_qrels(submissions: Submissions) -> Qrels:
    return {qid: dict(rec["labels"]) for qid, rec in submissions.items()}


class LabelStore:
    """The labels of one annotator's session (see module docstring)."""

    def __init__(self, out: str | Path, annotator: str):
        self.out, self.annotator = Path(out), annotator
        self.path = log_path(out, annotator)
        if self.out.is_dir():
            raise ConfigError(f"--out {self.out} is a folder; give a qrels file name such as human.qrels")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._log = AppendLog(self.path)
        self.mine = read_log(self.path)
        self._others: dict[str, tuple[tuple[int, int], Submissions]] = {}
        self._blocks: dict[tuple[str, str, float], tuple[str, str]] = {}
        self._write_qrels()  # brings the qrels up to date after a kill between append and rewrite

    def submit(self, query_id: str, labels: dict[str, int]) -> None:
        rec = {"query_id": query_id, "labels": labels, "annotator": self.annotator, "time": time.time()}
        self._log.append(rec)
        self.mine[query_id] = rec
        self._write_qrels()

    def close(self) -> None:
        self._log.close()

    def _other_logs(self) -> list[Submissions]:
        """Other annotators' logs, re-read only when their size or mtime changed."""
        out = []
        for name, path in log_files(self.out).items():
            if name == self.annotator:
                continue
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            cached = self._others.get(name)
            if cached is None or cached[0] != key:
                cached = self._others[name] = (key, read_log(path))
            out.append(cached[1])
        return out

    def _write_qrels(self) -> None:
        merged: Submissions = {}
        for subs in [*self._other_logs(), self.mine]:
            for qid, rec in subs.items():
                if qid not in merged or rec["time"] >= merged[qid]["time"]:
                    merged[qid] = rec
        blocks = [self._lines(rec) for rec in merged.values()]
        with atomic_write(self.out) as fh:
            fh.write("".join(qrels for qrels, _ in blocks))
        with atomic_write(self.out.with_name(self.out.name + ".annotators.tsv")) as fh:
            fh.write("query_id\tannotator\ttime\n" + "".join(side for _, side in blocks))

    def _lines(self, rec: dict) -> tuple[str, str]:
        """A record's qrels lines and annotator-file line, formatted once (the files are rewritten often)."""
        key = (rec["query_id"], rec["annotator"], rec["time"])
        if key not in self._blocks:
            self._blocks[key] = (format_trec_qrels({rec["query_id"]: rec["labels"]}),
                                 f"{rec['query_id']}\t{rec['annotator']}\t{rec['time']:.3f}\n")
        return self._blocks[key]

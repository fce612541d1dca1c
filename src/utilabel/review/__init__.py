"""Human review of the queries the LLM is least sure of: a local web page whose labels become qrels.

:func:`build_queue` orders an annotation run's queries as ``--mix-strategy uncertain`` spends the
human budget; :class:`LabelStore` keeps each annotator's submissions in an fsync'd log and derives
TREC qrels from them; :func:`create_app` is the web app; :func:`start` validates everything, binds
the socket and returns a :class:`Session` to serve; :func:`review_agreement` reports Cohen's kappa
between annotators and against the LLM. The qrels feed ``utilabel train --labels human.qrels
RUN/judgments.jsonl --human-ratio R --mix-strategy uncertain``.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..seeding import DEFAULT_SEED
from .agreement import review_agreement
from .app import create_app, listen, serve, url_of
from .queue import ReviewItem, ReviewQueue, build_queue, parse_budget
from .store import LabelStore, log_path, read_logs

LOCALHOST = "127.0.0.1"


@dataclass
class Session:
    """A review server ready to run: ``url`` (with the token, if any) is where the page is."""

    app: object
    sock: socket.socket
    url: str
    queue: ReviewQueue
    store: LabelStore

    def serve(self) -> None:
        try:
            serve(self.app, self.sock)
        finally:
            self.store.close()


def start(run_dirs: Sequence[str | Path], dataset, split: str, out: str | Path, budget: str = "0.2",
          annotator: str = "annotator", host: str | None = None, port: int = 8765, token: str | None = None,
          seed: int = DEFAULT_SEED, judgment_method: str | None = None, label_rule: str | None = None) -> Session:
    """Check the runs, dataset, output and address (one-line errors, before anything listens), then bind.

    ``host=None`` binds 127.0.0.1 and checks the Host header; any other ``host`` requires ``token``
    (generated when not given).
    """
    queue = build_queue(run_dirs, dataset, split, budget, seed, judgment_method, label_rule)
    log_path(out, annotator)  # validates the annotator name
    if host is not None and not token:
        token = secrets.token_urlsafe(18)
    sock = listen(host or LOCALHOST, port)
    try:
        store = LabelStore(out, annotator)
    except BaseException:
        sock.close()
        raise
    url = url_of(sock) + (f"?token={token}" if token else "")
    return Session(create_app(queue, store, token, local=host is None), sock, url, queue, store)


__all__ = ["ReviewItem", "ReviewQueue", "LabelStore", "Session", "build_queue", "create_app", "parse_budget",
           "read_logs", "review_agreement", "start"]

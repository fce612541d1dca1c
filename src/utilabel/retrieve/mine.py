"""Hard-negative mining with a dense retriever: candidate groups (the candidates JSONL of
:mod:`utilabel.data.candidates`) that annotation, training and review take as they are.

For each query of a split, :func:`mine_negatives`

1. retrieves the top ``depth`` passages with a bi-encoder (any model :mod:`.dense` loads: ``"default"``
   or a trained model folder; corpus embeddings come from the dense embedding cache);
2. keeps the dense ranks in the window ``[rank_lo, rank_hi]`` (1-based, inclusive) — skipping the
   very top avoids the likeliest false negatives, cutting the tail keeps them hard;
3. optionally adds BM25's top ``bm25_k`` (scored by the same dense model so every candidate is
   filtered alike; the rank window applies to dense ranks only);
4. drops the query's known positives (``keep_positives=False``) and, positive-aware
   (NV-Retriever, arXiv 2407.15831), every candidate whose dense score ``s`` is too close to the
   positive's score ``s⁺``: ``s > relative_margin · s⁺`` (TopK-PercPos, 0.95 by default) or
   ``s > s⁺ − absolute_margin`` (TopK-MarginPos). With several positives ``s⁺`` is the lowest
   positive score (``positive_score="min"``, the conservative choice) or the highest / mean.
   A query without a positive in ``positives`` is not filtered by margin (counted in the stats).
   The relative rule assumes positive scores (cosine); use the absolute margin with dot products.

The kept candidates are ranked by dense score (rank 1 = best) with that score. For datasets with
``ignore_identical_ids`` (ArguAna) the query's own document is never a candidate.

Resumability: the expensive part, corpus encoding, is resumable through the embedding cache
(atomic shards). With ``out``, mined groups are also appended, one fsynced record per batch of
``query_batch`` queries, to ``<out>.partial`` (with the options in its first record); a re-run
with the same options skips the queries already there, and the final ``out`` is written
atomically in split order, after which the partial file is removed. Different options with an
existing partial file are an error (delete it, or rerun with the same options).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError, UnknownNameError
from ..records import Candidate, CandidateGroup

POSITIVE_SCORES = ("min", "max", "mean")


@dataclass(frozen=True)
class MineConfig:
    """What to mine. ``depth``: dense hits retrieved per query (default: ``rank_hi``);
    ``rank_lo``/``rank_hi``: dense rank window kept (1-based, inclusive); ``relative_margin``: drop
    ``s > m · s⁺`` (None = off); ``absolute_margin``: drop ``s > s⁺ − m`` (None = off);
    ``positive_score``: ``min`` | ``max`` | ``mean`` of several positives' scores; ``bm25_k``: also
    BM25's top k (0 = off); ``keep_positives``: keep known positives among the candidates;
    ``query_batch``: queries encoded, searched and saved together."""

    rank_lo: int = 1
    rank_hi: int = 100
    depth: int | None = None
    relative_margin: float | None = 0.95
    absolute_margin: float | None = None
    positive_score: str = "min"
    bm25_k: int = 0
    keep_positives: bool = False
    query_batch: int = 256

    def __post_init__(self):
        for name in ("rank_lo", "rank_hi", "query_batch"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if self.rank_hi < self.rank_lo:
            raise ConfigError(f"rank window [{self.rank_lo}, {self.rank_hi}] is empty (rank_hi < rank_lo)")
        if self.depth is not None and (not isinstance(self.depth, int) or self.depth < self.rank_hi):
            raise ConfigError(f"depth must be an integer >= rank_hi ({self.rank_hi}), got {self.depth!r}")
        if not isinstance(self.bm25_k, int) or self.bm25_k < 0:
            raise ConfigError(f"bm25_k must be an integer >= 0, got {self.bm25_k!r}")
        for name in ("relative_margin", "absolute_margin"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0 (or None), got {v!r}")
        if self.positive_score not in POSITIVE_SCORES:
            raise UnknownNameError("positive score", self.positive_score, POSITIVE_SCORES)

    @property
    def search_depth(self) -> int:
        return self.depth or self.rank_hi


@dataclass
class MineStats:
    """Counts over the queries mined in this call; ``queries`` is every query returned, ``resumed``
    those taken from a partial file (not in the other counts)."""

    queries: int = 0
    resumed: int = 0
    no_positive: int = 0
    retrieved: int = 0
    outside_window: int = 0
    bm25_added: int = 0
    dropped_positive: int = 0
    dropped_margin: int = 0
    kept: int = 0
    empty_groups: int = 0

    def add(self, other: MineStats) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


def positive_threshold(pos_scores: Iterable[float], config: MineConfig) -> float:
    """The dense score above which a candidate is dropped (``inf`` without positives or margins)."""
    pos = list(pos_scores)
    if not pos:
        return math.inf
    if config.positive_score == "min":
        ref = min(pos)
    elif config.positive_score == "max":
        ref = max(pos)
    else:
        ref = math.fsum(pos) / len(pos)
    limits = [math.inf]
    if config.relative_margin is not None:
        limits.append(config.relative_margin * ref)
    if config.absolute_margin is not None:
        limits.append(ref - config.absolute_margin)
    return min(limits)


def filter_candidates(query_id: str, query: str, dense_hits: list[tuple[str, float]], bm25_extra: list[tuple[str, float]],
                      pos_scores: Mapping[str, float], config: MineConfig) -> tuple[CandidateGroup, MineStats]:
    """One query's group from its dense hits (best first, rank = position + 1), extra BM25 docs with
    their dense scores, and the dense scores of its positives. Pure: the tests call it directly."""
    st = MineStats(queries=1, no_positive=int(not pos_scores), retrieved=len(dense_hits))
    limit = positive_threshold(pos_scores.values(), config)
    kept: dict[str, float] = {}
    window = dense_hits[config.rank_lo - 1:config.rank_hi]
    st.outside_window = len(dense_hits) - len(window)
    seen = {d for d, _ in window}
    extra = [(d, s) for d, s in bm25_extra if d not in seen]
    st.bm25_added = len(extra)
    for d, s in window + extra:
        if d in pos_scores and not config.keep_positives:
            st.dropped_positive += 1
        elif d not in pos_scores and s > limit:
            st.dropped_margin += 1
        else:
            kept[d] = s
    hits = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))
    st.kept = len(hits)
    st.empty_groups = int(not hits)
    return CandidateGroup(query_id, query, tuple(Candidate(d, r, s) for r, (d, s) in enumerate(hits, 1))), st


def _options_record(config: MineConfig, model_key: str, dataset: str, split: str) -> dict:
    opts = asdict(config)
    opts.pop("query_batch")
    return {"options": {**opts, "model": model_key, "dataset": dataset, "split": split}}


def _group_json(g: CandidateGroup) -> dict:
    return {"query_id": g.query_id, "query": g.query,
            "candidates": [{"doc_id": c.doc_id, "rank": c.rank, "score": c.score} for c in g.candidates]}


def _load_partial(path: Path, header: dict) -> dict[str, CandidateGroup]:
    from ..fileio import AppendLog

    records = AppendLog.read(path)
    if not records:
        return {}
    if records[0] != header:
        raise ConfigError(f"{path} holds a mining run with other options; delete it or rerun with the same options")
    done = {}
    for rec in records[1:]:
        for g in rec["groups"]:
            done[g["query_id"]] = CandidateGroup(g["query_id"], g["query"], tuple(
                Candidate(c["doc_id"], int(c["rank"]), float(c["score"])) for c in g["candidates"]))
    return done


class _Miner:
    """The index, encoder and BM25 of one mining run: :meth:`groups` mines a batch of queries."""

    def __init__(self, dataset, model, config: MineConfig, dc, model_key: str) -> None:
        from .dense import DenseIndex, encode_corpus
        from .encoder import Encoder

        self.dataset, self.config, self.dc = dataset, config, dc
        self.encoder = Encoder(model, quantize=dc.quantize, query_max_len=dc.query_max_length,
                               passage_max_len=dc.max_length)
        self.doc_ids, self.emb = encode_corpus(self.encoder, dataset.corpus, dc, model_key=model_key)
        self.index = DenseIndex(self.doc_ids, self.emb, dc)
        self.row = {d: i for i, d in enumerate(self.doc_ids)}
        self.bm25 = None
        if config.bm25_k:
            from .bm25 import BM25Retriever

            self.bm25 = BM25Retriever(dataset.corpus)
        self.extra_hit = 1 if dataset.ignore_identical_ids else 0

    def groups(self, batch: list[str], queries: Mapping, positives: Mapping[str, Iterable[str]],
               stats: MineStats) -> list[CandidateGroup]:
        """The filtered candidate groups of the queries ``batch`` (their counts added to ``stats``)."""
        config, row, emb, doc_ids = self.config, self.row, self.emb, self.doc_ids
        qemb = self.encoder.encode([queries[q].text for q in batch], "query", self.dc.batch_size)
        scores, idx = self.index.search(qemb, config.search_depth + self.extra_hit)
        bm25_run = self.bm25.search({q: queries[q] for q in batch}, config.bm25_k + self.extra_hit) if self.bm25 else {}
        out = []
        for i, q in enumerate(batch):
            skip = {q} if self.dataset.ignore_identical_ids else set()
            hits = [(doc_ids[int(j)], float(s)) for s, j in zip(scores[i], idx[i], strict=True)
                    if j >= 0 and doc_ids[int(j)] not in skip][:config.search_depth]
            bm25_hits = sorted(bm25_run.get(q, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            bm25_docs = [d for d, _ in bm25_hits if d not in skip and d in row][:config.bm25_k]
            bm25_extra = [(d, float(emb[row[d]] @ qemb[i])) for d in bm25_docs]
            pos = {d: float(emb[row[d]] @ qemb[i]) for d in positives.get(q, ()) if d in row}
            g, st = filter_candidates(q, queries[q].text, hits, bm25_extra, pos, config)
            out.append(g)
            stats.add(st)
        return out


def mine_negatives(dataset, split: str, model: str | Path | None = "default", config: MineConfig | None = None,
                   dense_config=None, positives: Mapping[str, Iterable[str]] | None = None,
                   limit: int | None = None, out: str | Path | None = None,
                   show_progress: bool = False) -> tuple[list[CandidateGroup], MineStats]:
    """Mine candidate groups for the queries of ``dataset``'s ``split`` (first ``limit``).

    ``positives``: ``{query_id: doc ids}`` (default: the split's qrels with grade ≥ the dataset's
    ``relevance_level``). ``dense_config``: a :class:`~utilabel.retrieve.dense.DenseConfig`. With
    ``out``, resumable and written atomically as candidates JSONL (see the module docstring).
    Returns the groups in split order and the counts.
    """
    from ..data.candidates import write_candidates
    from ..fileio import AppendLog
    from .dense import DenseConfig, model_fingerprint
    from .dense import _progress as progress

    config = config or MineConfig()
    queries = dataset.split_queries(split)
    if limit is not None:
        queries = dict(list(queries.items())[:limit])
    if positives is None:
        level = dataset.relevance_level
        positives = {q: [d for d, g in docs.items() if g >= level] for q, docs in dataset.qrels(split).items()}
    model_key = model_fingerprint(model)
    stats = MineStats()
    done: dict[str, CandidateGroup] = {}
    partial = Path(str(out) + ".partial") if out is not None else None
    header = _options_record(config, model_key, str(getattr(dataset, "name", "")), split)
    if partial is not None:
        done = _load_partial(partial, header)
        stats.resumed = sum(1 for q in queries if q in done)
    todo = [q for q in queries if q not in done]
    if todo:
        miner = _Miner(dataset, model, config, dense_config or DenseConfig(), model_key)
        log = AppendLog(partial) if partial is not None else None
        try:
            if log is not None and not log.path.stat().st_size:
                log.append(header)
            bar = progress(len(todo), show_progress, "mine")
            for start in range(0, len(todo), config.query_batch):
                batch = todo[start:start + config.query_batch]
                groups = miner.groups(batch, queries, positives, stats)
                done.update((g.query_id, g) for g in groups)
                if log is not None:
                    log.append({"groups": [_group_json(g) for g in groups]})
                bar.update(len(batch))
            bar.close()
        finally:
            if log is not None:
                log.close()
    result = [done[q] for q in queries]
    stats.queries = len(result)
    if out is not None:
        write_candidates(out, result)
        Path(str(out) + ".partial").unlink(missing_ok=True)
    return result, stats

"""The training loop: ``train(TrainConfig, labels=None, groups=None) -> model folder``.

:func:`train` runs four parts: set-up (device, DDP, checks that need them), data (a
:class:`~utilabel.train.data.TrainingData` from labels given in memory, in-memory groups, a groups
file or a dataset's labels), the loop, and finish (model, summary, loss curve, optional evaluation).

One code path for a single CPU/GPU process and ``torchrun`` DDP. Each step takes a global batch of
``batch_size`` query groups (every rank derives the same batch from the seed and takes its slice);
the loss of a rank's queries runs over *all* passages of the global batch, gathered from every rank
with ``torch.distributed.nn.all_gather`` (which keeps gradients), normalised by the global number of
queries that have a positive. Gradients are then summed over ranks, so DDP equals one process on
the concatenated batch (tested). Options: AMP (fp16/bf16) on GPU, gradient checkpointing,
GradCache. A checkpoint (model, optimizer, scheduler, scaler, RNG, step) is written atomically
every ``save_every`` steps and the run resumes from it after a kill; batches are derived from
``(seed, epoch)``, so a resumed run reaches the same weights as an uninterrupted one.

Outputs in ``config.out``: ``model/`` (sentence-transformers folder + model card), ``log.jsonl``
(one record per step, append-only), ``summary.json``, ``loss_curve.png``, ``human_queries.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, require
from ..fileio import AppendLog, atomic_write, sweep_stale_temps
from ..labels import Labels
from ..labels.mixing import LabelPlan
from ..labels.teacher import Teacher
from ..records import TrainingGroup
from .config import TrainConfig
from .data import GroupSampler, SampledGroup, TrainingData, resolve_teacher, training_data, write_chosen
from .losses import TeacherScores, get_loss
from .model import BiEncoder

torch = require("torch", "train")
tqdm = require("tqdm.auto", "train").tqdm

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
#: options that may change between a run and its resume
_RESUME_FREE = {"resume", "show_progress", "save_every", "eval_split", "max_steps", "device", "out", "epochs",
                "num_threads"}


def _after_step(step: int) -> None:
    """Hook called after every optimizer step (tests use it to kill a run mid-way)."""


def _dist():
    dist = torch.distributed
    return dist if dist.is_available() and dist.is_initialized() else None


def _rank() -> int:
    d = _dist()
    return d.get_rank() if d else 0


def _world() -> int:
    d = _dist()
    return d.get_world_size() if d else 1


def _maybe_init_distributed(device: str) -> bool:
    """Join the torchrun process group unless the caller did; True when this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return True
    return False


def batch_matrices(global_groups: list[SampledGroup], local_slice: slice, known_pos: dict[str, set[str]],
                   in_batch: bool = True):
    """Label weights ``[q_local, D_global]`` and the exclusion mask (unlabeled positives elsewhere in the batch)."""

    cols = [(g_i, d) for g_i, g in enumerate(global_groups) for d in g.doc_ids]
    q_idx = list(range(len(global_groups)))[local_slice]
    weights = torch.zeros(len(q_idx), len(cols))
    exclude = torch.zeros(len(q_idx), len(cols), dtype=torch.bool)
    for r, gi in enumerate(q_idx):
        g = global_groups[gi]
        own = dict(zip(g.doc_ids, g.weights, strict=True))
        pos = known_pos.get(g.query_id, set())
        for c, (owner, d) in enumerate(cols):
            if owner == gi:
                weights[r, c] = own[d]
            elif not in_batch or d in pos or own.get(d, 0.0) > 0:
                exclude[r, c] = True  # a positive of this query in another group is no negative
    return weights, exclude


def teacher_matrices(global_groups: list[SampledGroup], local_slice: slice) -> TeacherScores:
    """Teacher scores ``[q_local, D_global]`` aligned with :func:`batch_matrices`' columns, and their
    bool mask: True on a query's own passages that have a teacher score; False on other queries'
    (in-batch) passages and on passages without one (their score is 0 there)."""

    cols = [(g_i, d) for g_i, g in enumerate(global_groups) for d in g.doc_ids]
    q_idx = list(range(len(global_groups)))[local_slice]
    scores = torch.zeros(len(q_idx), len(cols))
    mask = torch.zeros(len(q_idx), len(cols), dtype=torch.bool)
    starts = [0]
    for g in global_groups:
        starts.append(starts[-1] + len(g.doc_ids))
    for r, gi in enumerate(q_idx):
        for j, s in enumerate(global_groups[gi].teacher or []):
            if s is not None:
                scores[r, starts[gi] + j] = s
                mask[r, starts[gi] + j] = True
    return TeacherScores(scores, mask)


class _TokenCache:
    """Token ids of the passages and queries of :class:`TrainingData`, tokenised once."""

    def __init__(self, model: BiEncoder, data: TrainingData):
        self.model = model
        self.text = {"passage": data.doc_text, "query": data.query_text}
        self.ids: dict[str, dict[str, list[int]]] = {"passage": {}, "query": {}}

    def __call__(self, ids: list[str], kind: str) -> list[list[int]]:
        known = self.ids[kind]
        missing = [i for i in dict.fromkeys(ids) if i not in known]
        if missing:
            texts = [self.text[kind](i) for i in missing]
            known.update(zip(missing, self.model.tokenize(texts, kind), strict=True))
        return [known[i] for i in ids]


def _adamw(params, lr: float, weight_decay: float):
    """AdamW, fused when the device supports it (on CPU about 30x faster than the per-tensor loop)."""

    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - device without a fused kernel
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


@dataclass
class _Run:
    """The state of one training run: where it runs, the model and its optimiser, and the progress."""

    config: TrainConfig
    device: str
    rank: int
    world: int
    amp_dtype: object | None = None  # None = no autocast
    owns_group: bool = False  # train() created the process group, so it destroys it when done
    # set by _start before any step (torch's optimiser, LR scheduler and grad scaler objects)
    model: BiEncoder = None  # type: ignore[assignment]
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None
    step: int = 0
    elapsed: float = 0.0
    masked: int = 0


def train(config: TrainConfig, labels: Labels | LabelPlan | None = None, groups: list[TrainingGroup] | None = None,
          texts: Mapping[str, str] | None = None, teacher: Teacher | None = None) -> Path:
    """Train a bi-encoder as configured; returns the saved model folder (``config.out/model``).

    The data is ``labels`` (``{query_id: {doc_id: weight}}`` or a
    :class:`~utilabel.labels.mixing.LabelPlan`, in memory) on ``config.dataset`` with its BM25 hard
    negatives, else ``groups`` (in-memory :class:`TrainingGroup` records, with ``texts`` = ``{doc_id:
    text}`` of their passages, else the corpus of ``config.dataset``), else ``config.groups`` (a
    groups file), else the labels of ``config.labels`` on ``config.dataset`` (see :mod:`.data`).
    A distillation loss (``kl``, ``margin_mse``, ``disj_kl``) also needs teacher scores: ``teacher``
    (``{query_id: {doc_id: score}}``, in memory, used as given), else ``config.teacher``, else the
    groups' own (:func:`~utilabel.train.data.resolve_teacher`).
    """
    run = _setup(config)
    data = training_data(config, groups, texts, write=run.rank == 0, labels=labels)
    data.teacher = resolve_teacher(config, data, teacher, write=run.rank == 0)
    sampler = GroupSampler(data.plan, data.candidates, data.corpus_ids, config.group_size, config.max_positives,
                           get_loss(config.loss, **config.loss_options()).single_positive, config.negative_sampling,
                           config.seed, query_ids=data.query_ids, teacher=data.teacher)
    steps_per_epoch = _steps_per_epoch(config, sampler, run.world)
    total = min(sum(steps_per_epoch), config.max_steps or sum(steps_per_epoch))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if run.rank == 0:
        sweep_stale_temps(out)  # a kill mid-checkpoint leaves .checkpoint.pt.PID.*.tmp
    _start(run, total, out / CHECKPOINT)
    if run.rank == 0:
        write_chosen(out / "human_queries.json", data.plan)
        with atomic_write(out / "config.json") as fh:
            json.dump(config.to_dict(), fh, indent=2)
    _loop(run, data, sampler, steps_per_epoch, total, out)
    _checkpoint(out / CHECKPOINT, run)  # collective under DDP
    if run.rank == 0:
        log.info("training done: %s", _finish(run, data, len(sampler.query_ids), total, out))
    if _dist():
        _dist().barrier()  # no rank tears down while another still writes or communicates
        if run.owns_group:  # gloo aborts at exit if its group is left to the interpreter's teardown
            _dist().destroy_process_group()
    return out / "model"


def _setup(config: TrainConfig) -> _Run:
    """Device, threads, the process group, and the checks that depend on them."""
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    owns_group = _maybe_init_distributed(device)
    rank, world = _rank(), _world()
    if world > 1 and device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
        torch.cuda.set_device(device)
    if config.grad_cache_chunk and world > 1:
        raise ConfigError("grad_cache_chunk is single-process only; under DDP lower batch_size per rank instead")
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of ranks {world}")
    if config.amp != "no" and not device.startswith("cuda"):
        log.warning("amp=%s ignored on %s", config.amp, device)
    use_amp = config.amp != "no" and device.startswith("cuda")
    torch.manual_seed(config.seed)
    return _Run(config, device, rank, world, (torch.float16 if config.amp == "fp16" else torch.bfloat16) if use_amp else None,
                owns_group)


def _steps_per_epoch(config: TrainConfig, sampler: GroupSampler, world: int) -> list[int]:
    n_queries = len(sampler.query_ids)
    if n_queries == 0:
        raise ConfigError("no training queries (labels and split share no query)")
    steps = [len(sampler.epoch_query_ids(e)) for e in range(config.epochs)]
    steps = [n // config.batch_size if world > 1 else math.ceil(n / config.batch_size) for n in steps]
    if min(steps) == 0:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {n_queries} training queries under DDP")
    return steps


def _start(run: _Run, total: int, ckpt: Path) -> None:
    """Model, optimiser, schedule and AMP scaler, restored from ``ckpt`` when resuming."""
    config = run.config
    run.model = BiEncoder(config.model_config(), config.gradient_checkpointing, run.device)
    run.model.train(True)
    run.optimizer = _adamw(list(run.model.parameters()), config.lr, config.weight_decay)
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, _lr_lambda(total, int(config.warmup_ratio * total)))
    run.scaler = torch.amp.GradScaler("cuda", enabled=run.amp_dtype == torch.float16)
    if not (config.resume and ckpt.exists()):
        return
    state = torch.load(ckpt, map_location=run.device, weights_only=False)
    old = {k: v for k, v in state["config"].items() if k not in _RESUME_FREE}
    new = {k: v for k, v in config.to_dict().items() if k not in _RESUME_FREE}
    changed = sorted(k for k in new if old.get(k) != new[k])
    if changed:
        raise ConfigError(f"{ckpt} was written with other options ({', '.join(changed)}); use another out or resume=False")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"][run.rank] if isinstance(state["rng"], list) else state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])
    run.step, run.elapsed = state["step"], state.get("elapsed", 0.0)
    log.info("resumed from %s at step %d", ckpt, run.step)


def _loop(run: _Run, data: TrainingData, sampler: GroupSampler, steps_per_epoch: list[int], total: int,
          out: Path) -> None:
    """Optimizer steps ``run.step + 1 … total``: a log record per step, a checkpoint every ``save_every``."""
    config, model = run.config, run.model
    loss_fn = get_loss(config.loss, **config.loss_options())
    tokens = _TokenCache(model, data)
    known_pos = data.plan.all_positive_ids()
    logf = AppendLog(out / "log.jsonl") if run.rank == 0 else None
    bar = tqdm(total=total, initial=run.step, desc="train", unit="step",
               disable=not config.show_progress or run.rank != 0)
    t0, start_elapsed = time.perf_counter(), run.elapsed
    epoch_groups: dict[int, list[SampledGroup]] = {}
    while run.step < total:
        epoch, in_epoch = 0, run.step
        while in_epoch >= steps_per_epoch[epoch]:
            in_epoch -= steps_per_epoch[epoch]
            epoch += 1
        if epoch not in epoch_groups:
            epoch_groups = {epoch: sampler.epoch_groups(epoch)}
        groups = epoch_groups[epoch][in_epoch * config.batch_size : (in_epoch + 1) * config.batch_size]
        loss, masked = forward_backward(model, loss_fn, groups, tokens, known_pos, in_batch=config.in_batch_negatives,
                                        grad_cache_chunk=config.grad_cache_chunk, amp_dtype=run.amp_dtype,
                                        scaler=run.scaler)
        run.masked += masked
        run.scaler.unscale_(run.optimizer)
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), config.max_grad_norm)
        lr = run.scheduler.get_last_lr()[0]
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        run.elapsed = start_elapsed + time.perf_counter() - t0
        loss_value = float(loss.detach())
        if logf:
            logf.append({"step": run.step, "epoch": epoch, "loss": loss_value, "lr": lr, "queries": len(groups),
                         "masked_queries": masked, "time": round(run.elapsed, 3)})
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch)
        if config.save_every and run.step % config.save_every == 0 and run.step < total:
            _checkpoint(out / CHECKPOINT, run)
        _after_step(run.step)
    bar.close()
    run.elapsed = start_elapsed + time.perf_counter() - t0
    if logf:
        logf.close()


def gather_with_grad(x):
    """Concatenate ``x`` [n, dim] of every rank (same shapes); the backward pass sums the incoming
    gradient over ranks and hands each rank the slice of its own rows."""
    dist = torch.distributed

    class _Gather(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, t.contiguous())
            ctx.n = t.shape[0]
            return torch.cat(parts, dim=0)

        @staticmethod
        def backward(ctx, grad):
            grad = grad.contiguous()
            dist.all_reduce(grad)
            r = dist.get_rank()
            return grad[r * ctx.n : (r + 1) * ctx.n]

    return _Gather.apply(x)


def forward_backward(model: BiEncoder, loss_fn, groups: list[SampledGroup], tokens, known_pos: dict[str, set[str]],
                     in_batch: bool = True, grad_cache_chunk: int = 0, amp_dtype=None, scaler=None):
    """Loss of one global batch and its gradients in ``model``'s parameters; returns ``(loss, masked)``.

    Under DDP (an initialised process group) this rank embeds its contiguous slice of ``groups``;
    passage embeddings of every rank are gathered with gradients, the loss is normalised by the
    global number of queries with a positive, and parameter gradients are summed over ranks, so the
    result equals one process on the whole batch. ``masked`` counts queries without a positive.
    A distillation loss (``needs_teacher``) also gets the batch's :func:`teacher_matrices`, and the
    normaliser and ``masked`` count the queries of its own :meth:`~.losses.base.GroupLoss.rows`
    (e.g. ``kl``: those with two teacher-scored passages). GradCache supports both.
    """

    rank, world = _rank(), _world()
    n = len(groups) // world
    local = slice(rank * n, (rank + 1) * n) if world > 1 else slice(0, len(groups))
    device = next(model.parameters()).device
    weights, exclude = batch_matrices(groups, local, known_pos, in_batch)
    teacher: TeacherScores | None = None
    if loss_fn.needs_teacher:
        teacher = teacher_matrices(groups, local)
        every = slice(0, len(groups))
        full_w = weights if world == 1 else batch_matrices(groups, every, known_pos, in_batch)[0]
        full_t = teacher if world == 1 else teacher_matrices(groups, every)
        n_valid = int(loss_fn.rows(full_w, full_t).sum())  # own passages are never excluded
        teacher = TeacherScores(teacher.scores.to(device), teacher.mask.to(device))
    else:
        n_valid = sum(1 for g in groups if g.has_positive)
    weights, exclude = weights.to(device), exclude.to(device)
    q_tok = tokens([g.query_id for g in groups[local]], "query")
    p_tok = tokens([d for g in groups[local] for d in g.doc_ids], "passage")

    def embed(items, kind):
        ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
        with ctx:
            return model.embed(items, kind)

    def batch_loss(q, p):
        if world > 1:
            p = gather_with_grad(p)
        scores = model.scores(q.float(), p.float()).masked_fill(exclude, -torch.inf)
        if teacher is not None:
            return loss_fn.per_query(scores, weights, teacher).sum() / max(n_valid, 1)
        return loss_fn.per_query(scores, weights).sum() / max(n_valid, 1)

    if grad_cache_chunk:
        from .gradcache import cached_backward

        loss = cached_backward(embed, q_tok, p_tok, batch_loss, grad_cache_chunk)
    else:
        loss = batch_loss(embed(q_tok, "query"), embed(p_tok, "passage"))
        (scaler.scale(loss) if scaler is not None else loss).backward()
    loss = loss.detach()
    if world > 1:
        dist = torch.distributed
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
        loss = loss.clone()
        dist.all_reduce(loss)
    return loss, len(groups) - n_valid


def _checkpoint(path: Path, run: _Run) -> None:
    rng = torch.get_rng_state()
    d = _dist()
    if d:
        rngs = [None] * d.get_world_size()
        d.all_gather_object(rngs, rng)
        rng = rngs
    if run.rank != 0:
        return
    with atomic_write(path, "wb") as fh:
        torch.save({
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "rng": rng,
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
            "step": run.step, "elapsed": run.elapsed, "config": run.config.to_dict(),
        }, fh)


def read_log(out: str | Path) -> list[dict]:
    """Per-step records of a run (the last record wins for a step logged again after a resume)."""
    by_step = {r["step"]: r for r in AppendLog.read(Path(out) / "log.jsonl")}
    return [by_step[s] for s in sorted(by_step)]


def plot_loss(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss")
    w = max(1, min(len(losses) // 2, max(5, len(losses) // 10)))
    if len(losses) > w > 1:
        avg = [sum(losses[i - w + 1 : i + 1]) / w for i in range(w - 1, len(losses))]
        ax.plot(steps[w - 1 :], avg, lw=1.6, label=f"mean of {w}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def _finish(run: _Run, data: TrainingData, n_queries: int, total: int, out: Path) -> dict:
    config, elapsed = run.config, run.elapsed
    records = read_log(out)
    summary = {
        "config": config.to_dict(), "data": data.source, "steps": total, "train_queries": n_queries,
        "human_queries": len(data.plan.human_queries), "label_strategy": data.plan.strategy,
        "masked_queries": sum(r.get("masked_queries", 0) for r in records),
        "seconds": round(elapsed, 2),
        "examples_per_second": round(sum(r["queries"] for r in records) / elapsed, 3) if elapsed else None,
        "first_loss": records[0]["loss"] if records else None,
        "last_loss": records[-1]["loss"] if records else None,
    }
    model_dir = run.model.save(out / "model", card=_model_card(config, summary), meta={"train": summary})
    if config.eval_split:
        from ..data.registry import load_dataset
        from .evaluation import evaluate_model

        dataset = load_dataset(config.dataset)
        summary["eval"] = {config.eval_split: evaluate_model(model_dir, dataset, config.eval_split)}
    if records:
        plot_loss(records, out / "loss_curve.png")
    with atomic_write(out / "summary.json") as fh:
        json.dump(summary, fh, indent=2)
    if config.eval_split:  # re-write the card with the evaluation numbers
        (model_dir / "README.md").write_text(_model_card(config, summary), encoding="utf-8")
    return summary


def _model_card(config: TrainConfig, summary: dict) -> str:
    lines = [
        "---", "library_name: sentence-transformers", "tags: [sentence-transformers, utilabel, dense-retrieval]", "---", "",
        f"# utilabel dense retriever ({config.loss})", "",
        "Bi-encoder trained with utilabel (utility-focused LLM annotation for retrieval).", "",
        "## Data", "",
        *[f"- {line}" for line in summary["data"]],
        f"- {summary['train_queries']} training queries; with human labels: {summary['human_queries']}; "
        f"masked (no positive): {summary['masked_queries']}",
        "", "## Loss", "",
        f"- `{config.loss}`, temperature {config.temperature}, in-batch negatives: {config.in_batch_negatives}",
        "", "## Hyper-parameters", "",
        "| option | value |", "|---|---|",
    ]
    for k, v in config.to_dict().items():
        lines.append(f"| {k} | {v} |")
    lines += ["", "## Training", "", f"- steps: {summary['steps']}, seconds: {summary['seconds']}, "
              f"loss {summary['first_loss']} → {summary['last_loss']}"]
    if "eval" in summary:
        for split, res in summary["eval"].items():
            lines.append(f"- {split}: " + ", ".join(f"{m} {v:.4f}" for m, v in res.items()))
    lines += ["", "## Usage", "", "```python", "from sentence_transformers import SentenceTransformer",
              "model = SentenceTransformer('path/to/model')  # passage tower" + (
                  "; query tower in query_encoder/" if not config.tied else ""), "```", ""]
    return "\n".join(lines)

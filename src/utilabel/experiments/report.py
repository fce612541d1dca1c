"""The experiment report: markdown tables in the paper's shape and PNG plots, generated from
``results.jsonl`` (never edited by hand).

Tables: rows = label source / loss (BM25 and the untrained base model as reference rows),
columns = datasets and their mean; cells are mean ± std over seeds. The mean column averages the
row's dataset values and is shown only when the row has every dataset (else ``–``, with the number of
datasets covered). Plots: metric vs human ratio and metric vs label-noise rate, one line per loss.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from ..fileio import AppendLog, atomic_write
from .config import ExperimentConfig
from .runner import BASE_ROW, BM25_ROW

RAG_METRICS = (("EM", "EM"), ("F1", "F1"), ("ROUGE-L", "RL"), ("AnswerInPassages", "AiP"))


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _collect(records: list[dict], kind: str) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(row, dataset): {metric: [value per seed]}} (last record per key wins)."""
    latest: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == kind:
            latest[r["key"]] = r
    out: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in latest.values():
        for m, v in r["metrics"].items():
            out[(r["row"], r["dataset"])][m].append(float(v))
    return out


def _table(rows: list[str], datasets: list[str], data, metric: str, first_col: str = "labels / loss") -> str:
    head = f"| {first_col} | " + " | ".join(datasets) + " | mean |"
    sep = "|" + "---|" * (len(datasets) + 2)
    lines = [head, sep]
    for row in rows:
        cells, means = [], []
        for d in datasets:
            vals = data.get((row, d), {}).get(metric, [])
            cells.append(_cell(vals))
            if vals:
                means.append(statistics.mean(vals))
        mean = f"{statistics.mean(means):.3f}" if len(means) == len(datasets) and means else \
            f"– ({len(means)}/{len(datasets)})"
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def _rows_of(records: list[dict], study_kind_rows: list[str]) -> list[str]:
    seen: list[str] = []
    for r in records:
        if r["row"] in study_kind_rows and r["row"] not in seen:
            seen.append(r["row"])
    return seen


def _plot(path: Path, series: dict[str, list[tuple[float, float, float]]], xlabel: str, ylabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for label, pts in sorted(series.items()):
        pts = sorted(pts)
        xs, ys, es = zip(*pts, strict=True)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _series(records, data, datasets, metric, field_name: str) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    """{dataset: {loss: [(x, mean, std)]}} for rows of the noise / ratio studies."""
    meta = {}
    for r in records:
        if r.get(field_name) is not None and r.get("kind") == "retrieval":
            meta[r["row"]] = (float(r[field_name]), r["loss"])
    out: dict[str, dict[str, list]] = {}
    for d in datasets:
        per_loss: dict[str, list] = defaultdict(list)
        for row, (x, loss) in meta.items():
            vals = data.get((row, d), {}).get(metric, [])
            if vals:
                per_loss[loss].append((x, statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0))
        if per_loss:
            out[d] = dict(per_loss)
    return out


def write_report(config: ExperimentConfig, notes: list[str] | None = None, path: str | Path | None = None) -> Path:
    """Write ``report.md`` (and ``plots/*.png``) for the results so far; returns the report path."""
    out = Path(config.out)
    records = AppendLog.read(out / "results.jsonl")
    events = AppendLog.read(out / "events.jsonl")
    report = Path(path) if path else out / "report.md"
    plot_dir = report.parent / "plots"
    metric = config.main_metric
    ret = _collect(records, "retrieval")
    rag = _collect(records, "rag")
    all_ds = [d.name for d in config.datasets]
    study_kind = {s.name: s.kind for s in config.studies}
    rows_by_kind: dict[str, list[str]] = defaultdict(list)
    for r in records:
        kind = study_kind.get(r.get("study"), "reference")
        if r["row"] not in rows_by_kind[kind]:
            rows_by_kind[kind].append(r["row"])
    ref_rows = [x for x in (BM25_ROW, BASE_ROW) if x in rows_by_kind["reference"]]

    lines = [f"# Experiment report: {config.name}", "",
             "_Generated by `utilabel experiment report` from `results.jsonl`; do not edit by hand._", ""]
    lines += _run_summary(config, records, events, out)
    if notes:
        lines += ["", "**Notes from the run:**", ""] + [f"- {n}" for n in notes]

    seeds = sorted({r["seed"] for r in records if r.get("study") != "reference"})
    lines += ["", f"## Retrieval: human vs LLM labels ({metric})", "",
              "Trained on " + f"{config.train_dataset}/{config.train_split}; "
              f"{config.train_dataset} is in-domain, every other column out-of-domain. "
              + (f"Cells are mean ± std over {len(seeds)} seeds." if len(seeds) > 1 else
                 "One seed per model, so no ± is shown: differences of a few points are within run-to-run noise."),
              ""]
    lines.append(_table(ref_rows + rows_by_kind["labels"], all_ds, ret, metric))
    lines += ["", "R@100:", "", _table(ref_rows + rows_by_kind["labels"], all_ds, ret, "R@100")]

    rag_rows = [r for r in ref_rows + rows_by_kind["labels"] + rows_by_kind["noise"] + rows_by_kind["ratio"]
                if any((r, d) in rag for d in all_ds)]
    if rag_rows:
        rag_ds = [d for d in all_ds if any((r, d) in rag for r in rag_rows)]
        lines += ["", "## RAG", ""]
        if config.rag:
            lines.append(f"Reader `{config.rag.reader}:{config.rag.model}`, top-{config.rag.k} passages "
                         f"(each cut to {config.rag.passage_chars} characters), the first {config.rag.limit} sampled "
                         "questions with gold answers per dataset. EM / F1 / RL (ROUGE-L) use SQuAD normalisation; "
                         "AiP = a gold answer occurs in the top-k passages.")
        head = "| row | " + " | ".join(f"{d} {short}" for d in rag_ds for _, short in RAG_METRICS) + " |"
        lines += ["", head, "|" + "---|" * (1 + len(rag_ds) * len(RAG_METRICS))]
        for row in rag_rows:
            cells = [_cell(rag.get((row, d), {}).get(m, [])) for d in rag_ds for m, _ in RAG_METRICS]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        counts = sorted({r["n_queries"] for r in records if r.get("kind") == "rag"})
        lines += ["", f"Questions per RAG cell: {', '.join(map(str, counts))}."]

    for kind, title, field_name, xlabel in (("noise", "Label-noise study", "noise_rate", "false-positive rate"),
                                            ("ratio", "Human-ratio curve", "human_ratio", "fraction of queries with human labels")):
        rows = rows_by_kind[kind]
        if not rows:
            continue
        ds = [d for d in all_ds if any((r, d) in ret for r in rows)]
        lines += ["", f"## {title} ({metric})", ""]
        if kind == "noise":
            lines.append("Human labels plus false positives drawn from the top-10 BM25 candidates that are not "
                         "judged relevant; the rate is the expected fraction of false positives among a query's "
                         "positives.")
        else:
            lines.append("A seeded fraction of the annotated queries gets human labels, the rest LLM labels "
                         "(0 = LLM only, 1 = human only, on the same queries).")
        lines += ["", _table(ref_rows + rows, ds, ret, metric)]
        for d, series in _series(records, ret, ds, metric, field_name).items():
            png = plot_dir / f"{kind}-{d}.png"
            _plot(png, series, xlabel, metric, f"{title}: {d} ({'in-domain' if d == config.train_dataset else 'out-of-domain'})")
            lines += ["", f"![{title} on {d}]({png.relative_to(report.parent).as_posix()})"]

    lines += ["", "## Settings", "", "```json", json.dumps(_settings(config), indent=1), "```", ""]
    with atomic_write(report) as fh:
        fh.write("\n".join(lines))
    return report


def _settings(config: ExperimentConfig) -> dict:
    d = config.to_dict()
    return {k: d[k] for k in ("train_dataset", "train_split", "train", "dense", "rag", "sample_seed")}


def _run_summary(config, records, events, out: Path) -> list[str]:
    starts = [e["time"] for e in events if e.get("event") == "start"]
    last = max((r["time"] for r in records), default=None)
    train_s, labels_info = 0.0, {}
    for marker in (out / "models").glob("*/DONE.json"):
        info = json.loads(marker.read_text())
        train_s += float(info.get("seconds", 0.0))
        labels_info[info["row"]] = info.get("label_stats", {})
    eval_s = sum(float(r.get("seconds", 0.0)) for r in records)
    fmt = "%Y-%m-%d %H:%M UTC"
    lines = ["## What this run covers", ""]
    if starts and last:
        lines.append(f"- Ran from {time.strftime(fmt, time.gmtime(min(starts)))} to "
                     f"{time.strftime(fmt, time.gmtime(last))} ({len(starts)} session(s)); "
                     f"{train_s / 60:.1f} min training, {eval_s / 60:.1f} min evaluation (wall clock, CPU).")
    n_models = len(list((out / "models").glob("*/DONE.json")))
    lines.append(f"- {n_models} trained models, {sum(1 for r in records if r.get('kind') == 'retrieval')} retrieval "
                 f"and {sum(1 for r in records if r.get('kind') == 'rag')} RAG evaluations. Missing cells (–) were "
                 "not reached in the time budget.")
    lines.append("- Evaluation queries per dataset (seeded sample; the corpus is never sampled):")
    seen = {}
    for r in records:
        if r.get("kind") == "retrieval":
            seen[r["dataset"]] = (r["n_queries"], r.get("n_docs"))
    for d in config.datasets:
        if d.name in seen:
            nq, nd = seen[d.name]
            lines.append(f"  - {d.name}/{d.split}: {nq} queries over all {nd:,} documents")
    for snap in sorted((out / "snapshots").glob("*.jsonl")):
        recs = AppendLog.read(snap)
        models = sorted({str(r.get("model", "")) for r in recs if r.get("model")})
        methods = sorted({str(r.get("method", "")) for r in recs if r.get("method")})
        lines.append(f"- LLM judgments snapshot `{snap.name}`: {len({r['query_id'] for r in recs})} "
                     f"{config.train_dataset}/{config.train_split} queries, {len(recs)} judgments, "
                     f"method {', '.join(methods) or '?'}, model {', '.join(models) or '?'}.")
    lines.append("- Studies (in run order; a study's rows appear once it was reached): " + "; ".join(
        f"{s.name} ({s.kind}: {', '.join(s.losses)}; on {', '.join(s.datasets or [d.name for d in config.datasets])})"
        for s in config.studies) + ".")
    src_stats = {}
    for r in records:
        if r.get("source") and r.get("label_stats") and r.get("study") and r.get("noise_rate") is None \
                and r.get("human_ratio") is None:
            src_stats[r["source"]] = r["label_stats"]
    if src_stats:
        lines.append("- Training labels (label study):")
        for s, st in src_stats.items():
            lines.append(f"  - {s}: {st['queries']} {config.train_dataset}/{config.train_split} queries, "
                         f"{st['queries_with_positive']} with ≥ 1 positive, {st['mean_positives']:.2f} positives/query")
    return lines

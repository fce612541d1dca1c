"""The experiment report: markdown tables in the paper's shape and PNG plots, generated from
``results.jsonl`` (never edited by hand).

Tables: rows = label source / loss (BM25 and the untrained base model as reference rows),
columns = datasets and their mean; cells are mean ± std over seeds. The mean column averages the
row's dataset values and is shown only when the row has every dataset (else ``–``, with the number of
datasets covered). Plots: metric vs human ratio and metric vs label-noise rate, one line per loss.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

from ..fileio import AppendLog, atomic_write
from .config import ExperimentConfig
from .results import BASE_ROW, BM25_ROW, trained_models

RAG_METRICS = (("EM", "EM"), ("F1", "F1"), ("ROUGE-L", "RL"), ("AnswerInPassages", "AiP"))


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _collect(records: list[dict], kind: str) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(row, dataset): {metric: [value per seed]}} (last record per key wins)."""
    out: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in latest_records(records):
        if r.get("kind") != kind:
            continue
        for m, v in r["metrics"].items():
            out[(r["row"], r["dataset"])][m].append(float(v))
    return out


def _table(rows: list[str], datasets: list[str], data, metric: str, first_col: str = "labels / loss",
           planned: dict[str, set[str]] | None = None) -> str:
    """Rows × datasets of ``metric``; with ``planned`` (row → datasets some study evaluates it on), a
    cell no study asks for shows ``·`` instead of the ``–`` of a cell not reached yet."""
    head = f"| {first_col} | " + " | ".join(datasets) + " | mean |"
    sep = "|" + "---|" * (len(datasets) + 2)
    lines = [head, sep]
    for row in rows:
        cells, means = [], []
        for d in datasets:
            vals = data.get((row, d), {}).get(metric, [])
            if not vals and planned is not None and row in planned and d not in planned[row]:
                cells.append("·")
                continue
            cells.append(_cell(vals))
            if vals:
                means.append(statistics.mean(vals))
        mean = f"{statistics.mean(means):.3f}" if len(means) == len(datasets) and means else \
            f"– ({len(means)}/{len(datasets)})"
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def _figure(path: Path, draw, xlabel: str, ylabel: str, title: str | None = None, size=(5.5, 3.6)) -> None:
    """Draw one Agg figure with ``draw(ax)`` and save it to ``path`` (the report's plot conventions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    draw(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _plot(path: Path, series: dict[str, list[tuple[float, float, float]]], xlabel: str, ylabel: str, title: str) -> None:
    def draw(ax):
        for label, pts in sorted(series.items()):
            xs, ys, es = zip(*sorted(pts), strict=True)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        ax.legend(fontsize=8)

    _figure(path, draw, xlabel, ylabel, title)


def _series(records, data, datasets, metric, field_name: str) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    """{dataset: {line: [(x, mean, std)]}} for rows of the noise / ratio studies: one line per loss (and
    per human choice, ``(uncertain)`` / ``(random)``, when the row names one)."""
    meta = {}
    for r in records:
        if r.get(field_name) is not None and r.get("kind") == "retrieval":
            choice = re.search(r" \((\w+)\)/", r["row"])
            meta[r["row"]] = (float(r[field_name]), r["loss"] + (f" ({choice.group(1)})" if choice else ""))
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
    all_ds = [d.name for d in config.datasets]
    rows_by_kind, planned = _rows(config, records, all_ds)
    ref_rows = [x for x in (BM25_ROW, BASE_ROW) if x in rows_by_kind["reference"]]

    lines = [f"# Experiment report: {config.name}", "",
             "_Generated by `utilabel experiment report` from `results.jsonl`; do not edit by hand._", ""]
    lines += _run_summary(config, records, events, out)
    if report.parent.resolve() != out.resolve():
        lines.append(f"- Resume (on any machine): `utilabel experiment run CONFIG --archive {report.parent.as_posix()}`. "
                     "An empty output folder starts from the results archived there, so only missing cells are "
                     "computed; models are retrained only where a missing cell needs one.")
    if notes:
        lines += ["", "**Notes from the run:**", ""] + [f"- {n}" for n in notes]

    lines += _claims_sections(config, records, ret, metric)
    lines += _retrieval_section(config, records, ret, ref_rows + rows_by_kind["labels"], all_ds, planned)
    rag_rows = ref_rows + rows_by_kind["labels"] + rows_by_kind["noise"] + rows_by_kind["ratio"]
    lines += _rag_section(config, records, _collect(records, "rag"), rag_rows, all_ds)
    lines += _curve_sections(config, records, ret, ref_rows, rows_by_kind, all_ds, planned, plot_dir, report)
    lines += _label_quality(config, records, ret, metric, plot_dir, report.parent)
    lines += ["", "## Settings", "", "```json", json.dumps(_settings(config), indent=1), "```", ""]
    with atomic_write(report) as fh:
        fh.write("\n".join(lines))
    return report


def _rows(config: ExperimentConfig, records: list[dict], all_ds: list[str]):
    """Rows by study kind (in first-result order) and, per row, the datasets its studies evaluate it on."""
    study_kind = {s.name: s.kind for s in config.studies}
    rows_by_kind: dict[str, list[str]] = defaultdict(list)
    for r in records:
        kind = study_kind.get(r.get("study") or "", "reference")
        if r["row"] not in rows_by_kind[kind]:
            rows_by_kind[kind].append(r["row"])
    study_ds = {s.name: set(s.datasets or all_ds) for s in config.studies}
    planned: dict[str, set[str]] = defaultdict(set)  # row → datasets the studies it appears in evaluate it on
    for r in records:
        planned[r["row"]] |= study_ds.get(r.get("study") or "", set(all_ds))
    return rows_by_kind, planned


def _retrieval_section(config: ExperimentConfig, records, ret, rows: list[str], all_ds: list[str], planned) -> list[str]:
    metric = config.main_metric
    seeds = sorted({r["seed"] for r in records if r.get("study") != "reference"})
    lines = ["", f"## Retrieval: human vs LLM labels ({metric})", "",
             "Trained on " + f"{config.train_dataset}/{config.train_split}; "
             f"{config.train_dataset} is in-domain, every other column out-of-domain. "
             + (f"Cells are mean ± std over {len(seeds)} seeds." if len(seeds) > 1 else
                "One seed per model, so no ± is shown: differences of a few points are within run-to-run noise."),
             ""]
    lines.append(_table(rows, all_ds, ret, metric, planned=planned))
    lines += ["", "R@100:", "", _table(rows, all_ds, ret, "R@100", planned=planned)]
    return lines


def _rag_section(config: ExperimentConfig, records, rag, candidates: list[str], all_ds: list[str]) -> list[str]:
    rag_rows = [r for r in candidates if any((r, d) in rag for d in all_ds)]
    if not rag_rows:
        return []
    rag_ds = [d for d in all_ds if any((r, d) in rag for r in rag_rows)]
    lines = ["", "## RAG", ""]
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
    return lines + ["", f"Questions per RAG cell: {', '.join(map(str, counts))}."]


def _curve_sections(config: ExperimentConfig, records, ret, ref_rows, rows_by_kind, all_ds, planned, plot_dir: Path,
                    report: Path) -> list[str]:
    """The label-noise study and the human-ratio curve: a table and one plot per dataset each."""
    metric, lines = config.main_metric, []
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
        lines += ["", _table(ref_rows + rows, ds, ret, metric, planned=planned)]
        for d, series in _series(records, ret, ds, metric, field_name).items():
            png = plot_dir / f"{kind}-{d}.png"
            _plot(png, series, xlabel, metric, f"{title}: {d} ({'in-domain' if d == config.train_dataset else 'out-of-domain'})")
            lines += ["", f"![{title} on {d}]({png.relative_to(report.parent).as_posix()})"]
    return lines


def _settings(config: ExperimentConfig) -> dict:
    d = {**config.to_dict(), "train": config.train_settings(), "dense": config.dense_settings()}
    return {k: d[k] for k in ("train_dataset", "train_split", "train", "dense", "rag", "sample_seed")}


def _run_summary(config, records, events, out: Path) -> list[str]:
    starts = [e["time"] for e in events if e.get("event") == "start"]
    last = max((r["time"] for r in records), default=None)
    models = trained_models(out)
    train_s = sum(float(m.get("seconds") or 0.0) for m in models.values())
    eval_s = sum(float(r.get("seconds", 0.0)) for r in records)
    fmt = "%Y-%m-%d %H:%M UTC"
    lines = ["## What this run covers", ""]
    if starts and last:
        lines.append(f"- Ran from {time.strftime(fmt, time.gmtime(min(starts)))} to "
                     f"{time.strftime(fmt, time.gmtime(last))} ({len(starts)} session(s)); "
                     f"{train_s / 60:.1f} min training, {eval_s / 60:.1f} min evaluation (wall clock, CPU).")
    n_models = len(models)
    lines.append(f"- {n_models} trained models, {sum(1 for r in records if r.get('kind') == 'retrieval')} retrieval "
                 f"and {sum(1 for r in records if r.get('kind') == 'rag')} RAG evaluations. Cells marked – are "
                 "planned but were not reached in the time budget; · marks a cell no study of that row asks for.")
    by_machine = Counter(r.get("machine", UNRECORDED) for r in latest_records(records) if r.get("kind") == "retrieval")
    if by_machine:
        lines.append("- Retrieval results by machine: " + "; ".join(f"{m}: {n}" for m, n in sorted(by_machine.items()))
                     + ".")
    lines.append("- Evaluation queries per dataset (seeded sample; the corpus is never sampled):")
    seen = {}
    for r in records:
        if r.get("kind") == "retrieval":
            seen[r["dataset"]] = (r["n_queries"], r.get("n_docs"))
    for d in config.datasets:
        if d.name in seen:
            nq, nd = seen[d.name]
            held = " held out (no model trains on them: a development set)" if d.heldout else ""
            lines.append(f"  - {d.name}/{d.split}: {nq} queries{held} over all {nd:,} documents")
    for snap in sorted((out / "snapshots").glob("*.jsonl")):
        recs = AppendLog.read(snap)
        judges = sorted({str(r.get("model", "")) for r in recs if r.get("model")})
        methods = sorted({str(r.get("method", "")) for r in recs if r.get("method")})
        lines.append(f"- LLM judgments snapshot `{snap.name}`: {len({r['query_id'] for r in recs})} "
                     f"{config.train_dataset}/{config.train_split} queries, {len(recs)} judgments, "
                     f"method {', '.join(methods) or '?'}, model {', '.join(judges) or '?'}.")
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


def per_query_values(records: list[dict], row: str, dataset: str) -> dict[str, float]:
    """A row's per-query main-metric values on a dataset, averaged over its seeds (queries every
    seed has; the last record of each seed wins)."""
    by_seed: dict[int, dict[str, float]] = {}
    for r in records:
        if r.get("kind") == "retrieval" and r["row"] == row and r["dataset"] == dataset and r.get("per_query"):
            by_seed[r["seed"]] = r["per_query"]
    if not by_seed:
        return {}
    common = set.intersection(*(set(v) for v in by_seed.values()))
    return {q: statistics.fmean(v[q] for v in by_seed.values()) for q in sorted(common)}


UNRECORDED = "not recorded"


def latest_records(records: list[dict]) -> list[dict]:
    """The last record of each result key (what every table shows)."""
    return list({r.get("key", id(r)): r for r in records}.values())


def row_machines(latest: list[dict], row: str, dataset: str) -> set[str]:
    """The machines that computed a row's retrieval results on a dataset, from the :func:`latest_records` records
    (:func:`.results.machine`; records older than that field: :data:`UNRECORDED`)."""
    return {r.get("machine", UNRECORDED) for r in latest
            if r.get("kind") == "retrieval" and r["row"] == row and r["dataset"] == dataset}


def _n_seeds(records: list[dict], row: str, dataset: str) -> int:
    return len({r["seed"] for r in records if r.get("kind") == "retrieval" and r["row"] == row
                and r["dataset"] == dataset})


def comparison_results(config: ExperimentConfig, records: list[dict]) -> list[tuple]:
    """``(comparison, dataset, Paired | None, verdict)`` for every comparison × dataset of the config."""
    from .stats import paired, verdict

    have = defaultdict(set)
    for r in records:
        if r.get("kind") == "retrieval":
            have[r["row"]].add(r["dataset"])
    out = []
    for c in config.comparisons:
        datasets = c.datasets or [d.name for d in config.datasets if d.name in have[c.a] & have[c.b]]
        for d in datasets:
            res = paired(c.a, c.b, d, per_query_values(records, c.a, d), per_query_values(records, c.b, d))
            out.append((c, d, res, verdict(res, c.kind, config.equivalence_margin)))
    return out


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _claims_sections(config: ExperimentConfig, records: list[dict], ret, metric: str) -> list[str]:
    if not config.comparisons:
        return []
    from .stats import claim_verdict

    results = comparison_results(config, records)
    lines = []
    if config.claims:
        lines += ["", "## Claims", "",
                  f"Each claim rests on the paired comparisons listed with it ({metric}, a − b over the test queries; "
                  f"rows with several seeds are averaged per query). A comparison *supports* its claim when the "
                  f"difference is significant in the claimed direction (paired t-test, p < 0.05) — or, for an "
                  f"equivalence claim, when the 95 % interval of the difference lies within ± "
                  f"{config.equivalence_margin:g}; it *contradicts* it when significant the other way (or the interval "
                  "lies wholly outside the margin). A claim *holds* when at least half of its comparisons support it "
                  "and none contradicts, *does not hold* in the mirror case, and is *inconclusive at this scale* "
                  "otherwise.", "",
                  "| claim | comparisons (Δ = a − b, p) | verdict |", "|---|---|---|"]
        for cid, text in config.claims.items():
            mine = [(c, d, res, v) for c, d, res, v in results if c.claim == cid]
            parts = [f"{c.a} vs {c.b} on {d}: " + (f"Δ {res.diff:+.3f}, p {_p(res.p)} ({v})" if res else "not run")
                     for c, d, res, v in mine]
            lines.append(f"| ({cid}) {text} | " + "<br>".join(parts or ["none"]) + f" | **{claim_verdict([v for *_, v in mine])}** |")
    lines += ["", f"## Significance ({metric})", "",
              "Paired over the queries both rows have; seeds averaged per query. Δ with its 95 % confidence interval; "
              "p: paired t-test, p (rand): paired randomisation test (10,000 sign flips); d: Cohen's d of the paired "
              "differences; MDE: the difference this many queries detects with 80 % power at α = 0.05 (two-sided), "
              "given the observed spread of the differences.", "",
              "| a | b | dataset | queries | seeds a/b | a | b | Δ [95 % CI] | p | p (rand) | d | MDE | claim | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    mixed, latest = 0, latest_records(records)
    for c, d, res, v in results:
        seeds = f"{_n_seeds(records, c.a, d)}/{_n_seeds(records, c.b, d)}"
        if res is None:
            lines.append(f"| {c.a} | {c.b} | {d} | – | {seeds} | – | – | – | – | – | – | – | {c.claim or ''} | not run |")
            continue
        machines = row_machines(latest, c.a, d) | row_machines(latest, c.b, d)
        mark = " †" if len(machines) > 1 else ""
        mixed += bool(mark)
        lines.append(f"| {c.a} | {c.b} | {d} | {res.n} | {seeds} | {res.mean_a:.3f} | {res.mean_b:.3f} | "
                     f"{res.diff:+.3f} [{res.ci_low:+.3f}, {res.ci_high:+.3f}] | {_p(res.p)} | {_p(res.p_rand)} | "
                     f"{res.d:+.2f} | {res.mde:.3f} | {c.claim or ''} | {v}{mark} |")
    if mixed:
        lines += ["", "† The two rows' results were computed on different machines (or one before machines were "
                  "recorded): the same model and settings have given nDCG@10 values up to 0.006 apart on two CPUs "
                  "(their float kernels differ), so a difference that small is not evidence here."]
    return lines


def _label_quality(config: ExperimentConfig, records: list[dict], ret, metric: str, plot_dir: Path,
                   report_dir: Path) -> list[str]:
    """Label agreement with the human labels next to the in-domain metric they gave, per training row."""
    tagged = {s.name for s in config.studies if s.tag}  # trained otherwise: not comparable here
    stats_of: dict[str, dict] = {}
    for r in records:
        st = r.get("label_stats") or {}
        if r.get("kind") == "retrieval" and "kappa" in st and r.get("study") not in tagged:
            stats_of.setdefault(r["row"], st)
    ds = config.train_dataset
    rows = [row for row in stats_of if ret.get((row, ds), {}).get(metric)]
    if not rows:
        return []
    lines = ["", f"## Label quality vs retriever quality ({ds}, {metric})", "",
             "Agreement of each row's training labels with the human labels of the same queries, over every "
             "query's BM25 top-10 candidates (unjudged = negative; human positives outside the top 10 are not "
             f"counted, so the human row scores 1 by construction), next to the {ds} test {metric} the labels gave "
             "(mean ± std over seeds; rows of tagged studies, trained otherwise, are left out).", "",
             "| row | positives/query | precision | recall | F1 | κ | " + metric + " |", "|---|---|---|---|---|---|---|"]
    pts = []
    for row in sorted(rows, key=lambda x: -stats_of[x]["kappa"]):
        st = stats_of[row]
        vals = ret[(row, ds)][metric]
        lines.append(f"| {row} | {st['mean_positives']:.2f} | {st['precision']:.3f} | {st['recall']:.3f} | "
                     f"{st['f1']:.3f} | {st['kappa']:.3f} | {_cell(vals)} |")
        pts.append((st["kappa"], statistics.mean(vals), row))
    if len(pts) >= 3:
        from scipy.stats import spearmanr

        rho = spearmanr([p[0] for p in pts], [p[1] for p in pts])
        lines += ["", f"Spearman correlation of κ and {metric} over these {len(pts)} rows: ρ = {rho.statistic:+.2f}"
                  + (f" (p {_p(float(rho.pvalue))})." if len(pts) >= 5 else " (descriptive: too few rows for a p-value).")]
        png = plot_dir / "label-quality.png"
        _scatter(png, pts, "κ of the training labels with human labels", f"{ds} {metric}")
        lines += ["", f"![label quality vs {metric}]({png.relative_to(report_dir).as_posix()})"]
    return lines


def _scatter(path: Path, pts: list[tuple[float, float, str]], xlabel: str, ylabel: str) -> None:
    def draw(ax):
        for x, y, label in pts:
            ax.scatter([x], [y], s=18)
            ax.annotate(label, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")

    _figure(path, draw, xlabel, ylabel, size=(5.5, 3.8))

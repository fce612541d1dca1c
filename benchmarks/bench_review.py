"""Page load and label submit of ``utilabel review serve`` on a run of 10,000 queries (target < 200 ms).

Data: the 10,000 first SQuAD v1.1 questions (train then test) over its 2,067 Wikipedia paragraphs as
one BEIR split, BM25 top-10 candidates each, an annotation run of seeded random two-vote labels (so
the queue mixes soft, all-negative and confident queries). The whole run is the queue (``--budget
1.0``), the worst case for finding the next open query. The server is the real CLI process; a
keep-alive HTTP client times requests at random queue positions, in two states: nothing labelled,
and 9,900 queries labelled (the qrels rewritten after each submission then hold 99,000 lines).

References in the same run: ``GET /static/review.js`` through the same server (the floor of the
HTTP stack: no page work) for page loads, and one fsync'd :class:`~utilabel.fileio.AppendLog` append
of the same record (the least a durable submission can cost) for submissions. With Chromium present
it also times what a person sees: the browser's load event, and Enter → next page loaded.

Run: ``python benchmarks/bench_review.py [--requests 200]`` — at normal priority, as a person's server
runs: it is light (about a CPU-minute, mostly building the data), and a niced server on a busy machine
times the scheduler, not the page.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402

N_QUERIES, K, LABELLED = 10_000, 10, 9_900
CHROMIUM = "/usr/bin/chromium"


def build(root: Path) -> tuple[Path, Path]:
    from utilabel.data import beir
    from utilabel.data.judgments import write_judgments
    from utilabel.data.registry import load_dataset
    from utilabel.records import Judgment
    from utilabel.retrieve.bm25 import bm25_candidates

    squad = load_dataset("squad")
    qrels = {**squad.qrels("train"), **squad.qrels("test")}
    qids = list(qrels)[:N_QUERIES]
    data = root / "squad10k"
    beir.write_corpus(data / "corpus.jsonl", squad.corpus.values())
    beir.write_queries(data / "queries.jsonl", [squad.queries[q] for q in qids])
    beir.write_qrels_tsv(data / "qrels" / "train.tsv", {q: qrels[q] for q in qids})
    groups = bm25_candidates(load_dataset(data), "train", k=K)
    rng = random.Random(0)
    votes = []
    for g in groups:
        for c in g.candidates:
            p = rng.random()
            votes += [Judgment(g.query_id, c.doc_id, "utilsel", utility=float(rng.random() < p)) for _ in range(2)]
    run = root / "run"
    run.mkdir()
    write_judgments(run / "judgments.jsonl", votes)
    return data, run


def start(data: Path, run: Path, out: Path) -> tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "utilabel.cli.main", "review", "serve", str(run), "--dataset",
                             str(data), "--budget", "1.0", "--out", str(out), "--annotator", "bench", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("open "):
            return proc, line.split()[1], time.perf_counter() - t0
    raise RuntimeError("review serve did not start")


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def stats(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), sorted(ms)[int(0.95 * (len(ms) - 1))]


def measure_http(url: str, queue_open: list[int], n: int) -> dict[str, list[float]]:
    import httpx

    rng = random.Random(1)
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        def page(i):
            r = client.get(f"/q/{rng.randrange(N_QUERIES)}")
            assert r.status_code == 200 and len(r.content) > 2000

        def static(i):
            assert client.get("/static/review.js").status_code == 200

        def submit(i):
            pos = queue_open[i]
            html = client.get(f"/q/{pos}").text
            form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1),
                    "query_id": re.search(r'name="query_id" value="([^"]+)"', html).group(1)}
            form.update({f"g{j}": str(j % 2) for j in range(html.count('class="passage"'))})
            t = time.perf_counter()
            r = client.post(f"/q/{pos}", data=form)
            submit.ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 303, r.text

        submit.ms = []
        timed(page, 5)  # warm-up
        res = {"page": timed(page, n), "static": timed(static, n)}
        timed(submit, min(n, len(queue_open) // 2))  # leave open queries for the browser
        res["submit"] = submit.ms
    return res


def measure_append(root: Path, n: int) -> list[float]:
    from utilabel.fileio import AppendLog

    rec = {"query_id": "5733be284776f41900661182", "labels": {f"doc{j}": j % 2 for j in range(K)},
           "annotator": "bench", "time": time.time()}
    with AppendLog(root / "ideal.log.jsonl") as log:
        return timed(lambda i: log.append(rec), n)


def measure_browser(url: str, n: int) -> dict[str, list[float]] | None:
    if not os.path.exists(CHROMIUM):
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="bench-chromium-"), executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        rng = random.Random(2)
        load, enter = [], []
        for _ in range(n):
            page.goto(f"{url}q/{rng.randrange(N_QUERIES)}")
            load.append(page.evaluate("(() => { const t = performance.getEntriesByType('navigation')[0];"
                                      " return t.loadEventEnd - t.startTime; })()"))
        page.goto(url)
        for _ in range(n):
            t = time.perf_counter()
            with page.expect_navigation(wait_until="load"):
                page.keyboard.press("Enter")
            enter.append((time.perf_counter() - t) * 1000)
        ctx.close()
    return {"browser load": load, "browser Enter → next page": enter}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--browser-pages", type=int, default=30)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    os.environ.setdefault("UTILABEL_DATA_HOME", tempfile.mkdtemp(prefix="bench_review_home_"))
    import utilabel

    os.environ["PYTHONPATH"] = str(Path(utilabel.__file__).parents[1])  # the server runs this same utilabel
    root = Path(tempfile.mkdtemp(prefix="bench_review_"))
    load0 = os.getloadavg()[0]
    data, run = build(root)
    rows, starts = [], []
    for state in ("empty", "full"):
        out = root / state / "human.qrels"
        out.parent.mkdir()
        order = list(range(N_QUERIES))
        if state == "full":  # 9,900 earlier submissions in the log; the server derives the qrels at start
            from utilabel.data.registry import load_dataset
            from utilabel.review import build_queue

            items = build_queue([run], load_dataset(data), "train", "1.0").items
            done = random.Random(3).sample(range(N_QUERIES), LABELLED)
            with open(out.with_name("human.qrels.bench.log.jsonl"), "w") as fh:
                for pos in done:
                    fh.write(json.dumps({"query_id": items[pos].query_id, "annotator": "bench", "time": 0.0,
                                         "labels": {p.doc_id: 1 for p in items[pos].passages}}) + "\n")
            order = sorted(set(order) - set(done))
        proc, url, startup = start(data, run, out)
        starts.append((state, startup))
        try:
            res = measure_http(url, order, args.requests)
            res.update(measure_browser(url, args.browser_pages) or {})
        finally:
            proc.terminate()
            proc.wait()
        for name, ms in res.items():
            rows.append((state, name, len(ms), *stats(ms)))
    ideal = stats(measure_append(root, args.requests))
    load1 = os.getloadavg()[0]
    floor = {state: med for state, name, _, med, _ in rows if name == "static"}
    lines = ["## Review page: page load and label submit, 10,000-query run (`benchmarks/bench_review.py`)", "",
             f"Machine: {machine()}; 1-min load average {load0:.1f} at start, {load1:.1f} at end"
             f"{' (shared with other jobs: absolute times are noisy)' if load0 >= 1.5 else ''}. "
             f"Queue = all {N_QUERIES:,} SQuAD questions × {K} BM25 candidates (`--budget 1.0`); state *full* = "
             f"{LABELLED:,} already labelled (qrels of {LABELLED * K:,}+ lines rewritten per submission). "
             f"Server start (dataset, run, queue, log): " + ", ".join(f"{s} {t:.1f} s" for s, t in starts) + ".", "",
             "| state | request | n | median ms | p95 ms | vs reference |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for state, name, n, med, p95 in rows:
        ref = (f"{med / floor[state]:.1f}× static GET" if name == "page" else
               f"{med / ideal[0]:.1f}× one fsync'd append" if name == "submit" else "")
        lines.append(f"| {state} | {name} | {n} | {med:.1f} | {p95:.1f} | {ref} |")
    lines += [f"| – | one fsync'd AppendLog append (in-process) | {args.requests} | {ideal[0]:.1f} | {ideal[1]:.1f} | |",
              "", "Target: page load and submit each < 200 ms. *page* = `GET /q/{pos}` (HTML with 10 passages), "
              "*submit* = `POST /q/{pos}` → 303 (log append + fsync, qrels and annotator file rewritten atomically), "
              "*browser* rows = headless Chromium: navigation start → load event, and Enter → next page loaded.",
              "", "Reproduce: `python benchmarks/bench_review.py` (normal priority, as a person's server runs)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        update_section("review", text)


if __name__ == "__main__":
    main()

"""The default local judge before and after issue 21 (item 0): ``utilabel annotate``'s pointwise path, same passages.

``utilabel annotate --dataset scifact`` with no ``--backend`` judges every passage with one scoring request
to the embedded llama.cpp server (Qwen2.5-Coder-1.5B), prompt cache off, one request at a time per server
(so a log-probability never depends on batching or cache state). Both rows run the library path of that
command (:meth:`AnnotationJob.run` with the config :meth:`AnnotateConfig.resolve` gives ``llamacpp`` on
SciFact, ``max_concurrency`` and ``workers`` left to the backend, as the CLI does) on the BM25 top-``k`` of the
first ``--queries`` SciFact train claims, each into a fresh run folder:

* ``before`` — the old default: one server (``n_servers=1``) with its default threads;
* ``after`` — today's default: :func:`~utilabel.llm.backends.llamacpp.default_servers` servers (2 single-thread
  servers on a 2-core machine), a query's passages scored on all of them at once.

Times exclude model loading (both servers warmed with one request each). The script checks that both runs
logged the same outputs for the same call keys (bit-identical log-probabilities, resumable run folders).

    python benchmarks/bench_default_judge.py --queries 3   # writes the BENCHMARKS.md section pointwise-speed-default
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
from _report import machine, update_section  # noqa: E402

from utilabel.annotate.dataset import AnnotationJob  # noqa: E402
from utilabel.data.registry import load_dataset  # noqa: E402
from utilabel.llm import get_backend  # noqa: E402
from utilabel.llm.backends.llamacpp import default_servers, default_threads  # noqa: E402

NOTE = """Why no more: a pointwise judgment is one prompt (passage, claim, question) evaluated alone, cache off
(batched with another request, or after a cached prefix, llama.cpp gives other log-probabilities;
tests/llm/test_llm_determinism.py). That work is fixed, so the only exact speed-up is more cores, and this
machine has 2: at most ≈ 2× on an idle machine, less with other jobs on it (the servers then share the
cores with them). One server with 2 threads gives the same numbers (measured identical) but is slower
than 1 thread under load, since its threads spin at barriers. `--backend transformers` batches a
query's passages (0.42 passages/s in the table above) but computes other log-probabilities (bf16
dequantised weights), so it would change labels; and call keys name the model, not the engine, so a
resumed run folder would mix llama.cpp's logged numbers with transformers' new ones. It stays opt-in. The price of the new default is memory: one copy of the weights and KV cache per server."""

WARMUP = [{"role": "user", "content": "Is the sky blue? Answer Yes or No."}]


def logged_outputs(run_dir: Path) -> dict[str, object]:
    """Call key → logged output of every call in a run folder's call logs."""
    out = {}
    for path in run_dir.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line) if line.strip() else {}
            if "key" in rec and "output" in rec:
                out[rec["key"]] = rec["output"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    args = ap.parse_args()
    ds = load_dataset("scifact")
    job = AnnotationJob.for_dataset(ds, "llamacpp", k=args.k, limit=args.queries)
    n = sum(len(g.candidates) for g in job.groups)
    rows, logs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in (("before: 1 server (old default)", {"n_servers": 1}), ("after: default", {})):
            with get_backend("llamacpp", model=args.model, **options) as llm:
                llm.token_logprobs_many([WARMUP] * len(llm.servers), ("Yes", "No"))  # every server pages its model in
                load0 = os.getloadavg()[0]
                t = time.perf_counter()
                job.run(llm, Path(tmp) / str(len(rows)), progress=False, max_concurrency=None)
                sec = time.perf_counter() - t
                rows.append((name, len(llm.servers), llm.concurrency, sec, load0, os.getloadavg()[0]))
                logs[name] = logged_outputs(Path(tmp) / str(len(rows) - 1))
                print(rows[-1], flush=True)
    before, after = logs.values()
    same = before == after and len(before) > 0
    base = rows[0][3]
    md = [f"### Default command: `utilabel annotate` pointwise path, before vs after (issue 21, {n} passages)", "",
          f"`python benchmarks/bench_default_judge.py --queries {args.queries} --k {args.k}` — the BM25 top-{args.k} "
          f"of {args.queries} SciFact train claims, {args.model}, the config `AnnotateConfig.resolve` gives `llamacpp` "
          f"(pointwise, yesno+first_stage). Machine: {machine()}; default_threads() = {default_threads()}, "
          f"default_servers() = {default_servers()}. Other engineers' jobs were running: ratios are within this run.",
          "", "| path | servers | concurrency | seconds | passages/s | vs before | load avg start → end |",
          "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, servers, conc, sec, l0, l1 in rows:
        md.append(f"| {name} | {servers} | {conc} | {sec:.1f} | {n / sec:.3f} | {base / sec:.2f}× | {l0:.2f} → {l1:.2f} |")
    ratio = base / rows[-1][3]
    md += ["", f"Logged outputs (log-probabilities) of the {len(before)} calls identical, same call keys: "
               f"**{'yes' if same else 'NO'}**. **{ratio:.2f}× — the ≥ 3× target of issue 21 is "
               f"{'met' if ratio >= 3 else 'not met'}.**", "", NOTE]
    text = "\n".join(md)
    print(text)
    update_section("pointwise-speed-default", text)
    if not same:
        sys.exit("the two runs logged different outputs")


if __name__ == "__main__":
    main()

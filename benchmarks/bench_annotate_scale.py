"""Annotation at scale against the stub server: throughput vs the ideal, memory, cached re-run,
SIGKILL + resume, shards + merge, the Ray executor.

Synthetic data (no download): a corpus of 5,000 passages of 30 words and N queries with 10
candidates each; method ``relsel`` (one call per query), ``openai`` backend against
``stub_server.py`` (a separate process) with a fixed latency. Every measured run is a fresh child
process (so its peak RSS is its own), annotating through the library as ``utilabel annotate`` does.

    nice -n 10 python benchmarks/bench_annotate_scale.py            # the full set (BENCHMARKS.md)
    python benchmarks/bench_annotate_scale.py --quick               # small sizes, no file written

Reported: calls/s as a share of the ideal (concurrency ÷ latency), wall time and peak RSS per size;
the re-run of a completed run (every call replayed); 5 SIGKILLs at random points of a run then a
resume (judgments vs an uninterrupted run, server requests); 4 shards + merge and the Ray
executor vs the unsharded run (sorted judgments, byte for byte).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega protein cell gene enzyme receptor tissue dose trial cohort").split()


def synthetic(n_queries: int, n_docs: int = 5000, k: int = 10):
    from utilabel.records import Candidate, CandidateGroup, Document

    rng = random.Random(0)
    corpus = {f"d{i}": Document(f"d{i}", " ".join(rng.choice(WORDS) for _ in range(30))) for i in range(n_docs)}
    groups = [CandidateGroup(f"q{q:06d}", f"what does {WORDS[q % len(WORDS)]} {q} do?",
                             tuple(Candidate(f"d{(q * 7919 + j * 131) % n_docs}", j + 1, float(k - j)) for j in range(k)))
              for q in range(n_queries)]
    return corpus, groups


def child(args) -> int:
    """One annotation run in this process; prints a JSON line with its numbers."""
    from utilabel.annotate import AnnotateConfig, annotate
    from utilabel.llm import get_backend

    if args.client_only:  # the HTTP client alone: the ceiling the engine works under
        from utilabel.llm import ChatRequest

        requests = [ChatRequest(({"role": "user", "content": f"question {i}"},), max_tokens=8) for i in range(args.queries)]
        t0 = time.perf_counter()
        with get_backend("openai", base_url=args.url, model="stub", concurrency=args.concurrency) as backend:
            backend.chat_many(requests)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": usage.ru_utime + usage.ru_stime}))
        return 0
    corpus, groups = synthetic(args.queries)
    shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else None
    t0 = time.perf_counter()
    with get_backend("openai", base_url=args.url, model="stub", concurrency=args.concurrency) as backend:
        run = annotate(groups, corpus, backend, args.out, AnnotateConfig(method="relsel"), progress=False,
                       max_concurrency=args.concurrency, shard=shard)
    wall = time.perf_counter() - t0
    s = run.summary
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": wall, "calls_new": s["calls_new"], "calls_cached": s["calls_cached"],
                      "labelled": s["queries_labelled"], "queries": s["queries"], "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024}))
    return 0


def _child_cmd(url: str, n: int, c: int, out: Path, shard: str | None = None) -> list[str]:
    cmd = [sys.executable, __file__, "_child", "--url", url, "--queries", str(n), "--concurrency", str(c), "--out", str(out)]
    return cmd + (["--shard", shard] if shard else [])


def run_child(url: str, n: int, c: int, out: Path, shard: str | None = None) -> dict:
    p = subprocess.run(_child_cmd(url, n, c, out, shard), capture_output=True, text=True, check=False)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


class Stub:
    """stub_server.py in its own process."""

    def __init__(self, latency: float):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "stub_server.py"), "--latency", str(latency)],
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[1]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats") as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def sorted_lines(path: Path) -> list[bytes]:
    return sorted(path.read_bytes().splitlines())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", default="bench", choices=["bench", "_child"])
    p.add_argument("--quick", action="store_true", help="small sizes, print only")
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--url")
    p.add_argument("--queries", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--out")
    p.add_argument("--shard")
    p.add_argument("--client-only", action="store_true")
    p.add_argument("--big", type=int, default=100_000, help="queries of the large runs (default 100,000)")
    p.add_argument("--sizes", default="10000,30000", help="smaller sizes at concurrency 64 (linearity)")
    p.add_argument("--kill-n", type=int, default=20_000, help="queries of the SIGKILL / shards / Ray runs")
    p.add_argument("--client-n", type=int, default=5_000, help="requests of the client-alone runs")
    args = p.parse_args(argv)
    if args.mode == "_child":
        return child(args)
    from _report import update_section

    big, sizes, kill_n = args.big, tuple(int(x) for x in args.sizes.split(",")), args.kill_n
    if args.quick:
        big, sizes, kill_n, args.client_n = 2_000, (500, 1_000), 1_000, 1_000
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    stub = Stub(args.latency)
    res: dict = {"rows": [], "client": {}}

    def report() -> None:  # after every step, so a run cut short still leaves its numbers
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}), flush=True)
        if not args.quick:
            update_section("annotate-scale", render(res, args.latency, load0, os.getloadavg(), big, kill_n, args.client_n,
                                                    " ".join(sys.argv[1:])))

    def measure(n: int, c: int, out: Path) -> dict:
        r = run_child(stub.url, n, c, out)
        res["rows"].append((n, c, r["wall_s"], r["calls_new"] / r["wall_s"], c / args.latency, r["peak_rss_mb"],
                            1000 * r["cpu_s"] / r["calls_new"]))
        print(f"{n:>7} queries  c={c:<4} {r['wall_s']:7.1f} s  {r['calls_new'] / r['wall_s']:6.0f} calls/s "
              f"(ideal {c / args.latency:.0f})  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        report()
        return r

    try:
        for c in (16, 64, 256):
            cmd = _child_cmd(stub.url, args.client_n, c, tmp / "unused") + ["--client-only"]
            r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            res["client"][c] = (args.client_n / r["wall_s"], 1000 * r["cpu_s"] / args.client_n)
            print(f"client alone c={c}: {res['client'][c]}", flush=True)
        measure(big, 64, tmp / "big-c64")
        for n in sizes:
            measure(n, 64, tmp / f"n{n}")
        rerun = run_child(stub.url, big, 64, tmp / "big-c64")
        res["rerun"] = {"wall_s": rerun["wall_s"], "new": rerun["calls_new"], "cached": rerun["calls_cached"]}
        report()

        # SIGKILL at random points, then resume
        full, part = tmp / "kill-full", tmp / "kill-part"
        run_child(stub.url, kill_n, 64, full)
        before = stub.stats()["answered"]
        kills = []
        for target in sorted(random.Random(7).sample(range(kill_n // 20, kill_n * 19 // 20), 5)):
            # kill once the log holds a random number of calls (a random point of the run)
            proc = subprocess.Popen(_child_cmd(stub.url, kill_n, 64, part), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while proc.poll() is None and _lines(part / "calls.jsonl") < target:
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append(_lines(part / "calls.jsonl"))
        run_child(stub.url, kill_n, 64, part)
        keys = [json.loads(x)["key"] for x in (part / "calls.jsonl").read_text().splitlines()]
        res["kill"] = {"at": kills, "same": (part / "judgments.jsonl").read_bytes() == (full / "judgments.jsonl").read_bytes(),
                       "logged": len(keys), "distinct": len(set(keys)), "answered": stub.stats()["answered"] - before}
        report()

        # shards + merge, Ray
        from utilabel.annotate.shards import merge_runs

        shard_dirs = [tmp / f"shard{i}" for i in range(4)]
        t0 = time.perf_counter()
        for i, d in enumerate(shard_dirs):
            run_child(stub.url, kill_n, 64, d, shard=f"{i}/4")
        merge_runs(shard_dirs, tmp / "merged")
        res["shards"] = {"wall_s": time.perf_counter() - t0,
                         "judgments": sorted_lines(tmp / "merged" / "judgments.jsonl") == sorted_lines(full / "judgments.jsonl"),
                         "groups": sorted_lines(tmp / "merged" / "groups.jsonl") == sorted_lines(full / "groups.jsonl")}
        report()
        res["ray"] = ray_equal(stub.url, kill_n, tmp, full)
        report()
        for c in (16, 256):
            measure(big, c, tmp / f"big-c{c}")
            shutil.rmtree(tmp / f"big-c{c}")
    finally:
        stub.stop()
        shutil.rmtree(tmp)
    return 0


def render(res: dict, latency: float, load0, load1, big: int, kill_n: int, client_n: int, flags: str) -> str:
    """The BENCHMARKS.md section from the results so far."""
    from _report import machine

    client = res["client"]
    rows = "\n".join(f"| {n:,} | {c} | {w:.1f} | {cps:.0f} | {ideal:.0f} | {cps / ideal:.0%} | {cpu:.2f} | "
                     f"{client[c][0]:.0f} | {client[c][1]:.2f} | {rss:.0f} |"
                     for n, c, w, cps, ideal, rss, cpu in sorted(res["rows"], key=lambda r: (r[1], r[0])))
    lines = [f"""## Annotation at scale: stub server, streaming engine (`benchmarks/bench_annotate_scale.py`)

Machine: {machine()}; 1-min load average {load0[0]:.1f} at the start, {load1[0]:.1f} at this point (shared box;
the benchmark ran under `nice -n 10` next to other jobs). Command: `nice -n 10 python benchmarks/bench_annotate_scale.py {flags}`.
`relsel`, 1 call per query, 10 candidates, `openai` backend against `benchmarks/stub_server.py`
({latency * 1000:.0f} ms per answer, own process); ideal = concurrency ÷ latency; every run a fresh process
(peak RSS is the annotator's). CPU ms/call: the annotator process's user + system CPU time per call, which
does not depend on how much of the machine the run got. "Client alone" is the `openai` backend's `chat_many`
over {client_n:,} requests at that concurrency, no engine: what the HTTP client manages by itself.

| queries | max concurrency | wall s | calls/s | ideal calls/s | share of ideal | CPU ms/call | client alone calls/s | client alone CPU ms/call | peak RSS MB |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}
"""]
    if "rerun" in res:
        r = res["rerun"]
        lines.append(f"- Re-run of the completed {big:,}-query run (every call in the log): **{r['wall_s']:.1f} s** "
                     f"({r['new']} new calls, {r['cached']:,} replayed).")
    if "kill" in res:
        k = res["kill"]
        lines.append(f"- SIGKILL 5× at random points of a {kill_n:,}-query run (after {', '.join(map(str, k['at']))} "
                     f"logged calls), then resume: judgments identical to the uninterrupted run: **{k['same']}**; "
                     f"{k['logged']:,} calls logged, {k['distinct']:,} distinct keys; the server answered "
                     f"{k['answered']:,} requests, so {k['answered'] - k['logged']} were made twice — requests in flight "
                     "(sent, or answered and not yet on disk) when a kill came, at most 5 × 64; no call already in "
                     "the log was asked again.")
    if "shards" in res:
        sh = res["shards"]
        lines.append(f"- 4 shards run one after another + `merge_runs` ({sh['wall_s']:.1f} s in all): judgments equal "
                     f"to the unsharded run after sorting: **{sh['judgments']}**, groups: **{sh['groups']}**.")
    if "ray" in res:
        lines.append(f"- {res['ray']}")
    return "\n".join(lines)


def ray_equal(url: str, n: int, tmp: Path, full: Path) -> str:
    try:
        import ray
    except ImportError:
        return "Ray executor: skipped (pip install 'utilabel[ray]')"
    from utilabel.annotate import AnnotateConfig
    from utilabel.annotate.distributed import annotate_ray

    corpus, groups = synthetic(n)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        annotate_ray(groups, corpus, "openai", {"base_url": url, "model": "stub", "concurrency": 64}, tmp / "ray",
                     AnnotateConfig(method="relsel"), shards=4, max_concurrency=64)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    same = sorted_lines(tmp / "ray" / "judgments.jsonl") == sorted_lines(full / "judgments.jsonl")
    return f"Ray executor, local cluster (2 CPUs), 4 shard tasks + merge: judgments equal **{same}** ({wall:.1f} s)"


if __name__ == "__main__":
    sys.exit(main())

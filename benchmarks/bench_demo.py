"""Wall time of ``utilabel demo`` (defaults) end to end, per step, on this machine.

There is no peer for a whole pipeline; the number to watch is the total against the 10-minute
target on a 2-core CPU. Run: ``python benchmarks/bench_demo.py [--out DIR]`` (an empty DIR gives a
cold run; the demo caches annotation calls and models in it).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=None)
    ap.add_argument("--note", default="", help="context to print with the result (e.g. machine load)")
    args = ap.parse_args()
    os.environ.setdefault("UTILABEL_SOURCE_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    os.environ.setdefault("UTILABEL_DATA_HOME", tempfile.mkdtemp(prefix="bench_demo_home_"))
    from utilabel.experiments.demo import DemoConfig, format_table, run_demo

    out = args.out or tempfile.mkdtemp(prefix="bench_demo_")
    load = os.getloadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    res = run_demo(DemoConfig(out=out))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_min = (cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime) / 60
    load_end = os.getloadavg()
    print(format_table(res.table))
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in res.steps.items())
    text = "\n".join([
        "## Demo wall time (`benchmarks/bench_demo.py`)", "",
        f"Machine: {machine()}; 1-min load average {load[0]:.1f} at start, {load_end[0]:.1f} at end "
        f"{'(the cores were shared with other jobs)' if load[0] >= 1.5 else '(idle machine)'}. {args.note}".strip(), "",
        f"`utilabel demo` with defaults (6 SciFact train queries × 5 candidates, pointwise annotation with "
        f"smollm2-135m, 6 training steps per model, re-ranking evaluation of 30 queries on SciFact and ArguAna), "
        f"cold caches: **{res.seconds / 60:.1f} min** wall (target ≤ 10 min): {steps}; the process used "
        f"{cpu_min:.1f} CPU-minutes (on 2 idle cores the wall time approaches CPU-minutes / 2 to CPU-minutes).", "",
        format_table(res.table)])
    update_section("demo", text)


if __name__ == "__main__":
    main()

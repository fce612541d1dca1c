"""``utilabel experiment run|report CONFIG.yaml``: run (or resume) an experiment grid; write its report."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from .argtypes import folder, positive_float


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML (see docs/experiments.md)")
    p.add_argument("--out", default=None, type=folder, help="override the config's output folder")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="start no new task after this many minutes (re-run to continue; nothing is lost)")
    p.add_argument("--report", default=None, help="also write the report to this path (e.g. docs/results/x.md)")
    p.add_argument("--archive", default=None, type=folder,
                   help="folder of committed results (results.jsonl, events.jsonl): an empty --out resumes from "
                        "them, and they are updated when the run stops")


def _load(args):
    from ..experiments.config import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(args.config)
    if args.out:
        cfg.out = args.out
    return cfg


def run(args) -> int:
    """Run or resume an experiment grid (train, evaluate retrieval + RAG); writes report.md."""
    from ..experiments.grid import run_experiment
    from ..experiments.report import write_report

    cfg = _load(args)
    deadline = time.time() + 60 * args.minutes if args.minutes else None
    # a scheduler's SIGTERM unwinds like Ctrl-C, so the results still reach --archive (SIGKILL loses only
    # that copy: results.jsonl is written as each task ends)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    report = run_experiment(cfg, deadline=deadline, on_event=say, archive=args.archive)
    if args.report:
        report = write_report(cfg, path=args.report)
    print(report)
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML")
    p.add_argument("--out", default=None, help="override the config's output folder")
    p.add_argument("--report", default=None, help="report path (default OUT/report.md; plots go next to it)")


def report(args) -> int:
    """Regenerate an experiment's markdown report and plots from its results so far."""
    from ..experiments.report import write_report

    print(write_report(_load(args), path=args.report))
    return 0


COMMANDS = {
    ("experiment", "run"): (_run_args, run),
    ("experiment", "report"): (_report_args, report),
}

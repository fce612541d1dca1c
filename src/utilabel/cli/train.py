"""``utilabel train``: train a dense retriever (flags mirror :class:`utilabel.train.config.TrainConfig`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .argtypes import folder


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _train_args(p: argparse.ArgumentParser) -> None:
    from ..train.config import config_help

    p.add_argument("--config", help="YAML file of training options (flags override it)")
    for name, default, meta in config_help():
        kw: dict = {"dest": name, "default": None, "help": f"{meta.get('help', '')} (default: {default})"}
        if isinstance(default, bool):
            kw["action"] = argparse.BooleanOptionalAction
        elif name == "labels":
            kw["nargs"] = "+"
        elif isinstance(default, int) or name in ("max_steps", "num_threads"):
            kw["type"] = int
        elif isinstance(default, float) or name in ("human_ratio",):
            kw["type"] = float
        elif name == "out":
            kw["type"] = folder
        if "choices" in meta:
            kw["choices"] = meta["choices"]
        p.add_argument(_flag(name), **kw)


def train(args) -> int:
    """Train a bi-encoder on human, LLM or mixed labels (model, log, loss curve in --out)."""
    from ..train.config import TrainConfig, config_help
    from ..train.trainer import train as run_training

    given = {name: getattr(args, name) for name, _, _ in config_help() if getattr(args, name, None) is not None}
    config = TrainConfig.from_yaml(args.config, **given) if args.config else TrainConfig.from_dict(given)
    model_dir = run_training(config)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    summary = json.loads((Path(config.out) / "summary.json").read_text())
    print(f"model      {model_dir}")
    print(f"steps      {summary['steps']} in {summary['seconds']:.1f}s ({summary['examples_per_second']} queries/s)")
    print(f"loss       {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}")
    print(f"masked     {summary['masked_queries']} query-steps without a positive")
    for split, res in summary.get("eval", {}).items():
        print(f"eval {split:<6}", "  ".join(f"{m} {v:.4f}" for m, v in res.items()))
    print(f"log        {Path(config.out) / 'log.jsonl'}  curve {Path(config.out) / 'loss_curve.png'}")
    return 0


COMMANDS = {("train",): (_train_args, train)}

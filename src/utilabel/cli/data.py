"""``utilabel data``: list, prepare and describe datasets."""

from __future__ import annotations

import argparse

from ..data.registry import dataset_names, get_spec, load_dataset, prepare_dataset


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name (see 'utilabel data list') or a BEIR folder")
    p.add_argument("--validate", action="store_true", help="also check that every qrel names a known query and doc")


def info(args) -> int:
    """Print a dataset's counts (docs, queries, qrels per split)."""
    ds = load_dataset(args.name)
    if args.validate:
        ds.validate()
    for key, value in ds.info().items():
        print(f"{key:<22} {value:,}" if isinstance(value, int) else f"{key:<22} {value}")
    print(f"{'relevance_level':<22} {ds.relevance_level}")
    print(f"{'path':<22} {ds.path}")
    return 0


def _list_args(p: argparse.ArgumentParser) -> None:
    pass


def list_(args) -> int:
    """List the named datasets."""
    for name in dataset_names():
        print(f"{name:<16} {get_spec(name).description}")
    return 0


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="rebuild even if already prepared")


def prepare(args) -> int:
    """Build a named dataset's BEIR folder in the data home (from the mirror or by download)."""
    print(prepare_dataset(args.name, force=args.force))
    return 0


COMMANDS = {
    ("data", "info"): (_info_args, info),
    ("data", "list"): (_list_args, list_),
    ("data", "prepare"): (_prepare_args, prepare),
}

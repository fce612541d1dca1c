"""Argument types shared by every command: each numeric option is parsed and bounded here, once.

Used as ``type=`` in argparse, so a bad value is rejected before anything runs, with argparse's
one-line ``utilabel CMD: error: argument --limit: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def _number(text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounded(kind: type, ok, rule: str, doc: str):
    def parse(text: str):
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__doc__ = doc
    return parse


positive_int = _bounded(int, lambda v: v >= 1, "a positive integer", "An integer ≥ 1 (counts, sizes, limits).")
nonneg_int = _bounded(int, lambda v: v >= 0, "an integer ≥ 0", "An integer ≥ 0 (retries, extra budgets, levels).")
positive_float = _bounded(float, lambda v: v > 0, "a number > 0", "A finite number > 0 (rates, durations).")
nonneg_float = _bounded(float, lambda v: v >= 0, "a number ≥ 0", "A finite number ≥ 0 (prices, BM25 k1).")
unit_float = _bounded(float, lambda v: 0 <= v <= 1, "a number in [0, 1]", "A number in [0, 1] (thresholds, BM25 b).")


def _no_file_above(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is a file, not a folder")
            return


def folder(text: str) -> str:
    """An output folder: not an existing file, nor inside one."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    _no_file_above(path)
    return text


def out_file(text: str) -> str:
    """An output file: not an existing folder, nor inside a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    _no_file_above(path)
    return text


def llm_backend(text: str) -> str:
    """An LLM backend a user can run: any registered one but ``fake`` (scripted, for tests)."""
    if text == "fake":
        from ..llm.registry import backend_names

        real = [n for n in backend_names() if n != "fake"]
        raise argparse.ArgumentTypeError(f"'fake' replays scripted replies in tests; choose one of {', '.join(real)}")
    return text

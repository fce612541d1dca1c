"""``utilabel generate`` end to end with a real model: the embedded llama.cpp server (``llamacpp`` backend)
running SmolLM2-135M on real SciFact passages, through the CLI in a subprocess.

SmolLM2-135M writes poor queries, so nothing here asserts their quality: the test checks that a run
SIGKILLed at random points and re-run gives the files of an uninterrupted run (the call logs replay,
generation and judge alike), that every generated query has a reason or is kept, and that the real
``utilabel data info --validate`` accepts the folder. (The judge runs with threshold 0: SmolLM2 gives its
own queries' source passages P(useful) ≈ 0.2, which would leave no query to validate.)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from kill_resume import kill_until_done

pytestmark = pytest.mark.llm  # ~50 s (2.5 min on 2 busy cores): in the default suite, like the other llm tests

FILES = ("queries.jsonl", "qrels/train.tsv", "generations.jsonl", "corpus.jsonl")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, mirror):
    pytest.importorskip("xllamacpp")
    from utilabel.data import beir
    from utilabel.data.registry import load_dataset
    from utilabel.llm.models import ModelNotInstalledError, resolve_model

    try:
        resolve_model("smollm2-135m")
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))
    ds = load_dataset("scifact")
    folder = tmp_path_factory.mktemp("scifact-40")
    beir.write_corpus(folder / "corpus.jsonl", list(ds.corpus.values())[:40])
    beir.write_queries(folder / "queries.jsonl", [])
    return folder


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utilabel.cli.main", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def test_sigkill_real_generation_then_resume_equals_uninterrupted_and_folder_validates(corpus_dir, tmp_path):
    def cmd(out):
        return [sys.executable, "-m", "utilabel.cli.main", "generate", "--dataset", str(corpus_dir), "--passages", "6",
                "--queries-per-passage", "2", "--task", "claim", "--backend", "llamacpp", "--model", "smollm2-135m",
                "--max-passage-words", "40", "--max-concurrency", "1", "--judge", "--judge-threshold", "0", "--round-trip-k", "40",
                "--no-progress", "--out", str(out)]

    full = subprocess.run(cmd(tmp_path / "full"), env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["passages"] == 6 and summary["generated"] > 0 and summary["calls_new"] >= 6
    rng = random.Random(11)
    kills = kill_until_done(
        lambda: subprocess.Popen(cmd(tmp_path / "part"), env=dict(os.environ), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE),
        rng, 6, (3.0, 8.0),
        finish=lambda: subprocess.run(cmd(tmp_path / "part"), env=dict(os.environ), capture_output=True, timeout=600))
    assert kills >= 1  # the run really was interrupted
    for name in FILES:
        assert (tmp_path / "part" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    gen = [json.loads(x) for x in (tmp_path / "full" / "generations.jsonl").read_text().splitlines()]
    assert len(gen) == summary["generated"] and all(g["kept"] == (g["reason"] is None) for g in gen)
    assert sum(g["kept"] for g in gen) == summary["kept"]
    info = cli("data", "info", str(tmp_path / "full"), "--validate")
    assert info.returncode == 0, info.stderr
    assert f"train.queries          {summary['kept']}" in info.stdout

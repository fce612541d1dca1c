"""Two gloo processes on CPU (torchrun) give the same loss and gradients as one process on the
concatenated batch: passages are gathered from every rank with gradients, gradients summed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.parametrize("loss", ["disj", pytest.param("lsep", marks=pytest.mark.slow)])
def test_ddp_equals_single_process(tiny_model_dir, tmp_path, mirror, loss):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(WORKER), "single", str(tiny_model_dir), str(single), loss], check=True,
                   env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(WORKER), "ddp", str(tiny_model_dir), str(ddp), loss], check=True, env=env, timeout=300)
    a, b = torch.load(single), torch.load(ddp)
    assert a["loss"].item() > 0
    torch.testing.assert_close(b["loss"], a["loss"], rtol=1e-5, atol=1e-6)
    assert a["grads"].keys() == b["grads"].keys() and len(a["grads"]) > 10
    scale = max(g.abs().max().item() for g in a["grads"].values())
    for name in a["grads"]:  # float32 sums in another order: compare relative to the largest gradient
        torch.testing.assert_close(b["grads"][name], a["grads"][name], rtol=1e-4, atol=1e-5 * scale)


def test_train_under_torchrun_finishes_and_exits_cleanly(tiny_model_dir, tmp_path, mirror):
    """The CLI under torchrun (2 gloo ranks): both ranks train, rank 0 saves, and the process group the
    trainer created is destroyed before exit (left to interpreter teardown, gloo can abort at exit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "utilabel.cli.main", "train", "--dataset", "scifact", "--labels", "human",
                           "--loss", "disj", "--epochs", "1", "--max-steps", "2", "--batch-size", "4",
                           "--group-size", "4", "--base-model", str(tiny_model_dir), "--passage-max-len", "48",
                           "--negatives-k", "0", "--out", str(out), "--no-show-progress"],
                          env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
    assert (out / "model" / "config.json").is_file()

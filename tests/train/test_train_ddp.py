"""Two gloo processes on CPU (torchrun) give the same loss and gradients as one process on the
concatenated batch: passages are gathered from every rank with gradients, gradients summed."""

from __future__ import annotations

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

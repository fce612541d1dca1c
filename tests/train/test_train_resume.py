"""A run SIGKILLed mid-way resumes from its last checkpoint to the same final weights (and the
same per-step losses) as an uninterrupted run: optimizer, scheduler, RNG and step are restored and
batches are derived from (seed, epoch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

DRIVER = Path(__file__).with_name("resume_driver.py")


def _run(cfg: dict, kill_at: int = 0, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(DRIVER), json.dumps(cfg), str(kill_at), *extra], env=env, timeout=600,
                          capture_output=True, text=True)


def _base(tiny_model_dir) -> dict:
    return {"dataset": "scifact", "labels": ["human"], "loss": "disj", "epochs": 1, "max_steps": 8,
            "batch_size": 4, "group_size": 3, "base_model": str(tiny_model_dir), "passage_max_len": 32,
            "query_max_len": 16, "save_every": 3, "negatives_k": 0, "lr": 1e-3, "show_progress": False, "num_threads": 1}


def test_resume_after_sigkill_matches_uninterrupted(tiny_model_dir, tmp_path, mirror):
    from safetensors.torch import load_file

    from utilabel.train.trainer import read_log

    base = _base(tiny_model_dir)
    from utilabel.train.config import TrainConfig
    from utilabel.train.trainer import train

    train(TrainConfig(**base, out=str(tmp_path / "full")))  # uninterrupted reference, in this process
    killed = {**base, "out": str(tmp_path / "killed")}
    proc = _run(killed, kill_at=7)
    assert proc.returncode == -signal.SIGKILL  # died after step 7; the last checkpoint is step 6
    assert not (tmp_path / "killed" / "model").exists()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)["step"] == 6
    assert _run(killed).returncode == 0  # resumes from step 6
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6)
    la, lb = read_log(tmp_path / "full"), read_log(tmp_path / "killed")
    assert [r["step"] for r in lb] == list(range(1, 9))
    assert [r["loss"] for r in lb] == [r["loss"] for r in la]
    # and training really moved the weights
    start = load_file(Path(tiny_model_dir) / "model.safetensors")
    assert any((a[k] - start[k]).abs().max() > 1e-4 for k in a if k in start)


def test_kill_mid_checkpoint_leaves_no_temp_file_after_resume(tiny_model_dir, tmp_path, mirror):
    """Issue 12, defect 5: a SIGKILL while the checkpoint is being written leaves its temp file; the
    next run sweeps it (the writer is dead) and finishes."""
    out = tmp_path / "run"
    cfg = {**_base(tiny_model_dir), "max_steps": 4, "out": str(out)}
    proc = _run(cfg, 0, "mid-save")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(list(out.glob(".checkpoint.pt.*.tmp"))) == 1 and not (out / "checkpoint.pt").exists()
    assert _run(cfg).returncode == 0
    assert (out / "model").is_dir()
    assert sorted(p.name for p in out.glob(".*")) == []

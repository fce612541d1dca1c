"""``utilabel experiment run --archive`` in a real subprocess: a SIGTERM mid-grid still leaves the
results in the archive, and a fresh output folder resumes from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml

from utilabel.fileio import AppendLog


def test_sigterm_archives_results_and_a_fresh_out_resumes_from_them(tmp_path, beir_subset):
    tiny = beir_subset("squad", 8, 2000, tmp_path / "tiny")
    out, archive = tmp_path / "out", tmp_path / "archive"
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "out": str(out), "datasets": [{"name": str(tiny)}],
        "studies": [{"name": "main", "sources": ["human"], "losses": ["disj"]}],
        "train": {"max_steps": 1, "batch_size": 4, "group_size": 2}, "dense": {"max_length": 32, "k": 10}}))
    cmd = [sys.executable, "-m", "utilabel.cli.main", "experiment", "run", str(config), "--archive", str(archive)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.time() + 300
    while not AppendLog.read(out / "results.jsonl") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # BM25 is the first result; the base model's encoding follows
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 143, proc.stderr.read()
    done = AppendLog.read(out / "results.jsonl")
    assert done and AppendLog.read(archive / "results.jsonl") == done

    # a fresh machine: an empty --out starts from the archive, so BM25 is not evaluated again
    fresh = tmp_path / "fresh"
    rc = subprocess.run(cmd + ["--out", str(fresh), "--minutes", "0.0001"], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert AppendLog.read(fresh / "results.jsonl")[: len(done)] == done
    assert "evaluate BM25" not in rc.stderr

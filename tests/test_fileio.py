"""Crash-safe writing: outputs follow the umask; stale temp files of dead writers are swept, live ones kept."""

from __future__ import annotations

import os
import subprocess
import sys

from utilabel.fileio import AppendLog, atomic_write, make_temp_dir, sweep_stale_temps


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "a.json") as fh:
            fh.write("{}")
        AppendLog(tmp_path / "log.jsonl").close()
        folder = make_temp_dir(tmp_path, "ds")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640  # mkstemp alone gives 0o600
    assert (tmp_path / "log.jsonl").stat().st_mode & 0o777 == 0o640
    assert folder.stat().st_mode & 0o777 == 0o750  # mkdtemp alone gives 0o700
    assert folder.name.startswith(f".ds.{os.getpid()}.") and folder.name.endswith(".tmp")


def test_sweep_removes_only_temps_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".checkpoint.pt.{dead_pid}.abc_12xy.tmp"
        stale_dir = tmp_path / f".scifact.{dead_pid}.k2j4h5g6.tmp"
        mine = tmp_path / f".checkpoint.pt.{os.getpid()}.qqqqqqqq.tmp"
        other_live = tmp_path / f".model.safetensors.{live.pid}.zzzzzzzz.tmp"
        foreign = [tmp_path / ".checkpoint.pt.tmp", tmp_path / "notes.1234.abcdefgh.tmp", tmp_path / "checkpoint.pt"]
        for p in [stale, mine, other_live, *foreign]:
            p.write_text("x")
        stale_dir.mkdir()
        (stale_dir / "corpus.jsonl").write_text("{}\n")
        assert sorted(sweep_stale_temps(tmp_path)) == sorted([stale, stale_dir])
        assert sorted(tmp_path.iterdir()) == sorted([mine, other_live, *foreign])
    finally:
        live.kill()
        live.wait()
    assert sweep_stale_temps(tmp_path / "missing") == []

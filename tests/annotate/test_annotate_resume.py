"""SIGKILL the annotator (a subprocess) at random points; the final judgments must equal an
uninterrupted run's. The LLM here is the scripted fake (a pure function of the request), so any
difference would come from the store / resume logic; the real-server version is in
test_annotate_llamacpp.py."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("annotate_scripted.py")


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent), *sys.path])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    full = tmp_path / "full"
    p = _start(full, "--delay", "0.1")
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    expected = (full / "judgments.jsonl").read_bytes()
    assert expected.count(b"\n") == 6 * 8

    rng = random.Random(1234)
    part = tmp_path / "part"
    kills = 0
    for _ in range(12):
        p = _start(part, "--delay", "0.1")
        try:
            p.wait(timeout=rng.uniform(0.6, 2.4))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            continue
        assert p.returncode == 0, p.stderr.read().decode()
        break
    else:
        p = _start(part, "--delay", "0.0")
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    assert kills >= 1  # the test really interrupted the run
    assert (part / "judgments.jsonl").read_bytes() == expected
    # no duplicate calls were logged across the restarts
    keys = [line.split('"key": "', 1)[1][:64] for line in (part / "calls.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == len((full / "calls.jsonl").read_text().splitlines())

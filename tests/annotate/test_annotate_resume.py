"""SIGKILL the annotator (a subprocess) at random points; the final judgments must equal an
uninterrupted run's. The LLM here is the scripted fake (a pure function of the request), so any
difference would come from the store / resume logic; the real-server version is in
test_annotate_llamacpp.py."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from kill_resume import kill_until_done

SCRIPT = Path(__file__).with_name("annotate_scripted.py")


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent), *sys.path])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(out: Path) -> subprocess.CompletedProcess:
    p = _start(out, "--delay", "0.0")
    _, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, None, err)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    full = tmp_path / "full"
    p = _start(full, "--delay", "0.1")
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    expected = (full / "judgments.jsonl").read_bytes()
    assert expected.count(b"\n") == 6 * 8

    rng = random.Random(1234)
    part = tmp_path / "part"
    kills = kill_until_done(lambda: _start(part, "--delay", "0.1"), rng, 12, (0.6, 2.4),
                            finish=lambda: _finish(part))
    assert kills >= 1  # the test really interrupted the run
    assert (part / "judgments.jsonl").read_bytes() == expected
    # no duplicate calls were logged across the restarts
    keys = [line.split('"key": "', 1)[1][:64] for line in (part / "calls.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == len((full / "calls.jsonl").read_text().splitlines())

"""Kill a command at random moments until one run finishes: the harness of the resume-after-SIGKILL tests
(annotation, generation). Importable from every test folder (pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import Callable


def kill_until_done(start: Callable[[], subprocess.Popen], rng: random.Random, tries: int,
                    window: tuple[float, float], finish: Callable[[], subprocess.CompletedProcess] | None = None) -> int:
    """Start ``start()`` up to ``tries`` times, SIGKILLing each run that is still going after a random time
    in ``window`` seconds; a run that ends must exit 0. If every try was killed, ``finish()`` (when given)
    runs the command to the end. Returns how many runs were killed."""
    kills = 0
    for _ in range(tries):
        p = start()
        try:
            p.wait(timeout=rng.uniform(*window))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            continue
        err = p.stderr.read().decode()[-2000:] if p.stderr else ""
        assert p.returncode == 0, err
        return kills
    if finish is not None:
        done = finish()
        assert done.returncode == 0, done.stderr.decode()[-2000:] if done.stderr else ""
    return kills

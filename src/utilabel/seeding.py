"""Seeded randomness shared by every stage: :func:`rng_for` and the default seed of training and review.

Every random choice of utilabel (label mixing, noise, query samples, per-epoch groups) draws from
``rng_for(seed, purpose, ...)``, so a choice depends only on its own parts, never on how many other
draws came before or on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import hashlib
import random

DEFAULT_SEED = 42
"""The seed of training (label mixing, sampling, model RNG) and of the review queue's tie-breaks."""


def rng_for(*parts) -> random.Random:
    """A ``random.Random`` seeded from a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))

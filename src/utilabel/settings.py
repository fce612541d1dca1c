"""Where utilabel keeps data: the writable data home and the read-only source mirror.

* ``UTILABEL_DATA_HOME`` — writable folder for prepared datasets, model files, caches.
  Falls back to the user cache dir (``platformdirs.user_cache_dir("utilabel")``).
* ``UTILABEL_SOURCE_MIRROR`` — optional read-only folder holding original dataset files
  (one sub-folder per source, e.g. ``scifact/``). Searched before any download. Our CI points it
  at ``../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The writable data home (created on first use)."""
    env = os.environ.get("UTILABEL_DATA_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("utilabel"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_mirror() -> Path | None:
    """The read-only source mirror, or None when unset."""
    env = os.environ.get("UTILABEL_SOURCE_MIRROR")
    return Path(env).expanduser() if env else None


def cache_dir(kind: str) -> Path:
    """A sub-folder of the data home for one kind of cache (``models``, ``embeddings``, ...)."""
    path = data_home() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path

"""The settings a run folder records (``config.json``) and the check that a folder holds one setting.

:func:`run_settings` is what ``config.json`` holds (config, model, prompt id and hashes, shard);
:func:`settings_diff` names the settings two runs differ in; :func:`claim_folder` refuses to write a
run into a folder that holds a run with other settings (unless told to overwrite). The engine claims
its ``out_dir`` with them and :mod:`.shards` compares shard folders with them before merging.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import atomic_write
from .config import AnnotateConfig
from .methods import Method


def run_settings(config: AnnotateConfig, method: Method, model: str, shard: tuple[int, int] | None) -> dict[str, Any]:
    """What ``config.json`` records: a run folder holds one setting; shards of a run differ only in ``shard``."""
    return {"config": config.to_dict(), "model": model, "prompt_id": method.prompt_id,
            "prompt_hashes": {p.ref: p.hash for p in method.prompts()}, "shard": list(shard) if shard else None}


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings that differ, as ``name: old → new`` (config fields by name)."""
    flat = [(f"config.{k}", old.get("config", {}).get(k), v) for k, v in new["config"].items()]
    flat += [(k, old.get(k), new[k]) for k in new if k != "config"]
    return [f"{k.removeprefix('config.')}: {a!r} → {b!r}" for k, a, b in flat if a != b and k not in ignore]


def claim_folder(out_dir: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Write ``settings`` to ``out_dir/config.json``; refuse a folder whose run has other settings unless
    ``overwrite``."""
    path = out_dir / "config.json"
    if path.exists() and not overwrite:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a run's config ({exc}); use another --out or --overwrite") from None
        diff = settings_diff(old, json.loads(json.dumps(settings)))  # compared as stored (tuples are lists)
        if diff:
            raise ConfigError(f"{out_dir} holds a run with other settings ({'; '.join(diff[:3])}"
                              f"{'; ...' if len(diff) > 3 else ''}); use another --out, or --overwrite to "
                              "replace its judgments (its call log is kept and reused)")
    with atomic_write(path) as fh:
        json.dump(settings, fh, indent=2)

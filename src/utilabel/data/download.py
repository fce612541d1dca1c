"""Downloading original dataset files for users with internet (urllib, no extra dependency).

Base URLs can be overridden by environment variables so tests can serve local copies over HTTP:
``UTILABEL_BEIR_URL`` (default: the official BEIR location).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"


def fetch(url: str, dest: Path, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest`` (via a .part file renamed when complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as fh:  # noqa: S310
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name, leave=False) as bar:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
                bar.update(len(chunk))
    part.rename(dest)
    return dest


def fetch_beir(name: str, dest: Path) -> Path:
    """Download and unpack ``<BEIR_URL>/<name>.zip`` so that ``dest`` holds the BEIR files."""
    base = os.environ.get("UTILABEL_BEIR_URL", BEIR_URL).rstrip("/")
    archive = fetch(f"{base}/{name}.zip", dest / f"{name}.zip")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
    inner = dest / name
    if inner.is_dir():  # BEIR zips hold a top folder named after the dataset
        for item in inner.iterdir():
            shutil.move(str(item), dest / item.name)
        inner.rmdir()
    archive.unlink()
    return dest

"""Dataset registry: names → adapters that build a prepared BEIR folder in the data home.

``load_dataset(name)`` returns the prepared :class:`Dataset`, preparing it on first use from the
read-only source mirror (``UTILABEL_SOURCE_MIRROR``) or, failing that, by downloading the
original files. Preparation writes into a temporary folder that is renamed into place only when
complete, so an interrupted preparation leaves nothing half-written; a per-dataset lock file makes
processes that prepare the same dataset at once wait for the first one and use its result (leftovers of
killed preparations are swept). A path to an existing BEIR folder is accepted wherever a name is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import DatasetNotAvailableError, UnknownNameError
from ..fileio import file_lock, make_temp_dir, sweep_stale_temps
from ..settings import data_home, source_mirror
from . import adapters  # noqa: F401 - importing the adapters registers every named dataset
from .dataset import META_FILE, Dataset, write_meta
from .spec import _REGISTRY, DatasetSpec, register

__all__ = ["DatasetSpec", "dataset_names", "get_spec", "load_dataset", "prepare_dataset", "register"]


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    if name not in _REGISTRY:
        raise UnknownNameError("dataset", name, list(_REGISTRY))
    return _REGISTRY[name]


def prepared_path(name: str) -> Path:
    return data_home() / "datasets" / name


def _find_source(spec: DatasetSpec) -> Path:
    mirror = source_mirror()
    if mirror is not None and (mirror / spec.mirror_dir).is_dir():
        return mirror / spec.mirror_dir
    downloads = data_home() / "downloads" / spec.name
    if downloads.is_dir() and (downloads / ".complete").exists():
        return downloads
    if spec.download is None:
        raise DatasetNotAvailableError(
            f"dataset {spec.name!r}: no copy in the source mirror ({mirror}) and no download available; "
            f"set UTILABEL_SOURCE_MIRROR to a folder containing {spec.mirror_dir}/"
        )
    sweep_stale_temps(downloads.parent)
    tmp = make_temp_dir(downloads.parent, spec.name)
    try:
        spec.download(tmp)
        (tmp / ".complete").touch()
        if downloads.exists():
            shutil.rmtree(downloads)
        tmp.rename(downloads)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetNotAvailableError(f"dataset {spec.name!r}: download failed: {exc}") from exc
    return downloads


def prepare_dataset(name: str, force: bool = False) -> Path:
    """Build (if needed) the BEIR folder of a named dataset and return its path."""
    spec = get_spec(name)
    out = prepared_path(name)
    if (out / META_FILE).exists() and not force:
        return out
    with file_lock(out.parent / f".{name}.lock"):
        if (out / META_FILE).exists() and not force:  # another process prepared it while we waited
            return out
        source = _find_source(spec)
        sweep_stale_temps(out.parent)
        tmp = make_temp_dir(out.parent, name)
        try:
            meta = spec.prepare(source, tmp)
            write_meta(tmp, name=name, description=spec.description, source=str(source), **meta)
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def load_dataset(name_or_path: str | Path) -> Dataset:
    """A named dataset (prepared on first use) or a BEIR folder given by path."""
    p = Path(name_or_path)
    if p.is_dir():
        return Dataset.from_folder(p)
    ds = Dataset.from_folder(prepare_dataset(str(name_or_path)), name=str(name_or_path))
    ds.task = ds.task or get_spec(str(name_or_path)).task
    return ds

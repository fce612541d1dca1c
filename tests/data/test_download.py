"""The real download path (for users with internet), tested against a local HTTP server serving a
BEIR-style zip built from the mirror's ArguAna files."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile

import pytest

from utilabel.data import registry


@pytest.fixture
def beir_server(mirror, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "arguana.zip", "w") as zf:  # same layout as BEIR's official zips
        for rel in ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"]:
            zf.write(mirror / "arguana" / rel, f"arguana/{rel}")
    # Hugging Face's file of BEIR's generated queries, served from the same folder
    (root / "train.jsonl.gz").write_bytes((mirror / "arguana" / "generated-queries" / "train.jsonl.gz").read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_beir_download_when_mirror_lacks_dataset(beir_server, tmp_path, monkeypatch):
    monkeypatch.setenv("UTILABEL_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UTILABEL_SOURCE_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("UTILABEL_BEIR_URL", beir_server)
    ds = registry.load_dataset("arguana")
    assert len(ds.corpus) == 8674 and len(ds.qrels("test")) == 1406
    assert (tmp_path / "home" / "downloads" / "arguana" / ".complete").exists()
    assert not (tmp_path / "home" / "downloads" / "arguana" / "arguana.zip").exists()


def test_arguana_generated_download(beir_server, tmp_path, monkeypatch):
    monkeypatch.setenv("UTILABEL_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UTILABEL_SOURCE_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("UTILABEL_BEIR_URL", beir_server)
    monkeypatch.setenv("UTILABEL_BEIR_GENERATED_URL", f"{beir_server}/train.jsonl.gz")
    ds = registry.load_dataset("arguana-generated")
    assert len(ds.corpus) == 8674 and len(ds.qrels("test")) == 1406 and len(ds.qrels("train")) == 25844


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("UTILABEL_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UTILABEL_SOURCE_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("UTILABEL_BEIR_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(registry.DatasetNotAvailableError, match="download failed"):
        registry.load_dataset("nfcorpus")
    assert not (tmp_path / "home" / "downloads" / "nfcorpus").exists()
    assert not (tmp_path / "home" / "datasets" / "nfcorpus").exists()

"""Other BEIR datasets by name (downloaded from the official BEIR location; no local mirror)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..download import fetch_beir
from ..spec import DatasetSpec, register
from ._common import copy_beir_folder

BEIR_NAMES = ("nfcorpus", "fiqa", "scidocs", "trec-covid", "quora", "nq", "hotpotqa-beir", "fever", "climate-fever", "dbpedia-entity", "webis-touche2020", "msmarco")


def _prepare(source: Path, out: Path) -> dict:
    copy_beir_folder(source, out)
    return {}


for _name in BEIR_NAMES:
    _beir = "hotpotqa" if _name == "hotpotqa-beir" else _name
    register(DatasetSpec(_name, f"beir-{_beir}", _prepare, partial(fetch_beir, _beir), f"BEIR {_beir}"))

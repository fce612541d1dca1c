"""Fixtures of the generate tests: a small BEIR folder of scripted passages."""

from __future__ import annotations

import pytest
from generate_scripted import write_corpus


@pytest.fixture
def corpus_dir(tmp_path):
    return write_corpus(tmp_path)

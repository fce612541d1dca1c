"""Dataset adapters; importing this package registers every named dataset."""

from . import arguana, beir_generic, cranfield, hotpotqa, scifact, squad, trec_dl  # noqa: F401

"""Dataset adapters; importing this package registers every named dataset."""

from . import arguana, arguana_generated, beir_generic, cranfield, hotpotqa, scifact, squad, trec_dl  # noqa: F401

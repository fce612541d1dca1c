"""Importing this module registers every built-in method."""

from . import answer_likelihood, direct_utilsel, pointwise, relsel, utilrank, utilsel  # noqa: F401

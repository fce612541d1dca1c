"""Annotation methods, one module each, behind a registry (:func:`get_method`).

The methods register themselves (:func:`register_method`) when their modules are imported; this
package imports them all, so the registry is complete wherever it is read.
"""

from ...errors import UnknownNameError
from ..config import AnnotateConfig
from . import answer_likelihood, direct_utilsel, pointwise, relsel, utilrank, utilsel  # noqa: F401 - they register
from .base import _METHODS, Method, register_method


def method_names() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str, config: AnnotateConfig) -> Method:
    if name not in _METHODS:
        raise UnknownNameError("annotation method", name, method_names())
    return _METHODS[name](config)


__all__ = ["Method", "get_method", "method_names", "register_method"]

"""Annotation methods, one module each, behind a registry (:func:`get_method`)."""

from .base import Method, get_method, method_names, register_method

__all__ = ["Method", "get_method", "method_names", "register_method"]

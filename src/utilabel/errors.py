"""Exception hierarchy of utilabel.

Library code raises these; the CLI turns them into one clean line and an exit code
(each class's ``exit_code``; :data:`OS_ERROR_EXIT` for an ``OSError``). Never use ``assert`` for
input validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OS_ERROR_EXIT = 7
"""Exit status of an operating-system error (permission denied, not a directory, disk full...)."""


class UtilabelError(Exception):
    """Base class of every error utilabel raises on purpose."""

    exit_code = 1


class DataFormatError(UtilabelError, ValueError):
    """Malformed input file; the message names the file and (1-based) line."""

    exit_code = 3

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class UnknownNameError(UtilabelError, KeyError):
    """A name looked up in a registry (dataset, loss, backend, method) does not exist."""

    exit_code = 2

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would add quotes
        return self.args[0]


class MissingExtraError(UtilabelError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    exit_code = 4

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is required for this feature: pip install 'utilabel[{extra}]'")


class ConfigError(UtilabelError, ValueError):
    """Invalid configuration value or combination of options."""

    exit_code = 2


class DatasetNotAvailableError(UtilabelError):
    """A dataset could neither be found in the source mirror nor downloaded."""

    exit_code = 5


class LLMError(UtilabelError):
    """An LLM backend failed after its retries."""

    exit_code = 6


class IncompleteRunError(UtilabelError):
    """A run finished but some items failed (server errors after retries); re-running retries only those."""

    exit_code = 7


def require(module: str, extra: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise MissingExtraError(module, extra) from exc

"""The ``utilabel`` command: a thin dispatcher over per-stage command modules.

Each module in :data:`COMMAND_MODULES` exposes ``COMMANDS``: a dict mapping a tuple of command
words (``("retrieve", "bm25")``) to ``(configure, run)`` where ``configure(parser)`` adds
arguments and ``run(args) -> int`` calls one library function and renders its result.
The longest matching word prefix of ``argv`` selects the command, so ``utilabel evaluate RUN``
and ``utilabel evaluate rag ...`` can coexist; a bare group word (``utilabel retrieve --help``) lists
its commands. Library errors, and the operating system's (an unwritable output folder), become one
clean line on stderr and an exit code by exception type (``-v`` adds the traceback of an OS error).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import OS_ERROR_EXIT, UtilabelError

COMMAND_MODULES = ["data", "retrieve", "mine", "evaluate", "annotate", "generate", "train", "experiment", "demo",
                   "review"]

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _commands() -> dict[tuple[str, ...], tuple[Command, str]]:
    found: dict[tuple[str, ...], tuple[Command, str]] = {}
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"utilabel.cli.{mod_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"utilabel.cli.{mod_name}":
                continue
            raise
        for words, cmd in mod.COMMANDS.items():
            doc = (cmd[1].__doc__ or "").strip().splitlines()
            found[words] = (cmd, doc[0] if doc else "")
    return found


def _usage(commands) -> str:
    lines = [f"utilabel {__version__}: utility-focused LLM annotation for retrieval and RAG", "", "commands:"]
    for words, (_, doc) in sorted(commands.items()):
        lines.append(f"  {' '.join(words):<22} {doc}")
    lines.append("\nRun 'utilabel COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    match = None
    for n in range(min(len(argv), 3), 0, -1):
        if tuple(argv[:n]) in commands:
            match = tuple(argv[:n])
            break
    if match is None:
        group = {words: cmd for words, cmd in commands.items() if words[0] == argv[0] and len(words) > 1}
        if group and (len(argv) == 1 or argv[1] in ("-h", "--help")):  # e.g. 'utilabel retrieve --help'
            print(_usage(group))
            return 0
        print(f"utilabel: unknown command {' '.join(argv[:2])!r}\n\n{_usage(commands)}", file=sys.stderr)
        return 2
    (configure, run), doc = commands[match]
    parser = argparse.ArgumentParser(prog="utilabel " + " ".join(match), description=run.__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    configure(parser)
    args = parser.parse_args(argv[len(match):])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(run(args) or 0)
    except UtilabelError as exc:
        print(f"utilabel: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # unwritable folder, a file where a folder should be, disk full...
        if args.verbose:
            logging.exception("%s", exc)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"utilabel: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return OS_ERROR_EXIT
    except KeyboardInterrupt:
        print("utilabel: interrupted (completed work is saved; re-run to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

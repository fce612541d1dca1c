"""Child-process host of an isolated llama.cpp server (``LocalServerOptions(isolated=True)``).

Started by :class:`utilabel.llm.backends.llamacpp.LocalServer` as
``python -m utilabel.llm.backends._llamacpp_child SPEC_JSON``: loads the model in-process here, writes
one JSON line (``{"base_url": ...}`` or ``{"error": ...}``) to stdout, then serves until its stdin
closes (the parent stopped it or died) or it is killed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        from .llamacpp import LocalServer, LocalServerOptions

        server = LocalServer(Path(spec["model"]), LocalServerOptions(**{**spec["options"], "isolated": False}))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        sys.stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.write(json.dumps({"base_url": server.base_url, "load_s": server.load_s}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # returns at EOF
    os._exit(0)  # no destructor: the process ends with the server


if __name__ == "__main__":
    main()

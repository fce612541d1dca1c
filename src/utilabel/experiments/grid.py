"""``run_experiment``: run (or resume) a grid with the executor, then write its report.

The one module that imports both :mod:`.runner` and :mod:`.report` (which share :mod:`.results` and
import neither each other), so there is no import cycle between running and reporting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .config import ExperimentConfig
from .report import write_report
from .results import archive_results, restore_results
from .runner import ExperimentRunner

log = logging.getLogger(__name__)


def run_experiment(config: ExperimentConfig, deadline: float | None = None, show_progress: bool = False,
                   on_event: Callable[[str], None] | None = None, archive: str | Path | None = None) -> Path:
    """Run (or resume) the grid, then write the report; returns the report path. With ``archive``
    (a folder holding committed results), an empty output folder starts from the archived results
    and the results are copied back there at the end."""
    if not config.studies:
        raise ConfigError("the experiment config has no studies")
    if archive is not None and restore_results(config.out, archive):
        log.warning("resuming from the results archived in %s", archive)
    runner = ExperimentRunner(config, show_progress=show_progress, on_event=on_event)
    try:
        runner.run(deadline=deadline)
    finally:
        if archive is not None:
            archive_results(config.out, archive)
    return write_report(config, notes=runner.notes)

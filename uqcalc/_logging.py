"""Progress output for scripts: library code logs, the command line decides what is shown.

Library modules log progress and diagnostics on loggers under ``uqcalc`` (INFO) and never
print; :func:`show_progress` is what the ``uqcalc`` command and the study scripts call to put
those lines on stderr. A program embedding uqcalc configures ``logging`` as it likes instead.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["show_progress"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (it may be replaced, e.g. by
    a test harness or a notebook, after the handler was installed)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the property decides
        pass


def show_progress(level: int = logging.INFO) -> None:
    """Show ``uqcalc`` log lines of ``level`` and above on stderr, message only (idempotent)."""
    log = logging.getLogger("uqcalc")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(level)

"""Coverage bench: whose error bars can I trust? (``METHODS.md`` §6).

:class:`CoverageStudy` fits backends on a training design, propagates every property with each
ensemble, scores the intervals against references (:mod:`.references`: a teacher calculator,
a table, held-out configurations) and checkpoints every step; :mod:`.metrics` holds the
coverage/width metrics, :mod:`.report` the tables, :mod:`.figures` the plots and
:func:`run_teacher_study` the embedded W teacher–student study (Perez et al., npj Comput.
Mater. 11, 263 (2025) format), :func:`run_capacity_sweep` (coverage vs student capacity and N/P)
and :func:`run_dft_study` (the Wood et al. VASP-PBE set).
"""

from .capacity import run_capacity_sweep
from .dft import run_dft_study
from .metrics import (
    calibration_curve,
    grouped_summary,
    interval_errors,
    miscalibration_area,
    summarize,
)
from .references import (
    CalculatorReference,
    TableReference,
    heldout_coverage,
    teacher_reference,
)
from .report import CoverageResults
from .study import BackendSpec, CoverageStudy
from .teacher import (
    VALIDATION_GROUPS,
    run_teacher_study,
    teacher_backends,
    teacher_student,
)

__all__ = [
    "VALIDATION_GROUPS",
    "BackendSpec",
    "CalculatorReference",
    "CoverageResults",
    "CoverageStudy",
    "TableReference",
    "calibration_curve",
    "grouped_summary",
    "heldout_coverage",
    "interval_errors",
    "miscalibration_area",
    "run_capacity_sweep",
    "run_dft_study",
    "run_teacher_study",
    "summarize",
    "teacher_backends",
    "teacher_reference",
    "teacher_student",
]

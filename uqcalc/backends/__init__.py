"""UQ backends: each ``fit(design) -> ParameterEnsemble`` (scikit-learn estimator contract).

``POPS`` (Swinburne & Perez 2025), ``BayesianRidge`` (MacKay 1992 evidence maximisation),
``MCMC`` (collapsed emcee over the hyperparameters) and ``Bootstrap`` (by configuration);
``evidence_ridge`` is the shared evidence fit on sufficient statistics. Hyperparameters are
checked by one routine at the start of every ``fit`` against each class's declarative
``_parameter_constraints`` (:mod:`.params`); a bad value raises :class:`InvalidParameterError`.
"""

from .base import Backend
from .bayes import BayesianRidge, evidence_ridge
from .bootstrap import Bootstrap
from .mcmc import MCMC
from .params import InvalidParameterError
from .pops import POPS

__all__ = ["MCMC", "POPS", "Backend", "BayesianRidge", "Bootstrap", "InvalidParameterError", "evidence_ridge"]

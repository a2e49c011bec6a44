"""uqcalc: misspecification-aware uncertainty quantification for linear interatomic potentials."""

__version__ = "0.1.0"

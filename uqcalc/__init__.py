"""uqcalc: misspecification-aware uncertainty quantification for linear interatomic potentials."""

__version__ = "0.1.0"

# Public names resolved on first access, so ``import uqcalc`` stays light (no LAMMPS,
# no scipy.stats) and a submodule's import error surfaces only where it is used.
_LAZY = {
    "UQCalculator": "uqcalc.calculator",
    "LinearPotential": "uqcalc.calculator",
    "CommitteeCalculator": "uqcalc.calculator",
    "save_model": "uqcalc.calculator",
    "LinearModel": "uqcalc.model",
    "propagate": "uqcalc.propagate",
}

__all__ = ["CommitteeCalculator", "LinearModel", "LinearPotential", "UQCalculator", "__version__", "propagate",
           "save_model"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'uqcalc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

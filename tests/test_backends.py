"""The contract every backend shares: the parameter table, its one validation routine, the
keyword-only scikit-learn constructor and the evidence prior declared once."""

import inspect
import json
import re
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import emcee
import numpy as np
import pytest

from uqcalc.backends import (
    MCMC,
    POPS,
    Backend,
    BayesianRidge,
    Bootstrap,
    InvalidParameterError,
    evidence_ridge,
)
from uqcalc.backends.bayes import EVIDENCE, GAMMA_PRIOR
from uqcalc.backends.params import Interval, Options, fill_doc, validate_params
from uqcalc.design import DesignMatrix

BACKENDS = [POPS, BayesianRidge, MCMC, Bootstrap]


@pytest.fixture(scope="module")
def design():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return DesignMatrix(X=X, y=X @ [1.0, -0.5, 0.2] + 0.1 * rng.normal(size=40), config=np.arange(40) // 2)


# (backend, parameter, bad value); every constrained parameter appears at least once
_EVIDENCE_BAD = [("alpha_1", -1e-6), ("alpha_2", "1e-6"), ("lambda_1", -1.0), ("lambda_2", None),
                 ("alpha_init", 0.0), ("lambda_init", -1.0), ("max_iter", 0), ("max_iter", 10.0),
                 ("tol", -1e-6), ("tol", float("nan"))]
BAD = [
    *[(cls, name, value) for cls in (POPS, BayesianRidge) for name, value in _EVIDENCE_BAD],
    *[(MCMC, name, value) for name, value in _EVIDENCE_BAD if name in GAMMA_PRIOR.names],
    (POPS, "posterior", "nope"),
    (POPS, "box_scale", 0.0),
    (POPS, "box_scale", -1.0),
    (POPS, "sampler", "random"),
    (POPS, "n_members", -1),
    (POPS, "n_members", 2.5),
    (POPS, "n_members", True),
    (POPS, "percentile_clipping", 60),
    (POPS, "percentile_clipping", 50.0),
    (POPS, "percentile_clipping", -0.5),
    (POPS, "row_kinds", "virial"),
    (POPS, "row_kinds", ("energy", "virial")),
    (POPS, "row_kinds", ()),
    (POPS, "leverage_percentile", 100),
    (POPS, "leverage_percentile", -1.0),
    (POPS, "min_residual", -0.1),
    (POPS, "min_leverage", -1e-12),
    (POPS, "mode_threshold", 1.0),
    (POPS, "mode_threshold", -1e-8),
    (POPS, "ridge", -1.0),
    (POPS, "ridge", "auto"),
    (POPS, "chunk_rows", 0),
    (POPS, "random_state", -1),
    (POPS, "random_state", "seed"),
    (BayesianRidge, "n_members", -1),
    (BayesianRidge, "chunk_rows", 0),
    (BayesianRidge, "random_state", 1.5),
    (MCMC, "mode", "gibbs"),
    (MCMC, "n_walkers", 1),
    (MCMC, "n_steps", 0),
    (MCMC, "burn_in", -1),
    (MCMC, "thin", 0),
    (MCMC, "n_members", 0),
    (MCMC, "temperature", 0.0),
    (MCMC, "temperature", "hot"),
    (MCMC, "fix_hyperparameters", (1.0,)),
    (MCMC, "fix_hyperparameters", (0.0, None)),
    (MCMC, "fix_hyperparameters", "ab"),
    (MCMC, "moves", "DEMove"),
    (MCMC, "moves", []),
    (MCMC, "moves", [(emcee.moves.DEMove(), "heavy")]),
    (MCMC, "random_state", -3),
    (MCMC, "store", "chain.txt"),
    (MCMC, "store", 3),
    (MCMC, "progress", "yes"),
    (Bootstrap, "n_members", 0),
    (Bootstrap, "ridge", -1.0),
    (Bootstrap, "random_state", [1, 2]),
    (Bootstrap, "progress", 1),
    (Bootstrap, "memory_limit", 0),
]


def _id(case):
    cls, name, value = case
    return f"{cls.__name__}-{name}-{value!r}"


def test_every_constrained_parameter_has_a_bad_value():
    covered = {(cls, name) for cls, name, _ in BAD}
    assert covered == {(cls, name) for cls in BACKENDS for name in cls._parameter_constraints}


@pytest.mark.parametrize("case", BAD, ids=[_id(c) for c in BAD])
def test_bad_value_raises_naming_backend_parameter_and_value(case, design):
    cls, name, value = case
    backend = cls(**{name: value})  # the constructor only stores (sklearn contract) ...
    assert getattr(backend, name) is value
    pattern = rf"^{cls.__name__}: {name} must be .+, got {re.escape(repr(value))}$"
    with pytest.raises(InvalidParameterError, match=pattern) as err:
        backend.fit(design)  # ... fit validates, before touching the data
    # a ValueError for a bad value and a TypeError for a bad type: the error is both
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)


@pytest.mark.parametrize("backend, message", [
    (POPS(percentile_clipping=60), "POPS: percentile_clipping must be a float in [0, 50), got 60"),
    (POPS(n_members=-1), "POPS: n_members must be an int in [0, inf) or None, got -1"),
    (POPS(posterior="nope"), "POPS: posterior must be one of 'hypercube', 'ensemble', got 'nope'"),
    (BayesianRidge(alpha_init=0), "BayesianRidge: alpha_init must be a float in (0, inf) or None, got 0"),
    (MCMC(temperature=-1), "MCMC: temperature must be a float in (0, inf) or 'natural', got -1"),
    (MCMC(store="c.txt"), "MCMC: store must be None or a path ending in .h5, .hdf5, .hdf or .nc, got 'c.txt'"),
    (MCMC(n_steps=500, burn_in=500), "MCMC: need burn_in < n_steps, got burn_in=500, n_steps=500"),
    (Bootstrap(ridge=-1.0), "Bootstrap: ridge must be a float in [0, inf) or None, got -1.0"),
])
def test_messages(backend, message, design):
    with pytest.raises(InvalidParameterError) as err:
        backend.fit(design)
    assert str(err.value) == message


GOOD = [
    (POPS, {"percentile_clipping": 0, "leverage_percentile": 0.0, "n_members": 0, "min_residual": 0,
            "min_leverage": 0.0, "mode_threshold": 0.0, "ridge": 0.0, "chunk_rows": 1}),
    (POPS, {"percentile_clipping": 49.999, "leverage_percentile": 99.9, "n_members": None,
            "mode_threshold": 0.999, "ridge": None, "row_kinds": "energy"}),
    (POPS, {"n_members": np.int64(3), "row_kinds": ["energy", "force"], "random_state": np.random.default_rng(0)}),
    (POPS, {"row_kinds": ("stress",), "random_state": np.random.SeedSequence(1), "sampler": "lhs",
            "posterior": "ensemble"}),
    (POPS, {"alpha_1": 0.0, "alpha_2": 0, "lambda_1": 0.0, "lambda_2": 0.0, "alpha_init": 1e-300,
            "lambda_init": 5, "max_iter": 1, "tol": 0}),
    (BayesianRidge, {"n_members": 0, "chunk_rows": 1, "random_state": np.random.PCG64(2), "tol": 0.0}),
    (MCMC, {"burn_in": 0, "n_steps": 1, "n_walkers": 2, "thin": 1, "n_members": 1, "progress": True}),
    (MCMC, {"burn_in": 99, "n_steps": 100, "temperature": "natural", "fix_hyperparameters": (None, None)}),
    (MCMC, {"temperature": 1e-9, "fix_hyperparameters": [1.0, None], "moves": emcee.moves.DEMove(),
            "store": "c.h5"}),
    (MCMC, {"temperature": 2, "fix_hyperparameters": (np.float64(2.0), 3), "store": Path("c.nc"),
            "moves": [emcee.moves.DEMove(), emcee.moves.StretchMove()]}),
    (MCMC, {"moves": [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)], "store": Path("c.hdf5"),
            "alpha_1": 0.0, "lambda_2": 0}),
    (Bootstrap, {"n_members": 1, "ridge": 0, "memory_limit": 1.0, "progress": np.bool_(False)}),
]


@pytest.mark.parametrize("cls, params", GOOD, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(GOOD)])
def test_boundary_values_pass(cls, params):
    cls(**params)._validate_params()


@pytest.mark.parametrize("backend", [
    POPS(percentile_clipping=0.0, leverage_percentile=0.0, n_members=0, random_state=0),
    POPS(posterior="ensemble", n_members=None, ridge=0.0, max_iter=1, random_state=0),
    BayesianRidge(n_members=0, chunk_rows=1, alpha_1=0.0, alpha_2=0.0, lambda_1=0.0, lambda_2=0.0),
    Bootstrap(n_members=1, ridge=0, memory_limit=1.0, random_state=np.random.SeedSequence(3)),
], ids=repr)
def test_boundary_values_fit(backend, design):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # max_iter=1 does not converge, as documented
        ens = backend.fit(design)
    json.dumps(ens.metadata)


@pytest.mark.parametrize("cls, name, value", [
    (POPS, "percentile_clipping", 60), (BayesianRidge, "tol", -1.0), (MCMC, "thin", 0), (Bootstrap, "n_members", 0),
])
def test_set_params_then_fit_validates(cls, name, value, design):
    backend = cls()
    assert backend.set_params(**{name: value}) is backend  # stored, not checked ...
    with pytest.raises(InvalidParameterError, match=rf"^{cls.__name__}: {name} must be"):
        backend.fit(design)  # ... until fit


@pytest.mark.parametrize("cls", BACKENDS)
def test_positional_construction_raises(cls):
    with pytest.raises(TypeError, match="positional"):
        cls(100)
    assert all(p.kind is p.KEYWORD_ONLY for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self")


@pytest.mark.parametrize("backend", [
    POPS(percentile_clipping=5.0, row_kinds=("energy",), random_state=3, tol=1e-4),
    BayesianRidge(n_members=7, alpha_init=2.0, random_state=np.random.SeedSequence(4)),
    MCMC(mode="full", n_steps=100, burn_in=10, fix_hyperparameters=(None, 1.0), moves=emcee.moves.DEMove()),
    Bootstrap(n_members=9, ridge=0.5, memory_limit=1e6),
], ids=lambda b: type(b).__name__)
def test_clone_and_get_params_round_trip(backend):
    params = backend.get_params()
    assert sorted(params) == sorted(type(backend)._parameter_constraints)
    twin = type(backend)(**params)
    assert twin.get_params() == params and repr(twin) == repr(backend)
    clone = backend.clone()
    assert clone is not backend and clone.get_params() == params
    assert all(clone.get_params()[k] is v for k, v in params.items())  # stored, not copied or coerced
    assert backend.clone(n_members=3).n_members == 3 and backend.n_members == params["n_members"]
    with pytest.raises(ValueError, match="invalid parameter"):
        backend.set_params(nope=1)


@pytest.mark.parametrize("cls", BACKENDS)
def test_defaults_are_valid_and_repr_is_bare(cls):
    cls()._validate_params()
    assert repr(cls()) == f"{cls.__name__}()"


# -- the evidence prior, declared once ----------------------------------------------------------


def _defaults(func):
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("owner, group", [
    (BayesianRidge, EVIDENCE), (POPS, EVIDENCE), (MCMC, GAMMA_PRIOR), (evidence_ridge, EVIDENCE),
], ids=["BayesianRidge", "POPS", "MCMC", "evidence_ridge"])
def test_shared_hyperparameters_come_from_one_declaration(owner, group):
    defaults = _defaults(owner.__init__ if isinstance(owner, type) else owner)
    assert {n: defaults[n] for n in group.names} == group.defaults
    if isinstance(owner, type):
        assert all(owner._parameter_constraints[n] is group.constraints[n] for n in group.names)
    # the docstring text is the group's, inserted once per owner
    for line in group.doc.splitlines():
        assert line.strip() in owner.__doc__


def test_evidence_groups():
    assert GAMMA_PRIOR.names == ("alpha_1", "alpha_2", "lambda_1", "lambda_2")
    assert EVIDENCE.names == (*GAMMA_PRIOR.names, "alpha_init", "lambda_init", "max_iter", "tol")
    assert EVIDENCE.alpha_1 == 1e-6 and EVIDENCE.max_iter == 300 and EVIDENCE.alpha_init is None
    with pytest.raises(AttributeError):
        EVIDENCE.nope  # noqa: B018
    assert EVIDENCE.values(BayesianRidge(tol=0.5))["tol"] == 0.5


def test_evidence_ridge_validates_its_prior():
    X = np.eye(3)
    with pytest.raises(InvalidParameterError, match=r"^evidence_ridge: tol must be a float in \[0, inf\), got -1$"):
        evidence_ridge(X, np.ones(3), 3.0, 3, tol=-1)


def test_pops_select_validates_candidates_before_fitting(design):
    with pytest.raises(InvalidParameterError, match="POPS: percentile_clipping"):
        POPS().select(design, design, candidates=[{"percentile_clipping": 1.0}, {"percentile_clipping": 60}])
    with pytest.raises(InvalidParameterError, match="POPS: sampler"):
        POPS(sampler="nope").select(design, design)


# -- the machinery ----------------------------------------------------------------------------


def test_subclass_contract_is_checked_when_the_class_is_written():
    with pytest.raises(TypeError, match="undeclared: \\['b'\\]"):
        class Missing(Backend):
            _parameter_constraints: ClassVar[dict] = {"a": [None]}

            def __init__(self, *, a=None, b=None):
                self._store_params(locals())

    with pytest.raises(TypeError, match="keyword-only"):
        class Positional(Backend):
            _parameter_constraints: ClassVar[dict] = {"a": [None]}

            def __init__(self, a=None):
                self._store_params(locals())


def test_constraint_objects():
    closed = Interval(Integral, 0, 1, closed="both")
    assert closed.is_satisfied_by(0) and closed.is_satisfied_by(1) and not closed.is_satisfied_by(2)
    assert not closed.is_satisfied_by(True) and not closed.is_satisfied_by(0.0) and str(closed) == "an int in [0, 1]"
    real = Interval(Real, None, 0, closed="neither")
    assert real.is_satisfied_by(-1) and not real.is_satisfied_by(0) and not real.is_satisfied_by(float("nan"))
    assert str(real) == "a float in (-inf, 0)"
    assert str(Options(str, ["a"])) == "'a'" and not Options(str, ["a"]).is_satisfied_by(np.array(["a"]))
    with pytest.raises(ValueError, match="unknown parameter constraint"):
        validate_params("X", {"a": ["positive"]}, {"a": 1})
    validate_params("X", {}, {"unlisted": object()})  # names without an entry are not checked


def test_fill_doc_indents_the_block():
    @fill_doc(block="a : int\n    An a.")
    def f():
        """Doc.

        Parameters
        ----------
        {block}
        b : int
        """

    assert "\n        a : int\n            An a.\n        b : int" in f.__doc__

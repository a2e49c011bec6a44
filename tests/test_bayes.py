"""BayesianRidge backend and the reusable evidence_ridge (MacKay 1992)."""

import numpy as np
import pytest

from uqcalc.backends import BayesianRidge
from uqcalc.backends.bayes import evidence_ridge, gram_eigh, log_evidence
from uqcalc.design import DesignMatrix
from uqcalc.ensemble import ParameterEnsemble

sklearn_linear = pytest.importorskip("sklearn.linear_model")


def _problem(n=200, P=8, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, P)) @ (np.eye(P) + 0.5 * rng.normal(size=(P, P)))  # correlated columns
    theta = rng.normal(size=P)
    y = X @ theta + noise * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("n, P, tol", [(200, 8, 1e-3), (200, 8, 1e-10), (10, 20, 1e-10)])
def test_matches_sklearn(n, P, tol):
    X, y = _problem(n, P)
    sk = sklearn_linear.BayesianRidge(fit_intercept=False, tol=tol, compute_score=True).fit(X, y)
    # same start as sklearn (1/Var(y)) so even the early stop at tol=1e-3 is the same iterate
    ens = BayesianRidge(tol=tol, alpha_init=1.0 / y.var(), random_state=0).fit(DesignMatrix(X=X, y=y))
    # sklearn takes ‖y − Xm‖² from the rows, we from XᵀX, Xᵀy, yᵀy: rounding-level differences
    np.testing.assert_allclose(ens.theta, sk.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ens.metadata["alpha"], sk.alpha_, rtol=1e-6)
    np.testing.assert_allclose(ens.metadata["lambda_"], sk.lambda_, rtol=1e-6)
    np.testing.assert_allclose(ens.covariance, sk.sigma_, rtol=1e-6, atol=1e-12)
    assert ens.noise_variance == pytest.approx(1.0 / sk.alpha_, rel=1e-6)
    # log evidence + Gamma hyperprior terms = sklearn's final score
    a, lam = ens.metadata["alpha"], ens.metadata["lambda_"]
    prior = 1e-6 * (np.log(a) - a + np.log(lam) - lam)
    assert ens.metadata["log_evidence"] + prior == pytest.approx(sk.scores_[-1], rel=1e-6)


def test_weighted_rows_match_sklearn_on_prescaled_rows():
    X, y = _problem()
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    ens = BayesianRidge(tol=1e-10).fit(DesignMatrix(X=X, y=y, w=w))
    # the backend works in the weighted space: rows × √w, N = number of rows
    Xs, ys = X * np.sqrt(w)[:, None], y * np.sqrt(w)
    sk = sklearn_linear.BayesianRidge(fit_intercept=False, tol=1e-10).fit(Xs, ys)
    np.testing.assert_allclose(ens.theta, sk.coef_, rtol=1e-6)
    np.testing.assert_allclose(ens.metadata["alpha"], sk.alpha_, rtol=1e-6)
    np.testing.assert_allclose(ens.metadata["lambda_"], sk.lambda_, rtol=1e-6)


def test_posterior_equals_analytic_formulas():
    X, y = _problem(seed=3)
    res, info = evidence_ridge(X.T @ X, X.T @ y, y @ y, len(y), tol=1e-12, full_output=True)
    a, lam = res.alpha, res.lambda_
    A = lam * np.eye(X.shape[1]) + a * X.T @ X
    np.testing.assert_allclose(res.covariance, np.linalg.inv(A), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.theta, a * np.linalg.solve(A, X.T @ y), rtol=1e-10)
    # fixed point of MacKay's updates (converged to tol=1e-12)
    s = np.linalg.eigvalsh(X.T @ X)
    gamma = np.sum(a * s / (lam + a * s))
    sse = np.sum((y - X @ res.theta) ** 2)
    assert info["converged"]
    assert lam == pytest.approx((gamma + 2e-6) / (res.theta @ res.theta + 2e-6), rel=1e-8)
    assert a == pytest.approx((len(y) - gamma + 2e-6) / (sse + 2e-6), rel=1e-8)
    # log_evidence against the dense formula
    dense = (
        0.5 * len(s) * np.log(lam) + 0.5 * len(y) * np.log(a) - 0.5 * a * sse
        - 0.5 * lam * res.theta @ res.theta - 0.5 * np.linalg.slogdet(A)[1] - 0.5 * len(y) * np.log(2 * np.pi)
    )
    assert log_evidence(a, lam, res.eigvals, res.eigvecs.T @ X.T @ y, y @ y, len(y)) == pytest.approx(dense, rel=1e-10)
    # reusing a precomputed eigendecomposition gives the same result
    again = evidence_ridge(X.T @ X, X.T @ y, y @ y, len(y), tol=1e-12, eig=gram_eigh(X.T @ X))
    np.testing.assert_array_equal(again.theta, res.theta)


def test_members_follow_the_posterior():
    X, y = _problem(n=60, P=3, noise=1.0, seed=2)
    M = 20_000
    ens = BayesianRidge(n_members=M, random_state=7).fit(DesignMatrix(X=X, y=y))
    L = np.linalg.cholesky(ens.covariance)
    z = np.linalg.solve(L, (ens.members - ens.theta).T).T  # should be N(0, I)
    # standard errors: mean 1/√M = 0.007, covariance entries √2/√M = 0.01; allow 5σ
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=5 / np.sqrt(M))
    np.testing.assert_allclose(np.cov(z.T), np.eye(3), atol=5 * np.sqrt(2 / M))


def test_same_seed_identical_members_and_params():
    X, y = _problem()
    d = DesignMatrix(X=X, y=y)
    a = BayesianRidge(n_members=50, random_state=11).fit(d)
    b = BayesianRidge(n_members=50, random_state=11).fit(d)
    c = BayesianRidge(n_members=50, random_state=12).fit(d)
    assert a.members.tobytes() == b.members.tobytes()
    assert not np.array_equal(a.members, c.members)
    assert a.metadata["random_state"] == 11 and a.metadata["backend"] == "BayesianRidge"
    assert set(a.metadata["versions"]) >= {"numpy", "scipy", "uqcalc"}
    assert isinstance(a, ParameterEnsemble) and a.n_members == 50


def test_estimator_contract():
    est = BayesianRidge(n_members=5, random_state=1)
    params = est.get_params()
    assert params["n_members"] == 5 and params["alpha_1"] == 1e-6
    assert est.set_params(tol=1e-4) is est and est.tol == 1e-4
    with pytest.raises(ValueError, match="invalid parameter"):
        est.set_params(nope=1)
    assert est.clone().get_params() == est.get_params()
    assert repr(est) == "BayesianRidge(n_members=5, random_state=1, tol=0.0001)"
    BayesianRidge(n_members=-1)  # the constructor does not validate (sklearn contract) ...
    with pytest.raises(ValueError):
        BayesianRidge(n_members=-1).fit(DesignMatrix(X=np.eye(3), y=np.ones(3)))  # ... fit does


def test_evidence_survives_dead_feature_columns():
    """Saturated activations give feature columns of ~1e-13 (CHGNet's readout on the Wood W set):
    their Gram eigenvalues round to 0 while rounding leaves ~1e-8 of Xᵀy along them, and the
    evidence iteration then drove λ → 0 and ‖m‖ → ∞ (overflow). Modelled here exactly so."""
    import warnings

    from uqcalc.backends.bayes import evidence_ridge

    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(500), rng.normal(size=(500, 3)), np.zeros((500, 2))])
    # a well-fitted energy (noise 1 meV: α ~ 1e6) with a large coefficient (the per-atom zero)
    y = -8.9 + X[:, 1:4] @ [0.3, -0.2, 0.1] + 1e-3 * rng.normal(size=500)
    Xty = X.T @ y
    # rounding residue along the dead directions: once λ < (α b)²/γ the iteration collapses
    Xty[4:] = [3e-6, -2e-6]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no non-convergence
        res = evidence_ridge(X.T @ X, Xty, float(y @ y), 500)
    assert np.all(np.isfinite(res.theta))
    lsq = np.linalg.lstsq(X[:, :4], y, rcond=None)[0]
    np.testing.assert_allclose(X @ res.theta, X[:, :4] @ lsq, atol=1e-6)  # fits as least squares does


def test_seeded_members_do_not_depend_on_the_lapack_eigenvector_signs(monkeypatch):
    """LAPACK builds (CPU kernels) may return any eigenvector with either sign; members drawn
    from the same seed must be the same on every machine. A LAPACK that flips every other
    column is simulated by wrapping scipy's eigh."""
    import uqcalc.backends.bayes as bayes

    X, y = _problem()
    d = DesignMatrix(X=X, y=y)
    here = BayesianRidge(n_members=20, random_state=3).fit(d)
    real_eigh = bayes.eigh

    def flipped_eigh(a, *args, **kwargs):
        s, V = real_eigh(a, *args, **kwargs)
        return s, V * np.where(np.arange(V.shape[1]) % 2, -1.0, 1.0)

    monkeypatch.setattr(bayes, "eigh", flipped_eigh)
    there = BayesianRidge(n_members=20, random_state=3).fit(d)
    np.testing.assert_allclose(there.members, here.members, rtol=0, atol=1e-12 * np.abs(here.members).max())

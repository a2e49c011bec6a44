"""ParameterEnsemble: bounds, std conventions, chunking, sampling, persistence."""

import itertools
import json
import zipfile

import numpy as np
import pytest

from uqcalc.ensemble import SCHEMA_VERSION, ParameterEnsemble


def _box_ensemble(P=7, R=5, M=64, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.normal(size=(P, R)))
    lower = -rng.uniform(0.1, 1.0, R)
    upper = rng.uniform(0.1, 1.0, R) + 0.2  # box not centred on theta
    ens = ParameterEnsemble(rng.normal(size=P), axes=axes, lower=lower, upper=upper, **kwargs)
    members = ens.sample_box(M, random_state=seed)
    return ParameterEnsemble(
        ens.theta, members=members, axes=axes, lower=lower, upper=upper, **kwargs
    )


def test_exact_bounds_attained_at_a_corner():
    ens = _box_ensemble(R=5)
    X = np.random.default_rng(1).normal(size=(40, ens.n_params))
    pred = ens.predict(X, bounds="exact")
    corners = np.array(list(itertools.product(*zip(ens.lower, ens.upper))))  # (2^R, R)
    values = X @ (ens.theta[:, None] + ens.axes @ corners.T)  # (n, 2^R)
    # closed form vs brute force over all 32 corners: same arithmetic up to rounding
    np.testing.assert_allclose(pred.lower, values.min(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred.upper, values.max(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pred.mean, X @ ens.theta)


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "lhs"])
def test_exact_bounds_contain_sampled_bounds(method):
    ens0 = _box_ensemble(M=0)
    members = ens0.sample_box(500, random_state=3, method=method)
    ens = ParameterEnsemble(ens0.theta, members, ens0.axes, ens0.lower, ens0.upper)
    X = np.random.default_rng(2).normal(size=(100, ens.n_params))
    exact = ens.predict(X, bounds="exact")
    sampled = ens.predict(X, bounds="sampled")
    tol = 1e-12
    assert np.all(exact.lower <= sampled.lower + tol)
    assert np.all(sampled.upper <= exact.upper + tol)
    assert np.all(sampled.upper - sampled.lower < exact.upper - exact.lower)
    # every draw lies in the box
    z = (members - ens.theta) @ ens.axes
    assert np.all(z >= ens.lower - tol) and np.all(z <= ens.upper + tol)


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "lhs"])
def test_sample_box_seeded(method):
    ens = _box_ensemble(M=0)
    a = ens.sample_box(33, random_state=5, method=method)
    b = ens.sample_box(33, random_state=5, method=method)
    c = ens.sample_box(33, random_state=6, method=method)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_box_second_moment_matches_samples():
    ens = _box_ensemble(P=4, R=3, M=0)
    d = ens.sample_box(200_000, random_state=0) - ens.theta
    mc = d.T @ d / len(d)
    exact = ens.box_second_moment()
    # Monte-Carlo error of a second moment with 2e5 draws: ~ few × 1/√2e5 ≈ 1% of the scale
    np.testing.assert_allclose(mc, exact, atol=0.02 * np.abs(exact).max())


def test_mean_is_theta_and_std_conventions():
    rng = np.random.default_rng(4)
    P, M = 5, 300
    theta = rng.normal(size=P)
    members = theta + 0.5 + 0.1 * rng.normal(size=(M, P))  # member mean far from theta
    X = rng.normal(size=(50, P))
    ens = ParameterEnsemble(theta, members)
    pred = ens.predict(X)
    np.testing.assert_array_equal(pred.mean, X @ theta)
    assert pred.bounds == "sampled"
    # without a covariance: members' std around their mean, ddof=1
    np.testing.assert_allclose(pred.std, np.std(X @ members.T, axis=1, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(pred.lower, (X @ members.T).min(axis=1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(pred.members, members @ X.T, rtol=0, atol=1e-13)  # BLAS order
    # with a covariance: sqrt(x Σ x)
    A = rng.normal(size=(P, P))
    cov = A @ A.T
    ens = ParameterEnsemble(theta, members, covariance=cov, noise_variance=0.3)
    pred = ens.predict(X, bounds="gaussian", z=1.5)
    std = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
    np.testing.assert_allclose(pred.std, std, rtol=1e-12)
    np.testing.assert_allclose(pred.upper, X @ theta + 1.5 * std, rtol=1e-12)
    noisy = ens.predict(X, bounds="gaussian", z=1.5, include_noise=True)
    np.testing.assert_allclose(noisy.std, np.sqrt(std**2 + 0.3), rtol=1e-12)
    np.testing.assert_allclose(noisy.lower, X @ theta - 1.5 * np.sqrt(std**2 + 0.3), rtol=1e-12)
    # noise never changes sampled bounds
    np.testing.assert_array_equal(ens.predict(X, include_noise=True).lower, ens.predict(X).lower)


def test_chunked_predict_equals_unchunked_and_shapes():
    ens = _box_ensemble(M=50, covariance=np.eye(7), noise_variance=0.1)
    X = np.random.default_rng(5).normal(size=(23, 3, 7))  # forces-like (N, 3, P)
    for bounds in ("exact", "sampled", "gaussian"):
        full = ens.predict(X, bounds=bounds)
        small = ens.predict(X, bounds=bounds, chunk_rows=4)
        assert full.mean.shape == (23, 3) and full.members.shape == (50, 23, 3)
        for name in ("mean", "std", "lower", "upper", "members"):
            np.testing.assert_allclose(getattr(small, name), getattr(full, name), rtol=1e-14, atol=1e-14)
    one = ens.predict(X[0, 0])
    assert one.mean.shape == () and one.members.shape == (50,)
    assert ens.predict(X, return_members=False).members is None


def test_predict_errors():
    ens = ParameterEnsemble(np.zeros(3))
    with pytest.raises(ValueError, match="last dimension"):
        ens.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="box"):
        ens.predict(np.zeros((2, 3)), bounds="exact")
    with pytest.raises(ValueError, match="members"):
        ens.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="noise_variance"):
        ParameterEnsemble(np.zeros(3), covariance=np.eye(3)).predict(np.zeros((1, 3)), bounds="gaussian", include_noise=True)
    with pytest.raises(ValueError, match="orthonormal"):
        ParameterEnsemble(np.zeros(3), axes=np.ones((3, 1)), lower=[0.0], upper=[1.0])
    with pytest.raises(ValueError, match="together"):
        ParameterEnsemble(np.zeros(3), axes=np.eye(3))


def _assert_same(a, b):
    for name in ("theta", "members", "axes", "lower", "upper", "covariance"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None
        else:
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()
    assert a.noise_variance == b.noise_variance


def test_save_load_round_trip_bit_exact(tmp_path):
    ens = _box_ensemble(
        covariance=np.random.default_rng(0).normal(size=(7, 7)),
        noise_variance=0.1 / 3,
        metadata={"backend": "POPS", "params": {"row_kinds": ["energy"], "seed": np.int64(3)}},
    )
    path = tmp_path / "ens.uq"  # any suffix: written to exactly this path
    ens.save(path)
    back = ParameterEnsemble.load(path)
    _assert_same(ens, back)
    assert back.metadata["params"]["seed"] == 3
    plain = ParameterEnsemble(np.arange(3.0))
    plain.save(tmp_path / "plain.npz")
    _assert_same(plain, ParameterEnsemble.load(tmp_path / "plain.npz"))
    with zipfile.ZipFile(path) as z:  # no pickled objects: every member is a plain .npy
        assert all(name.endswith(".npy") for name in z.namelist())


def test_load_rejects_damaged_files(tmp_path):
    ens = _box_ensemble()
    path = tmp_path / "ens.npz"
    ens.save(path)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        ParameterEnsemble.load(truncated)

    flipped = bytearray(data)
    at = data.find(ens.theta.tobytes())
    assert at > 0
    flipped[at + 3] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupted"):
        ParameterEnsemble.load(bad)

    # a valid zip whose arrays no longer match the header's checksum
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["members"] = arrays["members"].copy()
    arrays["members"][0, 0] += 1e-12
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(ValueError, match="checksum"):
        ParameterEnsemble.load(tmp_path / "tampered.npz")

    header = json.loads(str(arrays["__header__"]))
    header["schema"] = SCHEMA_VERSION + 1
    arrays = {k: v for k, v in arrays.items() if k != "members"}
    with np.load(path) as f:
        arrays["members"] = f["members"]
    arrays["__header__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ValueError, match="schema version"):
        ParameterEnsemble.load(tmp_path / "future.npz")

    np.savez(tmp_path / "other.npz", theta=np.zeros(3))
    with pytest.raises(ValueError, match="header"):
        ParameterEnsemble.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        ParameterEnsemble.load(tmp_path / "missing.npz")


def test_predict_memory_is_chunked():
    import tracemalloc

    ens = _box_ensemble(P=7, R=5, M=2000)
    X = np.random.default_rng(0).normal(size=(50_000, 7))
    ens.predict(X[:10], return_members=False)
    for bounds in ("exact", "sampled"):
        tracemalloc.start()
        ens.predict(X, bounds=bounds, return_members=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # 4 outputs of N floats + one (chunk × M) block of 2²² floats; N × M would be 800 MB
        assert peak < 4 * X.shape[0] * 8 + 2 * (1 << 22) * 8, (bounds, peak)

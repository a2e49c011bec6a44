"""DesignMatrix: rows, targets, weights, parallel build, disk cache (uqcalc.design)."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from ase.build import bulk

from uqcalc.descriptors import PairBasis
from uqcalc.design import DesignMatrix

THETA = np.array([-8.0, 2.0, -1.5, 0.7, -0.2, 0.05, 0.3])


def model():
    return PairBasis(species=["W"], r_cut=4.5, r_min=2.0, n_basis=6)


def frames_labelled_by(descriptor, theta, n=6, seed=0):
    """Frames labelled exactly by the linear model (theta), so a least-squares fit must return theta."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = bulk("W", "bcc", a=3.15 + 0.03 * i, cubic=True).repeat((2, 2, 1 + i % 2))
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        out = descriptor.rows(atoms).evaluate(theta)
        atoms.info["REF_energy"] = float(out["energy"])
        if i != 1:
            atoms.arrays["REF_forces"] = out["forces"]
        if i % 2 == 0:
            atoms.info["REF_stress"] = out["stress"]
        atoms.info["group"] = "even" if i % 2 == 0 else "odd"
        frames.append(atoms)
    return frames


def test_rows_targets_and_labels():
    d = model()
    frames = frames_labelled_by(d, THETA)
    design = DesignMatrix.build(frames, d)
    n_force = sum(3 * len(a) for a in frames if "REF_forces" in a.arrays)
    assert (design.kind == "energy").sum() == 6
    assert (design.kind == "force").sum() == n_force
    assert (design.kind == "stress").sum() == 6 * 3
    # energy rows are per atom: X.theta = E/N
    e = design.rows_of("energy")
    np.testing.assert_allclose(design.X[e] @ THETA, [a.info["REF_energy"] / len(a) for a in frames], rtol=1e-12)
    np.testing.assert_allclose(design.X @ THETA, design.y, atol=1e-10)
    # an exactly representable training set must be fitted exactly by least squares
    Xw, yw = design.weighted()
    theta, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
    np.testing.assert_allclose(theta, THETA, rtol=1e-7, atol=1e-8)
    assert set(design.config[e]) == set(range(6))
    assert set(design.group) == {"even", "odd"}
    assert design.metadata["descriptor"] == d.spec()


def test_weights_per_kind_and_group():
    d = model()
    frames = frames_labelled_by(d, THETA)
    design = DesignMatrix.build(frames, d, weights={"force": 0.5, "groups": {"odd": {"energy": 0.0}}})
    e = design.rows_of("energy")
    assert set(design.group[e]) == {"even"}  # zero weight removes the rows
    np.testing.assert_allclose(design.w[design.rows_of("force")], 0.5)
    s = design.rows_of("stress")
    atoms = frames[0]
    # stress rows count as virial per atom: weight (V/N)^2
    np.testing.assert_allclose(design.w[s & (design.config == 0)], (atoms.get_volume() / len(atoms)) ** 2)
    with pytest.raises(ValueError, match="unknown weights key 'forces'"):
        DesignMatrix.build(frames, d, weights={"forces": 1.0})
    with pytest.raises(ValueError, match="unknown row kinds"):
        DesignMatrix.build(frames, d, weights={"groups": {"odd": {"energies": 1.0}}})


def test_total_energy_rows():
    d = model()
    frames = frames_labelled_by(d, THETA)
    design = DesignMatrix.build(frames, d, energy_per_atom=False)
    e = design.rows_of("energy")
    np.testing.assert_allclose(design.y[e], [a.info["REF_energy"] for a in frames])


def test_parallel_build_is_identical():
    d = model()
    frames = frames_labelled_by(d, THETA, n=8)
    serial = DesignMatrix.build(frames, d)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = DesignMatrix.build(frames, d, executor=pool, chunk_size=3)
    for name in ("X", "y", "w", "kind", "config", "group"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name))


def test_disk_cache_hits_and_invalidates(tmp_path, monkeypatch):
    d = model()
    frames = frames_labelled_by(d, THETA)
    first = DesignMatrix.build(frames, d, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("design-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("descriptor evaluated although the cache should hit")

    monkeypatch.setattr(PairBasis, "rows", fail)
    again = DesignMatrix.build(frames, d, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.X, again.X)
    assert again.metadata["training_set_digest"] == first.metadata["training_set_digest"]
    monkeypatch.undo()

    frames[2].info["REF_energy"] += 1e-6  # a changed label must miss
    DesignMatrix.build(frames, d, cache_dir=tmp_path)
    DesignMatrix.build(frames, PairBasis(species=["W"], r_cut=4.6, r_min=2.0, n_basis=6), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("design-*.npz"))) == 3


def test_sufficient_statistics_agree():
    d = model()
    frames = frames_labelled_by(d, THETA)
    design = DesignMatrix.build(frames, d, weights={"force": 0.3})
    Xw, yw = design.weighted()
    XtX, Xty, yty = design.gram(chunk_rows=7)
    np.testing.assert_allclose(XtX, Xw.T @ Xw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Xty, Xw.T @ yw, rtol=1e-12, atol=1e-12)
    assert yty == pytest.approx(yw @ yw, rel=1e-12)
    configs, G, g, c = design.config_statistics()
    np.testing.assert_array_equal(configs, np.arange(len(frames)))
    np.testing.assert_allclose(G.sum(0), XtX, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.sum(0), Xty, rtol=1e-12, atol=1e-12)
    assert c.sum() == pytest.approx(yty, rel=1e-12)


def test_select_save_load_and_errors(tmp_path):
    d = model()
    design = DesignMatrix.build(frames_labelled_by(d, THETA), d)
    sub = design.select(design.rows_of(["energy", "stress"]))
    assert set(sub.kind) == {"energy", "stress"}
    sub.save(tmp_path / "d.npz")
    back = DesignMatrix.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.X, sub.X)
    assert back.metadata == sub.metadata
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read design matrix"):
        DesignMatrix.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="y has shape"):
        DesignMatrix(X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match="non-finite design row 1"):
        DesignMatrix(X=np.array([[1.0], [np.nan]]), y=np.zeros(2))


def test_stress_label_on_slab_is_rejected_with_frame():
    d = model()
    atoms = bulk("W", "bcc", a=3.18, cubic=True).repeat(2)
    atoms.info["REF_energy"] = -100.0
    atoms.info["REF_stress"] = np.zeros(6)
    atoms.info["group"] = "slab"
    atoms.pbc = [True, True, False]
    with pytest.raises(ValueError, match=r"frame 0 \(group 'slab'\)"):
        DesignMatrix.build([atoms], d)


# -- identity: what a design is (study stores key on it) ----------------------------------------


def test_a_subset_does_not_claim_to_be_its_parent():
    """Reproduces a bug: select() copied cache_key/training_set_digest/n_frames to the subset."""
    d = model()
    frames = frames_labelled_by(d, THETA)
    design = DesignMatrix.build(frames, d)
    sub = design.select(design.config < 2)
    for key in ("cache_key", "training_set_digest"):
        assert key not in sub.metadata
    assert sub.metadata["n_frames"] == 2 and sub.metadata["parent"] == design.digest()
    assert sub.digest() != design.digest()
    # the same rows selected by mask or by index are the same design; other rows are not
    assert design.select(np.flatnonzero(design.config < 2)).digest() == sub.digest()
    assert design.select(design.config < 3).digest() != sub.digest()
    # what the rows are made of is kept
    assert sub.metadata["descriptor"] == design.metadata["descriptor"]


def test_array_designs_are_keyed_by_every_array():
    """Reproduces a bug: array-built designs were keyed by the column sums of X only."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    base = DesignMatrix(X=X, y=np.ones(6))
    assert DesignMatrix(X=X.copy(), y=np.ones(6)).digest() == base.digest()
    variants = [
        DesignMatrix(X=X, y=np.zeros(6)),
        DesignMatrix(X=X, y=np.ones(6), w=np.full(6, 2.0)),
        DesignMatrix(X=X, y=np.ones(6), kind=["force"] * 6),
        DesignMatrix(X=X, y=np.ones(6), group=["a"] * 6),
        DesignMatrix(X=X[::-1], y=np.ones(6)),  # same column sums
    ]
    assert len({v.digest() for v in variants} | {base.digest()}) == len(variants) + 1

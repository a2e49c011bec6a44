"""Tests for uqcalc.datasets: the LAMMPS calculator, the tungsten teacher and its
training set, and the checksummed fetcher (against a local HTTP server only)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import pickle
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.eos import EquationOfState
from ase.units import bar

from uqcalc import data
from uqcalc.datasets import tungsten
from uqcalc.datasets.fetch import (
    REGISTRY,
    ChecksumError,
    Source,
    cache_path,
    content_hash,
    fetch,
)
from uqcalc.datasets.lammps_calculator import LammpsPotential

SHARED = Path(__file__).parents[2] / "shared" / "data"
WOOD = SHARED / "tungsten_wood2017.extxyz.gz"
needs_shared = pytest.mark.skipif(not WOOD.exists(), reason=f"{WOOD} not available")


# --------------------------------------------------------------------------- teacher / calculator


@pytest.fixture(scope="module")
def calc():
    return tungsten.teacher()


def _triclinic_rattled(seed=3):
    rng = np.random.default_rng(seed)
    atoms = bulk("W", "bcc", a=3.20).repeat((2, 2, 2))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))), scale_atoms=True)
    atoms.positions += rng.normal(0.0, 0.06, atoms.positions.shape)
    return atoms


def test_teacher_pair_commands():
    commands = tungsten.teacher_pair_commands()
    assert commands[0] == "pair_style hybrid/overlay zbl 4 4.8 snap"
    assert commands[1] == "pair_coeff 1 1 zbl 74 74"
    words = commands[2].split()
    assert words[:4] == ["pair_coeff", "*", "*", "snap"] and words[-1] == "W"
    assert Path(words[4]).name == "W_2940_2017_2.snapcoeff" and Path(words[4]).is_file()
    assert Path(words[5]).name == "W_2940_2017_2.snapparam" and Path(words[5]).is_file()


def test_teacher_matches_finite_differences(calc):
    atoms = _triclinic_rattled()
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    # central differences of a smooth potential: errors O(eps^2), far below these tolerances
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-4), atol=1e-5)
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-5), atol=1e-6)
    assert np.abs(forces).max() > 0.1 and np.abs(stress).max() > 1e-3  # a non-trivial check
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-9)


def test_teacher_bcc_lattice_constant(calc):
    volumes, energies = [], []
    for a in np.linspace(3.14, 3.22, 9):
        atoms = bulk("W", "bcc", a=a, cubic=True)
        atoms.calc = calc
        volumes.append(atoms.get_volume() / 2)
        energies.append(atoms.get_potential_energy() / 2)
    v0, _, b0 = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    a0 = (2 * v0) ** (1 / 3)
    print(f"teacher bcc a0 = {a0:.5f} Å, B0 = {b0 * 160.21766:.1f} GPa")
    assert a0 == pytest.approx(tungsten.A0, abs=2e-3)
    atoms = bulk("W", "bcc", a=tungsten.A0, cubic=True)
    atoms.calc = calc
    # zero pressure at A0 to within 0.05 GPa
    assert np.abs(atoms.get_stress()[:3]).max() < 0.05 / 160.21766


def test_calculator_rotation_invariance(calc):
    atoms = _triclinic_rattled(seed=5)
    atoms.calc = calc
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell[:] @ rotation.T)
    rotated.positions = atoms.positions @ rotation.T
    rotated.calc = calc
    assert rotated.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(rotated.get_forces(), forces @ rotation.T, atol=1e-8)
    np.testing.assert_allclose(rotated.get_stress(voigt=False), rotation @ stress @ rotation.T, atol=1e-9)


def test_calculator_follows_changing_structures(calc):
    big = bulk("W", "bcc", a=3.18, cubic=True).repeat(3)
    big.rattle(0.05, seed=1)
    small = big[:-1]  # a different atom count, as matscipy's subset evaluations do
    prim = bulk("W", "bcc", a=3.25)
    results = []
    for atoms in (big, small, prim, big):
        atoms = atoms.copy()
        atoms.calc = calc
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    for atoms, (energy, forces) in zip((big, small, prim), results[:3], strict=True):
        fresh = atoms.copy()
        fresh.calc = tungsten.teacher()
        assert fresh.get_potential_energy() == pytest.approx(energy, abs=1e-9)
        np.testing.assert_allclose(fresh.get_forces(), forces, atol=1e-10)
    assert results[3][0] == pytest.approx(results[0][0], abs=1e-9)


def test_calculator_cluster_and_pickle(calc):
    cluster = Atoms("W4", positions=[[0, 0, 0], [2.7, 0, 0], [0, 2.6, 0.3], [1.2, 1.1, 2.4]])
    cluster.calc = calc
    energy = cluster.get_potential_energy()
    forces = cluster.get_forces()
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)  # no external field
    np.testing.assert_allclose(forces, calculate_numerical_forces(cluster, eps=1e-4), atol=1e-5)
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()
    # far from the origin, in a box it does not fit: translation invariance
    moved = cluster.copy()
    moved.positions += [-40.0, 7.0, 100.0]
    moved.calc = calc
    assert moved.get_potential_energy() == pytest.approx(energy, abs=1e-9)

    clone = pickle.loads(pickle.dumps(calc))
    assert clone._lmp is None
    again = cluster.copy()
    again.calc = clone
    assert again.get_potential_energy() == pytest.approx(energy, abs=1e-9)


def test_generic_pair_style():
    # any pair style works: a pure ZBL wall between two atoms, checked against the
    # energy of a bigger separation (repulsive, decaying)
    zbl = LammpsPotential(["pair_style zbl 3.0 4.0", "pair_coeff * * 74 74"], ["W"])
    energies = []
    for r in (1.5, 2.0, 2.5):
        dimer = Atoms("W2", positions=[[0, 0, 0], [r, 0, 0]], cell=[12, 12, 12], pbc=True)
        dimer.calc = zbl
        energies.append(dimer.get_potential_energy())
        assert dimer.get_forces()[1, 0] > 0
    assert energies[0] > energies[1] > energies[2] > 0


# --------------------------------------------------------------------------- training set


@pytest.fixture(scope="module")
def small_set(calc):
    start = time.perf_counter()
    frames = tungsten.teacher_training_set("small", seed=0, calc=calc)
    elapsed = time.perf_counter() - start
    atoms = sum(len(a) for a in frames)
    print(f"\nteacher_training_set('small'): {len(frames)} frames, {atoms} atoms, built in {elapsed:.1f} s")
    return frames


def _same(a: Atoms, b: Atoms) -> bool:
    return (
        np.array_equal(a.numbers, b.numbers)
        and np.array_equal(a.positions, b.positions)
        and np.array_equal(a.cell[:], b.cell[:])
        and a.info["REF_energy"] == b.info["REF_energy"]
        and np.array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
        and np.array_equal(a.info["REF_stress"], b.info["REF_stress"])
        and a.info["group"] == b.info["group"]
    )


def test_training_set_is_bit_identical_for_a_seed(small_set, calc):
    again = tungsten.teacher_training_set("small", seed=0, calc=calc)
    assert len(again) == len(small_set)
    assert all(_same(a, b) for a, b in zip(small_set, again, strict=True))
    other = tungsten.teacher_training_set("small", seed=1, calc=calc)
    assert len(other) == len(small_set)
    assert not all(_same(a, b) for a, b in zip(small_set, other, strict=True))
    # deterministic grids agree, random groups differ
    assert _same(small_set[0], other[0])
    rattled = [i for i, a in enumerate(small_set) if a.info["group"] == "bcc_rattle"]
    assert not any(_same(small_set[i], other[i]) for i in rattled)


def test_training_set_groups_and_labels(small_set):
    counts = Counter(a.info["group"] for a in small_set)
    assert counts == {name: g.n_small for name, g in tungsten.groups().items()}
    data.validate(small_set, species=["W"])
    for atoms in small_set:
        assert atoms.calc is None
        assert "energy" not in atoms.info and "forces" not in atoms.arrays
        assert atoms.arrays["REF_forces"].shape == (len(atoms), 3)
        assert np.asarray(atoms.info["REF_stress"]).shape == (6,)
        assert atoms.info["source"].startswith(atoms.info["group"] + "/")
    n_rows = 3 * sum(len(a) for a in small_set)
    assert 200 <= len(small_set) <= 600 and 10_000 <= n_rows <= 20_000
    print("\n" + "\n".join(f"{g:14s} {n:4d}" for g, n in counts.items()))


def test_training_set_labels_are_the_teacher(small_set, calc):
    for atoms in small_set[::40]:
        check = atoms.copy()
        check.calc = calc
        assert check.get_potential_energy() == atoms.info["REF_energy"]
        np.testing.assert_array_equal(check.get_forces(), atoms.arrays["REF_forces"])


def test_training_set_survives_extxyz(small_set, tmp_path):
    path = tmp_path / "teacher.extxyz"
    data.write(path, small_set)
    back = data.read(path)
    assert content_hash(back) == content_hash(small_set)
    assert [a.info["group"] for a in back] == [a.info["group"] for a in small_set]


@pytest.mark.slow
def test_full_training_set(calc):
    start = time.perf_counter()
    frames = tungsten.teacher_training_set("full", seed=0, calc=calc)
    print(f"\nteacher_training_set('full'): {len(frames)} frames, built in {time.perf_counter() - start:.1f} s")
    data.validate(frames, species=["W"])
    assert Counter(a.info["group"] for a in frames) == {n: g.n_full for n, g in tungsten.groups().items()}
    assert max(len(a) for a in frames) == 128


def test_training_set_rejects_bad_arguments():
    with pytest.raises(ValueError):
        tungsten.teacher_training_set("medium")
    with pytest.raises(ValueError):
        tungsten.teacher_training_set("small", seed=-1)


# --------------------------------------------------------------------------- content hash


def test_content_hash_is_order_independent_and_sensitive():
    frames = [bulk("W", "bcc", a=3.18 + 0.01 * i, cubic=True) for i in range(3)]
    for i, atoms in enumerate(frames):
        atoms.info.update(REF_energy=-10.0 - i, group="g", source=f"{i}.json")
        atoms.arrays["REF_forces"] = np.zeros((2, 3))
    reference = content_hash(frames)
    assert content_hash(frames[::-1]) == reference
    changed = [a.copy() for a in frames]
    changed[1].arrays["REF_forces"][0, 0] = 1e-6
    assert content_hash(changed) != reference
    dropped = [a.copy() for a in frames]
    del dropped[2].arrays["REF_forces"]
    assert content_hash(dropped) != reference
    signed = [a.copy() for a in frames]
    signed[0].arrays["REF_forces"][0, 0] = -0.0  # signed zero is the same number
    assert content_hash(signed) == reference


# --------------------------------------------------------------------------- fetch


class _Server:
    """An HTTP server on 127.0.0.1 serving fixed bytes and counting requests."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append(self.path)
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _fitsnap_json(symbols, positions, cell, energy, forces=None, stress=None) -> bytes:
    n = len(symbols)
    config = {
        "NumAtoms": n,
        "Lattice": np.asarray(cell, float).tolist(),
        "Energy": energy,
        "Stress": (np.zeros((3, 3)) if stress is None else np.asarray(stress, float)).tolist(),
        "AtomTypes": list(symbols),
        "Positions": np.asarray(positions, float).tolist(),
        "Forces": (np.zeros((n, 3)) if forces is None else np.asarray(forces, float)).tolist(),
    }
    text = json.dumps({"Dataset": {"Data": [config], "StressStyle": "bar", "EnergyStyle": "electronvolt"}})
    return ("# A test JSON file for QM data\n" + text + "\n").encode()


def _archive(files: dict[str, bytes], top: str | None = "FitSNAP-0123abc") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


JSON_DIR = "examples/WBe_PRB2019/JSON"
KBAR_STRESS = np.diag([10.0, 20.0, 30.0])
BAR_STRESS = np.array([[-500.0, 1.0, 2.0], [1.0, -600.0, 3.0], [2.0, 3.0, -700.0]])
SURFACE_FORCES = [[0.1, -0.2, 0.3], [0.0, 0.0, -0.3]]


def _synthetic_files() -> dict[str, bytes]:
    cell = np.eye(3) * 3.18
    two = [[0, 0, 0], [1.59, 1.59, 1.59]]
    return {
        f"{JSON_DIR}/EOS_Data/eos_1.json": _fitsnap_json(["W", "W"], two, cell, -17.8, stress=KBAR_STRESS),
        f"{JSON_DIR}/slice_sample/1_slice_sample.json": _fitsnap_json(
            ["W"], [[0, 0, 0]], cell, -8.9, stress=BAR_STRESS
        ),
        f"{JSON_DIR}/WSurface_BeAdhesion/W001.NoBe_1.json": _fitsnap_json(
            ["W", "W"], two, np.diag([3.18, 3.18, 20.0]), -17.0, forces=SURFACE_FORCES
        ),
        # a W-Be configuration in the same group: must be skipped
        f"{JSON_DIR}/WSurface_BeAdhesion/W001.BeHollow_1.json": _fitsnap_json(
            ["W", "Be"], two, np.diag([3.18, 3.18, 20.0]), -12.0, forces=SURFACE_FORCES, stress=BAR_STRESS
        ),
        # outside the JSON folder or not JSON: ignored
        "README.md": b"FitSNAP",
        "examples/Ta_Linear_JCP2014/JSON/Volume_BCC/v_1.json": _fitsnap_json(["Ta"], [[0, 0, 0]], cell, -11.0),
        f"{JSON_DIR}/EOS_Data/notes.txt": b"not json",
    }


@pytest.fixture
def server():
    archive = _archive(_synthetic_files())
    srv = _Server({"/archive.tar.gz": archive})
    srv.archive = archive
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # the local server must never be reached through a proxy from the environment
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _expected_hash(files: dict[str, bytes], tmp_path: Path, stress_units) -> str:
    """Hash of the pure-W files converted directly with uqcalc.data.read_fitsnap."""
    root = tmp_path / "expected"
    for name, payload in files.items():
        if name.startswith(JSON_DIR + "/") and name.endswith(".json") and b'"Be"' not in payload:
            path = root / name[len(JSON_DIR) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
    return content_hash(data.read_fitsnap(root, stress_unit=dict(stress_units)))


def _register(monkeypatch, server, tmp_path, **changes) -> Source:
    base = REGISTRY["tungsten-wood2017"]
    fields = dict(
        name="test-tungsten",
        url=server.url("/archive.tar.gz"),
        content_sha256=_expected_hash(_synthetic_files(), tmp_path, base.stress_units),
        n_frames=3,
    )
    fields.update(changes)
    source = Source(**{**base.__dict__, **fields})
    monkeypatch.setitem(REGISTRY, source.name, source)
    return source


def test_fetch_converts_filters_and_caches(server, tmp_path, monkeypatch):
    _register(monkeypatch, server, tmp_path)
    cache = tmp_path / "cache"
    frames = fetch("test-tungsten", cache_dir=cache, progress=False)
    assert len(server.requests) == 1
    by_source = {a.info["source"]: a for a in frames}
    assert set(by_source) == {"eos_1.json", "1_slice_sample.json", "W001.NoBe_1.json"}  # Be file skipped

    eos = by_source["eos_1.json"]
    assert eos.info["group"] == "EOS_Data"
    # EOS_Data is kbar, VASP sign: 10 kbar of compression is -1 GPa of ASE stress
    np.testing.assert_allclose(eos.info["REF_stress"], -np.array([10, 20, 30, 0, 0, 0]) * 0.1 / 160.21766208)
    assert "REF_forces" not in eos.arrays  # all-zero forces mean "absent"
    assert eos.info["REF_energy"] == -17.8

    slab = by_source["1_slice_sample.json"]
    expected = -np.array([-500.0, -600.0, -700.0, 3.0, 2.0, 1.0]) * bar  # bar, Voigt xx yy zz yz xz xy
    np.testing.assert_allclose(slab.info["REF_stress"], expected, rtol=1e-12)

    surface = by_source["W001.NoBe_1.json"]
    np.testing.assert_allclose(surface.arrays["REF_forces"], SURFACE_FORCES)
    assert "REF_stress" not in surface.info
    data.validate(frames, species=["W"])

    cached = list(cache.glob("*.extxyz"))
    assert len(cached) == 1 and cached[0] == cache_path("test-tungsten", cache)
    assert [p.name for p in cache.iterdir()] == [cached[0].name]  # no temporary leftovers

    again = fetch("test-tungsten", cache_dir=cache, progress=False)
    assert len(server.requests) == 1  # served from the cache
    assert content_hash(again) == content_hash(frames)


def test_fetch_checksum_mismatch_caches_nothing(server, tmp_path, monkeypatch):
    _register(monkeypatch, server, tmp_path, content_sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="content sha256"):
        fetch("test-tungsten", cache_dir=cache, progress=False)
    assert list(cache.iterdir()) == []


def test_fetch_frame_count_mismatch(server, tmp_path, monkeypatch):
    _register(monkeypatch, server, tmp_path, n_frames=4)
    with pytest.raises(ChecksumError, match="expected 4"):
        fetch("test-tungsten", cache_dir=tmp_path / "cache", progress=False)


def test_fetch_archive_sha256(server, tmp_path, monkeypatch):
    _register(monkeypatch, server, tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="archive sha256"):
        fetch("test-tungsten", cache_dir=cache, progress=False, sha256="f" * 64)
    assert list(cache.iterdir()) == []
    good = hashlib.sha256(server.archive).hexdigest()
    assert len(fetch("test-tungsten", cache_dir=cache, progress=False, sha256=good)) == 3


def test_fetch_url_override_and_env_cache(server, tmp_path, monkeypatch):
    _register(monkeypatch, server, tmp_path, url="http://127.0.0.1:9/unreachable.tar.gz")
    monkeypatch.setenv("UQCALC_CACHE", str(tmp_path / "envcache"))
    frames = fetch("test-tungsten", url=server.url("/archive.tar.gz"), progress=False)
    assert len(frames) == 3
    assert cache_path("test-tungsten").parent == tmp_path / "envcache"
    assert cache_path("test-tungsten").exists()


def test_fetch_git_archive_layout_from_file_url(server, tmp_path, monkeypatch):
    # `git archive` output has no top-level folder; a local file works through file://
    _register(monkeypatch, server, tmp_path)
    local = tmp_path / "local.tar.gz"
    local.write_bytes(_archive(_synthetic_files(), top=None))
    frames = fetch("test-tungsten", cache_dir=tmp_path / "cache", url=local.as_uri(), progress=False)
    assert len(frames) == 3 and server.requests == []


def test_fetch_unknown_name():
    with pytest.raises(KeyError, match="tungsten-wood2017"):
        fetch("no-such-set")


# --------------------------------------------------------------------------- shared DFT data


@pytest.fixture(scope="module")
def wood():
    return data.read(WOOD)


@needs_shared
def test_pinned_hash_matches_shared_data(wood):
    source = REGISTRY["tungsten-wood2017"]
    assert len(wood) == source.n_frames == 9902
    assert content_hash(wood) == source.content_sha256
    assert {a.info["group"] for a in wood if "REF_stress" in a.info} <= set(source.stress_units)


@needs_shared
def test_fetch_pipeline_reproduces_shared_frames(wood, tmp_path, monkeypatch):
    """Shared frames written back as FitSNAP JSON (raw units, VASP sign) come back unchanged."""
    units = REGISTRY["tungsten-wood2017"].stress_units
    factor = {"bar": bar, "kbar": 1e3 * bar}
    per_group: Counter = Counter()
    subset, files = [], {}
    for atoms in wood:
        group = atoms.info["group"]
        if per_group[group] >= 3:
            continue
        per_group[group] += 1
        subset.append(atoms)
        stress = atoms.info.get("REF_stress")
        raw = None
        if stress is not None:
            xx, yy, zz, yz, xz, xy = -np.asarray(stress) / factor[units[group]]
            raw = [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]
        files[f"{JSON_DIR}/{group}/{atoms.info['source']}"] = _fitsnap_json(
            atoms.get_chemical_symbols(), atoms.positions, atoms.cell[:], atoms.info["REF_energy"],
            forces=atoms.arrays.get("REF_forces"), stress=raw,
        )  # fmt: skip
    srv = _Server({"/a.tar.gz": _archive(files)})
    try:
        source = Source(
            **{**REGISTRY["tungsten-wood2017"].__dict__, "name": "test-wood-subset",
               "url": srv.url("/a.tar.gz"), "content_sha256": content_hash(subset), "n_frames": len(subset)}
        )  # fmt: skip
        monkeypatch.setitem(REGISTRY, source.name, source)
        frames = fetch(source.name, cache_dir=tmp_path, progress=False)
    finally:
        srv.close()
    assert len(frames) == len(subset) == 45


@pytest.mark.skipif(not (SHARED / "tantalum_thompson2015.extxyz.gz").is_file(), reason="shared Ta data absent")
def test_tantalum_source_pinned_to_shared_data():
    """The Ta fetcher's pinned hash is that of the shared conversion; every stress group has its unit."""
    frames = data.read(SHARED / "tantalum_thompson2015.extxyz.gz")
    source = REGISTRY["tantalum-thompson2015"]
    assert len(frames) == source.n_frames == 363
    assert content_hash(frames) == source.content_sha256
    assert {a.info["group"] for a in frames if "REF_stress" in a.info} <= set(source.stress_units)
    assert source.subdir == "examples/Ta_Linear_JCP2014/JSON" and source.species == ("Ta",)

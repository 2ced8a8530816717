"""mpi4py.futures.MPIPoolExecutor.map of a trivial function over two worker ranks: COUNT items
in chunks of CHUNKSIZE, on a 3-rank mpirun job (rank 0 and two workers), as the Rust side's
MpiPool. Started without mpirun, it starts `mpirun -n 3 python -m mpi4py.futures` on itself
and passes on rank 0's result line. Timed: the map call alone, after a warm-up map.

Usage: python3 mpi_pool_map.py CHUNKSIZE COUNT   (needs mpi4py and Open MPI's mpirun)
"""

import os
import subprocess
import sys
import time

from benchlib import report


def double(x):
    return 2 * x


def main():
    chunksize, count = int(sys.argv[1]), int(sys.argv[2])
    if "OMPI_COMM_WORLD_SIZE" not in os.environ:
        command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "3",
                   sys.executable, "-m", "mpi4py.futures", __file__, *sys.argv[1:]]
        sys.exit(subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode)
    from mpi4py.futures import MPIPoolExecutor

    with MPIPoolExecutor() as executor:
        list(executor.map(double, range(4)))
        start = time.perf_counter()
        results = list(executor.map(double, range(count), chunksize=chunksize))
        elapsed = time.perf_counter() - start
        assert results == [2 * x for x in range(count)]
    report(elapsed, count)


if __name__ == "__main__":
    main()

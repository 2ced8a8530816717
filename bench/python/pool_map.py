"""Pool.map of a trivial function on a 2-worker pool (fork): COUNT items in chunks of
CHUNKSIZE (0: Python's default chunking). Timed: the map call alone, after a warm-up map.

Usage: python3 pool_map.py CHUNKSIZE COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def double(x):
    return 2 * x


def main():
    chunksize, count = int(sys.argv[1]), int(sys.argv[2])
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        pool.map(double, range(4), chunksize=1)
        start = time.perf_counter()
        if chunksize == 0:
            results = pool.map(double, range(count))
        else:
            results = pool.map(double, range(count), chunksize=chunksize)
        elapsed = time.perf_counter() - start
        assert results == [2 * x for x in range(count)]
        pool.close()
        pool.join()
    report(elapsed, count)


if __name__ == "__main__":
    main()

"""A pool's whole life, COUNT times: a 2-worker pool (fork) starts, maps a trivial function
over two items, is closed and joined.

Usage: python3 pool_startup.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def double(x):
    return 2 * x


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    for _ in range(count):
        pool = context.Pool(2)
        assert pool.map(double, range(2)) == [0, 2]
        pool.close()
        pool.join()
    elapsed = time.perf_counter() - start
    report(elapsed, count)


if __name__ == "__main__":
    main()

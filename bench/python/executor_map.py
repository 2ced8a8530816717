"""ProcessPoolExecutor(2).map (fork) of a trivial function over COUNT items, with the
default chunksize (1). Timed: the map and the reading of its results, after a warm-up.

Usage: python3 executor_map.py COUNT
"""

import concurrent.futures
import multiprocessing
import sys
import time

from benchlib import report


def double(x):
    return 2 * x


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        list(executor.map(double, range(4)))
        start = time.perf_counter()
        results = list(executor.map(double, range(count)))
        elapsed = time.perf_counter() - start
        assert results == [2 * x for x in range(count)]
    report(elapsed, count)


if __name__ == "__main__":
    main()

"""ProcessPoolExecutor(2) (fork): COUNT calls of a trivial function, one at a time, each
submit followed by result(). Timed: the calls, after a warm-up call on each worker.

Usage: python3 executor_submit.py COUNT
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
        for x in range(4):
            executor.submit(double, x).result()
        start = time.perf_counter()
        answered = True
        for x in range(count):
            answered &= executor.submit(double, x).result() == 2 * x
        elapsed = time.perf_counter() - start
        assert answered
    report(elapsed, count)


if __name__ == "__main__":
    main()

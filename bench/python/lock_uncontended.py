"""A multiprocessing.Lock acquired and released COUNT times by one process, nobody else
using it (after one warm-up pair).

Usage: python3 lock_uncontended.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def main():
    count = int(sys.argv[1])
    lock = multiprocessing.get_context("fork").Lock()
    lock.acquire()
    lock.release()
    start = time.perf_counter()
    for _ in range(count):
        lock.acquire()
        lock.release()
    elapsed = time.perf_counter() - start
    assert lock.acquire(False)
    report(elapsed, count)


if __name__ == "__main__":
    main()

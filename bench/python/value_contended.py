"""Two processes each add 1 COUNT times to one multiprocessing.Value under get_lock(); timed
from the first start() to the last join(), per increment.

Usage: python3 value_contended.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report

PROCESSES = 2


def increment(counter, count):
    for _ in range(count):
        with counter.get_lock():
            counter.value += 1


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    processes = [context.Process(target=increment, args=(counter, count)) for _ in range(PROCESSES)]
    start = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - start
    assert counter.value == PROCESSES * count
    report(elapsed, PROCESSES * count)


if __name__ == "__main__":
    main()

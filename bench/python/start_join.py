"""Starts and joins COUNT processes one after the other, under START_METHOD (fork, spawn
or forkserver).
The target does nothing: process creation is the workload.

Usage: python3 start_join.py START_METHOD COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def noop():
    pass


def main():
    method, count = sys.argv[1], int(sys.argv[2])
    context = multiprocessing.get_context(method)
    start = time.perf_counter()
    for _ in range(count):
        process = context.Process(target=noop)
        process.start()
        process.join()
        assert process.exitcode == 0
    report(time.perf_counter() - start, count)


if __name__ == "__main__":
    main()

"""A multiprocessing.Manager's round trips: WHAT is `set` (d[key] = i), `get` (d.get(key)),
`update` (d.update of 100 pairs, counted per pair) on a managed dict of 100 keys, after one
warm-up pass; or `start_stop` (Manager() started and shut down). COUNT times.

Usage: python3 manager.py WHAT COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report

KEYS = 100
BATCH = 100


def dict_workload(context, what, count):
    with context.Manager() as manager:
        d = manager.dict()
        keys = [str(k) for k in range(KEYS)]
        d.update(zip(keys, range(KEYS)))
        start = time.perf_counter()
        if what == "set":
            for i in range(count):
                d[keys[i % KEYS]] = i
            ops = count
        elif what == "get":
            found = 0
            for i in range(count):
                found += d.get(keys[i % KEYS]) is not None
            assert found == count
            ops = count
        else:
            for i in range(count):
                d.update([(key, i) for key in keys])
            ops = count * BATCH
        elapsed = time.perf_counter() - start
        assert len(d) == KEYS
    return elapsed, ops


def start_stop(context, count):
    start = time.perf_counter()
    for _ in range(count):
        manager = context.Manager()
        manager.shutdown()
    return time.perf_counter() - start, count


def main():
    what, count = sys.argv[1], int(sys.argv[2])
    context = multiprocessing.get_context("fork")
    if what == "start_stop":
        elapsed, ops = start_stop(context, count)
    else:
        elapsed, ops = dict_workload(context, what, count)
    report(elapsed, ops)


if __name__ == "__main__":
    main()

"""JoinableQueue: two daemonic workers loop get -> task_done; the main process puts COUNT
small tasks, then join()s the queue. Timed from the first put to the return of join().

Usage: python3 joinable.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def worker(tasks):
    while True:
        tasks.get()
        tasks.task_done()


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    tasks = context.JoinableQueue()
    for _ in range(2):
        context.Process(target=worker, args=(tasks,), daemon=True).start()
    start = time.perf_counter()
    for i in range(count):
        tasks.put(f"tarefa {i}")
    tasks.join()
    report(time.perf_counter() - start, count)


if __name__ == "__main__":
    main()

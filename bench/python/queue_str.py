"""One producer process puts COUNT strings of 25 characters in a Queue; the main process gets
them all, then joins the producer.

Usage: python3 queue_str.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def producer(queue, count):
    for i in range(count):
        queue.put(f"{i:025d}")


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.perf_counter()
    process = context.Process(target=producer, args=(queue, count))
    process.start()
    last = None
    for _ in range(count):
        last = queue.get()
    process.join()
    elapsed = time.perf_counter() - start
    assert last == f"{count - 1:025d}" and process.exitcode == 0
    report(elapsed, count)


if __name__ == "__main__":
    main()

"""One producer process puts COUNT `bytes` objects of SIZE bytes in a Queue; the main process
gets them all, then joins the producer.

Usage: python3 queue_bytes.py SIZE COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def producer(queue, size, count):
    payload = b"x" * size
    for _ in range(count):
        queue.put(payload)


def main():
    size, count = int(sys.argv[1]), int(sys.argv[2])
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.perf_counter()
    process = context.Process(target=producer, args=(queue, size, count))
    process.start()
    for _ in range(count):
        item = queue.get()
        assert len(item) == size
    process.join()
    elapsed = time.perf_counter() - start
    assert process.exitcode == 0
    report(elapsed, count)


if __name__ == "__main__":
    main()

"""Two producers put COUNT strings of 25 characters in total (numbers 0..COUNT, each once) in
one Queue, then a None each; two consumers get until None and send back how many they got,
their sum and their sum of squares, which the main process checks: every item exactly once.

Usage: python3 queue_2x2.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def producer(queue, first, count):
    for i in range(first, first + count):
        queue.put(f"{i:025d}")
    queue.put(None)


def consumer(queue, results):
    count = total = squares = 0
    while (item := queue.get()) is not None:
        number = int(item)
        count += 1
        total += number
        squares += number * number
    results.put((count, total, squares))


def main():
    count = int(sys.argv[1])
    half = count // 2
    context = multiprocessing.get_context("fork")
    queue, results = context.Queue(), context.Queue()
    start = time.perf_counter()
    processes = [
        context.Process(target=producer, args=(queue, 0, half)),
        context.Process(target=producer, args=(queue, half, count - half)),
        context.Process(target=consumer, args=(queue, results)),
        context.Process(target=consumer, args=(queue, results)),
    ]
    for process in processes:
        process.start()
    sums = [results.get() for _ in range(2)]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - start
    got = tuple(sum(column) for column in zip(*sums))
    expected = (count, sum(range(count)), sum(i * i for i in range(count)))
    assert got == expected, f"got {got}, expected {expected}"
    report(elapsed, count)


if __name__ == "__main__":
    main()

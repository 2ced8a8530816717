"""Ping-pong over two Queues (fork): the main process puts an integer on one queue, a child
gets it and puts it on the other, the main process gets it; COUNT times after one warm-up.

Usage: python3 queue_pingpong.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def echo(requests, replies, count):
    for _ in range(count + 1):
        replies.put(requests.get())


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    requests, replies = context.Queue(), context.Queue()
    process = context.Process(target=echo, args=(requests, replies, count))
    process.start()
    requests.put(0)
    replies.get()
    answered = True
    start = time.perf_counter()
    for i in range(count):
        requests.put(i)
        answered &= replies.get() == i
    elapsed = time.perf_counter() - start
    process.join()
    assert answered and process.exitcode == 0
    report(elapsed, count)


if __name__ == "__main__":
    main()

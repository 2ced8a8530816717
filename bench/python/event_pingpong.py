"""Ping-pong over two Events: the main process sets `ping`, a child waits for it, clears it
and sets `pong`, which the main process waits for and clears; COUNT times (after one warm-up
round trip).

Usage: python3 event_pingpong.py COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def pong(ping, pong_event, count):
    for _ in range(count + 1):
        ping.wait()
        ping.clear()
        pong_event.set()


def round_trip(ping, pong_event):
    ping.set()
    answered = pong_event.wait()
    pong_event.clear()
    return answered


def main():
    count = int(sys.argv[1])
    context = multiprocessing.get_context("fork")
    ping, pong_event = context.Event(), context.Event()
    process = context.Process(target=pong, args=(ping, pong_event, count))
    process.start()
    round_trip(ping, pong_event)
    answered = True
    start = time.perf_counter()
    for _ in range(count):
        answered &= round_trip(ping, pong_event)
    elapsed = time.perf_counter() - start
    process.join()
    assert answered and process.exitcode == 0
    report(elapsed, count)


if __name__ == "__main__":
    main()

"""Ping-pong over a duplex Pipe: the main process sends a short message, a child sends it
back, COUNT times (after one warm-up round trip). MODE `objects` uses send/recv (pickled
str), `bytes` uses send_bytes/recv_bytes.

Usage: python3 pipe_pingpong.py MODE COUNT
"""

import multiprocessing
import sys
import time

from benchlib import report


def echo_objects(connection, count):
    for _ in range(count + 1):
        connection.send(connection.recv())


def echo_bytes(connection, count):
    for _ in range(count + 1):
        connection.send_bytes(connection.recv_bytes())


def ping_objects(connection):
    connection.send("ping")
    return connection.recv()


def ping_bytes(connection):
    connection.send_bytes(b"ping")
    return connection.recv_bytes()


def main():
    mode, count = sys.argv[1], int(sys.argv[2])
    echo, ping = (echo_objects, ping_objects) if mode == "objects" else (echo_bytes, ping_bytes)
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    process = context.Process(target=echo, args=(theirs, count))
    process.start()
    theirs.close()
    ping(mine)
    start = time.perf_counter()
    for _ in range(count):
        reply = ping(mine)
    elapsed = time.perf_counter() - start
    process.join()
    assert reply in ("ping", b"ping") and process.exitcode == 0
    report(elapsed, count)


if __name__ == "__main__":
    main()

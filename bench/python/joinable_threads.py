"""queue.Queue between threads: two daemonic worker threads loop get -> task_done; the main
thread puts COUNT small tasks, then join()s the queue. Timed from the first put to the return
of join(). The threads twin of joinable.py: nothing crosses a process.

Usage: python3 joinable_threads.py COUNT
"""

import queue
import sys
import threading
import time

from benchlib import report


def worker(tasks):
    while True:
        tasks.get()
        tasks.task_done()


def main():
    count = int(sys.argv[1])
    tasks = queue.Queue()
    for _ in range(2):
        threading.Thread(target=worker, args=(tasks,), daemon=True).start()
    start = time.perf_counter()
    for i in range(count):
        tasks.put(f"tarefa {i}")
    tasks.join()
    report(time.perf_counter() - start, count)


if __name__ == "__main__":
    main()

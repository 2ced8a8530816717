"""SharedMemory create + attach + unlink of SIZE bytes, COUNT times (after one warm-up): the
segment is created, attached by name in the same process, both handles closed, and unlinked.

Attaching in the process that created the segment registers it with the resource tracker
again, which the tracker counts once (a set), so the one `unlink()` unregisters it.

Usage: python3 shm_create.py SIZE COUNT
"""

import sys
import time
from multiprocessing import shared_memory

from benchlib import report


def cycle(size):
    created = shared_memory.SharedMemory(create=True, size=size)
    created.buf[:2] = b"ok"
    attached = shared_memory.SharedMemory(name=created.name)
    seen = attached.size == size and bytes(attached.buf[:2]) == b"ok"
    attached.close()
    created.close()
    created.unlink()
    return seen


def main():
    size, count = int(sys.argv[1]), int(sys.argv[2])
    seen = cycle(size)
    start = time.perf_counter()
    for _ in range(count):
        seen &= cycle(size)
    elapsed = time.perf_counter() - start
    assert seen
    report(elapsed, count)


if __name__ == "__main__":
    main()

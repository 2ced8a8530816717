"""What every benchmark script shares: the one line of results the harness reads."""

import resource


def report(elapsed_s, ops):
    """Prints the result line: seconds spent in the workload, operations done, and the peak
    resident set size of this (main) process in KiB."""
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"elapsed_s={elapsed_s:.9f} ops={ops} maxrss_kib={maxrss_kib}", flush=True)

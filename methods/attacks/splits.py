"""An attack's splits, computed side by side.

Each split of an attack is independent of the others (its own training part, its own fits, seeded), so they
run on threads, one per core: most of their time is spent in NumPy, BLAS and LAPACK, which let other
threads run, and the threads share the fitted keys a collection's attacks reuse. BLAS is limited to one
thread meanwhile, so that the splits, not BLAS's threads, share the cores (a limit set inside a split, as
the attacks' searches do, then finds one thread and leaves one thread). The results come back in the
splits' order, the same as one after the other.
"""

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

#: threads at most, whatever the cores: the splits' products and fits are small, and more threads than
#: cores only wait on each other.
MOST_THREADS = 2


def threads() -> int:
    """How many splits run at a time: the cores this process may use, at most :data:`MOST_THREADS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MOST_THREADS, cores))


def each_split(function: Callable[..., Result], splits: Iterable[tuple]) -> list[Result]:
    """``function(train, test)`` for each of ``splits``, in their order, on :func:`threads` threads."""
    from threadpoolctl import threadpool_limits

    splits = list(splits)
    workers = min(threads(), len(splits))
    with threadpool_limits(1):
        if workers <= 1:
            return [function(*split) for split in splits]
        with ThreadPoolExecutor(workers, thread_name_prefix="imgvault-split") as pool:
            return list(pool.map(lambda split: function(*split), splits))

"""Committing the batches of a put on a thread of their own, so that validating never waits for a commit.

Sealing and inserting a batch and its commit's fsync take tens of milliseconds; done in line, the worker
processes that validate the next files run out of work meanwhile. The writer thread commits one batch
while the next one is read; a batch is handed over once the one before it is committed, so memory holds
at most two batches. The database drivers release the GIL while they write, so the thread that feeds
the workers keeps running.

Each batch is one transaction, as before: a failed or interrupted put leaves whole batches or nothing.
"""

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator


class BatchWriter:
    """Runs ``commit(batch)`` on a background thread for each batch given to :meth:`submit`, in order.

    The results of committed batches come back from :meth:`submit` and :meth:`finish`. Once a commit
    fails, no later batch is committed, and the error is raised in the caller's thread after the results
    of the batches committed before it. Use it as a context manager: leaving the block early (an error,
    a generator closed) lets the batch being committed finish and drops the one waiting.
    """

    def __init__(self, commit: Callable[[list], list]):
        self._commit = commit
        self._waiting: queue.Queue = queue.Queue()
        self._committed: queue.SimpleQueue = queue.SimpleQueue()
        # The results of a committed batch not given yet: the caller may stop half-way through a batch
        # (an interrupt raised where it was given one) and ask for the rest with stop().
        self._untold: deque = deque()
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="imgvault-writer", daemon=True)

    def __enter__(self) -> "BatchWriter":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping = True
        self._end()

    def _run(self) -> None:
        while True:
            batch = self._waiting.get()
            try:
                if batch is None:
                    return
                if self._error is None and not self._stopping:
                    self._committed.put(self._commit(batch))
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc
            finally:
                self._waiting.task_done()

    def submit(self, batch: list) -> Iterator:
        """Hand ``batch`` over once the batch before it is committed, then yield the results committed so far."""
        self._waiting.join()
        if self._error is None:
            self._waiting.put(batch)
        yield from self._drain()

    def finish(self) -> Iterator:
        """Wait for every batch to be committed and yield the results not yielded yet."""
        self._end()
        yield from self._drain()

    def stop(self) -> Iterator:
        """Let the batch being committed finish, drop the one waiting, and yield the results not yielded yet."""
        self._stopping = True
        return self.finish()

    def _end(self) -> None:
        if self._thread.is_alive():
            self._waiting.put(None)
            # The garbage collector may finalize an abandoned put on the writer thread itself: it then ends
            # once the commit it is in returns, and cannot wait for itself.
            if threading.current_thread() is not self._thread:
                self._thread.join()

    def _drain(self) -> Iterator:
        while True:
            while self._untold:
                yield self._untold.popleft()
            try:
                self._untold.extend(self._committed.get_nowait())
            except queue.Empty:
                break
        if self._error is not None:
            error, self._error = self._error, None
            self._stopping = True
            raise error

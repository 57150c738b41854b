"""A small pool of forked worker processes for validating files, each fed through its own pipe.

Why not ``concurrent.futures.ProcessPoolExecutor``: for a put, most of the parent's CPU went to the
executor's machinery rather than to storing (a manager thread and a queue feeder thread per call, futures,
locks and the hand-offs of the GIL between them and the writer thread), about 60 microseconds per image
when the whole of storing one takes 40. Here the thread that asks for the next result reads it from the
pipe itself: one ``send`` per chunk of paths, one ``recv`` per chunk of results, nothing in between.

Chunks go to whichever worker has room (each holds at most ``DEPTH``), results are buffered until they
can be given back in the order the chunks were given, and no chunk is sent more than ``WINDOW`` chunks
ahead of the oldest one not given back, so memory stays bounded however slow one file is.
"""

import contextlib
import gc
import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait

from .errors import WorkerFailed

DEPTH = 2  # chunks sent to one worker and not answered yet
# A chunk larger than this (pickled) goes only to a worker that holds none. A pipe surely holds this much
# unread; but were a worker given a larger chunk while it sends a large answer, each would wait for the
# other to read, for ever.
QUEUED_BYTES = 16 * 1024


def _serve(connection: Connection, others: list[Connection], work: Callable) -> None:
    # The parent's ends of every pipe made so far came along with the fork: closed here, so that a worker
    # sees the end of its input as soon as the parent is gone, however the parent ended.
    for other in others:
        other.close()
    # Ctrl-C goes to the whole process group: the parent handles it and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The objects inherited from the parent are left alone by this process's garbage collector, instead
    # of it writing to each one's header and so copying every page it shares with the parent.
    gc.freeze()
    while True:
        try:
            chunk = connection.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        try:
            answer = (work(chunk), None)
        except Exception as exc:  # raised in the parent, where it is this chunk's failure
            answer = (None, f"{type(exc).__name__}: {exc}")
        try:
            connection.send(answer)
        except OSError:  # the parent is gone
            return


class _Worker:
    def __init__(self, context, work: Callable, parent_ends: list[Connection]):
        self.connection, child_end = multiprocessing.Pipe()
        self.process = context.Process(
            target=_serve, args=(child_end, [*parent_ends, self.connection], work), name="imgvault-validate"
        )
        self.process.daemon = True
        self.process.start()
        child_end.close()
        self.sent: deque[int] = deque()  # indexes of the chunks sent, in order

    def give(self, index: int, chunk: bytes) -> None:
        # Counted first: a send cut short (Ctrl-C) leaves the worker in the middle of a chunk.
        self.sent.append(index)
        try:
            self.connection.send_bytes(chunk)
        except OSError:  # its end of the pipe is closed: the worker is gone
            raise self._died() from None

    def take(self) -> tuple[int, list]:
        """The index and result of the oldest chunk this worker was given (its answers come in order)."""
        try:
            result, error = self.connection.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if error is not None:
            raise WorkerFailed(f"a worker validating files failed: {error}")
        return self.sent.popleft(), result

    def _died(self) -> WorkerFailed:
        self.process.join(1)
        return WorkerFailed(f"a worker validating files ended without answering (exit {self.process.exitcode})")


def ordered_map(work: Callable[[list], list], chunks: Iterable[list], jobs: int) -> Iterator[list]:
    """``work(chunk)`` for every chunk, computed in ``jobs`` forked processes, yielded in order.

    ``work`` must be a module-level function (its result is pickled back). A worker that dies, or an
    exception ``work`` raises, raises :class:`WorkerFailed` here. Leaving early (an error, the generator
    closed) ends the workers.
    """
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    window = DEPTH * jobs + jobs
    workers: list[_Worker] = []
    try:
        for _ in range(jobs):
            workers.append(_Worker(context, work, [worker.connection for worker in workers]))
        chunks = iter(chunks)
        done: dict[int, list] = {}
        sent = given = 0
        ready: bytes | None = None  # the next chunk, pickled, not sent yet
        exhausted = False
        while True:
            # Feed the least busy worker while one has room, within the window.
            while not exhausted and sent < given + window:
                if ready is None:
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                        break
                    ready = pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL)
                worker = min(workers, key=lambda worker: len(worker.sent))
                if len(worker.sent) >= (DEPTH if len(ready) <= QUEUED_BYTES else 1):
                    break
                worker.give(sent, ready)
                ready = None
                sent += 1
            if given in done:
                yield done.pop(given)
                given += 1
                continue
            if given == sent and exhausted:
                return
            busy = {worker.connection: worker for worker in workers if worker.sent}
            for connection in wait(list(busy)):
                index, result = busy[connection].take()
                done[index] = result
    finally:
        _stop(workers)


def _stop(workers: list[_Worker]) -> None:
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):  # a worker that is gone already
            worker.connection.send(None)
    for worker in workers:
        # A worker in the middle of a chunk nobody waits for any more is not waited for either.
        if worker.sent:
            worker.process.terminate()
        worker.process.join(5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()
        worker.process.close()

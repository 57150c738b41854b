"""A small pool of forked worker processes for validating files, each fed through its own pipe.

Why not ``concurrent.futures.ProcessPoolExecutor``: for a put, much of the parent's CPU went to the
executor's machinery rather than to storing (a manager thread and a queue feeder thread, futures, locks
and the hand-offs of the GIL between them and the writer thread), about 40 microseconds per image, as much
as sealing, inserting and committing the image. Here the thread that asks for the next result reads it
from the pipe itself: one ``send`` per chunk of paths, one ``recv`` per chunk of results, nothing between.

Chunks go to whichever worker has room (each holds at most ``DEPTH``), results are buffered until they
can be given back in the order the chunks were given, and no chunk is sent more than a window of
``(DEPTH + 1) x jobs`` chunks ahead of the oldest one not given back, so memory stays bounded however slow
one file is.

Why ``os.fork`` and not ``multiprocessing.Process``: multiprocessing reaps the finished children of every
pool from whichever thread starts a process next, so two puts in threads race to reap the same worker, and
the loser takes a finished worker for a running one. Here each pool alone waits for its own workers.
"""

import contextlib
import gc
import os
import pickle
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, Pipe, wait

from imgvault.basics.errors import WorkerFailed

DEPTH = 2  # chunks sent to one worker and not answered yet
# A chunk larger than this (pickled) goes only to a worker that holds none. A pipe surely holds this much
# unread; but were a worker given a larger chunk while it sends a large answer, each would wait for the
# other to read, for ever.
QUEUED_BYTES = 16 * 1024
STOP_SECONDS = 5.0  # for an idle worker to end once told to, before it is killed
_STOP = pickle.dumps(None)

# Each pool's parent ends, and the lock under which a pipe is made and a worker forked. A forked child closes
# the parent ends of every pool, not only its own pool's: one that kept another put's pipes open would hide
# that put's workers' deaths from it, and keep them waiting for input once the parent is gone (two pools'
# workers then wait for each other for ever).
_forking = threading.Lock()
_parent_ends: set[Connection] = set()


def _in_a_forked_child() -> None:
    # Any fork: a worker of ours, or a process of the caller's own (a multiprocessing child), which must
    # not keep the pools' pipes open either. The lock may have been held by another of the parent's threads.
    global _forking
    _forking = threading.Lock()
    for end in _parent_ends:
        end.close()
    _parent_ends.clear()


os.register_at_fork(after_in_child=_in_a_forked_child)

# The worker runs only this module's loop and Pillow, never code that takes a lock another thread might hold.
warnings.filterwarnings("ignore", r".*use of fork\(\) may lead to deadlocks", DeprecationWarning, __name__)


def _serve(connection: Connection, work: Callable) -> None:
    while True:
        try:
            chunk = connection.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        try:
            answer = pickle.dumps((work(chunk), None), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # raised in the parent, where it is this chunk's failure
            answer = pickle.dumps((None, f"{type(exc).__name__}: {exc}"), pickle.HIGHEST_PROTOCOL)
        try:
            connection.send_bytes(answer)
        except OSError:  # the parent is gone
            return


def _run(connection: Connection, work: Callable, mask: set) -> None:
    """The whole life of a worker process: it never returns into the code of the parent it was forked from."""
    code = 1
    try:
        # Ctrl-C goes to the whole process group: the parent handles it and ends the workers. SIGTERM ends
        # a worker, whatever the parent (a service) installed for itself. Both were blocked until now.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # The parent's ends of every pool's pipes came along with the fork, and are closed already
        # (_in_a_forked_child): a worker sees the end of its input as soon as the parent is gone.
        # The objects inherited from the parent are left alone by this process's garbage collector, instead
        # of it writing to each one's header and so copying every page it shares with the parent.
        gc.freeze()
        _serve(connection, work)
        code = 0
    finally:
        os._exit(code)


class _Worker:
    def __init__(self, work: Callable):
        self.sent: deque[int] = deque()  # indexes of the chunks sent, in order
        self.ended = False
        self.exitcode: int | None = None
        with _forking:
            self.connection, child_end = Pipe()
            _parent_ends.add(self.connection)
            try:
                # A signal to the process group while forking waits until the worker has set its own handling.
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
                try:
                    self.pid = os.fork()
                    if self.pid == 0:
                        _run(child_end, work, mask)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            except BaseException:
                _parent_ends.discard(self.connection)
                self.connection.close()
                raise
            finally:
                child_end.close()

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
        self.reap(1)
        return WorkerFailed(f"a worker validating files ended without answering (exit {self.exitcode})")

    def reap(self, seconds: float) -> bool:
        """Whether the worker has ended, waiting for it up to ``seconds``."""
        deadline = time.monotonic() + seconds
        delay = 0.001
        while not self.ended:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (SIGCHLD ignored): its exit code is lost
                self.ended = True
                break
            if pid:
                self.ended, self.exitcode = True, os.waitstatus_to_exitcode(status)
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(delay)
                delay = min(2 * delay, 0.05)
        return self.ended

    def kill(self) -> None:
        if not self.ended:  # not reaped: its pid cannot belong to another process yet
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def ordered_map(work: Callable[[list], list], chunks: Iterable[list], jobs: int) -> Iterator[list]:
    """``work(chunk)`` for every chunk, computed in ``jobs`` forked processes, yielded in order.

    ``work`` must be a module-level function (its result is pickled back). A worker that dies, or an
    exception ``work`` raises, raises :class:`WorkerFailed` here. Leaving early (an error, the generator
    closed) ends the workers.
    """
    window = DEPTH * jobs + jobs
    workers: list[_Worker] = []
    try:
        for _ in range(jobs):
            workers.append(_Worker(work))
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
        if worker.sent:
            # In the middle of a chunk nobody waits for any more (or of a send cut short): nothing to finish.
            worker.kill()
        else:
            with contextlib.suppress(OSError):  # a worker that is gone already
                worker.connection.send_bytes(_STOP)
    for worker in workers:
        if not worker.reap(STOP_SECONDS):
            worker.kill()
            worker.reap(STOP_SECONDS)
        with _forking:
            _parent_ends.discard(worker.connection)
        worker.connection.close()

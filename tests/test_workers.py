"""The pool of forked processes that validates a put's files: order, failures, and no process left behind."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from imgvault.basics.errors import WorkerFailed
from imgvault.store.workers import ordered_map


def _slow_when_small(chunk: list[int]) -> list[int]:
    # The first chunks take longest, so later chunks finish first and must wait to be given back.
    time.sleep(max(0.0, 0.05 - 0.005 * chunk[0]))
    return [n * n for n in chunk] + [os.getpid()]


def _dies_on_seven(chunk: list[int]) -> list[int]:
    if 7 in chunk:
        os._exit(3)
    return chunk


def _raises_on_seven(chunk: list[int]) -> list[int]:
    if 7 in chunk:
        raise MemoryError("no room for chunk 7")
    return chunk


def _sleeps(chunk: list[int]) -> list[int]:
    time.sleep(0.5)  # the work itself: a chunk that takes a while, so that the pool is busy when signalled
    return chunk


def _echo(chunk: list) -> list:
    return chunk


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) is not running either.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids, seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def test_results_come_back_in_the_order_of_the_chunks_from_more_than_one_process():
    chunks = [[n] for n in range(20)]
    results = list(ordered_map(_slow_when_small, chunks, jobs=3))
    assert [result[:-1] for result in results] == [[n * n] for n in range(20)]
    workers = {result[-1] for result in results}
    assert len(workers) == 3 and os.getpid() not in workers
    assert _wait_gone(workers) == []


def test_a_worker_that_dies_is_an_error_not_a_hang_and_the_other_workers_end(new_children):
    results = ordered_map(_dies_on_seven, [[n] for n in range(20)], jobs=2)
    with pytest.raises(WorkerFailed, match=r"ended without answering \(exit 3\)"):
        for _ in results:
            pass
    assert new_children() == []


def test_an_exception_in_a_worker_is_raised_with_its_message(new_children):
    with pytest.raises(WorkerFailed, match="MemoryError: no room for chunk 7"):
        list(ordered_map(_raises_on_seven, [[n] for n in range(20)], jobs=2))
    assert new_children() == []


def test_leaving_early_ends_the_workers_even_in_the_middle_of_a_chunk(new_children):
    results = ordered_map(_slow_when_small, [[n] for n in range(100)], jobs=2)
    first = next(results)
    results.close()
    assert _wait_gone([first[-1]]) == []
    assert new_children() == []


def test_workers_end_when_their_parent_is_killed(tmp_path):
    script = textwrap.dedent(
        """
        import sys, threading, time
        sys.path.insert(0, sys.argv[1])
        from test_workers import _sleeps
        from imgvault.store.workers import ordered_map
        results = ordered_map(_sleeps, [[n] for n in range(1000)], jobs=2)
        threading.Thread(target=lambda: list(results), daemon=True).start()
        time.sleep(60)  # alive until the test kills it
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script, os.path.dirname(__file__)])
    pids = _workers_of(parent, 2)
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    # Each finishes the chunk it holds (half a second), then finds its input closed.
    assert _wait_gone(pids) == []


@pytest.fixture
def new_children():
    """A function: the children of this process that the test started and that still run. (Other tests
    leave processes of their own running, joblib's workers for one.)"""
    before = set(_children())
    return lambda: [child for child in _children() if child not in before and _alive(child)]


def _children() -> list[int]:
    me = str(os.getpid())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                children.append(int(entry))
    return children


def _workers_of(parent: subprocess.Popen, count: int) -> list[int]:
    """The pids of the first ``count`` children of ``parent``, once it has that many."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = Path(f"/proc/{parent.pid}/task")
        children = [int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()]
        if len(children) >= count:
            return children
        time.sleep(0.01)
    raise AssertionError(f"{parent.args} did not start {count} workers")


def test_a_put_whose_worker_is_killed_says_so_after_reporting_every_batch_it_committed(tmp_path, new_children):
    import skimage.data
    from PIL import Image

    from imgvault.store import Settings, Store
    from imgvault.store.store import BATCH_IMAGES

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()[:100, :100]).save(photo)
    with Store.init(settings=Settings.resolve(tmp_path / "vault", environ={})) as store:
        results = store.put_many([photo] * (3 * BATCH_IMAGES), collection="c", jobs=2)
        stored = [next(results)]
        workers = new_children()
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        with pytest.raises(WorkerFailed, match=r"a worker validating files ended without answering \(exit -9\)"):
            stored.extend(results)
        assert _wait_gone(workers) == []
        # Whole batches or nothing, and every image committed was reported stored (the summary the
        # command line prints counts these) before the error.
        listed = list(store.images("c"))
        assert len(listed) % BATCH_IMAGES == 0
        assert sorted(image.id for image in listed) == sorted(result.image.id for result in stored)


def test_a_put_interrupted_mid_way_reports_every_batch_it_committed_before_the_interrupt(tmp_path):
    import skimage.data
    from PIL import Image

    from imgvault.store import Settings, Store
    from imgvault.store.store import BATCH_IMAGES

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()[:100, :100]).save(photo)

    def paths_then_ctrl_c():
        yield from [photo] * (5 * BATCH_IMAGES // 2)
        raise KeyboardInterrupt  # as a Ctrl-C lands while the put reads its input

    with Store.init(settings=Settings.resolve(tmp_path / "vault", environ={})) as store:
        stored = []
        with pytest.raises(KeyboardInterrupt):
            for result in store.put_many(paths_then_ctrl_c(), collection="c", jobs=2):
                stored.append(result)
        # The batch being committed then is finished (the one handed over but not started may be dropped).
        listed = list(store.images("c"))
        assert len(listed) in (BATCH_IMAGES, 2 * BATCH_IMAGES)
        assert sorted(image.id for image in listed) == sorted(result.image.id for result in stored)


def test_a_ctrl_c_the_caller_passes_into_the_put_mid_way_through_a_batch_still_gives_every_image_committed(
    tmp_path,
):
    import skimage.data
    from PIL import Image

    from imgvault.store import Settings, Store
    from imgvault.store.store import BATCH_IMAGES

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()[:100, :100]).save(photo)
    with Store.init(settings=Settings.resolve(tmp_path / "vault", environ={})) as store:
        results = store.put_many([photo] * (3 * BATCH_IMAGES), collection="c", jobs=2)
        stored = [next(results) for _ in range(10)]  # 10 of the first batch's results told
        # The command line got a Ctrl-C while it printed one, and raises it inside the put.
        with pytest.raises(KeyboardInterrupt):
            stored.append(results.throw(KeyboardInterrupt()))
            stored.extend(results)
        listed = list(store.images("c"))
        assert len(listed) in (BATCH_IMAGES, 2 * BATCH_IMAGES)
        assert sorted(image.id for image in listed) == sorted(result.image.id for result in stored)


BIG_CHUNKS = """
import sys
sys.path.insert(0, sys.argv[1])
from test_workers import _echo
from imgvault.store.workers import ordered_map

chunks = [[n, bytes(1_000_000)] for n in range(6)]
assert list(ordered_map(_echo, chunks, jobs=2)) == chunks
print("all given back")
"""


def test_chunks_and_results_larger_than_a_pipe_holds_come_back_instead_of_deadlocking():
    # A worker answering its first chunk while the parent sends it a second, both larger than the pipe
    # holds, would each wait for the other to read. In a process of its own, so that a deadlock fails the test.
    assert _output_unless_it_hangs(BIG_CHUNKS) == "all given back\n"


def _output_unless_it_hangs(script: str) -> str:
    """What ``script`` prints, or "deadlocked" if it has not ended in 60 s (then it and its children are killed)."""
    with subprocess.Popen([sys.executable, "-c", script, os.path.dirname(__file__)], stdout=subprocess.PIPE,
                          text=True, start_new_session=True) as parent:  # fmt: skip
        try:
            return parent.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(parent.pid, signal.SIGKILL)
            return "deadlocked"


def test_pools_started_and_stopped_in_several_threads_at_once_all_give_their_results(new_children):
    failures = []

    def put_many_times():
        for _ in range(60):
            try:
                assert list(ordered_map(_echo, [[n] for n in range(6)], jobs=2)) == [[n] for n in range(6)]
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=put_many_times) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert new_children() == []


PUTS_IN_THREADS = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
from test_workers import _sleeps
from imgvault.store.workers import ordered_map

start = threading.Barrier(4)
# Forking a large process takes a while: the threads' pipes and forks interleave.
os.register_at_fork(before=lambda: time.sleep(0.02))

def put():
    start.wait()
    for _ in ordered_map(_sleeps, [[n] for n in range(1000)], jobs=2):
        pass

for _ in range(4):
    threading.Thread(target=put, daemon=True).start()
time.sleep(60)  # alive until the test kills it
"""


def test_workers_of_puts_in_several_threads_end_when_their_parent_is_killed():
    # Each pool's workers must not keep another pool's pipes open, or after the parent is gone two
    # pools' workers wait for each other's input to close, for ever.
    assert _left_running_after_killing(PUTS_IN_THREADS, 8) == []


def _left_running_after_killing(script: str, children: int, workers=lambda found: found) -> list[int]:
    """Run ``script``, wait for ``children`` processes of it, kill it: which of ``workers(children found)``
    still run 10 s later (then every child found is killed, so that a failing test leaves nothing)."""
    parent = subprocess.Popen([sys.executable, "-c", script, os.path.dirname(__file__)])
    try:
        found = _workers_of(parent, children)
    finally:
        parent.kill()
        parent.wait()
    alive = _wait_gone(workers(found))
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


CTRL_C_AT_START = """
import os, signal, sys, threading
from imgvault.store.workers import ordered_map

def echo(chunk):
    return chunk

def ctrl_c_to_every_new_worker():
    # As a terminal's Ctrl-C reaches every process of the group, here only the workers, at once.
    seen = set()
    while True:
        for task in os.listdir("/proc/self/task"):
            try:
                children = open(f"/proc/self/task/{task}/children").read().split()
            except OSError:
                continue
            for child in set(children) - seen:
                seen.add(child)
                try:
                    os.kill(int(child), signal.SIGINT)
                except ProcessLookupError:
                    pass

threading.Thread(target=ctrl_c_to_every_new_worker, daemon=True).start()
for _ in range(100):
    assert list(ordered_map(echo, [[n] for n in range(4)], jobs=2)) == [[n] for n in range(4)]
print("all given back")
"""


def test_a_ctrl_c_that_reaches_a_worker_while_it_starts_is_ignored_there():
    done = subprocess.run([sys.executable, "-c", CTRL_C_AT_START], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "all given back\n", "")


SERVICE_WITH_SIGTERM_HANDLER = """
import signal, sys
sys.path.insert(0, sys.argv[1])
from test_workers import _sleeps
from imgvault.basics.errors import WorkerFailed
from imgvault.store.workers import ordered_map

signal.signal(signal.SIGTERM, lambda *_: print("parent handler ran", flush=True))
results = ordered_map(_sleeps, [[n] for n in range(1000)], jobs=2)
try:
    for _ in results:
        pass
except WorkerFailed as exc:
    print(exc, flush=True)
"""


def test_a_worker_ends_on_sigterm_even_when_its_parent_handles_sigterm():
    # A service (uvicorn, a task queue) handles SIGTERM itself; the workers it forks must not inherit that.
    parent = subprocess.Popen([sys.executable, "-c", SERVICE_WITH_SIGTERM_HANDLER, os.path.dirname(__file__)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        workers = _workers_of(parent, 2)
        _wait_past_the_fork(workers[0])
        os.kill(workers[0], signal.SIGTERM)
        out, _ = parent.communicate(timeout=30)
    finally:
        parent.kill()
    assert out == "a worker validating files ended without answering (exit -15)\n"


def _wait_past_the_fork(pid: int, seconds: float = 30) -> None:
    """Until the worker ``pid`` has set its own signal handling: SIGTERM neither caught (the parent's handler,
    inherited) nor blocked (as it is while the worker is forked), as it is while the worker works."""
    term = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        if not (int(status["SigCgt"], 16) | int(status["SigBlk"], 16)) & term:
            return
        time.sleep(0.01)
    raise AssertionError(f"worker {pid} did not set its own signal handling")


FORK_WHILE_A_PUT_FORKS = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
from test_workers import _echo, _sleeps
from imgvault.store.workers import ordered_map

forking = threading.Event()

def slow_fork_of_a_worker():
    if threading.current_thread() is not threading.main_thread():
        forking.set()
        time.sleep(0.5)  # the slow fork under test: the caller forks meanwhile

os.register_at_fork(before=slow_fork_of_a_worker)
threading.Thread(target=lambda: list(ordered_map(_sleeps, [[n] for n in range(4)], jobs=1)), daemon=True).start()
forking.wait()
if os.fork() == 0:  # the caller forks (a multiprocessing child of its own) while the put forks a worker
    assert list(ordered_map(_echo, [[n] for n in range(4)], jobs=2)) == [[n] for n in range(4)]
    os._exit(0)
print("put in the child:", "done" if os.wait()[1] == 0 else "failed", flush=True)
"""


def test_a_process_forked_while_a_put_forks_its_workers_can_put_too():
    # The pool's lock, held by the put's thread at that moment, must not stay held in the child for ever.
    assert _output_unless_it_hangs(FORK_WHILE_A_PUT_FORKS) == "put in the child: done\n"


FORK_DURING_A_PUT = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
from test_workers import _sleeps
from imgvault.store.workers import ordered_map

results = ordered_map(_sleeps, [[n] for n in range(1000)], jobs=2)
threading.Thread(target=lambda: list(results), daemon=True).start()
deadline = time.monotonic() + 30
while len([c for t in os.listdir("/proc/self/task")  # until both workers are forked, the put running
           for c in open(f"/proc/self/task/{t}/children").read().split()]) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
if os.fork() == 0:  # a process of the caller's own, forked while the put runs, that lives on
    time.sleep(60)  # lives on, until the test kills it
    os._exit(0)
time.sleep(60)  # alive until the test kills it
"""


def test_workers_end_when_their_parent_is_killed_even_if_it_forked_other_processes_during_the_put():
    # The workers were forked before the caller's own process: the two smallest pids.
    assert _left_running_after_killing(FORK_DURING_A_PUT, 3, lambda found: sorted(found)[:2]) == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_path_with_a_nul_byte_is_that_files_error_in_a_worker_or_not(tmp_path, jobs):
    import skimage.data
    from PIL import Image

    from imgvault.store import Settings, Store

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()[:64, :64]).save(photo)
    paths = [photo] * 60 + [str(tmp_path / "bad\0name.png")] + [photo] * 3
    with Store.init(settings=Settings.resolve(tmp_path / "vault", environ={})) as store:
        results = list(store.put_many(paths, collection="c", jobs=jobs))
    errors = [result.error for result in results if result.error]
    assert len(errors) == 1 and errors[0].endswith("name.png: not a valid file name (it holds a NUL byte)")
    assert sum(1 for result in results if result.image) == 63

"""The writer thread of put_many: batches committed in order, a failure stops the rest and reaches the caller."""

import threading

import pytest

from imgvault.store.writer import BatchWriter


def test_batches_are_committed_in_order_on_another_thread_and_their_results_all_come_back():
    threads = set()

    def commit(batch):
        threads.add(threading.get_ident())
        return [n * 10 for n in batch]

    results = []
    with BatchWriter(commit) as writer:
        for batch in ([1, 2], [3], [4, 5, 6]):
            results += writer.submit(batch)
        results += writer.finish()
    assert results == [10, 20, 30, 40, 50, 60]
    assert threads and threading.get_ident() not in threads


def test_a_failed_commit_stops_later_batches_and_is_raised_after_the_results_committed_before_it():
    committed = []

    def commit(batch):
        if batch == ["bad"]:
            raise OSError("disk full")
        committed.append(batch)
        return batch

    results = []
    with pytest.raises(OSError, match="disk full"), BatchWriter(commit) as writer:
        for batch in (["a"], ["bad"], ["c"], ["d"]):
            results += writer.submit(batch)
        results += writer.finish()
    assert results == ["a"]
    assert committed == [["a"]]


def test_a_put_left_unfinished_and_collected_on_the_writer_thread_itself_ends_without_an_error():
    # The garbage collector can finalize an abandoned put_many generator on any thread, the writer's too:
    # leaving its BatchWriter there must not try to join the thread it runs on.
    ended = []

    def commit(batch):
        try:
            writer.__exit__(None, None, None)  # what the generator's finalization does
            ended.append("left")
        except RuntimeError as exc:
            ended.append(str(exc))
        return batch

    writer = BatchWriter(commit)
    with writer:
        list(writer.submit(["a"]))
        writer._waiting.join()
    assert ended == ["left"]

"""A SQLite store's reads on read-only sqlite3 connections (store/database.py) and the web service's cache of
valid tokens built on PRAGMA data_version (web/tokens.py): what a store that stays open, as ``imgvault serve``'s does,
sees when other processes revoke tokens, restore the database or fork.

A revoked token must be refused at its next check, whatever happened to the connections meanwhile.
"""

import gc
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
import weakref

import numpy as np
import pytest
from PIL import Image

import imgvault.store.database as database
from imgvault.store import Settings, Store
from imgvault.store.tokens import create_token
from imgvault.web.tokens import Tokens

_tokens: "weakref.WeakKeyDictionary[Store, Tokens]" = weakref.WeakKeyDictionary()


def tokens_of(store: Store) -> Tokens:
    """The web service's token checks of ``store`` (one per store, with its cache), as ``imgvault serve`` has."""
    if store not in _tokens:
        _tokens[store] = Tokens(store)
    return _tokens[store]


def check_token(store: Store, token: str):
    return tokens_of(store).check(token)


def noise_png() -> bytes:
    """A small real PNG, the same every time."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (12, 12), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def revoke_elsewhere(home, name: str) -> None:
    """``imgvault token revoke NAME`` in a process of its own."""
    command = [sys.executable, "-m", "imgvault.cli", "--home", str(home), "token", "revoke", name]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def cached(store, token: str) -> None:
    """Check ``token`` until the store keeps its record (the second check of a valid token is answered from it)."""
    assert check_token(store, token) is not None and check_token(store, token) is not None


def in_child(run, meanwhile=lambda: None) -> int:
    """The exit code of ``run()`` (an int) in a child forked now, the parent calling ``meanwhile()``; a child
    stuck for 20 s is killed by SIGALRM."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(20)
            code = run()
        finally:
            os._exit(code)
    try:
        meanwhile()
    finally:
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_token_revoked_and_checkpointed_into_the_database_by_another_process_is_refused(store, home):
    _, token = create_token(store, "t")
    cached(store, token)
    # Another process revokes it and moves the WAL into the database file, leaving the WAL empty.
    revoke = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
              " c.execute(\"UPDATE api_tokens SET revoked_at = '2020-01-01 00:00:00' WHERE name = 't'\");"
              " assert c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()[0] == 0")  # fmt: skip
    subprocess.run([sys.executable, "-c", revoke, str(home / "store.db")], check=True)
    assert (home / "store.db-wal").stat().st_size == 0
    assert check_token(store, token) is None


def test_a_store_used_again_after_close_refuses_a_token_revoked_meanwhile(store, home):
    _, token = create_token(store, "t")
    cached(store, token)
    store.close()  # its read-only connections are closed; the next check opens new ones
    revoke_elsewhere(home, "t")
    assert check_token(store, token) is None


def test_a_forked_child_refuses_a_token_revoked_after_the_fork(store, home):
    _, token = create_token(store, "t")
    cached(store, token)
    revoked, wake = os.pipe()

    def child() -> int:
        os.read(revoked, 1)
        return 0 if check_token(store, token) is None else 1

    def revoke():
        revoke_elsewhere(home, "t")
        os.write(wake, b"x")

    try:
        assert in_child(child, meanwhile=revoke) == 0
    finally:
        os.close(revoked)
        os.close(wake)
    assert check_token(store, token) is None


def test_a_forked_child_checks_tokens_although_a_thread_was_checking_one_at_the_fork(store):
    _, token = create_token(store, "t")
    cached(store, token)
    inside, leave = threading.Event(), threading.Event()

    def checking():  # a thread of the parent inside the token cache at the moment of the fork
        with tokens_of(store)._cache._lock:
            inside.set()
            leave.wait()

    thread = threading.Thread(target=checking)
    thread.start()
    inside.wait()
    try:
        code = in_child(lambda: 0 if check_token(store, token) is not None else 1)
    finally:
        leave.set()
        thread.join()
    assert code == 0  # not -14: stuck on a lock held by a thread that does not exist in the child
    assert check_token(store, token) is not None


def test_opening_and_closing_stores_leaves_nothing_behind(store, home):
    settings = Settings.resolve(home)
    for _ in range(5):
        Store.open(settings=settings).close()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(100):
            Store.open(settings=settings).close()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    where = [tracemalloc.Filter(True, database.__file__)]
    kept = after.filter_traces(where).compare_to(before.filter_traces(where), "filename")
    grown = sum(stat.size_diff for stat in kept)
    assert grown < 1000, f"{grown} bytes kept by store/database.py for 100 stores opened and closed"


def test_a_token_missing_from_a_backup_restored_with_sqlite_s_backup_is_refused(store, home, tmp_path):
    _, token = create_token(store, "t")
    backup = tmp_path / "backup.db"
    with sqlite3.connect(home / "store.db") as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    _, later = create_token(store, "later")  # not in the backup
    cached(store, token)
    cached(store, later)
    restore = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"
    subprocess.run([sys.executable, "-c", restore, str(backup), str(home / "store.db")], check=True)
    assert check_token(store, later) is None
    assert check_token(store, token) is not None


@pytest.mark.xfail(strict=True, reason="a database file moved over store.db is not noticed by connections open on the "
                   "file it replaced: PRAGMA data_version (and SQLAlchemy's pooled connections, as before the cache) "
                   "go on reading the old file until the store is opened again")  # fmt: skip
def test_a_token_missing_from_a_backup_moved_into_place_is_refused(store, home, tmp_path):
    backup = tmp_path / "backup.db"
    with sqlite3.connect(home / "store.db") as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    _, later = create_token(store, "later")  # not in the backup
    cached(store, later)
    os.replace(backup, home / "store.db")
    assert check_token(store, later) is None


def test_the_wal_and_shm_files_a_read_only_connection_makes_are_as_private_as_the_database(store, home):
    image = store.put(noise_png(), name="n.png")
    store.close()  # the last connection removes the -wal and -shm files
    assert sorted(path.name for path in home.glob("store.db*")) == ["store.db"]
    umask = os.umask(0)
    try:
        with Store.open(home) as reader:  # the listing: the first connection, read-only
            assert reader.database.file is not None and [listed.id for listed in reader.images()] == [image.id]
            files = sorted(path.name for path in home.glob("store.db*"))
            modes = {name: (home / name).stat().st_mode & 0o777 for name in files}
    finally:
        os.umask(umask)
    assert modes == dict.fromkeys(["store.db", "store.db-shm", "store.db-wal"], 0o600)


def test_a_store_db_that_is_a_symlink_is_read_and_watched_at_its_target(store, home, tmp_path):
    image = store.put(noise_png(), name="n.png")
    _, token = create_token(store, "t")
    store.close()
    target = tmp_path / "elsewhere" / "real.db"
    target.parent.mkdir()
    (home / "store.db").rename(target)
    (home / "store.db").symlink_to(target)
    with Store.open(home) as linked:
        assert linked.get(image.id) == noise_png()
        cached(linked, token)
        revoke_elsewhere(home, "t")
        assert check_token(linked, token) is None
    with Store.open(home) as reader:
        assert reader.database.file is not None and [listed.id for listed in reader.images()] == [image.id]
    assert sorted(path.name for path in home.glob("store.db*")) == ["store.db"]

"""The MLflow UI of a home (``imgvault ui``): MLflow's server with imgvault's app, on loopback, supervised.

:func:`run_ui` checks what can be checked first (the store opens with its key, the port is free), starts
``mlflow server --app-name imgvault`` (sealed artifacts opened in memory, :mod:`.sealing.server`) and stays
with it until it stops or is stopped (:func:`supervise`: the server's whole process group goes with it).
"""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable

from imgvault.basics.errors import ConfigError
from imgvault.store.config import Settings
from imgvault.tracker.sealing.files import ARTIFACTS, home_uri
from imgvault.tracker.tracking import tracking_uri


def run_ui(settings: Settings, port: int, *, announce: Callable[[str, str], None] = lambda uri, url: None) -> int:
    """Serve the MLflow UI of the tracking store of ``settings``'s home on ``127.0.0.1:port`` until stopped;
    ``announce(tracking_uri, url)`` once it is starting. Returns the exit status for this process
    (:func:`supervise`)."""
    from imgvault.store import Store

    home = settings.home
    uri = tracking_uri(home)
    if uri.startswith(("http://", "https://")):
        raise ConfigError(f"MLFLOW_TRACKING_URI already names a server: open {uri} in a browser")
    # One worker: this UI serves one person on loopback (MLflow's default of 4 costs ~1 GB).
    # imgvault's app: MLflow's server that opens sealed artifacts in memory, with this store's key.
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "imgvault", "--backend-store-uri", uri,
               "--registry-store-uri", uri, "--artifacts-destination", home_uri(ARTIFACTS), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--uvicorn-opts", "--log-level warning"]  # fmt: skip
    with Store.open(settings=settings):  # a missing store or a wrong key is one error here, not a failed server
        pass
    check_port_free(port)
    announce(uri, f"http://127.0.0.1:{port}")
    # The server finds the store (and so the key) as this command did. MLflow's job runner (GenAI jobs, 6
    # more processes with MLflow each, ~5 s to stop) is off: browsing runs does not use it.
    # It starts quietly: MLflow's and uvicorn's start-up messages and its dependencies' deprecation warnings
    # are for MLflow's developers (MLFLOW_LOGGING_LEVEL or PYTHONWARNINGS set by the user still win).
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_LOGGING_LEVEL": "WARNING",
           "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated",
           **os.environ, "IMGVAULT_HOME": str(home), "IMGVAULT_DB_URL": settings.db_url,
           "IMGVAULT_KEY_FILE": str(settings.key_file)}  # fmt: skip
    # MLflow says this at every start; on loopback only, as here, it is what the user asked for.
    return supervise(command, env, drop=("[MLflow] Security middleware enabled with default settings",))


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """:class:`ConfigError` if ``host:port`` cannot be listened on (another server has it), before anything starts."""
    import errno
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise ConfigError(f"port {port} on {host} {why}: choose another with --port") from None


# How long the server may take to stop on its own before it is killed. After Ctrl-C a person waits:
# `imgvault ui` is gone within 2 s (uvicorn stops at once; MLflow's own process, which then has nothing left
# to save, takes seconds more to exit). SIGTERM (a service manager, a script) lets it finish cleanly.
STOP_SECONDS = {"SIGINT": 1.0, "SIGTERM": 10.0, "SIGHUP": 10.0}


def supervise(command: list[str], env: dict | None = None, drop: tuple[str, ...] = ()) -> int:
    """Run a server in a process group of its own and stop the whole group when we are stopped.

    ``mlflow server`` starts uvicorn and its workers as further processes; a signal to us alone would
    leave them running, so on SIGINT, SIGTERM or SIGHUP the group gets SIGTERM, and what still runs
    :data:`STOP_SECONDS` later is killed (a second signal kills at once). The server is waited for: no
    zombie is left, nor any of its children's (see :func:`_adopt_orphans`). Lines of its standard error
    that start with one of ``drop`` are not shown; the rest are, as they come.

    Returns the exit status for this process: 0 when stopped by SIGINT, 128 + the signal's number for
    another; :class:`ConfigError` if the server stopped on its own with an error.
    """
    import signal

    class Stopped(Exception):
        pass

    def stop(signum, _frame) -> None:
        raise Stopped(signum)  # out of the wait below: a wait inside a handler would deadlock on its lock

    def kill(_signum, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)

    adopting = _adopt_orphans()
    server = subprocess.Popen(command, env=os.environ.copy() if env is None else env, start_new_session=True,
                              stderr=subprocess.PIPE if drop else None)  # fmt: skip
    forwarder = _forward_stderr(server.stderr, drop) if drop else None
    try:
        for one in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(one, stop)
        code = server.wait()
    except Stopped as stopped:
        [signum] = stopped.args
        for one in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(one, kill)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_SECONDS[signal.Signals(signum).name])
        kill(None, None)  # also when the server has stopped: its children may still run in its group
        server.wait()
        if adopting:
            _reap_children(deadline=time.monotonic() + 1)
        return 0 if signum == signal.SIGINT else 128 + signum
    if adopting:
        _reap_children(deadline=time.monotonic() + 1)
    if forwarder is not None:
        forwarder.join(timeout=2)  # the server's last lines (its error, if it failed) are shown before ours
    if code:
        raise ConfigError(f"the MLflow server stopped with exit code {code}")
    return 0


def _forward_stderr(stream, drop: tuple[str, ...]):
    """Copy ``stream`` to our standard error line by line, but for the lines that start with one of ``drop``."""
    import threading

    def forward() -> None:
        with stream:
            for line in stream:
                if not line.decode(errors="replace").startswith(drop):
                    sys.stderr.buffer.write(line)
                    sys.stderr.buffer.flush()

    thread = threading.Thread(target=forward, name="imgvault-server-stderr", daemon=True)
    thread.start()
    return thread


def _adopt_orphans() -> bool:
    """Make this process the reaper of its descendants (Linux): a server's child whose parent dies then
    becomes ours rather than PID 1's, and is reaped here, even in a container whose PID 1 reaps nothing."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_children(deadline: float) -> None:
    """Wait for the children that are still exiting (the server's adopted ones), until ``deadline``."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # none left
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)

"""Connections that cannot hold the server's file descriptors: a header-read timeout and a connection cap.

uvicorn waits as long as a client likes for a request's headers, and accepts every connection: clients that
open connections and send nothing (or a byte at a time) could hold every file descriptor the server has,
without a token. :func:`guarded_protocol` gives uvicorn's HTTP protocol (httptools) two bounds:

- a request's headers must arrive within ``header_seconds`` of the connection (or of the request's first
  byte, on a kept-alive connection), else the connection is closed (at most a quarter of that, or a
  second, later);
- past ``max_connections`` open connections, a new one is closed at once.

An authenticated client's slow *body* is bounded by the upload size limits (:mod:`.uploads`) and uvicorn's
flow control; a reverse proxy in front (TLS, rate limits per address) remains the place for a public
deployment's further limits.
"""

HEADER_SECONDS = 10.0
MAX_CONNECTIONS = 1000


def guarded_protocol(header_seconds: float = HEADER_SECONDS, max_connections: int = MAX_CONNECTIONS) -> type:
    """uvicorn's httptools protocol with a header-read timeout and a connection cap (pass it as ``http=``).

    A connection notes when it began to wait for a request's headers, and one sweep per server looks over the
    open connections every :func:`sweep_period` seconds and closes those that waited longer than
    ``header_seconds``: a timer per request (set, then cancelled when the headers arrive) would cost every
    request more than its note does.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    period = sweep_period(header_seconds)
    sweeps: dict[int, object] = {}  # the next sweep of each server (by its set of connections), while it has any

    def sweep(loop, connections: set) -> None:
        now = loop.time()
        for connection in list(connections):
            since = getattr(connection, "awaiting_since", None)  # None too for a protocol of another kind
            if since is not None and now - since >= header_seconds:
                connection.too_slow()
        if connections:
            sweeps[id(connections)] = loop.call_later(period, sweep, loop, connections)
        else:
            del sweeps[id(connections)]

    class GuardedProtocol(HttpToolsProtocol):
        awaiting_since: float | None = None  # since when (loop time) the next request's headers are awaited

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()  # connection_lost takes it out of self.connections
                return
            self.awaiting_since = self.loop.time()
            if id(self.connections) not in sweeps:
                sweeps[id(self.connections)] = self.loop.call_later(period, sweep, self.loop, self.connections)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.awaiting_since = self.loop.time()

        def on_headers_complete(self) -> None:
            self.awaiting_since = None
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self.awaiting_since = None
            super().connection_lost(exc)

        def too_slow(self) -> None:
            self.awaiting_since = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def sweep_period(header_seconds: float) -> float:
    """How often the connections are looked over: a connection is closed between ``header_seconds`` and this
    much later."""
    return min(1.0, header_seconds / 4)
